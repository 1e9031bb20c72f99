"""Whole-folder reads of a FolderView straight from the folder's index, for callers
that touch every message of a large folder: the columns of FETCH 1:* (UID FLAGS) made
by C-level maps (no Python step per message), and the file paths of a first SORT
taken under one lock.  Protocol-neutral, like view.py, whose snapshot they read (the
view's numbering and \\Recent, the folder's index rows): only store/ reads those.
"""

import bisect
import os
from operator import attrgetter

from .maildir import SUBDIRS

_FLAGS_OF = attrgetter("flags")
_DATE_OF = attrgetter("date")
_SIZE_OF = attrgetter("wsize")
_MODSEQ_OF = attrgetter("modseq")
_minus_one = (-1).__add__
# below this share of \Recent messages, their keys are patched one by one
_FEW_RECENT = 16


class FlagKeyNames(dict):
    """A flag key of IndexColumns.flag_keys -> the frozenset of flag names it stands
    for, each made once (a dict subscript per message, a call only on a miss).  A key is
    opaque to the caller: the message's flag letters (\\Recent as `recent` says), or
    (letters, holds \\Recent)."""

    def __init__(self, flag_names, recent):
        super().__init__()
        self._flag_names, self._recent = flag_names, recent

    def __missing__(self, key):
        letters, recent = (key, self._recent) if isinstance(key, str) else key
        names = self[key] = frozenset(self._flag_names(letters) + (("\\Recent",) if recent else ()))
        return names


class IndexColumns:
    """The index fields of the view's messages at `seqs` as columns, in the order of
    view.iter_messages(seqs): `seqs` (as given), `uids`, `flag_keys` (one opaque key per
    message) with `flag_names` (key -> frozenset of flag names, \\Recent as the view
    holds it), and dates(), sizes(), modseqs() made on demand.  The flags are those
    read when the columns were made.  `ascending`: seqs is a range, so seqs and uids
    ascend."""

    __slots__ = ("seqs", "uids", "flag_keys", "flag_names", "ascending", "_entries")

    def __init__(self, seqs, uids, flag_keys, flag_names, entries):
        self.seqs, self.uids, self._entries = seqs, uids, entries
        self.flag_keys, self.flag_names = flag_keys, flag_names
        self.ascending = isinstance(seqs, range) and seqs.step == 1

    def __len__(self):
        return len(self.uids)

    def dates(self):
        return list(map(_DATE_OF, self._entries))

    def sizes(self):
        return list(map(_SIZE_OF, self._entries))

    def modseqs(self):
        return list(map(_MODSEQ_OF, self._entries))


def index_columns(view, seqs):
    """IndexColumns of the view's messages at `seqs` (sequence numbers of the view, a
    range or a list); None when one of them is no longer in the index (the caller then takes
    iter_messages, which knows what to show of a message expunged but not yet
    reported)."""
    folder = view._folder
    numbered = view.uids
    if isinstance(seqs, range) and seqs.step == 1:
        uids = numbered[seqs.start - 1:seqs.stop - 1] if seqs else []
    else:
        uids = list(map(numbered.__getitem__, map(_minus_one, seqs)))
    try:
        # a KeyError, not a look for None afterwards: that compared every entry
        entries = list(map(folder.by_uid.__getitem__, uids))
    except KeyError:
        return None
    letters = list(map(_FLAGS_OF, entries))
    keys, all_recent = _flag_keys(letters, uids, view.recent, seqs)
    return IndexColumns(seqs, uids, keys, FlagKeyNames(folder.flag_names, all_recent), entries)


def _flag_keys(letters, uids, recent, seqs):
    """(flag keys, whether a letters key holds \\Recent): the letters column itself
    when \\Recent is the same for every message (none: the common case; all: the first
    SELECT of a folder), else (letters, True) keys where it is held."""
    if not recent or not uids:
        return letters, False
    if len(recent) * _FEW_RECENT < len(uids) and isinstance(seqs, range):
        # a few new messages (at the end, mostly): found by bisection in the
        # ascending UIDs (seqs is a range), not a set lookup per message
        keys = None
        for uid in recent:
            i = bisect.bisect_left(uids, uid)
            if i < len(uids) and uids[i] == uid:
                if keys is None:
                    keys = list(letters)
                keys[i] = (letters[i], True)
        return (letters if keys is None else keys), False
    if recent.issuperset(uids):
        return letters, True
    return list(zip(letters, map(recent.__contains__, uids))), False


def message_paths(view, uids):
    """The file path of each of `uids` as the index knows it now (None for one
    expunged), all under one lock: for a caller that reads the head of every message
    (a first SORT).  A file renamed meanwhile (a flag change) is no longer at its
    path: such a caller then goes through view.open_message(), which looks again."""
    folder = view._folder
    # Folder.file_path's join, with the two directory prefixes made once
    prefix = {sub: os.path.join(folder.path, sub, "") for sub in SUBDIRS}
    with folder.lock:
        get = folder.by_uid.get
        return [None if (entry := get(uid)) is None else prefix[entry.sub] + entry.filename()
                for uid in uids]
