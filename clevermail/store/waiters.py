"""Wake-up callbacks of one folder (IDLE sessions), called without any folder lock,
each once per change.

A delivery's last step before SMTP answers 250 is waking the sessions idling on the
folder; it must never queue behind a sync or an expunge holding the folder lock
(DESIGN 4).  So the callbacks are an immutable tuple, replaced whole under a small
lock of its own when a session starts or stops waiting, and read once, lock-free,
by every wake-up.

Once per change: a waiter woken is *pending* until its view next reads the folder's
changes (FolderView.changes calls seen() under the folder lock, just before it reads
them).  The index's own changes (a sync finding new files, a session's STORE or
EXPUNGE: they wake under the folder lock) skip pending waiters, which will see them
anyway; so a delivery that woke everyone is not announced a second time by the
first session's sync that indexes it.  A wake from outside the index (a delivery's
notify, the inotify watcher) calls every waiter: the file may be visible to nobody's
index yet, and a pending waiter may already be past its look at the directories.
"""

import logging
import threading

_log = logging.getLogger("clevermail.store")


class Waiters:
    def __init__(self):
        self.callbacks = ()          # replaced whole, never changed in place
        self._lock = threading.Lock()
        # woken and not yet looked (set.add/discard are atomic: no lock needed)
        self._pending = set()

    def __len__(self):
        return len(self.callbacks)

    def add(self, callback):
        """Have `callback()` called by every wake(); it runs in the waking thread,
        maybe under the folder lock, so it must only signal (set an Event, write to
        an eventfd): never block, never take a lock, never touch a socket.  Returns
        the number of waiters now."""
        with self._lock:
            if callback not in self.callbacks:
                self.callbacks = self.callbacks + (callback,)
            return len(self.callbacks)

    def remove(self, callback):
        """Returns the number of waiters left."""
        with self._lock:
            # equality, as add() tests it: a bound method (event.set) is a new object
            # each time it is named, but equal to the one added
            self.callbacks = tuple(c for c in self.callbacks if c != callback)
            self._pending.discard(callback)
            return len(self.callbacks)

    def seen(self, callback):
        """`callback`'s session is about to read the changes: wake it again for the
        next one.  Called under the folder lock, as the index's wakes are."""
        self._pending.discard(callback)

    def wake(self):
        """Call every waiter (a waiter added meanwhile looks at the folder itself
        before it sleeps, so it misses nothing)."""
        self._call(self.callbacks)

    def wake_unseen(self):
        """Call the waiters not woken since their last look (the index changed;
        called with the folder lock held)."""
        pending = self._pending
        self._call([c for c in self.callbacks if c not in pending])

    def _call(self, callbacks):
        pending = self._pending
        for callback in callbacks:
            pending.add(callback)
            try:
                callback()
            except Exception:  # a broken waiter must not fail a delivery or an expunge
                _log.exception("folder waiter failed")
