"""IMAP errors that carry their reply (RFC 3501 section 7.1).

A command method raises IMAPNo or IMAPBad; the session's single catch point turns
the exception into the tagged line.  IMAPBye ends the session after an untagged
BYE.  Response codes (RFC 3501 7.1, RFC 5530) travel in `code` without brackets.
"""


class IMAPError(Exception):
    """Base: a tagged reply of kind `status` with optional response code."""

    status = "NO"

    def __init__(self, text, code=None):
        super().__init__(text)
        self.text = text
        self.code = code

    def reply(self, tag):
        """The tagged reply line as bytes (CRLF included)."""
        code = f"[{self.code}] " if self.code else ""
        return f"{tag} {self.status} {code}{self.text}\r\n".encode("utf-8", "replace")


class IMAPNo(IMAPError):
    """The command was understood but failed (tagged NO)."""

    status = "NO"


class IMAPBad(IMAPError):
    """Protocol-level error: unknown command, bad syntax, wrong state (tagged BAD)."""

    status = "BAD"


class IMAPBye(IMAPError):
    """The server ends the session: untagged BYE, then close."""

    status = "BYE"

    def reply(self, tag=None):
        code = f"[{self.code}] " if self.code else ""
        return f"* BYE {code}{self.text}\r\n".encode("utf-8", "replace")
