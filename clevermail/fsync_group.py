"""Group commit of fsyncs: one fsync serves every change made before it began.

A Maildir change is durable only once its directory is fsynced (maildir.py: a link
into new/ or cur/, an unlink), a UID once the uidlist's line is (store/uidlist.py).  When many sessions change one directory at once (ten
IMAP clients appending to one INBOX, twenty SMTP sessions delivering to one user),
each would pay a disk flush of its own, one after the other.  Here a change takes a
ticket right after it is made; `wait(ticket)` returns once an fsync that *began
after* that change has completed.  The first waiter runs the fsync; waiters that
arrive meanwhile queue behind it and the next of them runs one fsync covering all of
them (the group commit of databases).  A caller still returns only when its own
change is on disk, so "OK means durable" holds; the fsync simply no longer needs to
run inside a folder lock (store/changes.py waits after releasing it).

`directory(path)` gives the one DirFsync of a directory in this process, `file(path)`
that of a file appended to in place (the uidlist), each kept while anyone holds it.
Other processes fsync on their own; that is still correct.  `wait_all` waits for
several at once (APPEND: the uidlist and cur/), their fsyncs running side by side on
a few helper threads, so a change waits for one disk flush instead of one per group
(a journalling file system commits concurrent fsyncs together).

`later(call, ...)` runs disk work that no reply waits for on a thread of its own: an
expunged file's unlink (freeing its blocks took milliseconds of each EXPUNGE on a busy
disk: 8% of the sessions' wall time under imaptest).  Work a process exit cuts short is debris
that maildir.clean_tmp removes; `settle()` waits for what was handed over so far.
"""

import logging
import os
import queue
import threading
import weakref

from . import durable


class DirFsync:
    """Tickets and fsyncs for one directory (or, made by `file()`, one file)."""

    def __init__(self, path, is_file=False):
        self.path = path
        self._is_file = is_file
        self._fsync_lock = threading.Lock()     # one fsync of the directory at a time
        self._count_lock = threading.Lock()
        self._marked = 0        # tickets handed out: changes made
        self._done = 0          # every change up to this ticket is on disk

    @property
    def done(self):
        """Every change up to this ticket is durable (a hint read without the lock)."""
        return self._done

    def mark(self):
        """A change to the directory has just been made: its ticket."""
        with self._count_lock:
            self._marked += 1
            return self._marked

    def wait(self, ticket):
        """Return once the change behind `ticket` is durable (an OSError of the
        fsync is raised to every caller whose change it should have covered)."""
        with self._fsync_lock:
            if self._done >= ticket:
                return
            with self._count_lock:
                target = self._marked   # changes up to here were made before this fsync
            try:
                (durable.fsync_file if self._is_file else durable.fsync_dir)(self.path)
            except FileNotFoundError:
                # the folder was deleted (or renamed) after the change: its entries
                # went with it, there is nothing left here to make durable (a file
                # replaced whole meanwhile was made durable by its replacer)
                pass
            self._done = target

    def sync(self):
        """fsync for a change just made (mark and wait)."""
        self.wait(self.mark())


_dirs = weakref.WeakValueDictionary()
_dirs_lock = threading.Lock()
HELPERS = 4             # threads that run the other fsyncs of a wait_all
HELPER_IDLE = 0.5       # seconds a helper thread waits for work before it ends


def wait_all(tickets):
    """Return once every (group, ticket) is durable: all but one waited for on the
    helper threads while the caller waits for the last, so the fsyncs overlap.  An
    OSError of any is raised (after all have ended)."""
    pending = [(group, ticket) for group, ticket in tickets if group.done < ticket]
    if len(pending) < 2:
        for group, ticket in pending:
            group.wait(ticket)
        return
    handed = [_helpers.run(group.wait, ticket) for group, ticket in pending[:-1]]
    error = None
    try:
        group, ticket = pending[-1]
        group.wait(ticket)
    except OSError as exc:
        error = exc
    for job in handed:
        job.done.acquire()          # released by the helper that ran it
        error = error or job.error
    if error is not None:
        raise error


class _Job:
    __slots__ = ("call", "args", "done", "error")

    def __init__(self, call, args):
        self.call, self.args, self.error = call, args, None
        self.done = threading.Lock()
        self.done.acquire()


class _Helpers:
    """A few threads for wait_all, started when work comes and ended after
    HELPER_IDLE seconds without any (none linger in an idle process or a test)."""

    def __init__(self, most):
        self._most = most
        self._queue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0          # threads waiting on the queue

    def run(self, call, *args):
        """Run call(*args) on a helper; the job's `done` lock is released when it ended."""
        job = _Job(call, args)
        self._queue.put(job)
        with self._lock:
            if self._idle or self._threads >= self._most:
                return job      # a waiting helper takes it, or the next free one
            self._threads += 1
        threading.Thread(target=self._serve, name="fsync-helper", daemon=True).start()
        return job

    def _serve(self):
        while True:
            with self._lock:
                self._idle += 1
            try:
                job = self._queue.get(timeout=HELPER_IDLE)
            except queue.Empty:
                job = None
            with self._lock:
                self._idle -= 1
                if job is None:
                    if not self._queue.empty():
                        continue    # put after our timeout, counting on us
                    self._threads -= 1
                    return
            try:
                job.call(*job.args)
            except BaseException as exc:    # handed to the waiter, raised there
                job.error = exc
            finally:
                job.done.release()


_helpers = _Helpers(HELPERS)
_background = _Helpers(1)       # later(): its own thread, never in wait_all's queue
_pending = 0                    # later() calls not yet ended
_settled = threading.Condition()
log = logging.getLogger(__name__)


def later(call, *args):
    """Run call(*args) on the background thread and return at once; an OSError it
    raises is logged (nothing waits for it)."""
    global _pending
    with _settled:
        _pending += 1
    _background.run(_run_later, call, args)


def _run_later(call, args):
    global _pending
    try:
        call(*args)
    except OSError as exc:
        log.warning("background disk work failed: %s", exc)
    finally:
        with _settled:
            _pending -= 1
            if not _pending:
                _settled.notify_all()


def settle(timeout=None):
    """Wait until every later() call made so far has ended; False on timeout."""
    with _settled:
        return _settled.wait_for(lambda: not _pending, timeout)


def directory(path):
    """The DirFsync of directory `path` shared by this process's threads."""
    return _group(path, False)


def file(path):
    """The group of regular file `path` (its data and size: os.fsync of the file)."""
    return _group(path, True)


def _group(path, is_file):
    # the store's paths are normalised already: found under them without normpath
    # (every APPEND, COPY and EXPUNGE asks)
    group = _dirs.get((path, is_file))
    if group is not None:
        return group
    key = (os.path.normpath(path), is_file)
    with _dirs_lock:
        group = _dirs.get(key)
        if group is None:
            group = _dirs[key] = DirFsync(key[0], is_file)
        return group
