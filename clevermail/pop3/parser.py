"""POP3 command parser (pure): one command line in, a Command or a POP3Error out.

Grammar (RFC 1939 3, RFC 2449 3): a case-insensitive keyword, then arguments
separated by single spaces, the line ending in CRLF (a bare LF is tolerated, as most
servers do).  Which verbs exist and what each takes is decided by the session's
command table (session.py COMMANDS), which gives every verb one of the argument kinds
below; parse_command is called with that verb -> kind mapping, so there is one verb
list.  The kinds, and the verbs the table gives them:

    no_args            no argument                         STAT NOOP RSET QUIT CAPA STLS
    optional_message   an optional message number          LIST UIDL
    message            a message number                    RETR DELE
    message_and_lines  a message number, a line count      TOP
    name               one name                            USER
    rest_of_line       the rest of the line, spaces and    PASS (RFC 1939 7)
                       all
    sasl               [mechanism [initial-response]]      AUTH (RFC 5034 4: "=" is an
                       empty response; bare AUTH lists mechanisms, as clients probe it)

Each kind is a function (verb, rest of the line) -> argument tuple, the arguments the
verb's cmd_ method takes.  Numbers are plain decimal digits; whether a message number
exists is the session's business, not the parser's.  APOP is not offered, so it is
an unknown command.
"""

from collections import namedtuple

from . import replies as R
from .replies import POP3Error

Command = namedtuple("Command", "verb args")

MAX_NUMBER_DIGITS = 10      # a maildrop never holds 10**10 messages
MAX_ARG = 255               # RFC 2449 4: a whole command is at most 255 octets anyway


def parse_command(line, grammar):
    """Parse one command line (bytes, with or without CRLF) into Command(verb, args).

    `grammar` maps each verb to its argument kind (one of the functions below); a verb
    not in it is an unknown command.  `args` holds ints for numbers, str for names and
    passwords, None for an omitted optional argument.  Raises POP3Error (counting
    toward the error limit) for an unknown verb or a malformed argument."""
    if line.endswith(b"\r\n"):
        line = line[:-2]
    elif line.endswith(b"\n"):
        line = line[:-1]
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise POP3Error(R.ERR_NOT_UTF8) from None
    verb, _, rest = text.partition(" ")
    verb = verb.upper()
    kind = grammar.get(verb)
    if kind is None:
        if not verb:
            raise POP3Error(R.ERR_EMPTY)
        shown = verb[:8] if verb.isascii() and verb.isprintable() else "?"
        raise POP3Error(R.ERR_UNKNOWN.format(shown))
    if any(c in rest for c in "\r\n\0"):
        raise POP3Error(R.ERR_CONTROL_CHARS)
    return Command(verb, kind(verb, rest))


# -- helpers -----------------------------------------------------------------------------
def _split(rest):
    """The space-separated arguments of a line, each checked for length."""
    rest = rest.rstrip(" ")    # some clients leave a trailing space; harmless
    parts = rest.split(" ") if rest else []
    if any(not p for p in parts):
        raise POP3Error(R.ERR_SPACES)
    if any(len(p) > MAX_ARG for p in parts):
        raise POP3Error(R.ERR_ARG_TOO_LONG)
    return parts


def _number(text, what):
    if not text.isascii() or not text.isdigit() or len(text) > MAX_NUMBER_DIGITS:
        raise POP3Error(R.ERR_BAD_NUMBER.format(what, text[:20]))
    return int(text)


# -- the argument kinds --------------------------------------------------------------------
def no_args(verb, rest):
    if _split(rest):
        raise POP3Error(R.ERR_NO_ARGUMENT.format(verb))
    return ()


def optional_message(verb, rest):
    parts = _split(rest)
    if len(parts) > 1:
        raise POP3Error(R.ERR_AT_MOST_ONE_MSG.format(verb))
    return (_number(parts[0], "message number") if parts else None,)


def message(verb, rest):
    parts = _split(rest)
    if len(parts) != 1:
        raise POP3Error(R.ERR_ONE_MSG.format(verb))
    return (_number(parts[0], "message number"),)


def message_and_lines(verb, rest):
    parts = _split(rest)
    if len(parts) != 2:
        raise POP3Error(R.ERR_TOP_ARGS.format(verb))
    return _number(parts[0], "message number"), _number(parts[1], "line count")


def name(verb, rest):
    parts = _split(rest)
    if len(parts) != 1:
        raise POP3Error(R.ERR_ONE_NAME.format(verb))
    return (parts[0],)


def rest_of_line(verb, rest):
    # RFC 1939 7: the password may contain spaces, so it is the rest of the line as sent
    if not rest:
        raise POP3Error(R.ERR_NO_PASSWORD)
    return (rest,)


def sasl(verb, rest):
    parts = _split(rest)
    if len(parts) > 2:
        raise POP3Error(R.ERR_SASL_ARGS.format(verb))
    mechanism = parts[0].upper() if parts else None
    initial = parts[1] if len(parts) == 2 else None
    return mechanism, initial
