"""POP3FileHandler: the maildrop side of POP3, speaking store only (no protocol).

A POP3 maildrop is the user's INBOX (the same Maildir IMAP shows).  `open_maildrop`
takes it for exclusive POP3 use (RFC 1939 8: one session per maildrop) and returns a
Maildrop: a store FolderView of the INBOX (store/view.py) frozen at login (it is
never asked for changes) plus the wire sizes, so message numbers stay stable for the
whole session even while new mail arrives or IMAP changes flags.  Reading, the \\Seen
of a RETR and the expunge at QUIT go through this handler and the view, never a
Folder; what the handler needs from the store is declared in store/api.py (POP3Store).

Exclusive use is two locks, taken in this order and released in reverse:
  * in this process, a registry address -> Maildrop under a mutex;
  * across processes (a second instance, the CLI), a non-blocking flock on
    `<user root>/clevermail-pop3.lock`.  The file is never unlinked: unlinking a lock
    file races with a process that has just opened it.
IMAP sessions do not take either lock; they learn of POP3's deletions as expunges
through the shared Folder's change log (store/folder.py, store/view.py).

UIDL values are "<UIDVALIDITY>.<UID>" from the folder's UID map: a UID is never
reused within one UIDVALIDITY, so a value is never given to two messages, and it
agrees with what IMAP calls the message.
"""

import fcntl
import os
import threading

from ..store import FolderInUse, MessageGone
from ..store.api import POP3Store
from ..store.view import FolderView, ViewMode, close_view, open_view

LOCK_NAME = "clevermail-pop3.lock"
INBOX = "INBOX"


class Maildrop:
    """The login-time snapshot of one INBOX, held exclusively by one session.

    `uids[i]` and `sizes[i]` belong to message number i + 1 (the view's numbering,
    frozen); sizes are the CRLF (wire) sizes from the file names, never measured by
    reading files.  `deleted` is the session's DELE marks (a bytearray, one byte per
    message); `count` and `octets` cover the messages not marked, so STAT is O(1)."""

    __slots__ = ("address", "view", "uidvalidity", "uids", "sizes", "deleted",
                 "count", "octets", "_lockfd", "released")

    def __init__(self, address, view: FolderView, lockfd):
        self.address = address
        self.view = view
        self.uidvalidity = view.uidvalidity
        self.uids = uids = view.uids      # never changes: the view is not asked for changes
        self.sizes = sizes = view.sizes()
        self.deleted = bytearray(len(uids))
        self.count = len(uids)
        self.octets = sum(sizes)
        self._lockfd = lockfd
        self.released = False

    def __len__(self):
        return len(self.uids)

    def uidl(self, index):
        return f"{self.uidvalidity}.{self.uids[index]}"

    def mark(self, index):
        """DELE: mark message index (0-based); False if it was marked already."""
        if self.deleted[index]:
            return False
        self.deleted[index] = 1
        self.count -= 1
        self.octets -= self.sizes[index]
        return True

    def unmark_all(self):
        """RSET: forget every DELE mark."""
        self.deleted = bytearray(len(self.uids))
        self.count = len(self.uids)
        self.octets = sum(self.sizes)

    def marked_uids(self):
        return [uid for uid, d in zip(self.uids, self.deleted) if d]


class POP3FileHandler:
    """Opens, reads, flags and commits maildrops for POP3 sessions."""

    def __init__(self, store: POP3Store, accounts):
        self.store = store
        self.accounts = accounts
        self._lock = threading.Lock()
        self._held = {}                  # address -> Maildrop (this process)

    def authenticate(self, username, password):
        """The Account for good credentials, else None (login.py applies the delay)."""
        return self.accounts.authenticate(username, password)

    # -- exclusive use -----------------------------------------------------------
    def open_maildrop(self, address):
        """Lock `address`'s INBOX for this session and snapshot it.

        Raises FolderInUse when another POP3 session (here or in another process)
        holds it; store or OS errors pass through with every lock released."""
        with self._lock:
            if address in self._held:
                raise FolderInUse(address)
            self._held[address] = None       # reserved while we lock and list
        lockfd = view = None
        try:
            root = self.store.ensure_user(address)
            lockfd = os.open(os.path.join(root, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(lockfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise FolderInUse(address) from None
            # synced with the disk; POP3 takes no part in \Recent (IMAP's)
            view = open_view(self.store, address, INBOX, ViewMode.MAILDROP)
            drop = Maildrop(address, view, lockfd)
        except BaseException:
            if view is not None:
                close_view(self.store, view)
            if lockfd is not None:
                os.close(lockfd)            # closing drops the flock too
            with self._lock:
                self._held.pop(address, None)
            raise
        with self._lock:
            self._held[address] = drop
        return drop

    def release(self, drop):
        """Give the maildrop up without deleting anything (idempotent).  Called after
        QUIT's commit and whenever the connection ends for any reason."""
        with self._lock:
            if drop.released:
                return
            drop.released = True
            if self._held.get(drop.address) is drop:
                del self._held[drop.address]
            lockfd, drop._lockfd = drop._lockfd, None
        try:
            close_view(self.store, drop.view)
        finally:
            if lockfd is not None:
                os.close(lockfd)

    # -- messages ------------------------------------------------------------------
    def open_message(self, drop, index):
        """An open binary file of message `index` (disk form, LF line ends).
        Raises MessageGone when another session expunged it since login."""
        return drop.view.open_message(drop.uids[index])

    def mark_seen(self, drop, index):
        """Set \\Seen after a RETR, so IMAP shows the message as read."""
        try:
            drop.view.mark_seen([drop.uids[index]])
        except (MessageGone, FileNotFoundError):
            pass

    def commit(self, drop):
        """QUIT in TRANSACTION (RFC 1939 6, UPDATE state): expunge the marked messages.
        Returns the number removed; messages IMAP removed already count as done."""
        marked = drop.marked_uids()
        if not marked:
            return 0
        # Folder.expunge finds files renamed by other processes itself
        drop.view.expunge(marked)
        return len(marked)
