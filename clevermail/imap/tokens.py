"""IMAP tokens and their values (RFC 3501 section 9): what parser.py makes of a command
line (Atom, Literal, Literal8 of RFC 3516, Command; ParseError and LiteralTooLarge for
what it refuses), the character classes of the grammar, and the small value helpers the
commands need (astring, flag lists, date-time tokens: their text is parsed and formatted
in dates.py; quoting for responses, RFC 6855 3 for UTF-8 in quoted strings).

parser.py re-exports all of it: `from .parser import Atom, quote` stays the one import
of a command module.
"""

import re
from dataclasses import dataclass, field

from clevermail.imap import dates
from clevermail.imap.replies import IMAPBad

_LPAREN, _RPAREN, _LBRACE, _DQUOTE = 0x28, 0x29, 0x7B, 0x22

# Atom characters as the parser accepts them: any 7-bit CHAR except SP, CTL
# and the characters that start or end other tokens.  RFC 3501's ATOM-CHAR
# also excludes "%", "*", "]" and "\"; they are accepted here because list
# wildcards, sequence sets ("1:*"), system flags ("\Seen") and fetch sections
# all arrive as atom-like tokens, and the session validates each argument.
ATOM_CHARS = frozenset(range(0x21, 0x7F)) - {_LPAREN, _RPAREN, _LBRACE, _DQUOTE}
# RFC 3501 tag: ASTRING-CHAR except "+" (so: ATOM-CHAR or "]").
TAG_CHARS = ATOM_CHARS - set(b"%*\\+")
# RFC 3501 flag-keyword / flag-extension atom: the strict ATOM-CHAR set.
STRICT_ATOM_CHARS = ATOM_CHARS - set(b"%*\\]")

NON_PRINTABLE_RE = re.compile(rb"[^\x20-\x7e]")
# is_atom's test in one C scan (a Python step per character was a third as fast: each
# header name of every new BODY[HEADER.FIELDS (...)] list goes through it)
_STRICT_ATOM_RE = re.compile("[%s]+" % "".join(re.escape(chr(c)) for c in sorted(STRICT_ATOM_CHARS)))


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


def section_end(text, start=0):
    """Index of the "]" that closes a fetch section opened before `start`, or -1.

    It is the first "]": section-spec (RFC 3501 9) has no nested brackets, and
    a quoted header name cannot hold one, because the command parser ends the
    atom at that "]" already.  `text` is bytes (a command line) or str (an atom).
    """
    return text.find(b"]" if isinstance(text, bytes) else "]", start)


def is_atom(text: str) -> bool:
    """True if `text` can be written as an atom (RFC 3501 ATOM-CHAR only)."""
    return _STRICT_ATOM_RE.fullmatch(text) is not None


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
    if any(b in (0x00, 0x0A, 0x0D) for b in data) or (not data.isascii() and not (utf8 and is_utf8(data))):
        return b"{%d}\r\n" % len(data) + data
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def is_utf8(data):
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
