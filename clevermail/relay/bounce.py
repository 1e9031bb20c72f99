"""Delivery status notifications: the bounce (Action: failed) and the delay warning
(Action: delayed) for one queued message.

Owns the report's format only; the worker decides when to send one and delivers it
with an empty envelope sender, so that a report is never reported on (RFC 5321 6.1,
RFC 3464 section 2). The report is an RFC 6522 multipart/report with
report-type=delivery-status and three parts:

1. text/plain: what happened, for people;
2. message/delivery-status (RFC 3464): per-message fields, then one group of
   per-recipient fields (Final-Recipient, Action, Status from RFC 3463,
   Remote-MTA, Diagnostic-Code, Last-Attempt-Date, Will-Retry-Until);
3. text/rfc822-headers: the original message's header section (not its body, which
   the sender has and which may be large).
"""
from __future__ import annotations

import email.utils
import secrets
import time
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Callable, Iterable, Protocol

from clevermail.relay.delivery import enhanced_status
from clevermail.relay.queue import header_block

MAX_ORIGINAL_HEADERS = 64 * 1024     # a bounce must stay small enough to deliver


class _Rcpt(Protocol):
    address: str
    last_reply: str | None
    remote: str | None


def _status(reply: str | None, action: str) -> str:
    found = enhanced_status(reply or "")
    if found:
        return found
    if action == "delayed":
        return "4.0.0"
    # A failure whose last reply was temporary is an expiry (RFC 3463 4.4.7).
    return "4.4.7" if (reply or "").startswith("4") else "5.0.0"


def _remote_name(remote: str | None) -> str | None:
    # "mx.example.com[192.0.2.1]:25" -> "mx.example.com"
    if not remote:
        return None
    return remote.split("[", 1)[0] or None


def _clean(value: str) -> str:
    # Header field values must not break lines (addresses and replies are remote data).
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def make_dsn(*, reporting_mta: str, sender: str, queue_id: str, arrival: float,
             recipients: Iterable[_Rcpt], original: bytes, action: str = "failed",
             now: float | None = None, retry_until: float | None = None,
             sign: Callable[[bytes], bytes] | None = None) -> bytes:
    """The whole report message, CRLF line endings, ready for local delivery or the
    queue. `original` is the queued message (only its headers are used). `sign`
    (dkim.signer.Signer.sign_report) adds the DKIM signature of the postmaster's domain."""
    if action not in ("failed", "delayed"):
        raise ValueError(action)
    now = time.time() if now is None else now
    rcpts = list(recipients)
    date = email.utils.formatdate(now, localtime=True)
    boundary = f"{secrets.token_hex(12)}/{reporting_mta}"
    headers = header_block(original)[:MAX_ORIGINAL_HEADERS]
    parsed = BytesHeaderParser(policy=compat32).parsebytes(headers)
    original_id = _clean(str(parsed.get("Message-ID", "")))

    if action == "failed":
        subject = "Undelivered Mail Returned to Sender"
        intro = ("Your message could not be delivered to one or more recipients.\n"
                 "It has been given up on; the details follow.")
        if any((r.last_reply or "").startswith("4") for r in rcpts):
            intro += ("\nTemporary failures went on until the message's time in the "
                      "queue ran out.")
    else:
        subject = "Delayed Mail (still being retried)"
        until = email.utils.formatdate(retry_until, localtime=True) if retry_until else "later"
        intro = ("Your message has not been delivered yet to one or more recipients.\n"
                 f"No action is needed: delivery will be retried until {until}.")
    human = [f"This is the mail system at {reporting_mta}.", "", intro, ""]
    for r in rcpts:
        human.append(f"<{_clean(r.address)}>: {_clean(r.last_reply or 'no reply recorded')}")
    human += ["", f"Queue id: {queue_id}"]

    per_message = [f"Reporting-MTA: dns; {reporting_mta}",
                   f"X-CleverMail-Queue-ID: {_clean(queue_id)}",
                   f"Arrival-Date: {email.utils.formatdate(arrival, localtime=True)}"]
    groups = []
    for r in rcpts:
        g = [f"Final-Recipient: rfc822; {_clean(r.address)}",
             f"Action: {action}",
             f"Status: {_status(r.last_reply, action)}"]
        name = _remote_name(r.remote)
        if name:
            g.append(f"Remote-MTA: dns; {_clean(name)}")
        if r.last_reply:
            g.append(f"Diagnostic-Code: smtp; {_clean(r.last_reply)}")
        g.append(f"Last-Attempt-Date: {date}")
        if action == "delayed" and retry_until:
            g.append(f"Will-Retry-Until: {email.utils.formatdate(retry_until, localtime=True)}")
        groups.append("\r\n".join(g))
    status = "\r\n".join(per_message) + "\r\n\r\n" + "\r\n\r\n".join(groups) + "\r\n"

    top = [f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>",
           f"To: <{_clean(sender)}>",
           f"Subject: {subject}",
           f"Date: {date}",
           f"Message-ID: <{secrets.token_hex(12)}@{reporting_mta}>",
           "Auto-Submitted: auto-replied",           # RFC 3834: no auto-replies to this
           "MIME-Version: 1.0",
           f'Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="{boundary}"']
    if original_id:
        top += [f"In-Reply-To: {original_id}", f"References: {original_id}"]
    human_text = "\r\n".join("\n".join(human).split("\n")) + "\r\n"
    headers_cte = "8bit" if any(b > 127 for b in headers) else "7bit"
    out = "\r\n".join(top) + "\r\n\r\nThis is a MIME-encapsulated delivery status report.\r\n\r\n"
    out += (f"--{boundary}\r\nContent-Description: Notification\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: {'7bit' if human_text.isascii() else '8bit'}\r\n\r\n"
            f"{human_text}\r\n")
    out += (f"--{boundary}\r\nContent-Description: Delivery report\r\n"
            f"Content-Type: message/delivery-status\r\n\r\n{status}\r\n")
    body = out.encode("utf-8")
    body += (f"--{boundary}\r\nContent-Description: Undelivered message headers\r\n"
             f"Content-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: {headers_cte}"
             "\r\n\r\n").encode("ascii")
    body += headers + (b"" if headers.endswith(b"\r\n") or not headers else b"\r\n")
    body += f"\r\n--{boundary}--\r\n".encode("ascii")
    return sign(body) if sign is not None else body
