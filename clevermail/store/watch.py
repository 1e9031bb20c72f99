"""Changes made by other processes reach the folders this process has open, at once:
inotify(7) on Linux, through ctypes (stdlib only).

Another process (a second instance, the CLI, a program writing into new/ directly)
changes a folder without telling our Folder objects; sessions would only learn at
their next command or IDLE poll (imap/idle.IDLE_POLL, 30 s).  A FolderWatcher
watches new/ and cur/ (and whether the folder directory itself goes away) of exactly
the folders some session waits on (folder.waiting: a session in IDLE; FolderCache
calls `update(folder)` when a folder's first waiter comes or its last goes, so
STATUS, APPEND or a SELECT without IDLE add and remove no watch) and calls that
folder's disk_changed() when an entry is created, deleted or renamed there: it wakes
the waiters unless the index already shows the change (this process's own delivery
or STORE, whose waiters were woken already), so each waiter is woken once; IDLE
wakes on it and syncs.  One thread per watcher reads the events and coalesces them:
events that come within COALESCE seconds make one batch, with one wake per folder.

A watched folder's waiters say so (Waiters.watched, from the watch's start to its
end): IDLE then looks for unsignalled changes rarely (imap/idle.IDLE_POLL_WATCHED).
Where inotify is missing or refuses (not Linux, no descriptors, the per-user watch
limit fs.inotify.max_user_watches reached) the folder simply keeps the poll.  A queue
overflow (IN_Q_OVERFLOW: events were lost) wakes every watched folder.  A watched
folder or sub-directory that is deleted or renamed away (DELETE_SELF, MOVE_SELF)
wakes its folder, its watches are dropped and `on_gone(folder)` tells FolderCache,
which detaches it: a folder created again under the same name gets a new Folder,
watched once a session waits on it.
"""

import ctypes
import ctypes.util
import errno
import logging
import os
import select
import struct
import threading

log = logging.getLogger("clevermail.store")

# <sys/inotify.h>
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF = 0x400, 0x800
IN_Q_OVERFLOW, IN_IGNORED = 0x4000, 0x8000
IN_ONLYDIR = 0x01000000
IN_NONBLOCK, IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC
# names appear and disappear in new/ and cur/: deliveries, flag renames, expunges
MASK = (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF
        | IN_ONLYDIR)
# the folder directory itself: only whether it goes away (deleted, renamed)
SELF_MASK = IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR
GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED
EVENT = struct.Struct("iIII")          # wd, mask, cookie, len (then len bytes of name)
SUBDIRS = ("new", "cur")
READ_SIZE = 64 * 1024
# how long events gather before the folders are woken: well within the second the
# sessions may wait, and it keeps a busy server's own changes from waking this thread
# for every file
COALESCE = 0.05


def _libc():
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name, use_errno=True)
    for fn in ("inotify_init1", "inotify_add_watch", "inotify_rm_watch"):
        getattr(libc, fn)       # AttributeError: no inotify here
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    return libc


class FolderWatcher:
    """inotify for the waited-on folders of one MailStore (see the module doc)."""

    def __init__(self):
        self._lock = threading.Lock()      # the maps below; never held while notifying
        self._by_wd = {}                   # wd -> Folder
        self._by_folder = {}               # Folder -> [wd, ...]
        self._warned_limit = False
        self.coalesce = COALESCE
        self._thread = None
        self._fd = -1
        self._stopped = False           # stop() was called: update() watches nothing more
        self._ended = False             # the thread left its loop (under _lock)
        self._thread_closes = False     # stop() left the descriptors to the thread
        # called with a watched folder whose directory went away (FolderCache.detach)
        self.on_gone = None
        try:
            self._libc = _libc()
            fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
            if fd < 0:
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        except (OSError, AttributeError) as exc:
            log.warning("inotify unavailable (%s): changes by other processes reach "
                        "IDLE sessions at the next poll", exc)
            return
        try:
            self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC)
        except OSError as exc:
            os.close(fd)    # unavailable from now on: nothing else would ever close it
            log.warning("inotify unavailable (%s): changes by other processes reach "
                        "IDLE sessions at the next poll", exc)
            return
        self._fd = fd

    @property
    def available(self):
        return self._fd >= 0

    # -- lifecycle -------------------------------------------------------------------
    def start(self):
        if not self.available or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="clevermail-store-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout=5.0):
        """End the thread and close the descriptors; the folders keep their poll.  A
        thread that has not ended within `timeout` (held up in a notify) closes them
        itself when it ends: closed under it, their numbers could be handed to other
        files, which it would then poll and read."""
        with self._lock:
            if self._fd < 0 or self._stopped:
                return
            self._stopped = True
            for folder in self._by_folder:
                folder.waiters.watched = False
            self._by_wd.clear()
            self._by_folder.clear()
        os.write(self._stop_w, b"x")
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            with self._lock:
                # decided under the lock the thread's end takes: exactly one closes
                self._thread_closes = not self._ended
            if self._thread_closes:
                log.warning("the inotify thread did not end within %s s; it closes its "
                            "descriptors when it does", timeout)
                return
        self._close()

    def _close(self):
        with self._lock:
            fds, self._fd = (self._fd, self._stop_r, self._stop_w), -1
        for fd in fds:
            os.close(fd)

    # -- what is watched ---------------------------------------------------------------
    def update(self, folder):
        """Watch `folder` while some session waits on it (folder.waiting), else not.
        Read and acted on under one lock, so the last call after the last change of
        the waiters decides, whatever the order of the callers' threads."""
        with self._lock:
            if self._fd < 0 or self._stopped:
                return
            waiting = folder.waiting
            if waiting and folder not in self._by_folder:
                self._add(folder)
            elif not waiting and folder in self._by_folder:
                self._drop(folder)

    def watched(self):
        with self._lock:
            return list(self._by_folder)

    def _add(self, folder):
        wds = []
        targets = [(folder.path, SELF_MASK)] + [(os.path.join(folder.path, sub), MASK) for sub in SUBDIRS]
        for path, mask in targets:
            wd = self._libc.inotify_add_watch(self._fd, path.encode(), mask)
            if wd < 0:
                err = ctypes.get_errno()
                if err == errno.ENOSPC and not self._warned_limit:
                    self._warned_limit = True
                    log.warning("inotify watch limit reached (fs.inotify.max_user_watches): "
                                "folders opened from now on are polled")
                elif err not in (errno.ENOENT, errno.ENOSPC):
                    log.warning("inotify cannot watch %s: %s", path, os.strerror(err))
                break
            wds.append(wd)
        if len(wds) < len(targets):
            # half a watch would miss changes: the folder keeps the poll instead
            for wd in wds:
                self._libc.inotify_rm_watch(self._fd, wd)
            return False
        for wd in wds:
            self._by_wd[wd] = folder
        self._by_folder[folder] = wds
        folder.waiters.watched = True       # IDLE's look for unsignalled changes can be rare
        return True

    # -- events ------------------------------------------------------------------------
    def _run(self):
        try:
            while True:
                folders = self.poll_once()
                if folders is None:
                    return
                for folder in folders:
                    try:
                        folder.disk_changed()
                    except Exception:       # one broken folder must not end the watching
                        log.exception("wake-up after an inotify event failed for %s", folder.path)
        finally:
            with self._lock:
                self._ended = True
                closes = self._thread_closes
            if closes:
                self._close()

    def poll_once(self, timeout=None):
        """Wait for events (up to `timeout` seconds, None: no limit) and return the
        folders to wake, or None once stop() was called.  The thread's loop; tests
        call it directly instead of starting the thread."""
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        ready = {fd for fd, _ in poller.poll(None if timeout is None else timeout * 1000)}
        if self._stop_r in ready:
            return None
        if self._fd in ready and self.coalesce:
            # let a burst (an expunge, a busy folder) gather: one wake-up of this thread
            # and one notify per folder for all of it, instead of one per file
            poller.unregister(self._fd)
            if poller.poll(self.coalesce * 1000):
                return None
        chunks = []
        while True:
            try:
                chunks.append(os.read(self._fd, READ_SIZE))
            except BlockingIOError:
                break
        return self.handle(b"".join(chunks)) if chunks else []

    def handle(self, data):
        """The folders to wake for a buffer of inotify events (each once)."""
        wake, lost = {}, []
        with self._lock:
            offset = 0
            while offset + EVENT.size <= len(data):
                wd, mask, _, length = EVENT.unpack_from(data, offset)
                offset += EVENT.size + length
                if mask & IN_Q_OVERFLOW:
                    wake.update((id(f), f) for f in self._by_folder)
                    continue
                folder = self._by_wd.get(wd)
                if folder is None:
                    continue
                wake[id(folder)] = folder
                if mask & GONE and folder not in lost:
                    lost.append(folder)
            for folder in lost:
                self._drop(folder)
        # outside our lock: the callback takes the FolderCache's.  A folder created
        # again under the same name is another folder: its Folder is watched when a
        # session waits on it, never the old one
        on_gone = self.on_gone
        if on_gone is not None:
            for folder in lost:
                on_gone(folder)
        return list(wake.values())

    def _drop(self, folder):
        # (lock held) the folder's sessions look for themselves again
        if folder in self._by_folder:
            folder.waiters.watched = False
        for wd in self._by_folder.pop(folder, ()):
            self._by_wd.pop(wd, None)
            self._libc.inotify_rm_watch(self._fd, wd)   # EINVAL when already gone
