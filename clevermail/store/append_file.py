"""A descriptor kept open for appending to one of a folder's logs (the uidlist,
store/uidlist.py; the modseq log keeps its own, which it also reads through:
store/modseq.py), and for reading what other processes appended (`read`: one
pread, where opening the path, reading and closing it were seven system calls).

Their writers append under the folder's locks.  Opening and closing the file for
every line cost two system calls there, and each system call gives the GIL away
while the folder's lock is held, so the other sessions of the folder queued longer
behind every APPEND (a lock convoy).  The descriptor is tied to the inode it was
opened on: the caller passes the inode its own stat of the path found (under the
folder's file lock, the path cannot be replaced between that stat and the write:
every replacement, a compaction or a new file, is made under that lock), and a
different inode (compacted or replaced by this or another process) closes the old
descriptor and opens the path again, so a line never goes to a file that is no
longer the log.  Closed by `close()` when the Folder leaves memory, or at garbage
collection.
"""

import os
import weakref

from ..durable import write_all


class AppendFile:
    """O_APPEND writes to `path`, the descriptor kept for the inode last written."""

    def __init__(self, path):
        self.path = path
        self._fd = None
        self._ino = None
        self._finalizer = None

    def write(self, data, ino, fsync=False):
        """Append `data` (all of it or an error) to the file at `path` whose inode
        the caller's stat found to be `ino`; fsync it when asked."""
        fd = self._for(ino)
        write_all(fd, data)
        if fsync:
            os.fsync(fd)

    def read(self, ino, offset, end):
        """The bytes from `offset` up to `end` of the file at `path` whose inode the
        caller's stat found to be `ino` (fewer if it is shorter now)."""
        return os.pread(self._for(ino), end - offset, offset)

    def _for(self, ino):
        """The descriptor, opened again when the caller's stat found another inode."""
        if self._fd is None or self._ino != ino:
            self.close()
            # read and write: what others appended is read through it too
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
            self._fd, self._ino = fd, os.fstat(fd).st_ino
            self._finalizer = weakref.finalize(self, os.close, fd)
        return self._fd

    def close(self):
        if self._finalizer is not None:
            self._finalizer()               # closes the descriptor, once
            self._finalizer = self._fd = self._ino = None
