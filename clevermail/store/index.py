"""The folder index cache `clevermail-index`: lets a restarted server open a large
folder without listing it or parsing its whole uidlist.

It holds the mtimes of new/ and cur/ at the time of the snapshot, the UIDVALIDITY, the
uidlist's inode and read offset (plus the few UIDs it knows beyond the index, and its
reservation: the `N` lines before that offset, with the boot they were read in), and the
index as columns (uid, base, sub-directory, flags, sizes, date, modseq) and the
modseq file's position and remembered expunges (store/modseq.py), marshalled.  It is
only a cache: the uidlist stays the truth for UIDs (a replaced uidlist is read in
full, an appended one from the saved offset), a directory whose mtime no longer
matches is re-listed, and a missing or unreadable cache just means a full scan.
"""

import marshal
import os

from ..durable import atomic_write
from .scan import Entry

FILENAME = "clevermail-index"
VERSION = 4
MIN_MESSAGES = 500   # smaller folders list faster than the cache loads


def save(folder):
    if getattr(folder, "saved_modseq", None) == folder.modseq:
        return False
    modseq = folder.modseq
    stamps, uidvalidity, position, columns, modseqs = snapshot(folder)
    if len(columns[0]) < MIN_MESSAGES or None in stamps.values():
        return False
    # columns marshal and load faster than a list of tuples
    data = marshal.dumps((VERSION, stamps, uidvalidity, position, columns, modseqs))
    # not durable (no fsync): losing the cache only costs a rescan
    atomic_write(os.path.join(folder.path, FILENAME), data, durable=False)
    folder.saved_modseq = modseq
    return True


def load(folder):
    path = os.path.join(folder.path, FILENAME)
    try:
        with open(path, "rb") as f:
            version, stamps, uidvalidity, position, columns, modseqs = marshal.loads(f.read())
    except (OSError, ValueError, EOFError, TypeError):
        return False
    if version != VERSION:
        return False
    # a damaged file can still unmarshal: anything but 8 equal columns is no cache
    if (not isinstance(columns, tuple) or len(columns) != 8 or not isinstance(stamps, dict)
            or not isinstance(modseqs, tuple) or len(modseqs) != 5 or len(modseqs[0]) != 7
            or not all(isinstance(c, list) and len(c) == len(columns[0]) for c in columns)
            or not isinstance(position, tuple) or len(position) != 6 or not isinstance(position[4], dict)
            or not isinstance(position[5], tuple) or len(position[5]) != 2):
        return False
    return restore(folder, stamps, uidvalidity, position, columns, modseqs)


def snapshot(folder):
    """What save() writes: stamps, UIDVALIDITY, the uidlist position, UIDs the uidlist
    knows beyond the index, the index as columns, the modseq state."""
    with folder.lock:
        entries = [folder.by_uid[u] for u in folder.uids]
        columns = ([e.uid for e in entries], [e.base for e in entries], [e.sub for e in entries],
                   [e.flags for e in entries], [e.size for e in entries],
                   [e.wsize for e in entries], [e.date for e in entries],
                   [e.modseq for e in entries])
        uidlist = folder.uidlist
        extras = {b: u for b, u in uidlist.uids.items() if b not in folder.by_base}
        position = (uidlist.inode, uidlist.offset, uidlist.uidnext, uidlist.recent_upto, extras,
                    uidlist.reservation)
        return (folder.stamps(), uidlist.uidvalidity, position, columns, folder.modseqs.snapshot())


def restore(folder, stamps, uidvalidity, position, columns, modseqs):
    """Load a saved index into an empty Folder: directories whose mtime still matches
    need no listing, and the uidlist is read only past the saved position when it is
    the same file.  False when the saved one no longer fits (another UIDVALIDITY)."""
    uids, bases, subs, flags, sizes, wsizes, dates, mods = columns
    with folder.lock, folder.file_lock():
        inode, offset, uidnext, recent_upto, extras, reservation = position
        if not folder.uidlist.adopt(inode, offset, uidvalidity, uidnext, recent_upto,
                                     dict(zip(bases, uids), **extras), reservation):
            folder.uidlist.refresh()
            if uidvalidity != folder.uidlist.uidvalidity:
                return False
        by_uid, by_base = folder.by_uid, folder.by_base
        for row in zip(uids, bases, subs, flags, sizes, wsizes, dates, mods):
            entry = Entry(*row)
            by_uid[row[0]] = by_base[row[1]] = entry
        folder.uids = list(uids)
        folder.modseqs.restore(modseqs)
        folder.restored(stamps)
        return True
