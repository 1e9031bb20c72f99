"""POP3 replies: status lines, RFC 3206 response codes, and multi-line listings.

A single-line reply is "+OK text" or "-ERR [CODE] text" (RFC 1939 3, RFC 2449 8).
The extended response codes this server sends (RFC 3206, announced by CAPA
RESP-CODES and AUTH-RESP-CODE):

    [AUTH]      the credentials were refused (RFC 3206 5)
    [SYS/TEMP]  a temporary problem on our side; try again later (RFC 3206 4)
    [IN-USE]    the maildrop is held by another POP3 session (RFC 2449 8.1.1)

POP3Error carries its whole reply so that the session writes it at one catch point.
Messages (RETR, TOP) are streamed byte-stuffed by wire.stuffed_chunks and wire.top_of.
"""

from ..wire import TERMINATOR

AUTH = "AUTH"
SYS_TEMP = "SYS/TEMP"
IN_USE = "IN-USE"


def ok(text=""):
    """A single-line positive reply as bytes."""
    return b"+OK " + text.encode("utf-8") + b"\r\n" if text else b"+OK\r\n"


def err(text, code=None):
    """A single-line negative reply as bytes, with an optional RFC 3206 code."""
    prefix = f"-ERR [{code}] " if code else "-ERR "
    return (prefix + text).encode("utf-8") + b"\r\n"


class POP3Error(Exception):
    """A command failed; `reply` is the exact -ERR line to send.

    `counts` says whether the failure is a client error that counts toward the
    session's error limit (syntax, wrong state, bad credentials).  Failures the client
    cannot avoid, such as a message expunged by an IMAP session, do not count: a
    client retrieving a changing maildrop must never be cut off before its QUIT."""

    def __init__(self, text, code=None, counts=True):
        super().__init__(text)
        self.code = code
        self.counts = counts
        self.reply = err(text, code)


def multiline(first, lines):
    """'+OK first' followed by `lines` (str, no CRLF, never starting with '.') and the
    terminator, as one buffer: LIST, UIDL and CAPA send it with one sendall."""
    body = "\r\n".join(lines)
    if body:
        body += "\r\n"
    return ok(first) + body.encode("utf-8") + TERMINATOR
