"""MailStore: every user's Maildir++ tree; delivery, folder management, subscriptions.

Protocol-neutral: file handlers (smtp/pop3/imap handler.py) call it and turn its
errors into replies.  One Folder object per folder path per process is handed out by
`open_folder` so that all sessions share one index and one change notifier.
"""

import collections
import os
import shutil
import threading

from . import index, maildir, paths
from .errors import FolderExists, InvalidName, NoSuchFolder, StoreError
from .folder import Folder

SPECIAL_USE = {"Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash",
               "Junk": "\\Junk", "Archive": "\\Archive"}
SUBSCRIPTIONS = "subscriptions"
KEEP_UNUSED_FOLDERS = 64          # closed folders whose index stays in memory...
KEEP_UNUSED_MESSAGES = 500_000    # ...as long as they hold no more messages than this


class PendingDelivery:
    """A message written and fsynced under tmp/ for one or more mailboxes, not yet
    visible.  commit() makes it visible durably; abort() undoes prepare or commit."""

    def __init__(self, store, targets):
        self.store = store
        self.targets = targets          # [(folder path, tmp path, base)]
        self.committed = []

    def commit(self):
        for folder_path, tmp, base in self.targets:
            final = maildir.commit_tmp(folder_path, tmp, base, sub="new")
            self.committed.append(final)
            self.store._notify(folder_path)

    def abort(self):
        for path in self.committed + [t[1] for t in self.targets]:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        for folder_path, _, _ in self.targets:
            self.store._notify(folder_path)


class MailStore:
    def __init__(self, data_dir):
        self.mail_root = os.path.join(os.path.realpath(data_dir), "mail")
        os.makedirs(self.mail_root, mode=0o700, exist_ok=True)
        self._lock = threading.Lock()
        self._open = {}                                  # path -> Folder in use
        self._unused = collections.OrderedDict()         # path -> Folder, LRU
        self._roots = {}                                 # address -> user root (valid names only)
        self._ensured = set()                            # roots known to have their folders

    # -- users -----------------------------------------------------------------
    def user_root(self, address):
        # cached: validating the name and looking for symlinks is a good part of the
        # CPU a delivery costs, and an address always maps to the same directory
        root = self._roots.get(address)
        if root is None:
            root = paths.user_dir(self.mail_root, address)
            if len(self._roots) < 100_000:
                self._roots[address] = root
        return root

    def ensure_user(self, address):
        """Create a user's INBOX and special-use folders if missing; returns the root."""
        root = self.user_root(address)
        if root in self._ensured:
            return root
        if os.path.isdir(os.path.join(root, "cur")):
            self._remember_ensured(root)
            return root
        maildir.make_maildir(root)
        for name in SPECIAL_USE:
            maildir.make_maildir(paths.folder_path(root, name))
        self._write_subscriptions(root, sorted(set(self._read_subscriptions(root)) | set(SPECIAL_USE)))
        self._remember_ensured(root)
        return root

    def _remember_ensured(self, root):
        # saves a stat (and a GIL hand-off) per delivery; bounded like _roots
        if len(self._ensured) < 100_000:
            self._ensured.add(root)

    def remove_user(self, address):
        root = self.user_root(address)
        self._ensured.discard(root)
        if os.path.isdir(root):
            shutil.rmtree(root)

    # -- delivery ----------------------------------------------------------------
    def prepare_delivery(self, addresses, wire, clean=False):
        """Write `wire` (CRLF message) once under the first INBOX's tmp/, fsync it, and
        hard-link it into the other INBOXes' tmp/ (one data write for all copies).
        `clean`: every line of `wire` ends in CRLF and there is no other CR."""
        disk = maildir.to_disk(wire, clean)
        # the size of to_wire(disk), what POP3 and IMAP send: the wire size itself when clean
        wsize = len(wire) if clean else len(disk) + disk.count(b"\n")
        targets = []
        first_tmp = None
        try:
            for address in addresses:
                base = maildir.new_base(len(disk), wsize)
                if first_tmp is None:
                    root, tmp = self._in_mailbox(address, lambda root: maildir.write_tmp(root, disk, base))
                    first_tmp = tmp
                else:
                    root, tmp = self._in_mailbox(address, lambda root: maildir.link_tmp(root, first_tmp, base))
                targets.append((root, tmp, base))
        except BaseException:
            PendingDelivery(self, targets).abort()
            raise
        return PendingDelivery(self, targets)

    def _in_mailbox(self, address, write):
        """(root, write(root)) for the user's mailbox.  When the mailbox was removed
        behind our back, the cache of ensured roots is stale: create it again, once."""
        root = self.ensure_user(address)
        try:
            return root, write(root)
        except FileNotFoundError:
            self._ensured.discard(root)
            root = self.ensure_user(address)
            return root, write(root)

    def deliver(self, address, wire):
        """Deliver one message to one INBOX durably (bounces, tests, tools)."""
        pending = self.prepare_delivery([address], wire)
        try:
            pending.commit()
        except BaseException:
            pending.abort()
            raise

    def _notify(self, folder_path):
        with self._lock:
            # not `a or b`: a Folder has __len__, so an empty one is falsy
            folder = self._open.get(folder_path)
            if folder is None:
                folder = self._unused.get(folder_path)
        if folder is not None:
            folder.notify()

    # -- folders ---------------------------------------------------------------
    def folder_path(self, address, name):
        return paths.folder_path(self.user_root(address), name)

    def open_folder(self, address, name):
        """The shared Folder for `name`, synced; pair with release_folder()."""
        path = self.folder_path(address, name)
        if not os.path.isdir(os.path.join(path, "cur")):
            if paths.folder_dirname(name) == "":
                self.ensure_user(address)
            else:
                raise NoSuchFolder(name)
        with self._lock:
            folder = self._open.get(path)
            if folder is None:      # (an empty Folder is falsy: no `or` here)
                folder = self._unused.pop(path, None)
            fresh = folder is None
            if fresh:
                folder = Folder(path, name)
            folder.users += 1
            self._open[path] = folder
        if fresh:
            # first use in this process: drop tmp/ debris of crashed deliveries
            maildir.clean_tmp(path)
            with folder.lock:
                if not folder.by_uid:
                    index.load(folder)
        folder.sync()
        return folder

    def release_folder(self, folder):
        evicted = []
        with self._lock:
            folder.users -= 1
            if folder.users <= 0 and self._open.get(folder.path) is folder:
                del self._open[folder.path]
                self._unused[folder.path] = folder
                # bounded in folders and in messages: a 100,000-message index is ~40 MB
                while len(self._unused) > KEEP_UNUSED_FOLDERS or (
                        len(self._unused) > 1 and sum(map(len, self._unused.values())) > KEEP_UNUSED_MESSAGES):
                    evicted.append(self._unused.popitem(last=False)[1])
        for old in evicted:
            self._save_index(old)

    @staticmethod
    def _save_index(folder):
        """Persist a folder's index cache.  Done when a folder leaves memory and at
        service stop, never on a session's path: saving 100,000 rows takes a while."""
        try:
            index.save(folder)
        except OSError:
            pass  # only a cache

    def warm_up(self, stop, max_folders=KEEP_UNUSED_FOLDERS):
        """Load the saved index of the largest folders into memory (start-up, in a
        background thread): the first SELECT after a restart then finds its folder
        ready instead of loading 100,000 rows.  `stop` (a threading.Event) ends it."""
        cached = []
        for domain in _listdir(self.mail_root):
            for local in _listdir(os.path.join(self.mail_root, domain)):
                root = os.path.join(self.mail_root, domain, local)
                for dirname in [""] + [d for d in _listdir(root) if d.startswith(".")]:
                    try:
                        size = os.stat(os.path.join(root, dirname, index.FILENAME)).st_size
                    except OSError:
                        continue
                    name = paths.folder_from_dirname(dirname) if dirname else "INBOX"
                    if name:
                        cached.append((size, f"{local}@{domain}", name))
        loaded = 0
        for _, address, name in sorted(cached, reverse=True)[:max_folders]:
            if stop.is_set():
                break
            try:
                self.release_folder(self.open_folder(address, name))
                loaded += 1
            except (OSError, StoreError):
                continue  # only an optimisation: the folder loads on first use instead
        return loaded

    def save_indexes(self):
        with self._lock:
            folders = list(self._open.values()) + list(self._unused.values())
        for folder in folders:
            self._save_index(folder)

    def folder_exists(self, address, name):
        try:
            return os.path.isdir(os.path.join(self.folder_path(address, name), "cur"))
        except InvalidName:
            return False

    def list_folders(self, address):
        """All folder names of a user, INBOX first."""
        root = self.ensure_user(address)
        names = ["INBOX"]
        for dirname in sorted(os.listdir(root)):
            name = paths.folder_from_dirname(dirname)
            if name and os.path.isdir(os.path.join(root, dirname, "cur")):
                names.append(name)
        return names

    def create_folder(self, address, name):
        path = self.folder_path(address, name)
        if paths.folder_dirname(name) == "" or os.path.isdir(path):
            raise FolderExists(name)
        maildir.make_maildir(path)

    def delete_folder(self, address, name):
        """Delete one folder and its mail (its children stay: Maildir++ keeps them apart)."""
        path = self.folder_path(address, name)
        if paths.folder_dirname(name) == "":
            raise InvalidName("INBOX cannot be deleted")
        if not os.path.isdir(path):
            raise NoSuchFolder(name)
        # rename first so that a concurrent deliverer never writes into a half-deleted tree
        # ("..": an empty level, so list_folders never shows it as a folder of its own)
        doomed = path + f"..deleted-{os.getpid()}-{threading.get_ident()}"
        os.rename(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        self._forget(path)
        self._notify(path)      # sessions idling on it learn now, not at their next poll

    def rename_folder(self, address, old, new):
        """Rename a folder with its children.  Renaming INBOX moves its messages into the
        new folder and leaves INBOX empty (RFC 3501 6.3.5)."""
        root = self.user_root(address)
        old_dir, new_dir = paths.folder_dirname(old), paths.folder_dirname(new)
        if new_dir == "" or os.path.isdir(os.path.join(root, new_dir)):
            raise FolderExists(new)
        if old_dir == "":
            self.create_folder(address, new)
            target = os.path.join(root, new_dir)
            for sub in ("new", "cur"):
                for name in os.listdir(os.path.join(root, sub)):
                    os.rename(os.path.join(root, sub, name), os.path.join(target, sub, name))
            self._forget(os.path.realpath(root))
            self._notify(os.path.realpath(root))
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
            self._forget(os.path.join(root, src))
            self._notify(os.path.join(root, src))
        subs = self._read_subscriptions(root)
        prefix = old + paths.SEPARATOR
        renamed = [new + s[len(old):] if (s == old or s.startswith(prefix)) else s for s in subs]
        self._write_subscriptions(root, renamed)

    def _forget(self, path):
        with self._lock:
            self._unused.pop(path, None)

    # -- subscriptions ---------------------------------------------------------
    def _read_subscriptions(self, root):
        try:
            with open(os.path.join(root, SUBSCRIPTIONS), encoding="utf-8") as f:
                return [line.rstrip("\n") for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def _write_subscriptions(self, root, names):
        path = os.path.join(root, SUBSCRIPTIONS)
        tmp = path + f".{os.getpid()}.{threading.get_ident()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("".join(n + "\n" for n in names))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def subscriptions(self, address):
        return self._read_subscriptions(self.ensure_user(address))

    def subscribe(self, address, name, on=True):
        paths.split_folder(name)
        root = self.ensure_user(address)
        with self._lock:
            subs = self._read_subscriptions(root)
            if on and name not in subs:
                subs.append(name)
            elif not on and name in subs:
                subs.remove(name)
            else:
                return
            self._write_subscriptions(root, subs)


def _listdir(path):
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []
