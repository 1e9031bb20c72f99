"""IMAPFileHandler: everything the IMAP server asks of storage.

Bound to IMAPServer as `server.handler` (the original's ImapFileHandler).  It speaks
store, never protocol: it takes folder names already decoded from modified UTF-7,
returns plain data, and raises store errors (NoSuchFolder, FolderExists, InvalidName)
that the session turns into NO responses.
"""

import bisect

from ..store import SPECIAL_USE, FolderExists, NoSuchFolder
from ..store.paths import SEPARATOR


class IMAPFileHandler:
    def __init__(self, store, accounts):
        self.store = store
        self.accounts = accounts

    # -- accounts -----------------------------------------------------------------
    def authenticate(self, username, password):
        """The Account for good credentials (mailbox tree made if new), else None."""
        account = self.accounts.authenticate(username, password)
        if account is not None:
            self.store.ensure_user(account.address)
        return account

    # -- folder tree ------------------------------------------------------------------
    def mailboxes(self, address):
        """[(name, attributes)] for every folder plus the missing parents of nested ones
        (those get \\Noselect), with CHILDREN and SPECIAL-USE attributes."""
        names = self.store.list_folders(address)
        existing = set(names)
        every = set(names)
        for name in names:
            levels = name.split(SEPARATOR)
            for i in range(1, len(levels)):
                every.add(SEPARATOR.join(levels[:i]))
        parents = set()
        for name in every:
            if SEPARATOR in name:
                parents.add(name.rsplit(SEPARATOR, 1)[0])
        result = []
        for name in sorted(every, key=lambda n: (n != "INBOX", n)):
            attrs = ["\\HasChildren" if name in parents else "\\HasNoChildren"]
            if name not in existing:
                attrs.append("\\Noselect")
            if name in SPECIAL_USE:
                attrs.append(SPECIAL_USE[name])
            result.append((name, attrs))
        return result

    def subscriptions(self, address):
        return self.store.subscriptions(address)

    def subscribe(self, address, name, on=True):
        self.store.subscribe(address, name, on)

    def create(self, address, name):
        """Create `name` and any missing superiors (RFC 3501 6.3.3)."""
        self.store.folder_path(address, name)   # InvalidName before any superior is made
        levels = name.split(SEPARATOR)
        for i in range(1, len(levels)):
            parent = SEPARATOR.join(levels[:i])
            if parent.upper() != "INBOX" and not self.store.folder_exists(address, parent):
                self.store.create_folder(address, parent)
        self.store.create_folder(address, name)

    def delete(self, address, name):
        self.store.delete_folder(address, name)
        self.store.subscribe(address, name, on=False)

    def rename(self, address, old, new):
        """Rename `old` (with inferiors) to `new`, making missing superiors of `new`;
        nothing is created unless the rename can happen."""
        self.store.folder_path(address, new)    # InvalidName first
        if not self.store.folder_exists(address, old):
            self.store.folder_path(address, old)
            raise NoSuchFolder(old)
        if self.store.folder_exists(address, new):
            raise FolderExists(new)
        levels = new.split(SEPARATOR)
        for i in range(1, len(levels)):
            parent = SEPARATOR.join(levels[:i])
            if parent.upper() != "INBOX" and not self.store.folder_exists(address, parent):
                self.store.create_folder(address, parent)
        self.store.rename_folder(address, old, new)

    # -- folders ---------------------------------------------------------------------
    def open(self, address, name):
        """The shared, synced Folder for `name`; pair with close()."""
        return self.store.open_folder(address, name)

    def close(self, folder):
        self.store.release_folder(folder)

    def status(self, address, name):
        """MESSAGES, RECENT, UIDNEXT, UIDVALIDITY and UNSEEN of a folder."""
        folder = self.open(address, name)
        try:
            with folder.lock:
                unseen = sum(1 for e in folder.by_uid.values() if "S" not in e.flags)
                recent_upto = folder.recent_upto
                recent = len(folder.uids) - bisect.bisect_right(folder.uids, recent_upto)
                return {"MESSAGES": len(folder.uids), "RECENT": recent, "UIDNEXT": folder.uidnext,
                        "UIDVALIDITY": folder.uidvalidity, "UNSEEN": unseen}
        finally:
            self.close(folder)

    def append(self, address, name, data, flag_names, date):
        """Store a message in folder `name`; returns (UIDVALIDITY, UID) for APPENDUID."""
        self.store.folder_path(address, name)   # InvalidName, not "does not exist" (TRYCREATE)
        if not self.store.folder_exists(address, name):
            raise NoSuchFolder(name)
        folder = self.open(address, name)
        try:
            letters = folder.letters_for(flag_names, create=True)
            uid = folder.append(data, "".join(letters), date)
            return folder.uidvalidity, uid
        finally:
            self.close(folder)

    def copy(self, folder, uids, address, target_name):
        """Copy `uids` of an open folder into `target_name` keeping flags (keywords are
        re-mapped to the target's letters); returns (UIDVALIDITY, [(old, new)])."""
        self.store.folder_path(address, target_name)   # InvalidName first
        if not self.store.folder_exists(address, target_name):
            raise NoSuchFolder(target_name)
        target = self.open(address, target_name)
        try:
            return target.uidvalidity, folder.copy_to(uids, target)
        finally:
            self.close(target)
