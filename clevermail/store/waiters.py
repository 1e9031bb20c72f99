"""Wake-up callbacks of one folder (IDLE sessions), called without any folder lock.

A delivery's last step before SMTP answers 250 is waking the sessions idling on the
folder; it must never queue behind a sync or an expunge holding the folder lock
(DESIGN 4).  So the callbacks are an immutable tuple, replaced whole under a small
lock of its own when a session starts or stops waiting, and read once, lock-free,
by every wake-up.
"""

import logging
import threading

_log = logging.getLogger("clevermail.store")


class Waiters:
    def __init__(self):
        self.callbacks = ()          # replaced whole, never changed in place
        self._lock = threading.Lock()

    def __len__(self):
        return len(self.callbacks)

    def add(self, callback):
        """Have `callback()` called by every wake(); it runs in the waking thread,
        maybe under the folder lock, so it must only signal (set an Event, write to
        an eventfd): never block, never take a lock, never touch a socket."""
        with self._lock:
            if callback not in self.callbacks:
                self.callbacks = self.callbacks + (callback,)

    def remove(self, callback):
        with self._lock:
            self.callbacks = tuple(c for c in self.callbacks if c is not callback)

    def wake(self):
        """Call every waiter (a waiter added meanwhile looks at the folder itself
        before it sleeps, so it misses nothing)."""
        for callback in self.callbacks:
            try:
                callback()
            except Exception:  # a broken waiter must not fail a delivery or an expunge
                _log.exception("folder waiter failed")
