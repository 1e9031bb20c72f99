"""Reading a folder's message files (Folder's mixin; store/folder.py): the open file,
the wire form and the stable id of a message, found through the index without
queueing behind the folder's writers.

A file can move under a reader: a flag change renames it (cur/X:2,OLD -> cur/X:2,NEW,
or new/ -> cur/), an expunge renames it into tmp/.  The index is read first without the
folder's lock; a FileNotFoundError then means a rename in progress (or a torn read of
one), so the path is taken again under the lock, and once more after a full look at
the directories (another process moved it); MessageGone when the message is no
longer there at all.
"""

import os

from . import maildir, object_ids
from .errors import MessageGone


class FolderFiles:
    """The message-file readers of Folder (which provides `lock`, `entry`,
    `file_path`, `sync` and `path`)."""

    def _on_file(self, uid, use):
        """use(path, entry) for the message's file.  The first try reads the index
        without the lock (FETCH must not queue behind writers): a rename in progress
        or a torn read of one can only make `use` meet FileNotFoundError; then under
        the lock, then once more after a full look at the disk (moved by another
        process).  MessageGone when it was expunged."""
        for attempt in (0, 1, 2):
            if attempt:
                self.lock.acquire()
            try:
                entry = self.entry(uid)
                path = self.file_path(entry)
            finally:
                if attempt:
                    self.lock.release()
            try:
                return use(path, entry)
            except FileNotFoundError:
                if attempt == 2:
                    raise MessageGone(f"UID {uid} is gone") from None
                if attempt == 1:
                    self.sync(force=True)

    def open_message(self, uid):
        """An open binary file of the message (disk form); resyncs once if it moved."""
        return self._on_file(uid, lambda path, entry: open(path, "rb"))

    def object_id(self, uid):
        """The message's stable id (store/object_ids.py); MessageGone when expunged."""
        return self._on_file(uid, lambda path, entry: object_ids.message_id(
            os.stat(path), entry.date, entry.wsize))

    def mailbox_id(self):
        """The folder's stable id (store/object_ids.py)."""
        return object_ids.mailbox_id(self.path)

    def read_message(self, uid):
        """The message in wire form (CRLF line endings)."""
        return maildir.to_wire(self._on_file(uid, _read_whole))


def _read_whole(path, entry):
    """The bytes of a message file: open, one read of the size its name gives (S=),
    close.  A file object's read() made eight system calls (two fstats, an ioctl
    asking whether it is a terminal, an lseek, a read that finds the end), each a
    GIL hand-off, for every body a FETCH sends.  A message file never changes, so a
    read that returns exactly that size has read all of it; a file without S=, or
    one whose length is not what its name says, is read to its end."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = entry.size
        want = (size if size is not None else 1 << 16) + 1
        data = os.read(fd, want)
        if len(data) == want - 1 and size is not None:
            return data
        parts = [data]
        while data:
            data = os.read(fd, 1 << 20)
            parts.append(data)
        return b"".join(parts)
    finally:
        os.close(fd)
