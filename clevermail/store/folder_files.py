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
        with self.open_message(uid) as f:
            return maildir.to_wire(f.read())
