"""The plain values a FolderView (store/view.py) hands out and takes: Changes (what
changed since the view last looked), Message (one message as the view shows it),
ViewMode (how a session looks at a folder), and the shared flag-name sets of a
folder's messages.  Protocol-neutral; view.py re-exports them.
"""

import enum
from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True)
class Changes:
    """What changed in a folder since a view last looked.

    expunged: UIDs of the snapshot that are gone (not yet removed from the numbering);
    flags: (uid, frozenset of flag names, \\Recent among them when the view holds it)
    of snapshot messages whose flags someone else changed;
    new: UIDs added to the numbering, ascending; recent: the UIDs among them whose
    \\Recent this view now holds; gone: the folder itself was deleted or renamed
    (maybe created again: a new UIDVALIDITY), so the view is over."""

    expunged: tuple = ()
    flags: tuple = ()
    new: tuple = ()
    recent: frozenset = frozenset()
    gone: bool = False

    def __bool__(self):
        return bool(self.expunged or self.flags or self.new or self.gone)


NO_CHANGES = Changes()


class Message(NamedTuple):
    """One message as a view shows it, a plain value (fetch.py and search.py read it):
    seq (the view's number for it when it was made), uid, flags (frozenset of flag
    names, \\Recent among them when the view holds it), internaldate (epoch seconds),
    size (wire octets), modseq (that of its last change, RFC 7162's MODSEQ).  The content is opened through the file handler
    (IMAPFileHandler.read_message/open_message -> FolderView.read_message); a value
    taken before a change shows the flags of before: take a new one after."""

    seq: int
    uid: int
    flags: frozenset
    internaldate: int
    size: int
    modseq: int = 1


class ViewMode(enum.Enum):
    """How a session looks at a folder (see the module docstring)."""
    SELECT = "select"       # IMAP SELECT: read-write, claims \Recent
    EXAMINE = "examine"     # IMAP EXAMINE: read-only, sees \Recent, claims none
    MAILDROP = "maildrop"   # POP3: no \Recent (IMAP's; and a set of every UID costs)


class FlagNames:
    """(flag letters, holds \\Recent) -> frozenset of flag names, each made once: a
    folder has a handful of flag combinations, so 100,000 messages share them.  `known`
    is a plain dict of those made, for loops to subscript (a dict subclass's [] is a
    lookup of __getitem__ and a call, five times a plain dict's: it was one per message
    of every FETCH), calling make(key) on a KeyError; [] does both.  `table`: the
    folder's keyword table they were named with (a view keeps one FlagNames while the
    table is the same object, store/flags.py replaces it when a keyword is added or read
    anew)."""

    __slots__ = ("_flag_names", "table", "known")

    def __init__(self, flag_names, table=None):
        self._flag_names, self.table, self.known = flag_names, table, {}

    def __getitem__(self, key):
        try:
            return self.known[key]
        except KeyError:
            return self.make(key)

    def make(self, key):
        letters, recent = key
        names = self.known[key] = frozenset(self._flag_names(letters) + (("\\Recent",) if recent else ()))
        return names
