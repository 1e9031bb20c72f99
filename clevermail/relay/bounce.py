"""Delivery status notifications: the bounce (Action: failed), the delay warning
(Action: delayed) and the success report (Action: delivered, relayed or expanded,
RFC 3461 NOTIFY=SUCCESS) for one message.

Owns the report's format only; the worker decides when to send one and delivers it
with an empty envelope sender, so that a report is never reported on (RFC 5321 6.1,
RFC 3464 section 2). The report is an RFC 6522 multipart/report with
report-type=delivery-status and three parts:

1. text/plain: what happened, for people;
2. message/delivery-status (RFC 3464): per-message fields (Original-Envelope-Id
   from ENVID), then one group of per-recipient fields (Original-Recipient from
   ORCPT, Final-Recipient, Action, Status from RFC 3463, Remote-MTA,
   Diagnostic-Code, Last-Attempt-Date, Will-Retry-Until);
3. text/rfc822-headers: the original message's header section (not its body, which
   the sender has and which may be large); a bounce of a message sent with RET=FULL
   returns the whole message as message/rfc822 (RFC 3461 4.3; RET only concerns
   failure reports, the others carry the headers).
"""
from __future__ import annotations

import email.utils
import secrets
import time
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Callable, Iterable, Protocol

from clevermail.relay.smtp_client import enhanced_status
from clevermail.relay.queue import header_block

MAX_ORIGINAL_HEADERS = 64 * 1024     # a bounce must stay small enough to deliver


class _Rcpt(Protocol):
    address: str
    last_reply: str | None
    remote: str | None
    orcpt: str | None           # "addr-type;address" (RFC 3461 ORCPT), or None
    report: str | None          # "delivered", "relayed" or "expanded": a success report's action


def _status(reply: str | None, action: str) -> str:
    found = enhanced_status(reply or "")
    if found:
        return found
    if action == "delayed":
        return "4.0.0"
    if action == "success":
        return "2.0.0"
    # A failure whose last reply was temporary is an expiry (RFC 3463 4.4.7).
    return "4.4.7" if (reply or "").startswith("4") else "5.0.0"


def _remote_name(remote: str | None) -> str | None:
    # "mx.example.com[192.0.2.1]:25" -> "mx.example.com"; "local" (our own mailbox,
    # relay/local.py) names no remote MTA, as the SMTP handler's reports have none
    if not remote or remote == "local":
        return None
    return remote.split("[", 1)[0] or None


def _clean(value: str) -> str:
    # Header field values must not break lines (addresses and replies are remote data).
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def make_dsn(*, reporting_mta: str, sender: str, queue_id: str, arrival: float,
             recipients: Iterable[_Rcpt], original: bytes, action: str = "failed",
             now: float | None = None, retry_until: float | None = None,
             sign: Callable[[bytes], bytes] | None = None, envid: str | None = None,
             ret: str | None = None) -> bytes:
    """The whole report message, CRLF line endings, ready for local delivery or the
    queue. `action`: "failed", "delayed" or "success" (each recipient's `report`
    is its Action).  `original` is the queued message (its headers, or all of it for
    a bounce with `ret` "FULL").  `envid` is the ENVID to echo.  `sign`
    (dkim.signer.Signer.sign_report) adds the DKIM signature of the postmaster's domain."""
    if action not in ("failed", "delayed", "success"):
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
    elif action == "success":
        subject = "Successful Mail Delivery Report"
        intro = ("Your message was delivered to the recipients below, as you asked.\n"
                 "'relayed' means it went on to a system that sends no such reports;\n"
                 "'expanded' that the address is an alias or list and the message went\n"
                 "on to its members, whose own success is not reported.")
    else:
        subject = "Delayed Mail (still being retried)"
        until = email.utils.formatdate(retry_until, localtime=True) if retry_until else "later"
        intro = ("Your message has not been delivered yet to one or more recipients.\n"
                 f"No action is needed: delivery will be retried until {until}.")
    human = [f"This is the mail system at {reporting_mta}.", "", intro, ""]
    for r in rcpts:
        human.append(f"<{_clean(r.address)}>: {_clean(r.last_reply or 'no reply recorded')}")
    human += ["", f"Queue id: {queue_id}"]

    per_message = [f"Reporting-MTA: dns; {reporting_mta}"]
    if envid:
        per_message.append(f"Original-Envelope-Id: {_clean(envid)}")
    per_message += [
                   f"X-CleverMail-Queue-ID: {_clean(queue_id)}",
                   f"Arrival-Date: {email.utils.formatdate(arrival, localtime=True)}"]
    groups = []
    for r in rcpts:
        orcpt = getattr(r, "orcpt", None)
        g = [f"Original-Recipient: {_clean(orcpt)}"] if orcpt else []
        g += [f"Final-Recipient: rfc822; {_clean(r.address)}",
              f"Action: {r.report if action == 'success' else action}",
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
    if action == "failed" and ret == "FULL":
        cte = "8bit" if any(b > 127 for b in original) else "7bit"
        body += (f"--{boundary}\r\nContent-Description: Undelivered message\r\n"
                 f"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: {cte}"
                 "\r\n\r\n").encode("ascii")
        body += original + (b"" if original.endswith(b"\r\n") or not original else b"\r\n")
    else:
        body += (f"--{boundary}\r\nContent-Description: Undelivered message headers\r\n"
                 f"Content-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: {headers_cte}"
                 "\r\n\r\n").encode("ascii")
        body += headers + (b"" if headers.endswith(b"\r\n") or not headers else b"\r\n")
    body += f"\r\n--{boundary}--\r\n".encode("ascii")
    return sign(body) if sign is not None else body
