"""Mailbox names on the wire: a client's argument to a folder name and back (RFC 3501
5.1, modified UTF-7 of 5.1.3), and LIST/LSUB reference + pattern matching (RFC 3501
6.3.8, 6.3.9).

The store validates a name as a path (store/paths.py); this module only decodes it,
normalises INBOX (case-insensitive, RFC 3501 5.1) and says it back quoted.
"""

import re

from ..store.paths import SEPARATOR
from . import replies as R
from . import utf7
from .parser import astring, quote


def mailbox_name(tok):
    """A client's mailbox argument -> the folder name (INBOX normalised)."""
    raw = astring(tok)
    try:
        name = utf7.decode(raw)
    except ValueError:
        raise R.BAD_MUTF7.error() from None
    if name.upper() == "INBOX" or name.upper().startswith("INBOX" + SEPARATOR):
        name = "INBOX" + name[5:]
    return name


def wire_name(name):
    """A folder name as a quoted mUTF-7 string for a response."""
    return quote(utf7.encode(name))


class ListPattern:
    """A LIST/LSUB reference + pattern, matched against wire (mUTF-7) names.

    '*' matches anything, '%' anything but the separator.  INBOX is case-insensitive
    (RFC 3501 5.1): the pattern's leading literal letters, when they spell the start of
    INBOX, match INBOX whatever their case ("inbox", "inb*", "Inbox/Sub"); other names
    match case-sensitively."""

    def __init__(self, reference, pattern):
        full = reference + pattern if not pattern.startswith(SEPARATOR) or not reference else pattern
        out = []
        for ch in full:
            if ch == "*":
                out.append(".*")
            elif ch == "%":
                out.append(f"[^{re.escape(SEPARATOR)}]*")
            else:
                out.append(re.escape(ch))
        self.regex = re.compile("".join(out) + r"\Z", re.DOTALL)
        head = re.match(r"[^*%]*", full).group()[:5]
        self.head = head if "INBOX".startswith(head.upper()) else ""

    def match(self, wire):
        if self.regex.match(wire):
            return True
        head = self.head
        if head and (wire == "INBOX" or wire.startswith("INBOX" + SEPARATOR)):
            return bool(self.regex.match(head + wire[len(head):]))
        return False
