"""A user's folder tree: list, create, delete and rename folders (RFC 3501 6.3.3-6.3.5,
6.3.8), and the subscriptions that follow a rename.

A folder created with special-use attributes (RFC 6154) gets them stored in its
directory before it appears (special_use.py), under the user's lock so that two
creators cannot both take one of the attributes a single folder may carry;
`special_use()` says every folder's.

Folders are Maildir++ directories beside the INBOX (layout in store/__init__); each
level of an IMAP name is one '.'-separated part of the directory name, so a child
is a directory of its own and deleting a parent leaves its children.  A deleted or
renamed folder is detached from the FolderCache (a folder created again under its
name gets a new Folder) and the sessions of this process holding it are told at
once.  A deleted folder's messages leave the user's quota ledger (maildirsize.py).
"""

import os
import shutil
import threading
from types import MappingProxyType
from typing import Mapping, NamedTuple

from . import locks, maildir, maildirsize, paths, special_use
from .errors import FolderExists, InvalidName, NoSuchFolder
from .users import SPECIAL_USE, user_lock


LISTINGS_KEPT = 10000       # users whose last listing is kept (then all are forgotten)


class TreeListing(NamedTuple):
    """A user's folders at one look: `names` (INBOX first, then by name) and
    `special_use` ({name: attributes}, read-only)."""
    names: tuple
    special_use: Mapping


class _Listing:
    """One look at a user's root: its mtime, the folder names, and (once asked) the
    special-use attributes read for exactly those folders; `folder_listing` hands it
    out whole (`snapshot`), the same object while the tree is unchanged."""

    __slots__ = ("mtime", "names", "special_use", "snapshot")

    def __init__(self, mtime, names):
        self.mtime, self.names, self.special_use, self.snapshot = mtime, names, None, None


class FolderTree:
    def __init__(self, users, folders, subscriptions):
        self.users = users
        self.folders = folders
        self.subscriptions = subscriptions
        # root -> _Listing of its last look (LIST ran ~35 system calls each time)
        self._listings = {}

    def exists(self, address, name):
        try:
            return os.path.isdir(os.path.join(self.folders.path(address, name), "cur"))
        except InvalidName:
            return False

    def list(self, address):
        """All folder names of a user, INBOX first."""
        return list(self._listing(self.users.ensure(address)).names)

    def _listing(self, root):
        """The user's folders, listed again only when the root directory's mtime
        moved.  Every change of the tree changes an entry of the root (a folder is
        made under a hidden name and renamed into place, renamed away before it is
        deleted, renamed; its special-use file is written before it appears), in
        this process or another, and the stamp is the mtime taken before the
        listing: a change after it gives the root another mtime (the premise of
        sync.py's stamps), so the next look lists again.  A directory with a folder's
        name but no cur/ yet (a program that makes cur/ last) is not remembered:
        the next look lists again, until its cur/ is there."""
        mtime = os.stat(root).st_mtime_ns
        listing = self._listings.get(root)
        if listing is not None and listing.mtime == mtime:
            return listing
        names = ["INBOX"]
        complete = True
        for dirname in sorted(os.listdir(root)):
            name = paths.folder_from_dirname(dirname)
            if name:
                if os.path.isdir(os.path.join(root, dirname, "cur")):
                    names.append(name)
                else:
                    complete = False
        listing = _Listing(mtime, tuple(names))
        if complete:
            if len(self._listings) >= LISTINGS_KEPT:
                self._listings.clear()
            self._listings[root] = listing
        return listing

    def special_use(self, address):
        """{folder name: special-use attributes} of the user's folders that have any:
        those stored with the folder, else those of the name (users.SPECIAL_USE), unless
        another folder was created with that one of special_use.UNIQUE ("Sent Items"
        made \\Sent after "Sent" was deleted stays the one \\Sent when a plain "Sent" is
        created again)."""
        root = self.users.ensure(address)
        return self._special_use(root, self._listing(root))

    def folder_listing(self, address):
        """list() and special_use() from one look at the root (LIST asks both: the
        root's mtime is read once, not once for each), as one immutable TreeListing
        that is the same object as long as the user's tree is unchanged: what a caller
        derives from it (IMAP's LIST lines) is kept while it is."""
        root = self.users.ensure(address)
        listing = self._listing(root)
        snapshot = listing.snapshot
        if snapshot is None:
            snapshot = TreeListing(listing.names, MappingProxyType(self._special_use(root, listing)))
            # (not for a listing that is not kept: it is made anew at every look)
            if self._listings.get(root) is listing:
                listing.snapshot = snapshot
        return snapshot

    def _special_use(self, root, listing):
        if listing.special_use is not None:
            return dict(listing.special_use)
        out, by_name = {}, []
        for name in listing.names[1:]:              # INBOX has none
            attrs = special_use.read(paths.folder_path(root, name))
            if attrs is None:
                if name in SPECIAL_USE:
                    by_name.append(name)
            elif attrs:
                out[name] = attrs
        stored = {a for attrs in out.values() for a in attrs}
        for name in by_name:
            attr = SPECIAL_USE[name]
            if not (attr in special_use.UNIQUE and attr in stored):
                out[name] = (attr,)
        listing.special_use = dict(out)     # kept with the listing it was read for
        return out

    def create(self, address, name, attributes=()):
        """Create one folder; `attributes`: its special-use attributes (canonical
        names, special_use.canonical), SpecialUseError when one may not be had."""
        path = self.folders.path(address, name)
        if paths.folder_dirname(name) == "" or os.path.isdir(path):
            raise FolderExists(name)
        # made under a name list() never shows ("..": an empty level), then renamed into
        # place: another process looking (a NOTIFY session's watch of the user's root,
        # a LIST) sees the folder whole, with its special-use attributes, or not at all
        building = path + f"..creating-{os.getpid()}-{threading.get_ident()}"
        if not attributes:
            self._build(building, path, name, ())
            return
        with user_lock(self.users.ensure(address)):
            special_use.check(self.special_use(address), attributes)
            self._build(building, path, name, attributes)

    def _build(self, building, path, name, attributes):
        maildir.make_maildir(building)
        if attributes:
            special_use.write(building, attributes)
        try:
            os.rename(building, path)
        except OSError:
            shutil.rmtree(building, ignore_errors=True)
            if os.path.isdir(path):     # made by another process meanwhile
                raise FolderExists(name) from None
            raise

    def delete(self, address, name):
        """Delete one folder and its mail (its children stay: Maildir++ keeps them apart)."""
        path = self.folders.path(address, name)
        if paths.folder_dirname(name) == "":
            raise InvalidName("INBOX cannot be deleted")
        if not os.path.isdir(path):
            raise NoSuchFolder(name)
        # rename first so that a concurrent deliverer never writes into a half-deleted tree
        # ("..": an empty level, so list() never shows it as a folder of its own)
        doomed = path + f"..deleted-{os.getpid()}-{threading.get_ident()}"
        root = self.users.root(address)
        with maildirsize.changing(root):
            os.rename(path, doomed)
            freed = maildirsize.count_folder(doomed)
            shutil.rmtree(doomed, ignore_errors=True)
            maildirsize.append(root, -freed)
        # before the notify: the woken sessions must find their folder gone, and a
        # folder created again under this name must get a Folder of its own
        folder = self.folders.detach(path)
        if folder is not None:
            folder.notify()         # sessions idling on it learn now, not at their next poll

    def rename(self, address, old, new):
        """Rename a folder with its children.  Renaming INBOX moves its messages into the
        new folder and leaves INBOX empty (RFC 3501 6.3.5)."""
        root = self.users.root(address)
        old_dir, new_dir = paths.folder_dirname(old), paths.folder_dirname(new)
        if new_dir == "" or os.path.isdir(os.path.join(root, new_dir)):
            raise FolderExists(new)
        if old_dir == "":
            self._rename_inbox(address, root, new)
            return
        if not os.path.isdir(os.path.join(root, old_dir)):
            raise NoSuchFolder(old)
        moves = [(old_dir, new_dir)]
        for dirname in os.listdir(root):
            if dirname.startswith(old_dir + "."):
                moves.append((dirname, new_dir + dirname[len(old_dir):]))
        for src, dst in moves:
            paths.check_component(dst)
            os.rename(os.path.join(root, src), os.path.join(root, dst))
            # as in delete(): the old name's Folder is gone, a new one serves the name
            folder = self.folders.detach(os.path.join(root, src))
            if folder is not None:
                folder.notify()
        self.subscriptions.rename(root, old, new)

    def _rename_inbox(self, address, root, new):
        self.create(address, new)
        target = os.path.join(root, paths.folder_dirname(new))
        with locks.held(root):          # a change in cur/ (locks.held says why)
            for sub in ("new", "cur"):
                for name in os.listdir(os.path.join(root, sub)):
                    os.rename(os.path.join(root, sub, name), os.path.join(target, sub, name))
        # INBOX stays (same UIDVALIDITY): its sessions see the messages expunged
        self.folders.notify(os.path.realpath(root))
