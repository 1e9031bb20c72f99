"""Sieve vacation (RFC 5230) and the rules of automatic responses (RFC 3834).

`refusal(...)`: why no reply may go to this message, or None: never to the null
sender or to the user themself, never to mailing lists (List-Id and the other List-*
fields, Precedence bulk/list/junk) or to automatic mail (Auto-Submitted other than
"no"; MAILER-DAEMON, owner-*, *-request and the like, RFC 5230 4.6), and only when
one of the user's addresses is in To/Cc/Bcc (or their Resent- forms, RFC 5230 4.5).

`Responses`: at most one reply per (handle, sender) per :days, recorded durably in
sqlite3 at <user root>/sieve/vacation.db (shared by the server's processes).

`make_reply(...)`: the reply: From the user (or :from), To the envelope sender,
Subject :subject or "Auto: " + the original's, In-Reply-To/References,
Auto-Submitted: auto-replied; the reason as text/plain, or as a MIME entity (:mime).
It leaves with the null envelope sender (RFC 5230 5), so nothing answers it.
"""

import email.header
import email.utils
import hashlib
import os
import re
import secrets
import sqlite3
import time

from .message import MessageView

DB_NAME = "vacation.db"
_NO_REPLY_LOCALS = re.compile(r"(owner-.*|.*-request|mailer-daemon|listserv|majordomo|.*-bounces?)\Z",
                              re.I)
_ADDRESS_FIELDS = ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc")
MAX_REASON = 64 * 1024


def refusal(message: MessageView, sender, user_addresses):
    """Why no automatic reply may be sent to this message (a short reason), or None."""
    if not sender:
        return "null sender"
    own = {a.lower() for a in user_addresses if a}
    if sender.lower() in own:
        return "sent by the user"
    if _NO_REPLY_LOCALS.match(sender.rpartition("@")[0]):
        return "sender is a list or system address"
    auto = [v.strip().lower() for v in message.raw_values("auto-submitted")]
    if any(v.split(";")[0].strip() != "no" for v in auto):
        return "Auto-Submitted message"
    for field, _ in message.fields():
        if field.startswith("list-"):
            return "mailing list message (List-* field)"
    if any(v.strip().lower() in ("bulk", "list", "junk") for v in message.raw_values("precedence")):
        return "Precedence bulk/list/junk"
    if not any(a.lower() in own for f in _ADDRESS_FIELDS for a in message.addresses(f)):
        return "none of the user's addresses in To/Cc/Bcc"
    return None


class Responses:
    """Who got a reply for which handle until when (one sqlite3 file per user)."""

    def __init__(self, directory, clock=time.time):
        self.path = os.path.join(directory, DB_NAME)
        self.clock = clock

    def _db(self):
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE IF NOT EXISTS responses (handle TEXT, sender TEXT, until REAL,"
                   " PRIMARY KEY (handle, sender))")
        return db

    @staticmethod
    def _key(handle):
        return hashlib.sha256(handle.encode("utf-8", "surrogatepass")).hexdigest()

    def recent(self, handle, sender):
        """True when `sender` had a reply for `handle` within its period."""
        if not os.path.exists(self.path):
            return False
        db = self._db()
        try:
            row = db.execute("SELECT until FROM responses WHERE handle = ? AND sender = ?",
                             (self._key(handle), sender.lower())).fetchone()
        finally:
            db.close()
        return row is not None and row[0] > self.clock()

    def record(self, handle, sender, days):
        now = self.clock()
        db = self._db()
        try:
            db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?)",
                       (self._key(handle), sender.lower(), now + days * 86400))
            db.execute("DELETE FROM responses WHERE until < ?", (now,))
        finally:
            db.close()


def _header(name, value):
    """One header line, RFC 2047-encoded when it is not ASCII, folded."""
    value = " ".join(value.split())
    if not value.isascii():
        value = email.header.Header(value, "utf-8").encode(maxlinelen=76, linesep="\r\n")
    return f"{name}: {value}\r\n"


def make_reply(vacation, message: MessageView, to, user, recipient, hostname):
    """The reply's bytes (CRLF) for a Vacation action to `message`, going `to` its
    envelope sender."""
    subject = vacation.subject
    if subject is None:
        original = " ".join((message.header("subject") or [""])[0].split())
        subject = "Auto: " + original if original else "Automated reply"
    sender_field = vacation.sender or recipient or user
    if "@" in sender_field and "<" not in sender_field:
        sender_field = f"<{sender_field}>"
    lines = [_header("From", sender_field)]
    lines.append(f"To: <{to}>\r\n")
    lines += [_header("Subject", subject),
              f"Date: {email.utils.formatdate(localtime=True)}\r\n",
              f"Message-ID: <{secrets.token_hex(12)}@{hostname}>\r\n",
              "Auto-Submitted: auto-replied\r\n"]
    original_id = " ".join((message.raw_values("message-id") or [""])[0].split())
    if original_id:
        references = " ".join((message.raw_values("references") or [""])[0].split())
        lines.append(f"In-Reply-To: {original_id}\r\n")
        lines.append(_header("References", f"{references} {original_id}".strip()))
    lines.append("MIME-Version: 1.0\r\n")
    reason = vacation.reason[:MAX_REASON].replace("\r\n", "\n").replace("\n", "\r\n")
    if vacation.mime:
        # the reason is a MIME entity: its own Content-* fields, a blank line, the body
        if not reason.startswith("\r\n") and "\r\n\r\n" not in reason:
            reason = "Content-Type: text/plain; charset=utf-8\r\n\r\n" + reason
        body = reason
    else:
        if not reason.endswith("\r\n"):
            reason += "\r\n"
        cte = "7bit" if reason.isascii() else "8bit"
        body = (f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {cte}\r\n"
                f"\r\n{reason}")
    return ("".join(lines) + body).encode("utf-8")

