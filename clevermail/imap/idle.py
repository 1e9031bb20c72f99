"""IDLE (RFC 2177): a session that reports its selected mailbox's changes as they
happen, until the client sends DONE.

IdleWaiter is what the session's thread sleeps on: the client's socket and the folder's
wake-up descriptor, which every session waiting on that folder shares (store/waiters.py:
a change wakes them all with one write, and a session holds no descriptor of its own
beyond its socket, so 10,000 of them fit the file limit).  The thread sleeps in the
server's IdleHub (idle_hub.py), which watches those descriptors for it and lets woken
sessions run a few at a time.
Changes made by another process reach the folder through the store's inotify watcher
(store/watch.py); where it follows the folder (Waiter.watched) IDLE looks for changes
nobody signalled only every IDLE_POLL_WATCHED seconds (a lost event), elsewhere (no
inotify, the watch limit reached) every IDLE_POLL seconds.  At 10,000 sessions in
IDLE the 30 s look cost about a quarter of a core, each look a hub activation.  cmd_idle is the loop:
send the pending updates, wait, read the one line the client may send (DONE).  The
poll also watches the server's drain signal: an IDLE session is a client waiting, so
a stopping server says BYE to it at once (RFC 3501 7.1.5).
"""

import select
import time

from ..wire import LineTooLong
from . import replies as R
from .updates import send_updates

IDLE_POLL = 30.0      # seconds between checks for changes nobody signalled
IDLE_POLL_WATCHED = 300.0   # the same where inotify follows the folder


class IdleWaiter:
    """Sleep until the client sends something or the watched view's folder changes.

    With a hub (the server's idle_hub.IdleHub) the thread parks there and the hub's
    one thread watches the descriptors, waking sessions a few at a time; without one
    (the session tests' fake server) it polls them itself.  Use as a context manager:
    the folder's waiter is released on the way out whatever ends the IDLE; the hub's
    last activation is left in `activation` for the session to end (LineSession)."""

    def __init__(self, sock, handler, view, drain_fd=None, hub=None):
        self._handler, self._view = handler, view
        self._sock_fd = sock.fileno()
        self._drain_fd = drain_fd
        self._hub = hub
        self.activation = None      # the hub's Ticket while this session is let go
        self._poller = select.poll()    # not a descriptor: poll(2) is given the list each time
        self._poller.register(self._sock_fd, select.POLLIN)
        if drain_fd is not None:
            self._poller.register(drain_fd, select.POLLIN)   # never read: it stays set
        # the first wait() finds it never looked: the caller reads the changes first
        self._waiter = handler.watch(view) if view is not None else None

    @property
    def poll_interval(self):
        """Seconds between looks for changes nobody signalled (see the module doc)."""
        waiter = self._waiter
        return IDLE_POLL_WATCHED if waiter is not None and waiter.watched else IDLE_POLL

    def wait(self, seconds):
        """Block up to `seconds`; (input, changed): the client's socket has input (data,
        EOF or an error: read it), the folder changed since the view's last look (or
        the server drains).  Both False: the time ran out (or a wake-up that found
        nothing: the caller looks and waits again)."""
        self.end_activation()
        waiter = self._waiter
        folder_fd = None
        if waiter is not None:
            folder_fd = waiter.arm()
            if folder_fd is None:
                return False, True          # a change came after the last look
            self._poller.register(folder_fd, select.POLLIN)
        try:
            if self._hub is not None and self._park(waiter, folder_fd, seconds):
                seconds = 0                 # let go by the hub: see what is ready
            ready = self._poller.poll(seconds * 1000)
        finally:
            if folder_fd is not None:
                self._poller.unregister(folder_fd)
                waiter.disarm()             # the number may be closed from now on
        readable = changed = False
        for fd, _ in ready:
            if fd == self._drain_fd or fd == folder_fd:
                changed = True          # the caller looks at the draining flag and the view
            else:
                readable = True
        return readable, changed

    def _park(self, waiter, folder_fd, seconds):
        """Sleep in the hub; False when it has stopped (then poll ourselves)."""
        shared = []
        if folder_fd is not None:
            shared.append((waiter.epoch, folder_fd))
        if self._drain_fd is not None:
            shared.append(("drain", self._drain_fd))
        self.activation, _ = self._hub.park(self._sock_fd, shared, seconds)
        return self.activation is not None

    def end_activation(self):
        activation, self.activation = self.activation, None
        if activation is not None:
            activation.done()

    def close(self):
        if self._waiter is not None:
            self._waiter = None
            self._handler.unwatch(self._view)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_done(reader, limit):
    """Read the line that ends IDLE: DONE in any case (RFC 2177 3), else BAD."""
    try:
        line = reader.readline(limit)
    except LineTooLong:
        raise R.EXPECTED_DONE.error() from None
    if not line:
        raise EOFError("connection closed during IDLE")
    if line.rstrip(b"\r\n").upper() != b"DONE":
        raise R.EXPECTED_DONE.error()


def cmd_idle(session, cmd):
    """Report changes of the selected mailbox as they happen, until DONE.
    States: authenticated, selected.
    RFC 2177."""
    if cmd.args:
        raise R.IDLE_ARGS.error()
    session.send(b"+ idling\r\n")
    mailbox = session.mailbox        # no other command runs during IDLE
    deadline = time.monotonic() + session.server.limits.timeout
    waiter = IdleWaiter(session.connection, session.server.handler,
                        mailbox.view if mailbox is not None else None,
                        session.server.drain_fd, getattr(session.server, "hub", None))
    try:
        return _idle_loop(session, mailbox, waiter, deadline)
    finally:
        waiter.close()
        # woken by the hub: the session is counted active until it waits again or ends
        session.activation = waiter.activation


def _idle_loop(session, mailbox, waiter, deadline):
    """Send the updates, wait, until the client's line (DONE) or the end."""
    while True:
        if session.server.draining:
            raise R.SHUTTING_DOWN.error()
        if mailbox is not None:
            send_updates(session, allow_expunge=True)
            if mailbox.gone:
                raise R.MAILBOX_DELETED.error()
        # a line already buffered (DONE sent right behind IDLE) would never wake poll
        if not session.reader.has_buffered():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise R.AUTOLOGOUT.error()
            session.flush()         # `+ idling` and the updates out before the wait
            readable, _ = waiter.wait(min(remaining, waiter.poll_interval))
            if not readable:
                continue        # a change or the poll fallback: send the updates
        read_done(session.reader, session.line_limit)
        return "IDLE terminated"
