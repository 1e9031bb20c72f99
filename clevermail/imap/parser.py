"""IMAP command parser: one command line (plus its literals) in, tokens out.

This module owns the client-side grammar of RFC 3501 section 9 at the token
level (tag, command name, atoms, quoted strings, literals, parenthesized
lists), non-synchronizing literals from RFC 7888 (LITERAL+), literal8 from
RFC 3516 (BINARY: "~{n}", may carry NUL; returned as Literal8), and the small
value helpers the session needs (astring, flag lists, quoting for responses,
and date-time tokens: their text is parsed and formatted in dates.py).  What
each argument *means* is the session's business.

The parser is pure: it never touches a socket.  When a line ends with a
literal marker it calls ``more(n, synchronizing)``, which must send the "+"
continuation when asked to, read exactly n bytes and the next line, and return
``(literal_bytes, next_line_without_crlf)``.  Exceptions raised by ``more``
pass through unchanged.  Malformed input raises ParseError (an IMAPBad), and
nothing else.
"""

import re
from dataclasses import dataclass, field

from clevermail.imap import dates
from clevermail.imap.replies import IMAPBad

__all__ = [
    "Atom", "Literal", "Literal8", "Command", "ParseError", "LiteralTooLarge", "parse_command",
    "astring", "parse_datetime", "quote", "quote_astring",
    "is_atom", "section_end", "flag_list",
]

# Nesting bound: nobody needs deeper lists, and consumers walk them recursively.
MAX_DEPTH = 100
# Digits accepted in a literal size; more than this is never a real size.
_MAX_SIZE_DIGITS = 20

_SP, _DQUOTE, _BSLASH = 0x20, 0x22, 0x5C
_LPAREN, _RPAREN, _LBRACE = 0x28, 0x29, 0x7B
_LBRACKET, _RBRACKET = 0x5B, 0x5D

# Atom characters as this parser accepts them: any 7-bit CHAR except SP, CTL
# and the characters that start or end other tokens.  RFC 3501's ATOM-CHAR
# also excludes "%", "*", "]" and "\"; they are accepted here because list
# wildcards, sequence sets ("1:*"), system flags ("\Seen") and fetch sections
# all arrive as atom-like tokens, and the session validates each argument.
_ATOM_CHARS = frozenset(range(0x21, 0x7F)) - {_LPAREN, _RPAREN, _LBRACE, _DQUOTE}
# RFC 3501 tag: ASTRING-CHAR except "+" (so: ATOM-CHAR or "]").
_TAG_CHARS = _ATOM_CHARS - set(b"%*\\+")
# RFC 3501 flag-keyword / flag-extension atom: the strict ATOM-CHAR set.
_STRICT_ATOM_CHARS = _ATOM_CHARS - set(b"%*\\]")

_NON_PRINTABLE_RE = re.compile(rb"[^\x20-\x7e]")
_TILDE = 0x7E
_LITERAL_RE = re.compile(rb"\{([0-9]+)(\+?)\}")


class Literal(bytes):
    """A literal's octets: bytes, told apart from a quoted string where the grammar
    needs it (MULTIAPPEND: a message is a literal, a date-time a quoted string)."""

    __slots__ = ()


class Atom(str):
    """An unquoted atom token (keeps original case)."""

    __slots__ = ()

    def __repr__(self):
        return f"Atom({str.__repr__(self)})"


class Literal8(Literal):
    """A literal8 token (RFC 3516 4.1): bytes that may hold NUL."""

    __slots__ = ()


@dataclass
class Command:
    """One parsed command: the tag, the upper-cased name and the raw tokens."""

    tag: str
    name: str
    args: list = field(default_factory=list)


class ParseError(IMAPBad):
    """Malformed command; `tag` is None when no valid tag could be read."""

    def __init__(self, text, tag=None, code=None):
        super().__init__(text, code)
        self.tag = tag


class LiteralTooLarge(ParseError):
    """A literal bigger than max_literal was announced; `more` was not called.

    For a synchronizing literal the client waits for "+" and sends nothing;
    for a non-synchronizing one (RFC 7888) the bytes are already on their way,
    so the session must discard `size` bytes or close the connection.
    """

    def __init__(self, size, synchronizing, tag=None):
        super().__init__("Literal too large", tag, code="TOOBIG")
        self.size = size
        self.synchronizing = synchronizing


def _bad_char(c):
    """The complaint for a byte that can never start or continue a token."""
    if c >= 0x80:
        return "8-bit character outside a quoted string or literal"
    if c < 0x20 or c == 0x7F:
        return "Invalid control character in command"
    return None


class _Parser:
    """The state of one parse: current line, position, tag for errors."""

    def __init__(self, line, more, max_literal):
        self.line = bytes(line)
        self.pos = 0
        self.more = more
        self.max_literal = max_literal
        self.tag = None
        self.no_rbracket_from = len(self.line)

    def error(self, text):
        return ParseError(text, self.tag)

    def parse(self):
        self.tag = self._tag()
        if b"\0" in self.line:
            raise self.error("NUL character in command")
        name = self._name()
        return Command(self.tag, name, self._arguments())

    def _tag(self):
        line, n = self.line, len(self.line)
        while self.pos < n and line[self.pos] in _TAG_CHARS:
            self.pos += 1
        if self.pos == 0:
            # Reported without a tag: the session answers with "* BAD".
            raise ParseError("Missing tag" if not line or line[0] == _SP else "Invalid tag")
        if self.pos < n and line[self.pos] != _SP:
            raise ParseError("Invalid tag")
        return line[:self.pos].decode("ascii")

    def _name(self):
        line, n = self.line, len(self.line)
        self.pos += 1  # the SP after the tag (or past the end)
        start = self.pos
        while self.pos < n and line[self.pos] in _ATOM_CHARS:
            self.pos += 1
        if self.pos == start:
            raise self.error("Missing command")
        if self.pos < n and line[self.pos] != _SP:
            raise self.error("Invalid command name")
        return line[start:self.pos].decode("ascii").upper()

    def _arguments(self):
        args = []
        stack = [args]
        need_sep = False  # a token just ended: only SP, ")" or end may follow
        while True:
            line = self.line
            if self.pos >= len(line):
                break
            c = line[self.pos]
            if c == _SP:
                # Runs of spaces (and a trailing space) are tolerated: strict
                # single-SP checking would only reject sloppy clients.
                while self.pos < len(line) and line[self.pos] == _SP:
                    self.pos += 1
                need_sep = False
            elif c == _RPAREN:
                if len(stack) == 1:
                    raise self.error("Unbalanced parenthesis")
                stack.pop()
                self.pos += 1
                need_sep = True
            elif need_sep:
                raise self.error(_bad_char(c) or "Missing space between arguments")
            elif c == _LPAREN:
                if len(stack) > MAX_DEPTH:
                    raise self.error("Lists nested too deeply")
                inner = []
                stack[-1].append(inner)
                stack.append(inner)
                self.pos += 1
            else:
                stack[-1].append(self._token(c))
                need_sep = True
        if len(stack) > 1:
            raise self.error("Unbalanced parenthesis")
        return args

    def _token(self, c):
        if c == _DQUOTE:
            return self._quoted()
        if c == _LBRACE:
            return self._literal()
        if c == _TILDE and self.line[self.pos + 1:self.pos + 2] == b"{":
            self.pos += 1
            return Literal8(self._literal(binary=True))
        if c in _ATOM_CHARS:
            return self._atom()
        raise self.error(_bad_char(c))

    def _quoted(self):
        line, n = self.line, len(self.line)
        out = bytearray()
        i = self.pos + 1
        while True:
            if i >= n:
                raise self.error("Unterminated quoted string")
            b = line[i]
            if b == _DQUOTE:
                self.pos = i + 1
                if not out.isascii() and not _is_utf8(out):
                    # RFC 6855 3: 8-bit octets in a quoted string must be UTF-8
                    raise self.error("Invalid UTF-8 in quoted string")
                return bytes(out)
            if b == _BSLASH:
                i += 1
                if i >= n:
                    raise self.error("Unterminated quoted string")
                b = line[i]
                if b not in (_BSLASH, _DQUOTE):
                    raise self.error("Invalid escape in quoted string")
            elif b in (0x0D, 0x0A):
                raise self.error("CR or LF in quoted string")
            # 8-bit bytes pass if they are UTF-8 (RFC 6855 3, RFC 9051 4.3).
            out.append(b)
            i += 1

    def _atom(self):
        line, n = self.line, len(self.line)
        start = i = self.pos
        while i < n and line[i] in _ATOM_CHARS:
            if line[i] == _LBRACKET and i > start:
                end = self._section_end(i)
                if end is not None:
                    i = end + 1
                    continue
                # No matching "]": "[" is then just an atom character.
            i += 1
        self.pos = i
        # A following "<partial>" is made of atom characters and needs no care.
        return Atom(line[start:i].decode("ascii"))

    def _section_end(self, i):
        """Index of the "]" closing the "[" at i, or None if there is none.

        A fetch section such as BODY[HEADER.FIELDS (FROM TO)] holds spaces
        and parentheses; it stays part of its atom up to the first "]"
        (section-spec has no nested brackets).  Once no "]" is left on the
        line, that is remembered, so that "a[ a[ a[ ..." stays linear.
        """
        if i >= self.no_rbracket_from:
            return None
        end = section_end(self.line, i)
        if end < 0:
            self.no_rbracket_from = i
            return None
        if _NON_PRINTABLE_RE.search(self.line, i, end):
            raise self.error("Invalid character in fetch section")
        return end

    def _literal(self, binary=False):
        line = self.line
        m = _LITERAL_RE.match(line, self.pos)
        if m is None:
            raise self.error("Invalid literal size")
        if m.end() != len(line):
            raise self.error("Literal not at end of line")
        digits, plus = m.group(1), m.group(2)
        if len(digits) > _MAX_SIZE_DIGITS:
            raise self.error("Invalid literal size")
        size = int(digits)
        synchronizing = not plus
        if size > self.max_literal:
            raise LiteralTooLarge(size, synchronizing, self.tag)
        data, next_line = self.more(size, synchronizing)
        data, next_line = bytes(data), bytes(next_line)
        if len(data) != size:
            raise self.error("Literal data shorter than announced")
        if (b"\0" in data and not binary) or b"\0" in next_line:
            # RFC 3501 literal = CHAR8, which excludes NUL; only BINARY's literal8
            # (RFC 3516 4.1) may carry it
            raise self.error("NUL character in command")
        self.line, self.pos = next_line, 0
        self.no_rbracket_from = len(next_line)
        return Literal(data)


def section_end(text, start=0):
    """Index of the "]" that closes a fetch section opened before `start`, or -1.

    It is the first "]": section-spec (RFC 3501 9) has no nested brackets, and
    a quoted header name cannot hold one, because the command parser ends the
    atom at that "]" already.  `text` is bytes (a command line) or str (an atom).
    """
    return text.find(b"]" if isinstance(text, bytes) else "]", start)


def is_atom(text: str) -> bool:
    """True if `text` can be written as an atom (RFC 3501 ATOM-CHAR only)."""
    return bool(text) and all(ord(c) in _STRICT_ATOM_CHARS for c in text)


def parse_command(line: bytes, more, max_literal: int) -> Command:
    """Parse one command; `line` is its first line without CRLF.

    `more(n, synchronizing)` -> (literal_bytes, next_line) is called for each
    literal, after the size was checked against `max_literal`.
    """
    return _Parser(line, more, max_literal).parse()


def astring(tok) -> str:
    """An atom, quoted string or literal as text (UTF-8)."""
    if isinstance(tok, Atom):
        return str(tok)
    if isinstance(tok, bytes):
        try:
            return tok.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("Invalid UTF-8 in string") from None
    raise ParseError("Expected a string, not a list")


def parse_datetime(tok) -> float:
    """APPEND date-time token, e.g. "17-Jul-1996 02:44:25 -0700", as a UTC epoch."""
    if isinstance(tok, bytes):
        try:
            tok = tok.decode("ascii")
        except UnicodeDecodeError:
            raise ParseError("Invalid date-time") from None
    if not isinstance(tok, str):
        raise ParseError("Invalid date-time")
    try:
        return dates.parse_datetime(str(tok))
    except ValueError:
        raise ParseError("Invalid date-time") from None


def quote(value, utf8=False) -> bytes:
    """An IMAP string for a response: NIL, "quoted" or a {n} literal.  `utf8`: the
    client enabled UTF-8 in quoted strings (RFC 6855 3, RFC 9051 4.3)."""
    if value is None:
        return b"NIL"
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    # Quoted strings cannot carry CR, LF or NUL, and 8-bit text is only
    # allowed in them after ENABLE UTF8=ACCEPT or IMAP4rev2 (and then only
    # UTF-8); a literal is always safe.
    if any(b in (0x00, 0x0A, 0x0D) for b in data) or (not data.isascii() and not (utf8 and _is_utf8(data))):
        return b"{%d}\r\n" % len(data) + data
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _is_utf8(data):
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def quote_astring(value: str) -> bytes:
    """An astring for a response: the atom as is when it is one, else quote()."""
    return value.encode("ascii") if is_atom(value) else quote(value)


def _flag(tok):
    """One flag: "\\" atom (system flag or extension) or a keyword atom."""
    if not isinstance(tok, Atom):
        raise ParseError("Invalid flag: flags are atoms")
    body = tok[1:] if tok.startswith("\\") else tok
    if not is_atom(body):
        raise ParseError(f"Invalid flag {str(tok)!r}")
    return str(tok)


def flag_list(tok) -> list:
    """Flag names from a parenthesized flag list or a single flag atom."""
    if isinstance(tok, list):
        return [_flag(t) for t in tok]
    return [_flag(tok)]
