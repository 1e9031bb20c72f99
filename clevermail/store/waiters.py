"""The wake-up of one folder's waiters (IDLE sessions, in-process waits), shared by all
of them: two generation counters and one eventfd, never a descriptor per waiter.

A delivery's last step before SMTP answers 250 is waking the sessions idling on the
folder; it must never queue behind a sync or an expunge holding the folder lock
(DESIGN 4), and it must not cost a system call per waiting session: with 10,000
sessions in IDLE that was 10,000 eventfds (one per session, past the file limit)
and 10,000 writes per delivery.  So a wake-up is O(1): under a small lock of its
own, it bumps a counter and, when some waiter sleeps, makes the folder's current
eventfd readable for good and forgets it; the next waiter to sleep makes a fresh
one.  Every waiter asleep polls that same descriptor beside its socket, so one
write wakes them all.

Who is woken, once per change until it looks: a `Waiter` (one per IDLE session,
folder.new_waiter) remembers the counters as of its view's last look at the folder
(FolderView.changes):
- `outside`, bumped by wakes from outside the index (a delivery's notify, the
  inotify watcher): the waiter reads it *before* its look at the directories, since
  the new file may be past that look;
- `index`, bumped by changes of the index (a sync finding files, a session's STORE,
  EXPUNGE, APPEND; all under the folder lock): read under the folder lock just
  before the waiter reads the changes, so a change it reads never wakes it again.
`arm()` then compares: a counter moved since the look means a change the waiter has
not read (it looks again instead of sleeping); otherwise it gets the descriptor to
poll, which the next wake-up of either kind makes readable.  Taken under the same
small lock as the wake-ups, so no change falls between the comparison and the sleep.
A waiter woken that has not looked yet is not woken again by the index's changes:
it is awake already, and its look will read them.

Plain callbacks (`add`, for in-process waits such as the sandbox's wait for a
message) are called on every wake-up of either kind; they must only signal.
`on_waiting` hears of the first waiter (of either sort) and the last: the Folder's
cache has the inotify watcher (store/watch.py) follow exactly the folders waited on.
`watched` says whether it does now: another process's change then wakes the waiters
at once, so IDLE's periodic look for changes nobody signalled can be rare there.
"""

import logging
import os
import threading

_log = logging.getLogger("clevermail.store")


class _Epoch:
    """The eventfd waiters sleep on until the next wake-up; readable once fired."""

    __slots__ = ("fd", "refs")

    def __init__(self):
        self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.refs = 0           # waiters polling it now


class Waiters:
    def __init__(self, on_waiting=None):
        # called (no lock held) when the first waiter comes or the last goes: the
        # Folder tells its cache, whose watcher follows exactly the folders waited on
        self.on_waiting = on_waiting
        self._lock = threading.Lock()   # the counters, the epoch, the registrations
        self.outside = 0        # wake-ups from outside the index
        self.index = 0          # changes of the index (folder lock held)
        self._epoch = None      # what the next wake-up fires; made when a waiter sleeps
        self.callbacks = ()     # replaced whole, never changed in place
        self.count = 0          # Waiters registered (open IDLE sessions)
        # set by the inotify watcher (store/watch.py) while it follows the folder: other
        # processes' changes wake the waiters without a look (a plain bool, read freely)
        self.watched = False

    def __len__(self):
        return self.count + len(self.callbacks)

    # -- registrations --------------------------------------------------------------
    def add(self, callback):
        """Have `callback()` called by every wake-up; it runs in the waking thread,
        maybe under the folder lock, so it must only signal (set an Event): never
        block, never take a lock, never touch a socket."""
        with self._lock:
            if callback in self.callbacks:
                return
            self.callbacks = self.callbacks + (callback,)
            first = len(self) == 1
        if first:
            self._waiting_changed()

    def remove(self, callback):
        with self._lock:
            # equality, as add() tests it: a bound method (event.set) is a new object
            # each time it is named, but equal to the one added
            before = len(self.callbacks)
            self.callbacks = tuple(c for c in self.callbacks if c != callback)
            last = before != len(self.callbacks) and len(self) == 0
            self._release_idle_epoch()
        if last:
            self._waiting_changed()

    def join(self):
        """A new Waiter (see the module doc): it has not looked yet, so its first
        arm() sends it to look.  Pair with its close()."""
        with self._lock:
            self.count += 1
            first = len(self) == 1
        if first:
            self._waiting_changed()
        return Waiter(self)

    def _leave(self):
        # Waiter.close, once per Waiter
        with self._lock:
            self.count -= 1
            self._release_idle_epoch()
            last = len(self) == 0
        if last:
            self._waiting_changed()

    def _waiting_changed(self):
        hook = self.on_waiting
        if hook is not None:
            hook()

    def _release_idle_epoch(self):
        # the last waiter gone: the unfired descriptor kept for the next sleeper goes too
        epoch = self._epoch
        if self.count == 0 and epoch is not None and epoch.refs == 0:
            self._epoch = None
            os.close(epoch.fd)

    # -- wake-ups --------------------------------------------------------------------
    def wake(self):
        """A change from outside the index (a delivery's notify, the watcher): the file
        may be visible to nobody's index yet."""
        with self._lock:
            self.outside += 1
            self._fire()
        self._call()

    def wake_index(self):
        """A change of the index (called with the folder lock held)."""
        with self._lock:
            self.index += 1
            self._fire()
        self._call()

    def _fire(self):
        # (our lock held) wake every waiter asleep, with one write; an epoch nobody
        # polls is kept for the next sleeper (it was never fired)
        epoch = self._epoch
        if epoch is not None and epoch.refs:
            self._epoch = None
            os.eventfd_write(epoch.fd, 1)   # never read: it stays readable for every poller

    def _call(self):
        for callback in self.callbacks:
            try:
                callback()
            except Exception:  # a broken waiter must not fail a delivery or an expunge
                _log.exception("folder waiter failed")


class Waiter:
    """One session's wait on a folder's changes (see the module doc).  Used by one
    thread at a time: the session's."""

    __slots__ = ("_waiters", "_outside", "_index", "_epoch", "_closed")

    def __init__(self, waiters):
        self._waiters = waiters
        # never looked: the first arm() sends the caller to look
        self._outside = self._index = -1
        self._epoch = None
        self._closed = False

    def looking(self):
        """The view is about to look at the directories (before its sync)."""
        self._outside = self._waiters.outside

    def looked(self):
        """The view reads the index's changes now (under the folder lock)."""
        self._index = self._waiters.index

    @property
    def watched(self):
        """Another process's change wakes this waiter at once (inotify follows the
        folder); False: only this process's changes do, the rest wait for a look."""
        return self._waiters.watched

    @property
    def woken(self):
        """A change came since the last look."""
        waiters = self._waiters
        return self._outside != waiters.outside or self._index != waiters.index

    def arm(self):
        """The descriptor to poll for the next change (readable once one came), or
        None when one came since the last look already: look again.  Pair with
        disarm() once the poll is over."""
        waiters = self._waiters
        with waiters._lock:
            if self._closed or self._outside != waiters.outside or self._index != waiters.index:
                return None
            epoch = waiters._epoch
            if epoch is None:
                epoch = waiters._epoch = _Epoch()
            epoch.refs += 1
            self._epoch = epoch
            return epoch.fd

    @property
    def epoch(self):
        """What arm() armed (one object per descriptor the folder hands out: a key for
        a poller that watches each shared descriptor once, idle_hub.py), or None."""
        return self._epoch

    def disarm(self):
        """Done polling the descriptor arm() gave (it may be closed from now on)."""
        epoch, self._epoch = self._epoch, None
        if epoch is None:
            return
        waiters = self._waiters
        with waiters._lock:
            epoch.refs -= 1
            if epoch.refs == 0 and epoch is not waiters._epoch:
                os.close(epoch.fd)      # fired, and nobody polls it any more

    def close(self):
        """Stop waiting (the folder's count goes down once, whatever the calls)."""
        self.disarm()
        if not self._closed:
            self._closed = True
            self._waiters._leave()
