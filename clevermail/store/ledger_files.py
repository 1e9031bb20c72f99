"""The descriptors of the users' quota ledgers (maildirsize.py), kept open per user
root: the lock file `clevermail-quota.lock`, whose shared flock this process's
writers of that user take together, and the `maildirsize` file their lines are
appended to (issue 18: every APPEND and EXPUNGE opened and closed both, two path
lookups under load on each change).

The shared lock.  flock belongs to the open file description, so this process's
writers of one user share one (`share` / `unshare`, counted): the first takes
LOCK_SH, the last releases it.  Another process's recalculation (LOCK_EX, trying
only) is kept out exactly while one of them is between its file change and its
line, as when each took its own; a recalculation in this process opens its own
description and is kept out the same way.  The lock file is only ever removed with
the user's whole tree (a user deleted, maybe made again): a kept descriptor whose
file lost its name (st_nlink 0) is opened again before it is locked, so a writer
never locks a file a recalculation of the new tree does not.

The ledger.  A line is one write(2) on the kept O_APPEND descriptor, under the
shared lock: a recalculation cannot replace the file then, but one may have done so
before, which left the kept inode without a name (renamed over), so the descriptor
is checked (fstat) and opened again on the file now at the path.  A missing file is
not created (maildirsize.py: the next look recalculates it).

Bounded: MAX_KEPT users' descriptors; beyond, those of the users least lately
written that no thread holds are closed.  Descriptors are O_CLOEXEC.  Local
filesystems only, as flock already requires.
"""

import fcntl
import os
import threading
from collections import OrderedDict

FILE_NAME = "maildirsize"
LOCK_NAME = "clevermail-quota.lock"
MAX_KEPT = 64


class Kept:
    """One user's two descriptors (opened at first use) and its shared-lock count."""

    __slots__ = ("root", "mutex", "lock_fd", "ledger_fd", "holders", "pins")

    def __init__(self, root):
        self.root = root
        self.mutex = threading.Lock()   # the descriptors and the count
        self.lock_fd = self.ledger_fd = None
        self.holders = 0                # this process's threads holding the shared lock
        self.pins = 0                   # threads using this entry (not to be closed); _cache_lock

    def share(self):
        """Take (or join) the shared lock.  OSError when the user has no root."""
        with self.mutex:
            if self.holders == 0:
                fd = self.lock_fd
                if fd is None or os.fstat(fd).st_nlink == 0:
                    self._close("lock_fd")
                    fd = os.open(os.path.join(self.root, LOCK_NAME),
                                 os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                    self.lock_fd = fd
                # (blocks only behind another process's recalculation: no holder
                # of ours, so no thread of ours waits for this mutex while holding it)
                fcntl.flock(fd, fcntl.LOCK_SH)
            self.holders += 1

    def unshare(self):
        with self.mutex:
            self.holders -= 1
            if self.holders == 0:
                fcntl.flock(self.lock_fd, fcntl.LOCK_UN)

    def append(self, data):
        """One write of `data` to the ledger; nothing when it is missing."""
        with self.mutex:
            fd = self.ledger_fd
            if fd is None or os.fstat(fd).st_nlink == 0:
                self._close("ledger_fd")
                try:
                    fd = os.open(os.path.join(self.root, FILE_NAME),
                                 os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
                except (FileNotFoundError, NotADirectoryError):
                    return
                self.ledger_fd = fd
            os.write(fd, data)

    def _close(self, which):
        fd = getattr(self, which)
        if fd is not None:
            setattr(self, which, None)
            os.close(fd)

    def close(self):
        """Close both (no thread uses the entry: it left the cache unpinned)."""
        self._close("lock_fd")
        self._close("ledger_fd")


_cache = OrderedDict()          # root -> Kept, least lately used first
_cache_lock = threading.Lock()


def pin(root):
    """The Kept of `root`, not to be closed until unpin()."""
    with _cache_lock:
        kept = _cache.get(root)
        if kept is None:
            kept = _cache[root] = Kept(root)
            if len(_cache) > MAX_KEPT:
                _evict()
        else:
            _cache.move_to_end(root)
        kept.pins += 1
    return kept


def unpin(kept):
    with _cache_lock:
        kept.pins -= 1


def _evict():
    """Close the least lately used entries nobody uses, down to MAX_KEPT (_cache_lock held)."""
    for root in [r for r, k in _cache.items() if k.pins == 0][:len(_cache) - MAX_KEPT]:
        _cache.pop(root).close()


def append(root, data):
    """Append `data` (one line) to the user's ledger (maildirsize.append)."""
    kept = pin(root)
    try:
        kept.append(data)
    finally:
        unpin(kept)


def kept_count():
    """How many users' entries are kept (tests)."""
    with _cache_lock:
        return len(_cache)
