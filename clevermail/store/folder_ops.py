"""One-shot work on a folder no session holds a view of: the counters of STATUS
(RFC 3501 6.3.10) and APPEND (RFC 3501 6.3.11).

The file handlers call these with their store (a FolderSource, store/api.py) and get
plain values back: the Folder is opened, used and released here, so that no code
outside store/ holds one.  A session's selected folder is a FolderView (view.py).
"""

from .folder import FolderStatus


def folder_status(store, address, name) -> FolderStatus:
    """FolderStatus (messages, recent, uidnext, uidvalidity, unseen) of folder `name`."""
    folder = store.open_folder(address, name)
    try:
        return folder.status()
    finally:
        store.release_folder(folder)


def append_message(store, address, name, wire, flag_names, date=None):
    """Store `wire` (CRLF message) in folder `name` with the flags named (keywords
    not yet known are defined, \\Recent is not stored) and internal date `date`
    (epoch seconds, None: now); returns (UIDVALIDITY, UID) for APPENDUID."""
    folder = store.open_folder(address, name)
    try:
        letters = folder.letters_for(flag_names, create=True)     # drops \Recent
        uid = folder.append(wire, "".join(letters), date)
        return folder.uidvalidity, uid
    finally:
        store.release_folder(folder)
