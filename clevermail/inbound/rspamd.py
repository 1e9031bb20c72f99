"""The content filter: rspamd asked over its HTTP protocol (POST /checkv2, rspamd's
"protocol" documentation: https://rspamd.com/doc/developers/protocol.html) at the end
of DATA, and what its answer means for the message.

The request carries the message as the body and the SMTP envelope as headers (IP,
Helo, From, one Rcpt per recipient, Queue-Id, User when authenticated, Hostname);
the JSON reply says `action`, `score`, `required_score`, `symbols` (and `subject`
for "rewrite subject").  Actions, as Postfix's or Exim's rspamd integrations map them:
- reject: 550 5.7.1;
- soft reject, greylist: 451 4.7.1;
- add header, rewrite subject: delivered to Junk with X-Spam: Yes and X-Spam-Score
  (and for rewrite subject the Subject rspamd wrote);
- no action (or anything unknown to us): delivered, with X-Spam-Score only.
Every message rspamd scanned carries X-Spam-Score ("score / required"), so a user or
a Sieve script can see what the filter thought; fields of that name already in the
message are removed first (a sender must not pre-label its own mail).

rspamd slow or down ([spam] rspamd_fail): "open" delivers unscanned and logs a
WARNING; "tempfail" answers 451 4.7.1 so the sender retries later.  Scans (by
action, with their seconds) and failures (by reason and outcome) are counted in the
service's metrics.  Only for
unauthenticated clients outside trusted_networks (the session asks; Defence holds
the filter).
"""

import email.header
import http.client
import json
import logging
import re
import time
from dataclasses import dataclass, field

from ..metrics import NO_METRICS
from ..smtp import replies as R

log = logging.getLogger("clevermail.inbound")

R550_SPAM = R.Reply(550, "5.7.1", "Message refused as spam: {}")
R451_SPAM = R.Reply(451, "4.7.1", "Message deferred by the content filter: {}, try again later", counts=False)

MAX_REPLY = 4 * 1024 * 1024      # an rspamd reply is a few KB; a runaway one is not read whole


class RspamdError(Exception):
    """rspamd could not be asked or answered nonsense; `reason` says which, for the
    metrics: timeout, unreachable, http_error, bad_reply."""

    def __init__(self, text, reason="bad_reply"):
        super().__init__(text)
        self.reason = reason


@dataclass(frozen=True)
class Scan:
    """rspamd's answer to one message."""

    action: str
    score: float
    required_score: float
    symbols: tuple = ()             # symbol names, sorted
    subject: str | None = None      # the rewritten Subject, for "rewrite subject"
    message: str = ""               # rspamd's smtp_message, if it gave one


@dataclass(frozen=True)
class Outcome:
    """What the session does with the message: refuse with `refusal`, or deliver
    `body` (labelled) to `folder`; `reason` is for the log ("" = nothing to say)."""

    refusal: object = None          # a Reply, or None
    body: bytes = b""
    folder: str | None = None
    reason: str = ""
    scan: Scan | None = field(default=None, compare=False)


def parse_reply(data):
    """The Scan in rspamd's JSON reply `data` (bytes); RspamdError if it is not one."""
    try:
        reply = json.loads(data)
        action = reply["action"]
        score = float(reply.get("score", 0.0))
        required = float(reply.get("required_score", 0.0))
    except (ValueError, KeyError, TypeError) as exc:
        raise RspamdError(f"unreadable reply: {exc}") from None
    if not isinstance(action, str):
        raise RspamdError("unreadable reply: action is not a string")
    symbols = reply.get("symbols") or {}
    subject = reply.get("subject")
    messages = reply.get("messages") or {}
    text = messages.get("smtp_message", "") if isinstance(messages, dict) else ""
    return Scan(action=action, score=score, required_score=required,
                symbols=tuple(sorted(symbols)) if isinstance(symbols, dict) else (),
                subject=subject if isinstance(subject, str) else None,
                message=text if isinstance(text, str) else "")


class RspamdClient:
    """Talks to one rspamd normal worker (host, port) with a timeout in seconds."""

    def __init__(self, host, port, timeout=10.0):
        self.host, self.port, self.timeout = host, port, timeout

    def check(self, message, *, ip, helo, sender, recipients, queue_id="", user=None, hostname=""):
        """The Scan of `message` (CRLF bytes); RspamdError when rspamd cannot answer."""
        headers = [("IP", ip), ("Helo", helo or ""), ("From", sender or ""),
                   ("Queue-Id", queue_id), ("Hostname", hostname)]
        headers += [("Rcpt", r) for r in recipients]
        if user:
            headers.append(("User", user))
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.putrequest("POST", "/checkv2", skip_accept_encoding=True)
            for name, value in headers:
                # header values come from the SMTP session: never let one carry a line break
                conn.putheader(name, _clean(value))
            conn.putheader("Content-Length", str(len(message)))
            conn.endheaders(message)
            response = conn.getresponse()
            data = response.read(MAX_REPLY + 1)
        except (OSError, http.client.HTTPException) as exc:
            reason = "timeout" if isinstance(exc, TimeoutError) else "unreachable"
            raise RspamdError(f"{self.host}:{self.port}: {exc or type(exc).__name__}", reason) from None
        finally:
            conn.close()
        if response.status != 200:
            raise RspamdError(f"{self.host}:{self.port} answered HTTP {response.status}", "http_error")
        if len(data) > MAX_REPLY:
            raise RspamdError("reply too large")
        return parse_reply(data)


class ContentFilter:
    """The policy around RspamdClient: the Outcome for one message, counted in
    `metrics` (metrics.Metrics: each action, the scan's seconds, each failure and
    what followed from it)."""

    def __init__(self, client, fail="open", metrics=NO_METRICS, clock=time.monotonic):
        self.client = client
        self.fail = fail                # open | tempfail
        self.metrics = metrics
        self.clock = clock

    def check(self, body, **envelope):
        start = self.clock()
        try:
            scan = self.client.check(body, **envelope)
        except RspamdError as exc:
            if self.fail == "tempfail":
                self.metrics.rspamd_failed(exc.reason, "tempfail")
                return Outcome(R451_SPAM.format("filter unavailable"), reason=f"rspamd unavailable: {exc}")
            self.metrics.rspamd_failed(exc.reason, "accepted_unscanned")
            log.warning("rspamd unavailable, message accepted unscanned (rspamd_fail = open): %s", exc)
            return Outcome(body=body)
        self.metrics.rspamd_scanned(scan.action, self.clock() - start)
        return decide(scan, body)


def decide(scan, body):
    """The Outcome of `scan` for `body`."""
    score = f"{scan.score:.2f} / {scan.required_score:.2f}"
    why = f"rspamd {scan.action}, score {score}" + (f" ({scan.message})" if scan.message else "")
    if scan.action == "reject":
        return Outcome(R550_SPAM.format(f"score {score}"), reason=why, scan=scan)
    if scan.action in ("soft reject", "greylist"):
        return Outcome(R451_SPAM.format(scan.action), reason=why, scan=scan)
    body = strip_spam_fields(body)
    if scan.action in ("add header", "rewrite subject"):
        if scan.action == "rewrite subject" and scan.subject is not None:
            body = rewrite_subject(body, scan.subject)
        label = f"X-Spam: Yes\r\nX-Spam-Score: {score}\r\n".encode()
        return Outcome(body=label + body, folder="Junk", reason=f"junk: {why}", scan=scan)
    return Outcome(body=f"X-Spam-Score: {score}\r\n".encode() + body, scan=scan)


_SPAM_FIELD = re.compile(rb"^X-Spam(?:-Score)?[ \t]*:", re.I)
_SUBJECT = re.compile(rb"^Subject[ \t]*:", re.I)


def _fields(body):
    """(header lines as a list of logical fields, the rest from the blank line on)."""
    end = body.find(b"\r\n\r\n")
    head, rest = (body, b"") if end < 0 else (body[:end + 2], body[end + 2:])
    fields = []
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields, rest


def strip_spam_fields(body):
    fields, rest = _fields(body)
    return b"".join(f for f in fields if not _SPAM_FIELD.match(f)) + rest


def rewrite_subject(body, subject):
    """`body` with its Subject field(s) replaced by `subject` (one field)."""
    fields, rest = _fields(body)
    value = _clean(subject)
    try:
        line = f"Subject: {value}\r\n".encode("ascii")
    except UnicodeEncodeError:
        line = ("Subject: " + email.header.Header(value, "utf-8").encode() + "\r\n").encode("ascii")
    kept = [f for f in fields if not _SUBJECT.match(f)]
    return b"".join(kept) + line + rest


def _clean(value):
    return re.sub(r"[\r\n\x00]+", " ", str(value))
