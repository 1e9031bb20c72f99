"""IMAP command parser: one command line (plus its literals) in, tokens out.

This module owns the client-side grammar of RFC 3501 section 9 at the token
level (tag, command name, atoms, quoted strings, literals, parenthesized
lists), non-synchronizing literals from RFC 7888 (LITERAL+), literal8 from
RFC 3516 (BINARY: "~{n}", may carry NUL; returned as Literal8).  The tokens
it makes, its errors and the value helpers (astring, flag lists, quoting for
responses, date-time tokens) are tokens.py's, re-exported here.  What each
argument *means* is the session's business.

The parser is pure: it never touches a socket.  When a line ends with a
literal marker it calls ``more(n, synchronizing)``, which must send the "+"
continuation when asked to, read exactly n bytes and the next line, and return
``(literal_bytes, next_line_without_crlf)``.  Exceptions raised by ``more``
pass through unchanged.  Malformed input raises ParseError (an IMAPBad), and
nothing else.
"""

import re

from clevermail.imap.tokens import (  # noqa: F401 (re-exported: the one import of a command module)
    ATOM_CHARS as _ATOM_CHARS, NON_PRINTABLE_RE as _NON_PRINTABLE_RE, TAG_CHARS as _TAG_CHARS,
    Atom, Command, Literal, Literal8, LiteralTooLarge, ParseError, astring, flag_list, is_atom,
    is_utf8 as _is_utf8, parse_datetime, quote, quote_astring, section_end,
)

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
_TILDE = 0x7E


def _run_of(chars):
    """A compiled pattern matching a (possibly empty) run of the bytes `chars`: one C-level
    scan where a Python loop per byte was most of the parse of a short command."""
    return re.compile(b"[" + b"".join(re.escape(bytes([c])) for c in sorted(chars)) + b"]*")


_TAG_RUN = _run_of(_TAG_CHARS)
_ATOM_RUN = _run_of(_ATOM_CHARS)
# an atom's characters up to a "[" (which may open a fetch section, see _atom)
_ATOM_RUN_TO_BRACKET = _run_of(_ATOM_CHARS - {_LBRACKET})
_SP_RUN = re.compile(b" +")
# where an atom starts that _arguments cuts out itself ("~" may open a literal8)
_PLAIN_ATOM_START = _ATOM_CHARS - {_LBRACKET, _TILDE}
# a quoted string without escapes or line ends (nearly all): matched whole
_SIMPLE_QUOTED = re.compile(rb'"([^"\\\r\n]*)"')
_LITERAL_RE = re.compile(rb"\{([0-9]+)(\+?)\}")


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
        if 0 in self.line:          # the byte value: b"\0" in is tried as an int first
            raise self.error("NUL character in command")
        name = self._name()
        return Command(self.tag, name, self._arguments())

    def _tag(self):
        line, n = self.line, len(self.line)
        self.pos = _TAG_RUN.match(line).end()
        if self.pos == 0:
            # Reported without a tag: the session answers with "* BAD".
            raise ParseError("Missing tag" if not line or line[0] == _SP else "Invalid tag")
        if self.pos < n and line[self.pos] != _SP:
            raise ParseError("Invalid tag")
        return line[:self.pos].decode("ascii")

    def _name(self):
        line, n = self.line, len(self.line)
        start = self.pos + 1  # past the SP after the tag (or past the end)
        self.pos = _ATOM_RUN.match(line, start).end() if start < n else start
        if self.pos == start:
            raise self.error("Missing command")
        if self.pos < n and line[self.pos] != _SP:
            raise self.error("Invalid command name")
        return line[start:self.pos].decode("ascii").upper()

    def _arguments(self):
        # The line and position live in locals (self.line changes only at a literal);
        # an atom without "[" is cut out with one regex match here, the other tokens
        # go through _token.
        args = []
        stack = [args]
        top = args
        need_sep = False  # a token just ended: only SP, ")" or end may follow
        line, pos = self.line, self.pos
        n = len(line)
        while pos < n:
            c = line[pos]
            if c == _SP:
                # Runs of spaces (and a trailing space) are tolerated: strict
                # single-SP checking would only reject sloppy clients.
                pos = _SP_RUN.match(line, pos).end()
                need_sep = False
            elif c == _RPAREN:
                if len(stack) == 1:
                    self.pos = pos
                    raise self.error("Unbalanced parenthesis")
                stack.pop()
                top = stack[-1]
                pos += 1
                need_sep = True
            elif need_sep:
                self.pos = pos
                raise self.error(_bad_char(c) or "Missing space between arguments")
            elif c == _LPAREN:
                if len(stack) > MAX_DEPTH:
                    self.pos = pos
                    raise self.error("Lists nested too deeply")
                inner = []
                top.append(inner)
                stack.append(inner)
                top = inner
                pos += 1
            else:
                end = _ATOM_RUN_TO_BRACKET.match(line, pos).end() if c in _PLAIN_ATOM_START else pos
                if end > pos and (end == n or line[end] != _LBRACKET):
                    top.append(Atom(line[pos:end].decode("ascii")))
                    pos = end
                else:
                    self.pos = pos
                    top.append(self._token(c))
                    line, pos = self.line, self.pos     # past a literal: its next line
                    n = len(line)
                need_sep = True
        self.pos = pos
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
            return self._literal(Literal8)
        if c in _ATOM_CHARS:
            return self._atom()
        raise self.error(_bad_char(c))

    def _quoted(self):
        line, n = self.line, len(self.line)
        m = _SIMPLE_QUOTED.match(line, self.pos)
        if m is not None:
            out = m.group(1)
            if not out.isascii() and not _is_utf8(out):
                raise self.error("Invalid UTF-8 in quoted string")
            self.pos = m.end()
            return out
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
        while True:
            i = _ATOM_RUN_TO_BRACKET.match(line, i).end()
            if i >= n or line[i] != _LBRACKET:
                break
            if i > start:
                end = self._section_end(i)
                if end is not None:
                    i = end + 1
                    continue
            # No matching "]" (or "[" opens the atom): "[" is then just an atom character.
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

    def _literal(self, kind=Literal):
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
        # the octets become the Literal in one copy (bytes(data) then Literal(data) were
        # two more copies of a whole APPENDed message)
        data, next_line = (data if type(data) is kind else kind(data)), bytes(next_line)
        if len(data) != size:
            raise self.error("Literal data shorter than announced")
        if (kind is not Literal8 and 0 in data) or 0 in next_line:
            # RFC 3501 literal = CHAR8, which excludes NUL; only BINARY's literal8
            # (RFC 3516 4.1) may carry it
            raise self.error("NUL character in command")
        self.line, self.pos = next_line, 0
        self.no_rbracket_from = len(next_line)
        return data


def parse_command(line: bytes, more, max_literal: int) -> Command:
    """Parse one command; `line` is its first line without CRLF.

    `more(n, synchronizing)` -> (literal_bytes, next_line) is called for each
    literal, after the size was checked against `max_literal`.
    """
    line = bytes(line)
    if len(line) <= _MEMO_LINE and not line.endswith(b"}"):
        # no literal can follow (its marker ends the line): the result depends on the
        # line alone, and one after the tag parsed before is taken from the memo
        end = _TAG_RUN.match(line).end()
        if end and line[end:end + 1] == b" ":
            rest = line[end:]
            known = _memo.get(rest)
            if known is not None:
                return Command(line[:end].decode("ascii"), known[0], _thaw(known[1]))
            cmd = _Parser(line, more, max_literal).parse()     # a ParseError is not kept
            if len(_memo) >= _MEMO_SIZE:
                _memo.clear()       # (no eviction order to keep between session threads)
            _memo[rest] = (cmd.name, _freeze(cmd.args))
            return cmd
    return _Parser(line, more, max_literal).parse()


# Clients send the same commands again and again but for the tag ("FETCH 2 (UID FLAGS)",
# "EXPUNGE", "STATUS "INBOX" (...)"): the parse of what follows the tag, kept for lines
# of up to _MEMO_LINE octets, _MEMO_SIZE of them in the process.  Lists are kept as
# tuples and every caller gets new lists (a command may change its own).
_MEMO_LINE = 200
_MEMO_SIZE = 1024
_memo = {}


def _freeze(tokens):
    return tuple(_freeze(t) if type(t) is list else t for t in tokens)


def _thaw(tokens):
    return [_thaw(t) if type(t) is tuple else t for t in tokens]


