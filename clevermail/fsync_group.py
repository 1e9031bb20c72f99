"""Group commit of directory fsyncs: one fsync serves every change made before it began.

A Maildir change is durable only once its directory is fsynced (maildir.py: a link
into new/ or cur/, an unlink).  When many sessions change one directory at once (ten
IMAP clients appending to one INBOX, twenty SMTP sessions delivering to one user),
each would pay a disk flush of its own, one after the other.  Here a change takes a
ticket right after it is made; `wait(ticket)` returns once an fsync that *began
after* that change has completed.  The first waiter runs the fsync; waiters that
arrive meanwhile queue behind it and the next of them runs one fsync covering all of
them (the group commit of databases).  A caller still returns only when its own
change is on disk, so "OK means durable" holds; the fsync simply no longer needs to
run inside a folder lock (store/changes.py waits after releasing it).

`directory(path)` gives the one DirFsync of a directory in this process, kept while
anyone holds it.  Other processes fsync on their own; that is still correct.
"""

import os
import threading
import weakref

from . import durable


class DirFsync:
    """Tickets and fsyncs for one directory."""

    def __init__(self, path):
        self.path = path
        self._fsync_lock = threading.Lock()     # one fsync of the directory at a time
        self._count_lock = threading.Lock()
        self._marked = 0        # tickets handed out: changes made
        self._done = 0          # every change up to this ticket is on disk

    def mark(self):
        """A change to the directory has just been made: its ticket."""
        with self._count_lock:
            self._marked += 1
            return self._marked

    def wait(self, ticket):
        """Return once the change behind `ticket` is durable (an OSError of the
        fsync is raised to every caller whose change it should have covered)."""
        with self._fsync_lock:
            if self._done >= ticket:
                return
            with self._count_lock:
                target = self._marked   # changes up to here were made before this fsync
            try:
                durable.fsync_dir(self.path)
            except FileNotFoundError:
                # the folder was deleted (or renamed) after the change: its entries
                # went with it, there is nothing left here to make durable
                pass
            self._done = target

    def sync(self):
        """fsync for a change just made (mark and wait)."""
        self.wait(self.mark())


_dirs = weakref.WeakValueDictionary()
_dirs_lock = threading.Lock()


def directory(path):
    """The DirFsync of `path` shared by this process's threads."""
    path = os.path.normpath(path)
    with _dirs_lock:
        group = _dirs.get(path)
        if group is None:
            group = _dirs[path] = DirFsync(path)
        return group
