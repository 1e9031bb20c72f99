"""Another process's changes to a user's folder tree, seen at once: an inotify(7)
descriptor on the user's root directory (IMAP NOTIFY's MailboxName and
SubscriptionChange, RFC 5465 5.4, 5.5).

Folders are directories of the root (`.Name`), and the subscriptions file is replaced
whole by a rename (subscriptions.py), so a folder created, deleted or renamed, or a
subscription changed, by any process is an entry created, deleted or moved in the
root.  The descriptor turning readable says that something changed; the listener
reads the tree again and compares.  This process's own changes come with their
details as store.tree_events; they make the descriptor readable too, and the
comparison then finds nothing new.

What a comparison cannot tell, a rename from a deletion and a creation, the events
do: a rename(2) within the root is an IN_MOVED_FROM and an IN_MOVED_TO sharing a
cookie, and `drain()` keeps each such pair whose two names are folder names as a
rename (`take_renames`).  A creation or a deletion is a rename too (tree.py builds a
folder under a hidden name, `.Name..creating-...`, and renames it into place; it
renames a doomed one to `.Name..deleted-...` first), but one of its names is no
folder name (an empty level), so it is never taken for a rename of a folder.  The
folder names come as paths.folder_from_dirname reads them, as FolderTree.list does.

One descriptor per watch (one per IMAP session with NOTIFY set asking tree events):
such sessions are few.  Where inotify is missing or refuses, `open_root_watch`
returns None and the listener keeps its periodic look.
"""

import collections
import ctypes
import logging
import os

from .paths import folder_from_dirname
from .watch import (EVENT, IN_CLOEXEC, IN_CREATE, IN_DELETE, IN_MOVED_FROM, IN_MOVED_TO, IN_NONBLOCK,
                    IN_Q_OVERFLOW, _libc)

log = logging.getLogger("clevermail.store")

MASK = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO
MAX_PENDING = 1000      # renames kept between two looks (beyond: the comparison alone)
MAX_UNPAIRED = 64       # moves out of the root whose move in is not read yet


class RootWatch:
    def __init__(self, libc, fd):
        self._libc, self._fd = libc, fd
        self._moved_from = collections.OrderedDict()    # cookie -> dirname moved away
        self._renames = []      # (old folder name, new folder name), in order

    def fileno(self):
        return self._fd

    def drain(self):
        """Read the events that made the descriptor readable, keeping the renames of
        folders among them; True when there were any."""
        got = False
        while True:
            try:
                data = os.read(self._fd, 64 * EVENT.size + 4096)
            except BlockingIOError:
                return got
            if not data:
                return got
            got = True
            self._parse(data)

    def take_renames(self):
        """The folder renames read since the last call, in the order they happened:
        [(old name, new name), ...]."""
        renames, self._renames = self._renames, []
        return renames

    def _parse(self, data):
        offset = 0
        while offset + EVENT.size <= len(data):
            _, mask, cookie, length = EVENT.unpack_from(data, offset)
            name = data[offset + EVENT.size:offset + EVENT.size + length].rstrip(b"\0")
            offset += EVENT.size + length
            if mask & IN_Q_OVERFLOW:
                # events were lost: a pair may be half gone; the comparison says the rest
                self._moved_from.clear()
            elif mask & IN_MOVED_FROM:
                self._moved_from[cookie] = name
                if len(self._moved_from) > MAX_UNPAIRED:    # moved out of the root
                    self._moved_from.popitem(last=False)
            elif mask & IN_MOVED_TO:
                src = self._moved_from.pop(cookie, None)
                if src is None:
                    continue        # moved in from elsewhere: a creation
                old = folder_from_dirname(os.fsdecode(src))
                new = folder_from_dirname(os.fsdecode(name))
                if old and new and len(self._renames) < MAX_PENDING:
                    self._renames.append((old, new))

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
