"""POP3 command parser (pure): one command line in, a Command or a POP3Error out.

Grammar (RFC 1939 3, RFC 2449 3): a case-insensitive keyword, then arguments
separated by single spaces, the line ending in CRLF (a bare LF is tolerated, as most
servers do).  Per verb:

    USER name          PASS string (the rest of the line: RFC 1939 7 lets it hold spaces)
    STAT NOOP RSET QUIT CAPA STLS                      no argument
    LIST [msg]   UIDL [msg]                            optional message number
    RETR msg     DELE msg                              message number
    TOP msg n                                          message number, line count (>= 0)
    AUTH [mechanism [initial-response]]                RFC 5034 4 ("=" is an empty
                                                       response); bare AUTH lists
                                                       mechanisms, as clients probe it

Numbers are plain decimal digits; whether a message number exists is the session's
business, not the parser's.  APOP is not offered, so it is an unknown command.
"""

from collections import namedtuple

from .replies import POP3Error

Command = namedtuple("Command", "verb args")

MAX_NUMBER_DIGITS = 10      # a maildrop never holds 10**10 messages
MAX_ARG = 255               # RFC 2449 4: a whole command is at most 255 octets anyway

_NONE, _OPT_MSG, _MSG, _TOP, _USER, _PASS, _AUTH = range(7)

GRAMMAR = {
    "USER": _USER, "PASS": _PASS, "AUTH": _AUTH,
    "STAT": _NONE, "NOOP": _NONE, "RSET": _NONE, "QUIT": _NONE, "CAPA": _NONE, "STLS": _NONE,
    "LIST": _OPT_MSG, "UIDL": _OPT_MSG,
    "RETR": _MSG, "DELE": _MSG,
    "TOP": _TOP,
}


def _number(text, what):
    if not text.isascii() or not text.isdigit() or len(text) > MAX_NUMBER_DIGITS:
        raise POP3Error(f"invalid {what}: {text[:20]!r}" if text else f"missing {what}")
    return int(text)


def parse_command(line):
    """Parse one command line (bytes, with or without CRLF) into Command(verb, args).

    `args` holds ints for numbers, str for names and passwords, None for an omitted
    optional argument.  Raises POP3Error (counting toward the error limit) for an
    unknown verb or a malformed argument."""
    if line.endswith(b"\r\n"):
        line = line[:-2]
    elif line.endswith(b"\n"):
        line = line[:-1]
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise POP3Error("command is not valid UTF-8") from None
    verb, _, rest = text.partition(" ")
    verb = verb.upper()
    kind = GRAMMAR.get(verb)
    if kind is None:
        if not verb:
            raise POP3Error("empty command")
        shown = verb[:8] if verb.isascii() and verb.isprintable() else "?"
        raise POP3Error(f"unknown command {shown}")
    if any(c in rest for c in "\r\n\0"):
        raise POP3Error("control characters in command")

    if kind == _PASS:
        # RFC 1939 7: the password may contain spaces, so it is the rest of the line
        if not rest:
            raise POP3Error("missing password")
        return Command(verb, (rest,))
    rest = rest.rstrip(" ")    # some clients leave a trailing space; harmless
    parts = rest.split(" ") if rest else []
    if any(not p for p in parts):
        raise POP3Error("arguments must be separated by single spaces")
    if any(len(p) > MAX_ARG for p in parts):
        raise POP3Error("argument too long")
    n = len(parts)

    if kind == _NONE:
        if n:
            raise POP3Error(f"{verb} takes no argument")
        return Command(verb, ())
    if kind == _USER:
        if n != 1:
            raise POP3Error("USER takes exactly one name")
        return Command(verb, (parts[0],))
    if kind == _OPT_MSG:
        if n > 1:
            raise POP3Error(f"{verb} takes at most one message number")
        return Command(verb, (_number(parts[0], "message number") if n else None,))
    if kind == _MSG:
        if n != 1:
            raise POP3Error(f"{verb} needs one message number")
        return Command(verb, (_number(parts[0], "message number"),))
    if kind == _TOP:
        if n != 2:
            raise POP3Error("TOP needs a message number and a line count")
        return Command(verb, (_number(parts[0], "message number"), _number(parts[1], "line count")))
    # _AUTH
    if n > 2:
        raise POP3Error("AUTH takes a mechanism and an optional initial response")
    mechanism = parts[0].upper() if n else None
    initial = parts[1] if n == 2 else None
    return Command(verb, (mechanism, initial))
