"""MailStore: the one object the file handlers, the relay and the service receive for
every user's Maildir++ tree.  It owns nothing itself: it puts together the parts
that each own one job and gives them the names the call sites use:

    users.py          address -> user root, created on first use
    delivery.py       local delivery (the one final-delivery path, Return-Path)
    folders.py        the shared Folder objects: open/release, LRU, warm-up
    tree.py           list, create, delete, rename folders
    subscriptions.py  subscribed names
    tree_events.py    tree and subscription changes told to listeners (IMAP NOTIFY)
    tree_watch.py     another process's tree changes, seen through inotify
    watch.py          changes by other processes reach open folders (inotify)
    quota.py          per-user limits, the checks and reservations
    maildirsize.py    the usage ledger every writer appends to (Maildir++)

Protocol-neutral: file handlers (smtp/pop3/imap handler.py) call it and turn its
errors into replies.
"""

import os

from .delivery import Delivery
from .folders import KEEP_UNUSED_FOLDERS, FolderCache
from .quota import Quotas
from .subscriptions import Subscriptions
from .tree import FolderTree
from .tree_events import CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, TreeEvents
from .tree_watch import open_root_watch
from .users import SPECIAL_USE, UserDirs
from .watch import FolderWatcher

__all__ = ["MailStore", "SPECIAL_USE"]


class MailStore:
    def __init__(self, data_dir):
        self.mail_root = os.path.join(os.path.realpath(data_dir), "mail")
        os.makedirs(self.mail_root, mode=0o700, exist_ok=True)
        self.subs = Subscriptions()
        self.users = UserDirs(self.mail_root, self.subs)
        self.folders = FolderCache(self.users)
        # limits: the service sets quota.limits (address -> QuotaLimits); none by default
        self.quota = Quotas(self.users)
        self.delivery = Delivery(self.users, self.folders, self.quota)
        self.tree = FolderTree(self.users, self.folders, self.subs)
        self.tree_events = TreeEvents()     # this process's tree changes, per user

    # -- users -----------------------------------------------------------------------
    def user_root(self, address):
        return self.users.root(address)

    def ensure_user(self, address):
        """Create a user's INBOX and special-use folders if missing; returns the root."""
        return self.users.ensure(address)

    def remove_user(self, address):
        self.users.remove(address)

    # -- delivery (store/api.py: LocalDelivery) --------------------------------------
    def prepare_local(self, sender, addresses, *parts, clean=False, folder=None, flags=()):
        return self.delivery.prepare_local(sender, addresses, *parts, clean=clean, folder=folder,
                                           flags=flags)

    def deliver_local(self, sender, addresses, data):
        self.delivery.deliver_local(sender, addresses, data)

    # -- folders in memory -----------------------------------------------------------
    def folder_path(self, address, name):
        return self.folders.path(address, name)

    def open_folder(self, address, name):
        """The shared Folder for `name`, synced; pair with release_folder()."""
        return self.folders.open(address, name)

    def release_folder(self, folder):
        self.folders.release(folder)

    @property
    def _open(self):
        # the folders held by sessions (tests look at them)
        return self.folders.in_use

    def warm_up(self, stop, max_folders=KEEP_UNUSED_FOLDERS):
        return self.folders.warm_up(stop, max_folders)

    def save_indexes(self):
        self.folders.save_indexes()

    def start_watching(self):
        """Start the thread that reports changes by other processes to the folders
        sessions wait on (IDLE; service start); without it they are found by polling."""
        if self.folders.watcher is None:
            watcher = FolderWatcher()
            watcher.start()
            self.folders.start_watching(watcher)

    def stop_watching(self):
        """Stop that thread (service stop)."""
        watcher = self.folders.stop_watching()
        if watcher is not None:
            watcher.stop()

    # -- folder tree ----------------------------------------------------------------
    def folder_exists(self, address, name):
        return self.tree.exists(address, name)

    def list_folders(self, address):
        return self.tree.list(address)

    def create_folder(self, address, name, special_use=()):
        with self.tree_events.changing(address):
            self.tree.create(address, name, special_use)
            self.tree_events.publish(address, CREATE, name)

    def special_use(self, address):
        return self.tree.special_use(address)

    def folder_listing(self, address):
        """list_folders() and special_use() from one look at the user's tree, as one
        immutable tree.TreeListing, the same object while the tree is unchanged."""
        return self.tree.folder_listing(address)

    def delete_folder(self, address, name):
        with self.tree_events.changing(address):
            self.tree.delete(address, name)
            self.tree_events.publish(address, DELETE, name)

    def rename_folder(self, address, old, new):
        with self.tree_events.changing(address):
            self.tree.rename(address, old, new)
            self.tree_events.publish(address, RENAME, new, old)

    def watch_tree(self, address):
        """A tree_watch.RootWatch whose descriptor turns readable when any process
        changes the user's folders or subscriptions (None without inotify); close() it."""
        return open_root_watch(self.ensure_user(address))

    # -- subscriptions ----------------------------------------------------------------
    def subscriptions(self, address):
        return self.subs.read(self.ensure_user(address))

    def subscribe(self, address, name, on=True):
        root = self.ensure_user(address)
        with self.tree_events.changing(address):
            self.subs.subscribe(root, name, on)
            self.tree_events.publish(address, SUBSCRIBE if on else UNSUBSCRIBE, name)
