"""One-shot work on a folder no session holds a view of: the counters of STATUS
(RFC 3501 6.3.10), APPEND (RFC 3501 6.3.11), and the bulk reads and writes of
`clevermail import` / `export` (migrate/).

The file handlers and migrate/ call these with their store (a FolderSource,
store/api.py) and get plain values, a FolderView or a BatchAppender back: the Folder
is opened, used and released here, so that no code outside store/ holds one.  A
session's selected folder is a FolderView (view.py).
"""

from contextlib import contextmanager, nullcontext

from . import object_ids
from .errors import MessageGone, NoSuchFolder
from .folder import FolderStatus
from .view import FolderView, ViewMode


def folder_status(store, address, name) -> FolderStatus:
    """FolderStatus (messages, recent, uidnext, uidvalidity, unseen) of folder `name`."""
    folder = store.open_folder(address, name)
    try:
        return folder.status()
    finally:
        store.release_folder(folder)


def mailbox_id(store, address, name):
    """The stable id of folder `name` (store/object_ids.py), without opening it (no
    index to build for a STATUS or CREATE); NoSuchFolder when there is none."""
    if not store.folder_exists(address, name):
        raise NoSuchFolder(name)
    try:
        return object_ids.mailbox_id(store.folder_path(address, name))
    except FileNotFoundError:           # deleted meanwhile
        raise NoSuchFolder(name) from None


def append_message(store, address, name, wire, flag_names, date=None, view=None, guard=None):
    """Store `wire` (CRLF message) in folder `name` with the flags named (keywords
    not yet known are defined, \\Recent is not stored) and internal date `date`
    (epoch seconds, None: now); returns (UIDVALIDITY, UID) for APPENDUID.  `view`:
    the appending session's FolderView, if it has one: when it is of this folder
    the message's \\Recent is claimed for it in the same change.  `guard`: a
    context manager factory entered once the folder is found (NoSuchFolder comes
    first), around the keywords and the write (the quota's `reserving`)."""
    folder = store.open_folder(address, name)
    try:
        with guard() if guard is not None else nullcontext():
            letters = folder.letters_for(flag_names, create=True)     # drops \Recent
            on_claim = view.recent_claimer(folder) if view is not None else None
            uid = folder.append(wire, "".join(letters), date, on_claim)
        return folder.uidvalidity, uid
    finally:
        store.release_folder(folder)


def read_by_uid(store, address, name, uid, uidvalidity=None):
    """The wire form of message `uid` of folder `name` (an IMAP URL's message);
    MessageGone when there is none or the folder's UIDVALIDITY is not `uidvalidity`."""
    folder = store.open_folder(address, name)
    try:
        if uidvalidity is not None and uidvalidity != folder.uidvalidity:
            raise MessageGone(f"UIDVALIDITY of {name} is not {uidvalidity}")
        return folder.read_message(uid)
    finally:
        store.release_folder(folder)


@contextmanager
def reading(store, address, name):
    """A FolderView (MAILDROP: no \\Recent claimed) of folder `name` for a bulk reader
    (export, the duplicate check of import); the folder is released on exit."""
    folder = store.open_folder(address, name)
    try:
        yield FolderView(folder, name, ViewMode.MAILDROP)
    finally:
        store.release_folder(folder)


class BatchAppender:
    """Appends to one folder in batches of (wire, flag names, internal date): one
    directory fsync and one uidlist write a batch, every file still fsynced (the
    batch form of APPEND).  `view` is a FolderView of the folder as it was when the
    appender opened it."""

    def __init__(self, folder, view, on_claim=None):
        self._folder = folder
        self.view = view
        self._on_claim = on_claim

    def append_many(self, batch):
        """Store `batch`; returns (UIDs, keyword names not kept).  Keywords not yet
        known are defined; a folder holds at most 26 (the Maildir letters a..z), so
        the names past them are returned, not stored."""
        rows, dropped = [], []
        for wire, flag_names, date in batch:
            letters = self._folder.letters_for(flag_names, create=True)
            dropped += _not_given(self._folder, flag_names, letters)
            rows.append((wire, "".join(sorted(letters)), date))
        return (self._folder.append_many(rows, self._on_claim) if rows else []), dropped


def _not_given(folder, flag_names, letters):
    """Keywords of `flag_names` that letters_for could not give a letter."""
    keywords = [f for f in flag_names if not f.startswith("\\")]
    if sum(1 for c in letters if "a" <= c <= "z") >= len({k.lower() for k in keywords}):
        return []
    defined = {k.lower() for k in folder.keywords()}
    return [k for k in keywords if k.lower() not in defined]


@contextmanager
def appending(store, address, name, view=None):
    """A BatchAppender for folder `name`, released on exit; `view` as append_message's."""
    folder = store.open_folder(address, name)
    try:
        on_claim = view.recent_claimer(folder) if view is not None else None
        yield BatchAppender(folder, FolderView(folder, name, ViewMode.MAILDROP), on_claim)
    finally:
        store.release_folder(folder)
