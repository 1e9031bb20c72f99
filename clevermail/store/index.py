"""The folder index cache `clevermail-index`: lets a restarted server open a large
folder without listing it or parsing its whole uidlist.

It holds the mtimes of new/ and cur/ at the time of the snapshot, the UIDVALIDITY, the
uidlist's inode and read offset (plus the few UIDs it knows beyond the index), and the
index as columns (uid, base, sub-directory, flags, sizes, date, modseq) and the
modseq file's position and remembered expunges (store/modseq.py), marshalled.  It is
only a cache: the uidlist stays the truth for UIDs (a replaced uidlist is read in
full, an appended one from the saved offset), a directory whose mtime no longer
matches is re-listed, and a missing or unreadable cache just means a full scan.
"""

import marshal
import os

from ..durable import atomic_write

FILENAME = "clevermail-index"
VERSION = 3
MIN_MESSAGES = 500   # smaller folders list faster than the cache loads


def save(folder):
    if getattr(folder, "saved_modseq", None) == folder.modseq:
        return False
    modseq = folder.modseq
    stamps, uidvalidity, position, columns, modseqs = folder.snapshot()
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
            or not isinstance(position, tuple) or len(position) != 5 or not isinstance(position[4], dict)):
        return False
    return folder.restore(stamps, uidvalidity, position, columns, modseqs)
