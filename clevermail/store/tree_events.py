"""Changes of a user's mailbox tree and subscriptions made in this process, told to
whoever listens for that user (IMAP NOTIFY's MailboxName and SubscriptionChange,
RFC 5465 5.4, 5.5).

MailStore publishes a `TreeEvent` after each folder created, deleted or renamed and
each subscription changed; a listener (a session with NOTIFY set) is called in the
publishing thread, so, like a folder waiter (waiters.py), it must only record and
signal: never block, never touch a socket.  `origin` is the publishing thread: a
session knows its own changes by it (RFC 5465 5: the client that caused an event
SHOULD NOT be told of it).  Changes by other processes are not published here; a
listener finds them by comparing the tree with what it last saw.
"""

import contextlib
import logging
import threading
from typing import NamedTuple, Optional

_log = logging.getLogger("clevermail.store")

CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE = "create", "delete", "rename", "subscribe", "unsubscribe"


class TreeEvent(NamedTuple):
    kind: str                   # CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE
    name: str                   # the folder name (the new one for RENAME)
    old: Optional[str] = None   # RENAME: the name before
    origin: int = 0             # threading.get_ident() of the publishing thread


class TreeEvents:
    def __init__(self):
        self._lock = threading.Lock()
        self._listeners = {}        # address -> tuple of callbacks, replaced whole
        self._busy = {}             # address -> changes under way

    def listen(self, address, callback):
        """Have `callback(TreeEvent)` called for every change of `address`'s tree (and
        `callback(None)` at the end of each); pair with unlisten()."""
        with self._lock:
            self._listeners[address] = self._listeners.get(address, ()) + (callback,)

    def unlisten(self, address, callback):
        with self._lock:
            # equality: a bound method (list.append) is a new object each time it is named
            left = tuple(c for c in self._listeners.get(address, ()) if c != callback)
            if left:
                self._listeners[address] = left
            else:
                self._listeners.pop(address, None)

    @contextlib.contextmanager
    def changing(self, address):
        """Around one change of `address`'s tree and its publish()."""
        with self._lock:
            self._busy[address] = self._busy.get(address, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._busy[address] - 1
                if left:
                    self._busy[address] = left
                else:
                    del self._busy[address]
            self._call(address, None)

    def busy(self, address):
        """A change of `address`'s tree is under way in this process."""
        return address in self._busy

    def publish(self, address, kind, name, old=None):
        if address in self._listeners:
            self._call(address, TreeEvent(kind, name, old, threading.get_ident()))

    def _call(self, address, event):
        for callback in self._listeners.get(address, ()):
            try:
                callback(event)
            except Exception:   # a broken listener must not fail the CREATE that told it
                _log.exception("tree listener failed")
