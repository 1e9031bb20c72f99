"""One message on its way in: the `Incoming` value every reader produces (and the
`SourceFolder` that lists them), the check that tells a damaged message from a
message, and IMAP keyword syntax.

A message is kept byte for byte; only line ends are made CRLF (the wire form the
store's append takes, RFC 5322 2.3).  "Damaged" is deliberately narrow, so that odd
but real mail still comes in: a file that cannot be read, an empty one, or one whose
first line is not a header field (RFC 5322 2.2: field-name ":" with field-name
printable US-ASCII except ":"), which is what a truncated, binary or foreign file
looks like.  Keywords must be RFC 3501 flag-keywords (atoms); anything else could
not be shown in a FLAGS response and is reported instead of kept.
"""

import re
from dataclasses import dataclass, field

_FIELD = re.compile(rb"[!-9;-~]+[ \t]*:")
# RFC 3501 atom: ATOM-CHAR is any CHAR except "(" ")" "{" SP CTL "%" "*" '"' "\" "]"
_KEYWORD = re.compile(r"[!#$&'+,\-./0-9:;<=>?@A-Z\[^_`a-z|}~]+\Z")


class Damaged(Exception):
    """A message that cannot be imported; str() is the reason, for the report."""


@dataclass
class Incoming:
    """A message ready for the store: wire form (CRLF), IMAP flag names and keywords,
    internal date (epoch seconds)."""

    wire: bytes
    flags: tuple
    date: int


@dataclass
class SourceFolder:
    """A folder to import: its CleverMail name and its messages (each with `origin`
    and `load()` -> Incoming) in import order."""

    name: str
    messages: list = field(default_factory=list)


def to_wire(raw):
    """Any mix of LF and CRLF line ends -> CRLF throughout (bare CRs stay as they are)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def checked(raw):
    """The wire form of `raw`, or Damaged with the reason."""
    if not raw.strip():
        raise Damaged("empty message")
    first = raw.split(b"\n", 1)[0]
    if not _FIELD.match(first):
        raise Damaged("does not start with a header field")
    return to_wire(raw)


def is_keyword(name):
    """True for a name IMAP can show as a keyword (an atom, not a \\system flag)."""
    return bool(_KEYWORD.match(name))


def split_flags(names):
    """Flag names -> (kept, dropped): keywords that are not atoms are dropped."""
    kept, dropped = [], []
    for name in names:
        (kept if name.startswith("\\") or is_keyword(name) else dropped).append(name)
    return tuple(kept), dropped
