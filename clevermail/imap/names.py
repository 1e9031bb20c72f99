"""Mailbox names on the wire: a client's argument to a folder name and back (RFC 3501
5.1, modified UTF-7 of 5.1.3), LIST/LSUB reference + pattern matching (RFC 3501
6.3.8, 6.3.9) and the attributes LIST says of a name.

Two spellings, chosen per session (`utf8`): modified UTF-7 for IMAP4rev1 clients, and
plain UTF-8 once the client has sent ENABLE UTF8=ACCEPT (RFC 6855 3) or ENABLE
IMAP4rev2 (RFC 9051 5.1): then a name travels as it is, "&" included, in a quoted
string that may hold UTF-8.  Patterns are matched against the session's spelling.

A name a client creates (CREATE, RENAME's new name) must be Net-Unicode (RFC 5198 2,
RFC 6855 3, RFC 9051 5.1): no C0 or C1 control, DEL, U+2028 or U+2029, and in
Normalization Form C; such a name is refused rather than changed, so every command
names a folder by exactly the name LIST shows (`check_new_name`).

The store validates a name as a path (store/paths.py); this module only decodes it,
normalises INBOX (case-insensitive, RFC 3501 5.1) and says it back quoted.
"""

import re
import unicodedata

from ..store.paths import SEPARATOR
from . import replies as R
from . import utf7
from .parser import astring, quote

# RFC 6855 3: what a Net-Unicode mailbox name may not hold
_NOT_NET_UNICODE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def mailbox_name(tok, utf8=False):
    """A client's mailbox argument -> the folder name (INBOX normalised); `utf8`: the
    session spells names in UTF-8 (else modified UTF-7)."""
    raw = astring(tok)
    if utf8:
        name = raw
    else:
        try:
            name = utf7.decode(raw)
        except ValueError:
            raise R.BAD_MUTF7.error() from None
    if name.upper() == "INBOX" or name.upper().startswith("INBOX" + SEPARATOR):
        name = "INBOX" + name[5:]
    return name


def list_form(name, utf8=False):
    """A folder name as the session spells it (what LIST patterns match)."""
    return name if utf8 else utf7.encode(name)


def wire_name(name, utf8=False):
    """A folder name as a string for a response: quoted mUTF-7, or quoted UTF-8 (a
    literal only for what no quoted string can carry) when `utf8`."""
    return quote(list_form(name, utf8), utf8=utf8)


def list_attributes(node, nonexistent=False):
    """LIST attributes of a folder-tree node: CHILDREN (RFC 3348), \\Noselect for a
    missing parent (RFC 3501 6.3.8; \\NonExistent, which implies it, when
    `nonexistent`: RFC 5258 3.4, RFC 9051 6.3.9.6), SPECIAL-USE (RFC 6154)."""
    attrs = ["\\HasChildren" if node.children else "\\HasNoChildren"]
    if not node.selectable:
        attrs.append("\\NonExistent" if nonexistent else "\\Noselect")
    attrs += node.special_use        # of its name, or those it was created with
    return attrs


def check_new_name(name):
    """Refuse (NO [CANNOT]) a name to be created that is not Net-Unicode."""
    if _NOT_NET_UNICODE.search(name):
        raise R.NOT_NET_UNICODE.error("a control or line separator character")
    if not name.isascii() and not unicodedata.is_normalized("NFC", name):
        raise R.NOT_NET_UNICODE.error("not in Unicode Normalization Form C")


class ListPattern:
    """A LIST/LSUB reference + pattern, matched against names in the session's
    spelling (list_form).

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
