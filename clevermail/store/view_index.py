"""Whole-folder reads of a FolderView straight from the folder's index, for callers
that touch every message of a large folder: the flag columns of FETCH 1:* (UID FLAGS)
made by C-level maps (no Python step per message), and the file paths of a first SORT
taken under one lock.  Protocol-neutral, like view.py, whose snapshot they read (the
view's numbering and \\Recent, the folder's index rows): only store/ reads those.
"""

import os
from itertools import repeat
from operator import attrgetter

from .maildir import SUBDIRS
from .view_values import FlagNames

_FLAGS_OF = attrgetter("flags")


def flag_columns(view, seqs):
    """(seqs, uids, flag names) of the view's messages at `seqs` as three columns,
    the first three fields of view.iter_messages(seqs); None when one of them is no
    longer in the index (the caller then takes iter_messages, which knows what to
    show of a message expunged but not yet reported)."""
    folder = view._folder
    uids = view.uids
    if not isinstance(seqs, range) or seqs != range(1, len(uids) + 1):
        uids = list(map(uids.__getitem__, [s - 1 for s in seqs]))
    entries = list(map(folder.by_uid.get, uids))
    if None in entries:
        return None
    recent = view.recent
    keys = zip(map(_FLAGS_OF, entries), map(recent.__contains__, uids) if recent else repeat(False))
    return seqs, uids, list(map(FlagNames(folder.flag_names).__getitem__, keys))


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
