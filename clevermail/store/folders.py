"""The folders of this process in memory: one shared Folder per folder path, open
(held by sessions) or kept unused in a bounded LRU so that a folder opened again
need not be indexed again, and the warm-up that loads the largest saved indexes
(store/index.py) at start-up.

Sessions pair open() with release().  Every session of the process with the same
folder open shares one Folder object, hence one index and one change notifier; a
delivery by this process finds it through notify(), changes by other processes come
through the watcher (watch.py), which follows exactly the folders some session waits
on (IDLE): a Folder tells the cache when its first waiter comes or its last goes
(Folder.on_waiting), so opening and releasing (STATUS, APPEND, SELECT) touch no watch.

A folder whose directory goes away (deleted or renamed, by tree.py or seen by the
watcher) is detach()ed: its Folder leaves the cache at once and is marked `gone`,
even while sessions still hold it, so that a folder created again under the same
name gets a Folder of its own (its own file lock, keyword table and UIDVALIDITY)
and the sessions holding the old one learn it was deleted (view.Changes.gone).
"""

import collections
import os
import threading

from . import index, maildir, paths
from .errors import NoSuchFolder, StoreError
from .folder import Folder

KEEP_UNUSED_FOLDERS = 64          # closed folders whose index stays in memory...
KEEP_UNUSED_MESSAGES = 500_000    # ...as long as they hold no more messages than this


class FolderCache:
    def __init__(self, users):
        self.users = users
        # guards the two maps and the session counts only: never held over disk I/O
        # or a folder's own lock (a delivery's notify() takes it before SMTP's 250)
        self._lock = threading.Lock()
        self.in_use = {}                                 # path -> Folder held by sessions
        self._unused = collections.OrderedDict()         # path -> Folder, LRU
        self.watcher = None      # watch.FolderWatcher while the service runs, else None

    def path(self, address, name):
        return paths.folder_path(self.users.root(address), name)

    def open(self, address, name):
        """The shared Folder for `name`, synced; pair with release().  NoSuchFolder
        when it does not exist, also when it is deleted while we open it (a SELECT
        racing a DELETE: RFC 5530 NONEXISTENT, not a server error)."""
        path = self.path(address, name)
        with self._lock:
            known = path in self.in_use or path in self._unused
        if known:
            # in memory: its sync's look at new/ and cur/ finds the folder gone
            # (FileNotFoundError) without a stat of cur/ of its own first (STATUS and
            # APPEND, every time); a missing folder then takes the path below
            try:
                return self._open(path, name)
            except FileNotFoundError:
                pass
        if not os.path.isdir(os.path.join(path, "cur")):
            if paths.folder_dirname(name) == "":
                self.users.ensure(address)
            else:
                raise NoSuchFolder(name)
        try:
            try:
                return self._open(path, name)
            except FileNotFoundError:
                # the Folder in memory found its directory replaced (deleted and created
                # again by another process before the watcher said so): it was detached,
                # and a new one serves the folder now there
                if not os.path.isdir(os.path.join(path, "cur")):
                    raise
                return self._open(path, name)
        except FileNotFoundError:
            if os.path.isdir(os.path.join(path, "cur")):
                raise
            raise NoSuchFolder(name) from None

    def _open(self, path, name):
        with self._lock:
            folder = self._hold(path)
        fresh = folder is None
        if fresh:
            # made outside our lock (Folder() creates directories): a delivery's
            # notify() must not wait behind it
            spare = Folder(path, name, create=False)
            spare.on_waiting = self._watch
            with self._lock:
                folder = self._hold(path)        # another thread may have won meanwhile
                fresh = folder is None
                if fresh:
                    folder = spare
                    folder.users = 1
                    self.in_use[path] = folder
        try:
            if fresh:
                # first use in this process: drop tmp/ debris of crashed deliveries
                maildir.clean_tmp(path)
                with folder.lock:
                    if not folder.by_uid:
                        index.load(folder)
            folder.sync()
        except BaseException:
            # e.g. a SELECT racing a DELETE: the count taken above must not outlive us
            # (it would keep the folder in use for good)
            if folder.gone:
                self.detach(path, folder)
            self.release(folder, keep=False)
            raise
        return folder

    def _hold(self, path):
        """The Folder of `path` in memory with one more session on it, or None
        (called with our lock held)."""
        folder = self.in_use.get(path)
        if folder is None:      # (an empty Folder is falsy: no `or` here)
            folder = self._unused.pop(path, None)
            if folder is None:
                return None
            self.in_use[path] = folder
        folder.users += 1
        return folder

    def release(self, folder, keep=True):
        """One session less on `folder`; the last one puts it among the kept unused
        folders, unless `keep` is false (it failed to open) or it was detached."""
        evicted = []
        kept = False
        with self._lock:
            folder.users -= 1
            last = folder.users == 0
            # a detached folder is no longer in_use under its path (maybe another
            # Folder is, for a folder created again): it simply leaves memory
            if folder.users <= 0 and self.in_use.get(folder.path) is folder:
                del self.in_use[folder.path]
                if keep:
                    self._unused[folder.path] = folder
                    kept = True
                # bounded in folders and in messages: a 100,000-message index is ~40 MB
                while len(self._unused) > KEEP_UNUSED_FOLDERS or (
                        len(self._unused) > 1 and sum(map(len, self._unused.values())) > KEEP_UNUSED_MESSAGES):
                    evicted.append(self._unused.popitem(last=False)[1])
        if last and not kept:
            folder.close()
        for old in evicted:
            _save_index(old)
            old.close()

    def detach(self, path, folder=None):
        """The directory of the folder at `path` went away (deleted or renamed): its
        Folder (only if it is `folder`, when given) leaves the cache, in use or not,
        and is marked gone, so that the next open() of `path` builds a new one and
        the views still holding the old one report it deleted.  Returns the Folder
        detached, or None."""
        with self._lock:
            for cache in (self.in_use, self._unused):
                held = cache.get(path)
                if held is not None and (folder is None or held is folder):
                    del cache[path]
                    held.gone = True
                    unused = held.users <= 0
                    break
            else:
                return None
        if unused:      # out of the cache, nobody can take it again: else release() does
            held.close()
        return held

    def _watch(self, folder):
        """Have the watcher follow a folder whose first waiter came or last went
        (Folder.on_waiting; the watcher decides from folder.waiting itself)."""
        watcher = self.watcher
        if watcher is not None:
            watcher.update(folder)

    def start_watching(self, watcher):
        """Changes by other processes to folders sessions wait on are reported by
        `watcher` from now on (watch.FolderWatcher)."""
        self.watcher = watcher
        # a held folder's directory deleted or renamed by another process
        watcher.on_gone = lambda folder: self.detach(folder.path, folder)
        with self._lock:
            held = list(self.in_use.values())
        for folder in held:
            watcher.update(folder)

    def stop_watching(self):
        watcher, self.watcher = self.watcher, None
        return watcher

    def lookup(self, path):
        """The Folder of `path` in memory (in use or kept), or None."""
        with self._lock:
            # not `a or b`: a Folder has __len__, so an empty one is falsy
            folder = self.in_use.get(path)
            if folder is None:
                folder = self._unused.get(path)
        return folder

    def notify(self, path):
        """Tell the sessions of this process watching `path` that it changed (after a
        delivery, a deletion or a rename by this process)."""
        folder = self.lookup(path)
        if folder is not None:
            folder.notify()

    def kept(self):
        """Paths of the folders kept unused, least recently released first."""
        with self._lock:
            return list(self._unused)

    def warm_up(self, stop, max_folders=KEEP_UNUSED_FOLDERS):
        """Load the saved index of the largest folders into memory (start-up, in a
        background thread): the first SELECT after a restart then finds its folder
        ready instead of loading 100,000 rows.  `stop` (a threading.Event) ends it."""
        cached = []
        mail_root = self.users.mail_root
        for domain in _listdir(mail_root):
            for local in _listdir(os.path.join(mail_root, domain)):
                root = os.path.join(mail_root, domain, local)
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
                self.release(self.open(address, name))
                loaded += 1
            except (OSError, StoreError):
                continue  # only an optimisation: the folder loads on first use instead
        return loaded

    def save_indexes(self):
        with self._lock:
            folders = list(self.in_use.values()) + list(self._unused.values())
        for folder in folders:
            _save_index(folder)


def _save_index(folder):
    """Persist a folder's index cache.  Done when a folder leaves memory and at
    service stop, never on a session's path: saving 100,000 rows takes a while."""
    try:
        index.save(folder)
    except OSError:
        pass  # only a cache


def _listdir(path):
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []
