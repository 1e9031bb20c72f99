"""Another process's changes to a user's folder tree, seen at once: an inotify(7)
descriptor on the user's root directory (IMAP NOTIFY's MailboxName and
SubscriptionChange, RFC 5465 5.4, 5.5).

Folders are directories of the root (`.Name`), and the subscriptions file is replaced
whole by a rename (subscriptions.py), so a folder created, deleted or renamed, or a
subscription changed, by any process is an entry created, deleted or moved in the
root.  `RootWatch` only says that something changed (its descriptor turns readable);
the listener reads the tree again and compares.  This process's own changes come
with their details as store.tree_events; they make the descriptor readable too, and
the comparison then finds nothing new.

One descriptor per watch (one per IMAP session with NOTIFY set asking tree events):
such sessions are few.  Where inotify is missing or refuses, `open_root_watch`
returns None and the listener keeps its periodic look.
"""

import ctypes
import logging
import os

from .watch import EVENT, IN_CLOEXEC, IN_CREATE, IN_DELETE, IN_MOVED_FROM, IN_MOVED_TO, IN_NONBLOCK, _libc

log = logging.getLogger("clevermail.store")

MASK = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO


class RootWatch:
    def __init__(self, libc, fd):
        self._libc, self._fd = libc, fd

    def fileno(self):
        return self._fd

    def drain(self):
        """Read the events that made the descriptor readable (their details are not
        needed: the tree is read again); True when there were any."""
        got = False
        while True:
            try:
                data = os.read(self._fd, 64 * EVENT.size + 4096)
            except BlockingIOError:
                return got
            if not data:
                return got
            got = True

    def close(self):
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def open_root_watch(root):
    """A RootWatch of the user root directory `root`, or None without inotify."""
    try:
        libc = _libc()
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
    except (OSError, AttributeError) as exc:
        log.debug("no inotify for the folder tree (%s): periodic looks only", exc)
        return None
    if libc.inotify_add_watch(fd, os.fsencode(root), MASK) < 0:
        log.debug("inotify cannot watch %s: %s", root, os.strerror(ctypes.get_errno()))
        os.close(fd)
        return None
    return RootWatch(libc, fd)
