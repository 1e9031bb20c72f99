"""The lock shared with other processes: an flock on the folder's `clevermail-lock`.

FileLock serialises UID assignment, renames and unlinks between CleverMail processes
working on one tree.  Inside a process the folder's RLock is always taken first, so
the FileLock's own depth counter (guarded by that RLock) makes it re-entrant without
a lock of its own: the flock is taken at depth 0 -> 1 and released at 1 -> 0.
"""

import contextlib
import fcntl
import os
import weakref

LOCK_NAME = "clevermail-lock"


class FileLock:
    """flock on `<folder>/clevermail-lock`, re-entrant through a depth count; one per
    Folder, entered only with the folder's RLock held."""

    def __init__(self, folder_path):
        self.path = os.path.join(folder_path, LOCK_NAME)
        self._fd = None
        self._depth = 0
        self._finalizer = None

    def __enter__(self):
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            # a Folder dropped without close() (a MailStore let go: tests, the CLI)
            # must not keep its descriptor for the life of the process
            self._finalizer = weakref.finalize(self, os.close, self._fd)
        if self._depth == 0:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._depth += 1
        return self

    def __exit__(self, *exc):
        self._depth -= 1
        if self._depth == 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        return False

    def is_current(self):
        """Whether the file this lock holds is still `<folder>/clevermail-lock` (taken,
        so under the flock): not when the folder was deleted or renamed and maybe
        created again, whose new lock file another Folder of that path may hold at
        this very moment, so this flock excludes nobody there."""
        try:
            held, present = os.fstat(self._fd), os.stat(self.path)
        except (OSError, TypeError):
            return False
        return (held.st_dev, held.st_ino) == (present.st_dev, present.st_ino)

    def close(self):
        """Close the descriptor: its Folder leaves memory (else it stays open for the
        life of the process).  Called with the folder's RLock held, so never inside the
        flock; a later use opens the file again."""
        if self._fd is not None and self._depth == 0:
            self._finalizer()               # closes the descriptor, once
            self._fd = self._finalizer = None


@contextlib.contextmanager
def held(folder_path):
    """The folder's file lock for a writer that has no Folder (a delivery into cur/,
    the RENAME of INBOX): an flock on a descriptor of its own, closed on exit.  Every
    change in cur/ by this store is made under the lock, because a writer's journal
    line (cur_journal.py) says all that changed there between its two looks at the
    directory.  Such a writer holds no folder lock while it waits, so it cannot be
    part of a cycle."""
    lock = FileLock(folder_path)        # this caller's alone: no RLock needed around it
    try:
        with lock:
            yield
    finally:
        lock.close()
