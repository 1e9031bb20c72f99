"""POP3 replies: status lines, RFC 3206 response codes, and multi-line listings.

A single-line reply is "+OK text" or "-ERR [CODE] text" (RFC 1939 3, RFC 2449 8).
The extended response codes this server sends (RFC 3206, announced by CAPA
RESP-CODES and AUTH-RESP-CODE):

    [AUTH]      the credentials were refused (RFC 3206 5)
    [SYS/TEMP]  a temporary problem on our side; try again later (RFC 3206 4)
    [IN-USE]    the maildrop is held by another POP3 session (RFC 2449 8.1.1)

Every -ERR reply is a named ErrorReply below, as SMTP's replies are named in
smtp/replies.py; a reply that carries a detail (a message number, a verb) has {}
placeholders filled by `format`.  Command code raises `POP3Error(ERR_USER_FIRST)`; the
session's single catch point sends its bytes and counts the error when `counts` says
so.  Messages (RETR, TOP) are streamed byte-stuffed by wire.stuffed_chunks and
wire.top_of.
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


class ErrorReply:
    """One -ERR reply: its text, its RFC 3206 code (or None) and whether it counts;
    `wire` is the bytes sent, built once.

    `counts` says whether the failure is a client error that counts toward the
    session's error limit (syntax, wrong state, bad credentials).  Failures the client
    cannot avoid, such as a message expunged by an IMAP session, do not count: a
    client retrieving a changing maildrop must never be cut off before its QUIT."""

    __slots__ = ("text", "code", "counts", "wire")

    def __init__(self, text, code=None, counts=True):
        self.text = text
        self.code = code
        self.counts = counts
        self.wire = err(text, code)

    def format(self, *args):
        """A copy whose text has the placeholders filled in."""
        return ErrorReply(self.text.format(*args), self.code, self.counts)

    def __repr__(self):
        return f"ErrorReply({self.code} {self.text!r})"


class POP3Error(Exception):
    """Raised by command code with an ErrorReply; the session sends `reply` (the -ERR
    line's bytes) and counts the error when `counts` says so."""

    def __init__(self, error):
        super().__init__(error.text)
        self.error = error
        self.reply = error.wire
        self.counts = error.counts


def multiline(first, lines):
    """'+OK first' followed by `lines` (str, no CRLF, never starting with '.') and the
    terminator, as one buffer: LIST, UIDL and CAPA send it with one sendall."""
    body = "\r\n".join(lines)
    if body:
        body += "\r\n"
    return ok(first) + body.encode("utf-8") + TERMINATOR


# -- command syntax (parser.py) -----------------------------------------------------
ERR_NOT_UTF8 = ErrorReply("command is not valid UTF-8")
ERR_EMPTY = ErrorReply("empty command")
ERR_UNKNOWN = ErrorReply("unknown command {}")
ERR_CONTROL_CHARS = ErrorReply("control characters in command")
ERR_SPACES = ErrorReply("arguments must be separated by single spaces")
ERR_ARG_TOO_LONG = ErrorReply("argument too long")
ERR_BAD_NUMBER = ErrorReply("invalid {}: {!r}")
ERR_NO_ARGUMENT = ErrorReply("{} takes no argument")
ERR_AT_MOST_ONE_MSG = ErrorReply("{} takes at most one message number")
ERR_ONE_MSG = ErrorReply("{} needs one message number")
ERR_TOP_ARGS = ErrorReply("{} needs a message number and a line count")
ERR_ONE_NAME = ErrorReply("{} takes exactly one name")
ERR_NO_PASSWORD = ErrorReply("missing password")
ERR_SASL_ARGS = ErrorReply("{} takes a mechanism and an optional initial response")

# -- sequence and state --------------------------------------------------------------
ERR_WRONG_STATE = ErrorReply("{} is not valid in the {} state")
ERR_USER_FIRST = ErrorReply("send USER first")

# -- TLS and login ---------------------------------------------------------------------
ERR_TLS_ACTIVE = ErrorReply("TLS is already active")
ERR_NO_TLS = ErrorReply("STLS not available: no TLS certificate configured")
ERR_NEEDS_TLS = ErrorReply("plaintext authentication needs TLS (use STLS)", AUTH)
ERR_MECHANISM = ErrorReply("unsupported SASL mechanism {}")
ERR_AUTH_FAILED = ErrorReply("authentication failed", AUTH)
ERR_AUTH_CANCELLED = ErrorReply("authentication cancelled")
ERR_SASL_TOO_LONG = ErrorReply("SASL response too long")
ERR_SASL_MALFORMED = ErrorReply("malformed SASL PLAIN response")
ERR_THROTTLED = ErrorReply("too many failed logins, try again later", SYS_TEMP)

# -- the maildrop (not counted: the client cannot avoid them) ----------------------------
ERR_IN_USE = ErrorReply("maildrop already locked by another POP3 session", IN_USE, counts=False)
ERR_MAILDROP_UNAVAILABLE = ErrorReply("cannot open maildrop, try again later", SYS_TEMP, counts=False)
ERR_NO_SUCH_MESSAGE = ErrorReply("no such message {}, only {} in maildrop", counts=False)
ERR_ALREADY_DELETED = ErrorReply("message {} already deleted", counts=False)
ERR_MESSAGE_GONE = ErrorReply("message {} was deleted by another session", counts=False)
ERR_NOT_REMOVED = ErrorReply("some deleted messages not removed", SYS_TEMP, counts=False)

# -- session-level replies (line_session.LineSession's hooks) --------------------------------
ERR_LINE_TOO_LONG = ErrorReply("command line too long")
ERR_BUSY = ErrorReply("too many connections, try again later", SYS_TEMP)
ERR_TIMEOUT = ErrorReply("autologout: idle for too long, no messages deleted")
ERR_TOO_MANY_ERRORS = ErrorReply("too many errors, closing connection")
# The server stops (MailService.stop's drain): the session ends without UPDATE (RFC 1939 6).
ERR_SHUTDOWN = ErrorReply("server shutting down", SYS_TEMP, counts=False)
# The one reply to an unexpected exception (a bug), sent by LineSession's catch point.
ERR_INTERNAL = ErrorReply("internal server error, try again later", SYS_TEMP, counts=False)
