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

Bounded: MAX_KEPT users' descriptors; beyond, the oldest entries that no thread
holds or uses are closed (an entry is used under its mutex only, and an evicted one
is marked closed: its user asks for the new entry).  Descriptors are O_CLOEXEC.  Local
filesystems only, as flock already requires.
"""

import fcntl
import os
import threading

FILE_NAME = "maildirsize"
LOCK_NAME = "clevermail-quota.lock"
MAX_KEPT = 64


class Kept:
    """One user's two descriptors (opened at first use) and its shared-lock count.
    Used only under its mutex, and only while not `closed` (evicted)."""

    __slots__ = ("root", "mutex", "lock_fd", "ledger_fd", "holders", "closed")

    def __init__(self, root):
        self.root = root
        self.mutex = threading.Lock()   # the descriptors, the count, closed
        self.lock_fd = self.ledger_fd = None
        self.holders = 0                # this process's threads holding the shared lock
        self.closed = False

    def share(self):
        """Take (or join) the shared lock; False when the entry was evicted (ask
        `kept()` again).  OSError when the user has no root."""
        with self.mutex:
            if self.closed:
                return False
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
            return True

    def unshare(self):
        with self.mutex:
            self.holders -= 1
            if self.holders == 0:
                fcntl.flock(self.lock_fd, fcntl.LOCK_UN)

    def append(self, data):
        """One write of `data` to the ledger (nothing when it is missing); False when
        the entry was evicted."""
        with self.mutex:
            if self.closed:
                return False
            fd = self.ledger_fd
            if fd is None or os.fstat(fd).st_nlink == 0:
                self._close("ledger_fd")
                try:
                    fd = os.open(os.path.join(self.root, FILE_NAME),
                                 os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
                except (FileNotFoundError, NotADirectoryError):
                    return True
                self.ledger_fd = fd
            os.write(fd, data)
            return True

    def _close(self, which):
        fd = getattr(self, which)
        if fd is not None:
            setattr(self, which, None)
            os.close(fd)

    def evict(self):
        """Close both unless a thread holds the lock or uses the entry now; whether
        it was closed (_cache_lock held)."""
        if not self.mutex.acquire(blocking=False):
            return False
        try:
            if self.holders:
                return False
            self.closed = True
            self._close("lock_fd")
            self._close("ledger_fd")
            return True
        finally:
            self.mutex.release()


_cache = {}                     # root -> Kept, oldest first
_cache_lock = threading.Lock()  # adding and evicting


def kept(root):
    """The Kept of `root` (made at first use)."""
    entry = _cache.get(root)
    if entry is None or entry.closed:
        with _cache_lock:
            entry = _cache.get(root)
            if entry is None or entry.closed:
                entry = _cache[root] = Kept(root)
                if len(_cache) > MAX_KEPT:
                    _evict()
    return entry


def _evict():
    """Close the oldest entries nobody uses, down to MAX_KEPT (_cache_lock held)."""
    excess = len(_cache) - MAX_KEPT
    for root, entry in list(_cache.items()):
        if excess <= 0:
            break
        if entry.evict():
            del _cache[root]
            excess -= 1


def share(root):
    """Take (or join) the shared lock of `root`: its Kept, to unshare()."""
    while True:
        entry = kept(root)
        if entry.share():
            return entry


def append(root, data):
    """Append `data` (one line) to the user's ledger (maildirsize.append)."""
    while not kept(root).append(data):
        pass


def kept_count():
    """How many users' entries are kept (tests)."""
    with _cache_lock:
        return len(_cache)
