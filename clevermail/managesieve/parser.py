"""ManageSieve command parser (RFC 5804 4), pure: a command line (and the literals
that follow it) in, a Command or a SieveNo out.

Grammar: a case-insensitive command name (an atom), then arguments separated by
spaces, each a string or a number; the command ends at a CRLF that is not inside a
literal (a bare LF is tolerated, as Dovecot does).  Strings are

    quoted   DQUOTE *QUOTED-CHAR DQUOTE, at most 1024 octets between the quotes;
             only \\ and \" may be escaped; no CR, LF or NUL
    literal  "{" number "+}" CRLF *OCTET    (literal-c2s)

A literal ends its line: its octets follow at once and the command goes on after
them.  RFC 5804 has no continuation request, so clients send only non-synchronizing
literals; a client that writes the server form `{n}` is read the same way (as
Dovecot and Cyrus do), never answered with a continuation it would not expect.
Strings are UTF-8 (RFC 5804 4: every string is UTF-8; scripts are UTF-8 by RFC 5228).

The parser never touches a socket: when a line ends with a literal marker it calls
`more(n)`, which must read exactly n octets and the line after them and return
`(octets, next_line)`.  Before that the size is checked against `max_literal`; a
larger literal raises LiteralTooLarge (its octets are already on their way, so the
session must drop them or close the connection).  Exceptions from `more` pass
through.

Which verbs exist and what each takes is the session's command table
(session.py COMMANDS): it gives every verb one of the argument kinds below, and
parse_command is called with that verb -> kind mapping, so there is one verb list.
Each kind is a function (verb, arguments) -> the tuple its cmd_ method takes.
"""

import re
from collections import namedtuple

from . import replies as R
from .replies import SieveNo

Command = namedtuple("Command", "verb args")

MAX_NUMBER = 4294967295     # RFC 5804 4: number < 4,294,967,296
_LITERAL_RE = re.compile(rb"\{([0-9]{1,10})(\+?)\}\Z")
# Atom characters: any printable ASCII but the specials (RFC 5804 4 ATOM-SPECIALS).
_ATOM_STOP = frozenset(b' (){"\\') | frozenset(range(0x20)) | {0x7F}


class Atom(str):
    """A bare word: a command name or a number (never a string argument)."""

    __slots__ = ()

    def __repr__(self):
        return f"Atom({str.__repr__(self)})"


class LiteralTooLarge(SieveNo):
    """A literal over `max_literal` was announced; `more` was not called.  `size` is
    its length, `verb` the command it belongs to (None in a SASL response)."""

    def __init__(self, size, limit, verb):
        reply = R.ERR_SCRIPT_TOO_LARGE if verb in ("PUTSCRIPT", "CHECKSCRIPT") else R.ERR_STRING_TOO_LONG
        super().__init__(reply.format(size, limit))
        self.size = self.pending = size
        self.verb = verb


class _Tokens:
    """The state of one parse: the current line and position."""

    def __init__(self, line, more, max_literal, verb=None):
        self.line = _strip_eol(bytes(line))
        self.pos = 0
        self.more = more
        self.max_literal = max_literal
        self.verb = verb

    def skip_spaces(self):
        line, pos = self.line, self.pos
        while pos < len(line) and line[pos] == 0x20:
            pos += 1
        self.pos = pos

    def at_end(self):
        self.skip_spaces()
        return self.pos >= len(self.line)

    def next(self):
        """The next token: a str (a string), an Atom, or None at the end."""
        if self.at_end():
            return None
        c = self.line[self.pos]
        if c == 0x22:
            return self._quoted()
        if c == 0x7B:
            return self._literal()
        return self._atom()

    def all(self):
        out = []
        while (token := self.next()) is not None:
            out.append(token)
        return out

    def _atom(self):
        line, start = self.line, self.pos
        end = start
        while end < len(line) and line[end] not in _ATOM_STOP and line[end] < 0x80:
            end += 1
        if end == start or (end < len(line) and line[end] != 0x20):
            bad = line[end:end + 1]
            raise SieveNo(R.ERR_BAD_CHAR.format(bad.decode("latin-1")))
        self.pos = end
        return Atom(line[start:end].decode("ascii"))

    def _quoted(self):
        line = self.line
        out = bytearray()
        i = self.pos + 1
        while True:
            if i >= len(line):
                raise SieveNo(R.ERR_UNTERMINATED)
            c = line[i]
            if c == 0x22:
                break
            if c == 0x5C:
                if i + 1 >= len(line) or line[i + 1] not in b'\\"':
                    raise SieveNo(R.ERR_BAD_ESCAPE)
                i += 1
                c = line[i]
            elif c in (0x00, 0x0D, 0x0A):
                raise SieveNo(R.ERR_CONTROL_IN_STRING)
            out.append(c)
            i += 1
            if len(out) > R.MAX_QUOTED:
                raise SieveNo(R.ERR_QUOTED_TOO_LONG)
        self.pos = i + 1
        if self.pos < len(line) and line[self.pos] != 0x20:
            raise SieveNo(R.ERR_BAD_CHAR.format(chr(line[self.pos])))
        return _utf8(bytes(out))

    def _literal(self):
        m = _LITERAL_RE.match(self.line, self.pos)
        if m is None:
            raise SieveNo(R.ERR_BAD_LITERAL)
        size = int(m.group(1))
        if size > MAX_NUMBER:
            raise SieveNo(R.ERR_BAD_LITERAL)
        if size > self.max_literal:
            raise LiteralTooLarge(size, self.max_literal, self.verb)
        try:
            data, rest = self.more(size)
        except SieveNo:
            # `more` read the octets (or the session ends): nothing is left pending
            self.line, self.pos = b"", 0
            raise
        # the command goes on after the octets: parse the line that follows them
        self.line, self.pos = _strip_eol(bytes(rest)), 0
        return _utf8(data)


def literal_size(line):
    """The size of the literal whose marker ends `line` (bytes): its octets follow the
    line.  None when the line ends otherwise, or with a size no literal can have
    (RFC 5804 4: a number is below 2**32): that is a malformed marker, not a literal."""
    m = re.search(rb"\{([0-9]{1,10})\+?\}\Z", _strip_eol(line))
    size = int(m.group(1)) if m else None
    return size if size is not None and size <= MAX_NUMBER else None


def _strip_eol(line):
    if line.endswith(b"\r\n"):
        return line[:-2]
    if line.endswith(b"\n"):
        return line[:-1]
    return line


def _utf8(data):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SieveNo(R.ERR_STRING_NOT_UTF8) from None


def parse_command(line, grammar, more, max_literal):
    """Parse one command (bytes, with or without CRLF) into Command(verb, args).

    `grammar` maps each verb to its argument kind; a verb not in it is an unknown
    command.  Raises SieveNo for an unknown verb or malformed arguments, and
    LiteralTooLarge (a SieveNo) as the module docstring says."""
    tokens = _Tokens(line, more, max_literal)
    if tokens.at_end():
        raise SieveNo(R.ERR_EMPTY)
    first = tokens.line[tokens.pos:].split(b" ", 1)[0]
    verb = first.decode("ascii", "replace").upper()
    kind = grammar.get(verb)
    if kind is None:
        shown = verb[:20] if verb.isascii() and verb.isprintable() else "?"
        _refusing(tokens, lambda: _raise(R.ERR_UNKNOWN.format(shown)))
    tokens.pos += len(first)
    tokens.verb = verb
    return Command(verb, _refusing(tokens, lambda: kind(verb, tokens.all())))


def parse_string_line(line, more, max_literal):
    """A line that holds exactly one string (a SASL response, RFC 5804 2.1): its text.
    Raises SieveNo when it holds anything else."""
    tokens = _Tokens(line, more, max_literal)
    values = _refusing(tokens, tokens.all)
    if len(values) != 1 or isinstance(values[0], Atom):
        raise SieveNo(R.ERR_ARGUMENTS.format("a SASL response", "one string"))
    return values[0]


def _raise(reply):
    raise SieveNo(reply)


def _refusing(tokens, step):
    """Run a parsing step; a refusal says which literal, if any, the client still
    sends (the line the parser stopped at ends with its marker), so that its octets
    are dropped rather than read as commands."""
    try:
        return step()
    except SieveNo as exc:
        if exc.pending is None:
            exc.pending = literal_size(tokens.line)
        raise


# -- the argument kinds --------------------------------------------------------------------
def _strings(verb, args, count, what):
    if len(args) != count:
        raise SieveNo(R.ERR_ARGUMENTS.format(verb, what))
    for arg in args:
        if isinstance(arg, Atom):
            raise SieveNo(R.ERR_STRING_EXPECTED.format(verb, repr(str(arg))[:40]))
    return tuple(args)


def no_args(verb, args):
    return _strings(verb, args, 0, "no arguments")


def name(verb, args):
    return _strings(verb, args, 1, "one script name")


def two_names(verb, args):
    return _strings(verb, args, 2, "the old and the new script name")


def name_and_script(verb, args):
    return _strings(verb, args, 2, "a script name and a script")


def script(verb, args):
    return _strings(verb, args, 1, "one script")


def optional_string(verb, args):
    if not args:
        return (None,)
    return _strings(verb, args, 1, "at most one string")


def name_and_number(verb, args):
    if len(args) != 2:
        raise SieveNo(R.ERR_ARGUMENTS.format(verb, "a script name and a size"))
    _strings(verb, args[:1], 1, "a script name and a size")
    size = args[1]
    if not (isinstance(size, Atom) and size.isdigit() and len(size) <= 10 and int(size) <= MAX_NUMBER):
        raise SieveNo(R.ERR_BAD_NUMBER.format(verb, str(size)[:20]))
    return args[0], int(size)


def sasl(verb, args):
    """A mechanism name (a string; a bare atom is taken too) and an optional initial
    response string (RFC 5804 2.1)."""
    if not 1 <= len(args) <= 2:
        raise SieveNo(R.ERR_ARGUMENTS.format(verb, "a mechanism and an optional initial response"))
    if len(args) == 2 and isinstance(args[1], Atom):
        raise SieveNo(R.ERR_STRING_EXPECTED.format(verb, "the initial response"))
    return str(args[0]).upper(), (args[1] if len(args) == 2 else None)
