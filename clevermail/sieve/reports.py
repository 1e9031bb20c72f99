"""The refusal a Sieve reject/ereject sends for a message already accepted
(RFC 5429 2.1-2.2): an MDN (RFC 8098) with the disposition
"automatic-action/MDN-sent-automatically; deleted" and the script's reason as its
human part, to the envelope sender (never to the null sender: the caller checks),
from MAILER-DAEMON, with the original's header section attached."""

import email.utils
import secrets

from .vacation import _header

MAX_ORIGINAL_HEADERS = 64 * 1024
MAX_REASON = 16 * 1024


def _clean(text):
    return " ".join(str(text).split())


def make_refusal(reason, message, sender, recipient, hostname):
    """The MDN's bytes (CRLF); `message` is the MessageView of the refused message."""
    boundary = f"{secrets.token_hex(12)}/{hostname}"
    head = message.head[:MAX_ORIGINAL_HEADERS]
    original_id = _clean((message.raw_values("message-id") or [""])[0])
    subject = _clean((message.header("subject") or [""])[0])
    lines = [f"From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n",
             f"To: <{sender}>\r\n",
             _header("Subject", f"Rejected: {subject}" if subject else "Message rejected"),
             f"Date: {email.utils.formatdate(localtime=True)}\r\n",
             f"Message-ID: <{secrets.token_hex(12)}@{hostname}>\r\n",
             "Auto-Submitted: auto-replied\r\n",
             "MIME-Version: 1.0\r\n",
             "Content-Type: multipart/report; report-type=disposition-notification;\r\n"
             f'\tboundary="{boundary}"\r\n']
    if original_id:
        lines += [f"In-Reply-To: {original_id}\r\n", f"References: {original_id}\r\n"]
    text = reason[:MAX_REASON].replace("\r\n", "\n").replace("\n", "\r\n")
    if not text.endswith("\r\n"):
        text += "\r\n"
    human = (f"Your message to <{recipient}> was rejected by the recipient's mail filter:\r\n"
             f"\r\n{text}")
    mdn = [f"Reporting-UA: {hostname}; CleverMail Sieve",
           f"Final-Recipient: rfc822; {_clean(recipient)}"]
    if original_id:
        mdn.append(f"Original-Message-ID: {original_id}")
    mdn.append("Disposition: automatic-action/MDN-sent-automatically; deleted")
    out = "".join(lines) + "\r\nThis is a MIME-encapsulated message.\r\n\r\n"
    out += (f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: {'7bit' if human.isascii() else '8bit'}\r\n\r\n{human}\r\n")
    out += (f"--{boundary}\r\nContent-Type: message/disposition-notification\r\n\r\n"
            + "\r\n".join(mdn) + "\r\n\r\n")
    body = out.encode("utf-8")
    cte = "8bit" if any(b > 127 for b in head) else "7bit"
    body += (f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n"
             f"Content-Transfer-Encoding: {cte}\r\n\r\n").encode("ascii")
    body += head.rstrip(b"\r\n") + b"\r\n"
    body += f"\r\n--{boundary}--\r\n".encode("ascii")
    return body
