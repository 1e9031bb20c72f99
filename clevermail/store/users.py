"""Users' mail trees: an address becomes <mail_root>/<domain>/<local> (through
store/paths), created on first use with INBOX and the special-use folders, which are
also subscribed (RFC 6154 names; the layout is in store/__init__).

Also the per-user lock: an flock on the user's root directory, for the few
read-modify-writes of per-user files (subscriptions, the UIDVALIDITY mark).  flock
belongs to an open file description, so it keeps threads of this process and other
processes (the CLI, a second instance) apart alike, and no store-wide lock is held
over disk I/O.
"""

import contextlib
import fcntl
import os
import shutil

from . import maildir, paths

SPECIAL_USE = {"Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash",
               "Junk": "\\Junk", "Archive": "\\Archive"}
CACHE_LIMIT = 100_000     # addresses and ensured roots remembered


@contextlib.contextmanager
def user_lock(root):
    """Hold the user's lock (see the module doc) for a short read-modify-write."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)          # closing drops the flock


def user_root_of(folder_path):
    """The user's root for one of its folders: Maildir++ folders (".Name") sit
    directly in the root, which is itself the INBOX."""
    path = folder_path.rstrip("/")
    head, base = os.path.split(path)
    return head if base.startswith(".") else path


class UserDirs:
    def __init__(self, mail_root, subscriptions):
        self.mail_root = mail_root
        self.subscriptions = subscriptions
        self._roots = {}          # address -> user root (valid names only)
        self._ensured = set()     # roots known to have their folders

    def root(self, address):
        """The user's root directory (InvalidName for an unsafe address)."""
        # cached: validating the name and looking for symlinks is a good part of the
        # CPU a delivery costs, and an address always maps to the same directory
        root = self._roots.get(address)
        if root is None:
            root = paths.user_dir(self.mail_root, address)
            if len(self._roots) < CACHE_LIMIT:
                self._roots[address] = root
        return root

    def ensure(self, address, again=False):
        """Create the user's INBOX and special-use folders if missing; returns the root.
        `again`: the mailbox was found missing although remembered (removed behind
        the store's back), so look at the disk again."""
        root = self.root(address)
        if again:
            self._ensured.discard(root)
        elif root in self._ensured:
            return root
        if os.path.isdir(os.path.join(root, "cur")):
            self._remember(root)
            return root
        maildir.make_maildir(root)
        for name in SPECIAL_USE:
            maildir.make_maildir(paths.folder_path(root, name))
        self.subscriptions.add(root, SPECIAL_USE)
        self._remember(root)
        return root

    def _remember(self, root):
        # saves a stat (and a GIL hand-off) per delivery; bounded like _roots
        if len(self._ensured) < CACHE_LIMIT:
            self._ensured.add(root)

    def remove(self, address):
        """Delete the user's whole tree (mail, folders, subscriptions)."""
        root = self.root(address)
        self._ensured.discard(root)
        if os.path.isdir(root):
            shutil.rmtree(root)
