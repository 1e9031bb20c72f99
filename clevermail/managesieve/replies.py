"""ManageSieve responses (RFC 5804 1.3, 4): strings, OK/NO/BYE lines with response
codes, and the named NO and BYE replies of this server.

A response is `OK|NO|BYE [SP "(" code ")"] [SP string] CRLF`.  Strings the server
sends are quoted when they are short and safe (no CR, LF or NUL, at most 1024 octets)
and literal-s2c (`{n}` CRLF octets) otherwise (`string()`), so a long syntax error or a
script name with odd characters always reaches the client whole.

The response codes this server sends (RFC 5804 1.3):

    NONEXISTENT       GETSCRIPT, DELETESCRIPT, RENAMESCRIPT, SETACTIVE of a missing script
    ALREADYEXISTS     RENAMESCRIPT onto an existing name
    ACTIVE            DELETESCRIPT of the active script
    QUOTA/MAXSCRIPTS  HAVESPACE, PUTSCRIPT beyond the number of scripts allowed
    QUOTA/MAXSIZE     HAVESPACE, PUTSCRIPT, CHECKSCRIPT of a script over the size limit
    TAG "x"           NOOP "x" (RFC 5804 2.13)
    ENCRYPT-NEEDED    AUTHENTICATE of a plaintext mechanism without TLS off loopback
    TRYLATER          a temporary failure: throttled logins, storage errors, shutdown

WARNINGS is never sent: the Sieve checker (sieve.parse) has no warnings, a script is
valid or refused with its line.  SASL (a final server response) is never needed:
PLAIN and LOGIN have none.
TRANSITION-NEEDED and AUTH-TOO-WEAK concern password migration between mechanisms,
which one password database and PLAIN/LOGIN never ask for; REFERRAL, which this
server never gives.

Every NO and BYE a command can get is a named Reply below, as POP3's are named in
pop3/replies.py; a text with {} placeholders is filled by `format`.  Command code
raises `SieveNo(ERR_...)`; the session's one catch point sends its bytes and counts
the error when `counts` says so.
"""

OK = "OK"
NO = "NO"
BYE = "BYE"

MAX_QUOTED = 1024       # RFC 5804 4: octets between the quotes of a quoted string

NONEXISTENT = "NONEXISTENT"
ALREADYEXISTS = "ALREADYEXISTS"
ACTIVE = "ACTIVE"
QUOTA = "QUOTA"
QUOTA_MAXSCRIPTS = "QUOTA/MAXSCRIPTS"
QUOTA_MAXSIZE = "QUOTA/MAXSIZE"
ENCRYPT_NEEDED = "ENCRYPT-NEEDED"
TRYLATER = "TRYLATER"


def string(text):
    """A str as a ManageSieve string (bytes): quoted when it can be, else a literal."""
    data = text.encode("utf-8")
    if len(data) <= MAX_QUOTED and not any(c in data for c in b"\r\n\0"):
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n" % len(data) + data


def tag_code(tag):
    """The TAG response code of NOOP (RFC 5804 2.13)."""
    return "TAG " + string(tag).decode("utf-8")


def response(status, text=None, code=None):
    """One response line (bytes, CRLF included)."""
    out = status.encode("ascii")
    if code:
        out += b" (" + code.encode("utf-8") + b")"
    if text:
        out += b" " + string(text)
    return out + b"\r\n"


def ok(text=None, code=None):
    return response(OK, text, code)


class Reply:
    """One named NO or BYE: status, text, response code (or None), whether it counts
    toward the session's error limit; `wire` is the bytes sent, built once.

    `counts` is for client errors (syntax, wrong state, bad credentials).  What a
    well-behaved client cannot avoid (a script another session deleted, a quota, a
    script with a syntax error the user made) does not count: an editor checking
    scripts must never be cut off."""

    __slots__ = ("status", "text", "code", "counts", "wire")

    def __init__(self, status, text, code=None, counts=True):
        self.status = status
        self.text = text
        self.code = code
        self.counts = counts
        self.wire = response(status, text, code)

    def format(self, *args):
        """A copy whose text has the placeholders filled in."""
        return Reply(self.status, self.text.format(*args), self.code, self.counts)

    def __repr__(self):
        return f"Reply({self.status} ({self.code}) {self.text!r})"


class SieveNo(Exception):
    """Raised by the parser and the commands with a Reply; the session sends
    `reply` (its bytes) and counts the error when `counts` says so.  A BYE reply
    ends the session after it is sent."""

    def __init__(self, reply):
        super().__init__(reply.text)
        self.error = reply
        self.reply = reply.wire
        self.counts = reply.counts
        self.closes = reply.status == BYE
        # the size of a literal announced on the line the parser stopped at and not read
        # (parser.py sets it): the session drops its octets before it reads a command
        self.pending = None


# -- command syntax (parser.py) -------------------------------------------------------
ERR_EMPTY = Reply(NO, "empty command")
ERR_NOT_UTF8 = Reply(NO, "command is not valid UTF-8")
ERR_UNKNOWN = Reply(NO, "unknown command {}")
ERR_BAD_CHAR = Reply(NO, "invalid character {!r} in command")
ERR_QUOTED_TOO_LONG = Reply(NO, f"quoted string longer than {MAX_QUOTED} octets (send a literal)")
ERR_UNTERMINATED = Reply(NO, "unterminated quoted string")
ERR_BAD_ESCAPE = Reply(NO, "a backslash in a quoted string must escape \\ or \"")
ERR_CONTROL_IN_STRING = Reply(NO, "CR, LF or NUL in a quoted string")
ERR_BAD_LITERAL = Reply(NO, "malformed literal (expected {number+} at the end of the line)")
ERR_STRING_NOT_UTF8 = Reply(NO, "string is not valid UTF-8")
ERR_ARGUMENTS = Reply(NO, "{} takes {}")
ERR_STRING_EXPECTED = Reply(NO, "{}: {} must be a string (quoted or literal)")
ERR_BAD_NUMBER = Reply(NO, "{}: invalid number {!r}")
ERR_LINE_TOO_LONG = Reply(NO, "command line too long")
ERR_STRING_TOO_LONG = Reply(NO, "string of {} octets is too long (at most {})")
# A script literal over the size limit (read and dropped, so the session goes on).
ERR_SCRIPT_TOO_LARGE = Reply(NO, "script of {} octets is larger than the limit of {} octets",
                             QUOTA_MAXSIZE, counts=False)

# -- state ------------------------------------------------------------------------------
ERR_NEEDS_AUTH = Reply(NO, "{} needs authentication: AUTHENTICATE first")
ERR_ALREADY_AUTH = Reply(NO, "{} is not valid once authenticated")

# -- TLS and login ----------------------------------------------------------------------
ERR_TLS_ACTIVE = Reply(NO, "TLS is already active")
ERR_NO_TLS = Reply(NO, "STARTTLS not available: no TLS certificate configured")
ERR_NEEDS_TLS = Reply(NO, "plaintext authentication needs TLS (use STARTTLS)", ENCRYPT_NEEDED)
ERR_MECHANISM = Reply(NO, "unsupported SASL mechanism {}")
ERR_AUTH_FAILED = Reply(NO, "authentication failed")
ERR_AUTH_CANCELLED = Reply(NO, "authentication cancelled")
ERR_SASL_TOO_LONG = Reply(NO, "SASL response too long")
ERR_SASL_MALFORMED = Reply(NO, "malformed SASL response: {}")
ERR_THROTTLED = Reply(NO, "too many failed logins, try again later", TRYLATER)

# -- scripts (not counted: a user's mistake or another session's change) ---------------
def script_error(text, code=None):
    """The NO for an error of the script store or the Sieve parser (sieve.errors): its
    own text (a syntax error's says its line) and its RFC 5804 code (NONEXISTENT,
    ALREADYEXISTS, ACTIVE, QUOTA/...; None for a bad name or a syntax error)."""
    return Reply(NO, text, code, counts=False)


ERR_STORAGE = Reply(NO, "cannot {} now, try again later", TRYLATER, counts=False)

# -- session-level replies (line_session.LineSession's hooks) ------------------------------
BYE_BUSY = Reply(BYE, "too many connections, try again later", TRYLATER)
BYE_TIMEOUT = Reply(BYE, "idle for too long, closing the connection")
BYE_TOO_MANY_ERRORS = Reply(BYE, "too many errors, closing the connection")
BYE_SHUTDOWN = Reply(BYE, "server shutting down", TRYLATER, counts=False)
BYE_COMMAND_TOO_LARGE = Reply(BYE, "command of more than {} octets: closing the connection")
# The one reply to an unexpected exception (a bug), sent by LineSession's catch point.
ERR_INTERNAL = Reply(NO, "internal server error, try again later", TRYLATER, counts=False)
