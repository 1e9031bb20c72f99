"""IdleHub: where session threads that wait long (IMAP IDLE, and any session quiet
between two commands: wait_readable) sleep, so that waking thousands of them at once
never sets thousands of threads fighting for the GIL.

One thread per session stays the design (a session's code is straight-line, its thread
holds its state), but a thread blocked in poll() on its own socket is woken by the
kernel, and when 10,000 sockets close at once (a network cut, a client host going
down), a folder with 10,000 IDLE sessions gets a new message, or the server drains,
10,000 threads return from poll() together and queue for the GIL.  A thread waiting for
the GIL wakes every switch interval to ask for it, so they burned both cores for
minutes: the SMTP session that delivered the message waited 120 s for the GIL to say
250, and SIGTERM did not get through (issue 18).

So an idle session thread does not poll: it parks here (memory, no descriptor), and
its socket and the descriptors it waits on are watched by the hub's one thread
through one epoll descriptor.  A parked thread sleeps in sigtimedwait() and is let go
by a signal sent to it alone (pthread_kill, WAKE_SIGNAL), not on a lock: a thread
blocked on a lock is a waiter in the kernel's futex hash table, and every futex
wake-up in the process walks the bucket of its address.  Linux 6.17 gives a process
a table of its own, sized by the CPUs: 16 buckets on 2 cores (`prctl(PR_FUTEX_HASH,
PR_FUTEX_HASH_GET_SLOTS)`), so 10,000 threads parked on locks put about 600 sleeping
waiters in front of each GIL hand-off and lock release (before 6.17: one table for
the machine, 256 buckets a CPU).  A lock round trip between two threads cost 94-107
us of CPU against 15 us with none parked (23 us at 2,000), and the held sessions, a
delivery to every idler and a mass close cost more per session the more there were
(perf at 10,000 held: futex_wake 58% of the server's CPU).  A thread waiting for a
signal is on no shared list: 16 us at 10,000.

Descriptors many sessions share (a folder's wake-up, store/waiters.py; the server's
drain signal) are watched once, under a key, through a dup() the hub owns, so a
waiter closing its number never leaves the hub watching a number given to another
file.  When something fires, the hub makes the
sessions it concerns runnable and lets them go a few at a time: at most `limit`
sessions are *active* (released and not yet back, parked again or ended, `done()`),
and an activation stops counting after `lease` seconds whatever it does (a session
blocked writing to a stalled client must not hold the others back).  The rest sleep,
costing nothing, until their turn.

A woken session checks its own descriptors with poll(0) (the hub says only that
something may be ready).  Timeouts are the hub's too, released through the same line:
10,000 sessions that went idle in the same second would otherwise all wake together
at the end of their wait (IDLE's periodic look), as bad as a mass close; a session
leaves by itself only if the hub is a minute late.  Registration is
one epoll_ctl per park and per leave, and a parked session wakes no thread but its own.
"""

import collections
import heapq
import itertools
import logging
import os
import select
import signal
import threading
import time

ACTIVE_LIMIT = 4        # sessions released and not yet back, at once
LEASE = 0.2             # seconds an activation counts against the limit at most
LATE = 60.0             # a parked session waits this much past its timeout for the hub
# Seconds a session waiting for its next command polls its socket itself before it
# parks in the hub: a client that sends its commands one after another never pays
# for the hub's hand-off, one that went quiet costs no thread wake-up of its own.
# Measured with 2,000 IMAP sessions after SELECT closed at once: 4.0 ms of server CPU
# a session and 5.7 s back to idle when each woke from its own poll(), against
# 0.37 ms for IDLE sessions in the hub.
COMMAND_QUIET = 1.0
# What lets a parked thread go (sent to that thread alone): ignored by default, so a
# stray one sent to the process harms nothing; blocked for good in a thread from its
# first park(), so it waits pending until the thread's sigtimedwait() takes it.
# Standard signals coalesce: at most one is ever pending per thread.  (A program
# started by such a thread would inherit the mask: session threads start none; the
# workers of [server] workers are started by the main thread.)
WAKE_SIGNAL = signal.SIGURG
_WAKE_SET = frozenset((WAKE_SIGNAL,))
_blocked = threading.local()    # .done: this thread blocks WAKE_SIGNAL already

log = logging.getLogger("clevermail.idle_hub")

_PARKED, _QUEUED, _RELEASED, _LEFT = range(4)


class Ticket:
    """One parked wait; after park() it is the session's activation until done()."""

    __slots__ = ("thread", "sock_fd", "keys", "state", "counted", "hub")

    def __init__(self, hub, sock_fd, keys):
        self.hub, self.sock_fd, self.keys = hub, sock_fd, keys
        self.thread = threading.get_ident()     # the parked thread, for pthread_kill
        self.state = _PARKED
        self.counted = False        # one of the `limit` activations

    def _sleep(self, timeout):
        """(the parked thread) Wait until the hub let this ticket go or `timeout`
        seconds pass.  A signal taken is the hub's word only once the state says so:
        one left pending by an earlier park (sent as that one timed out) wakes the
        thread once for nothing."""
        deadline = time.monotonic() + timeout
        while self.state in (_PARKED, _QUEUED):     # set under the hub's lock, then signalled
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            signal.sigtimedwait(_WAKE_SET, remaining)

    def _wake(self):
        # (hub lock held, state just changed) the thread is in park() until it sees
        # the change under the same lock, so it is alive to take the signal
        signal.pthread_kill(self.thread, WAKE_SIGNAL)

    def done(self):
        """The session is back (it parks again, waits for a command, or ended)."""
        if self.counted:
            self.hub._done(self)


class _Shared:
    __slots__ = ("fd", "tickets")

    def __init__(self, fd):
        self.fd, self.tickets = fd, set()


class IdleHub:
    def __init__(self, name, limit=ACTIVE_LIMIT, lease=LEASE):
        self.name, self.limit, self.lease = name, limit, lease
        self._lock = threading.Lock()
        self._epoll = None          # made with the thread, at the first park()
        self._wake_fd = None        # the thread's own wake-up (stop, a lease to time)
        self._thread = None
        self._stopped = False
        self._by_sock = {}          # socket fd -> Ticket parked
        self._shared = {}           # key -> _Shared: a descriptor many tickets wait on
        self._shared_by_fd = {}     # the hub's dup -> key
        self._runnable = collections.deque()    # tickets to release, in order
        self._active = collections.deque()      # (lease end, ticket) counted, oldest first
        self._count = 0
        self._deadlines = []        # heap of (time, n, ticket): parked tickets' timeouts
        self._numbers = itertools.count()
        self._next_deadline = float("inf")      # what the thread's poll waits for

    @property
    def parked(self):
        with self._lock:
            return len(self._by_sock)

    # -- the session's side ------------------------------------------------------------
    def park(self, sock_fd, shared, timeout):
        """Sleep until the hub lets this session go (its socket or one of `shared`,
        [(key, fd)], may be readable) or `timeout` seconds pass.  (ticket, woken):
        call ticket.done() when the session is back; woken False: the time ran out.
        (None, False) at once after stop(): the caller polls for itself."""
        if not getattr(_blocked, "done", False):
            # before the ticket is seen by the hub: a signal sent from then on waits
            # pending for the sleep below
            signal.pthread_sigmask(signal.SIG_BLOCK, _WAKE_SET)
            _blocked.done = True
        ticket = Ticket(self, sock_fd, [key for key, _ in shared])
        with self._lock:
            if self._stopped:
                return None, False
            if self._thread is None:
                self._start()
            self._epoll.register(sock_fd, select.EPOLLIN | select.EPOLLONESHOT)
            self._by_sock[sock_fd] = ticket
            for key, fd in shared:
                entry = self._shared.get(key)
                if entry is None:
                    entry = self._shared[key] = _Shared(os.dup(fd))
                    self._shared_by_fd[entry.fd] = key
                    self._epoll.register(entry.fd, select.EPOLLIN | select.EPOLLONESHOT)
                entry.tickets.add(ticket)
            deadline = time.monotonic() + max(0.0, timeout)
            heapq.heappush(self._deadlines, (deadline, next(self._numbers), ticket))
            if deadline < self._next_deadline:
                self._next_deadline = deadline
                os.eventfd_write(self._wake_fd, 1)      # the thread's poll must end sooner
        ticket._sleep(max(0.0, timeout) + LATE)
        with self._lock:
            woken = ticket.state not in (_PARKED, _QUEUED)
            if not woken:           # timed out (a queued one is skipped)
                self._leave(ticket)
            # else released (maybe as the time ran out: it is an activation), or let
            # go by stop()
        return ticket, woken

    def _leave(self, ticket):
        # (lock held) a ticket that timed out
        ticket.state = _LEFT
        self._unregister(ticket)

    def _unregister(self, ticket):
        # (lock held) the ticket's registrations go; a shared descriptor nobody waits
        # on any more is closed
        if self._by_sock.get(ticket.sock_fd) is ticket:
            del self._by_sock[ticket.sock_fd]
            try:
                self._epoll.unregister(ticket.sock_fd)
            except (OSError, ValueError):
                pass
        for key in ticket.keys:
            entry = self._shared.get(key)
            if entry is not None:
                entry.tickets.discard(ticket)
                if not entry.tickets:
                    self._drop_shared(key, entry)

    def _drop_shared(self, key, entry):
        del self._shared[key]
        del self._shared_by_fd[entry.fd]
        try:
            self._epoll.unregister(entry.fd)
        except (OSError, ValueError):
            pass
        os.close(entry.fd)

    def _done(self, ticket):
        with self._lock:
            if ticket.counted:
                ticket.counted = False
                self._count -= 1
                self._release_runnable(time.monotonic())

    # -- the hub's thread --------------------------------------------------------------
    def _start(self):
        self._epoll = select.epoll()
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._epoll.register(self._wake_fd, select.EPOLLIN)
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self):
        timeout = -1
        while True:
            try:
                events = self._epoll.poll(timeout)
            except InterruptedError:
                continue
            with self._lock:
                if self._stopped:
                    return
                try:
                    timeout = self._handle(events)
                except Exception:       # the sessions fall back on their own timeouts
                    log.exception("idle hub: events not handled")
                    timeout = 1.0

    def _handle(self, events):
        """(lock held) Queue the tickets the events concern, let some go; the next
        poll's timeout."""
        for fd, _ in events:
            if fd == self._wake_fd:
                try:
                    os.eventfd_read(fd)
                except BlockingIOError:
                    pass
                continue
            ticket = self._by_sock.get(fd)
            if ticket is not None:
                self._queue(ticket)
                continue
            key = self._shared_by_fd.get(fd)
            if key is not None:
                entry = self._shared[key]
                self._drop_shared(key, entry)
                for ticket in entry.tickets:
                    self._queue(ticket)
        now = time.monotonic()
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            self._queue(heapq.heappop(deadlines)[2])    # (one that left already: skipped)
        if len(deadlines) > 2 * len(self._by_sock) + 64:
            # the timeouts of tickets no longer parked stay in the heap until they come
            # up, holding their tickets: sessions woken again and again (a busy folder;
            # IDLE's look is minutes apart) would pile them up, and a mass close would
            # keep 10,000 until then.  Kept within twice the parked ones (each has one),
            # rebuilt in O(n) once they double.
            deadlines = self._deadlines = [entry for entry in deadlines if entry[2].state == _PARKED]
            heapq.heapify(deadlines)
        timeout = self._release_runnable(now)
        self._next_deadline = deadlines[0][0] if deadlines else float("inf")
        until = self._next_deadline - now
        if until < float("inf") and (timeout < 0 or until < timeout):
            timeout = min(until, 60.0)
        return timeout

    def _queue(self, ticket):
        # (lock held) the ticket goes in line; its registrations go now
        if ticket.state == _PARKED:
            self._unregister(ticket)
            ticket.state = _QUEUED
            self._runnable.append(ticket)

    def _release_runnable(self, now):
        """(lock held) Let tickets go while fewer than `limit` are active; the seconds
        until the oldest activation's lease ends when some still wait (-1: none)."""
        active, runnable = self._active, self._runnable
        while active and (active[0][0] <= now or not active[0][1].counted):
            _, ticket = active.popleft()
            if ticket.counted:          # its lease is over: it no longer holds others back
                ticket.counted = False
                self._count -= 1
        while runnable and self._count < self.limit:
            ticket = runnable.popleft()
            if ticket.state != _QUEUED:
                continue                # it left by itself (timed out)
            ticket.state = _RELEASED
            ticket.counted = True
            self._count += 1
            active.append((now + self.lease, ticket))
            ticket._wake()
        if runnable and active:
            return min(max(0.0, active[0][0] - now), 60.0)
        return -1

    def stop(self, timeout=5.0):
        """Let every parked session go and end the thread (server stop, once the
        sessions were told)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            parked = list(self._by_sock.values()) + list(self._runnable)
            for key, entry in list(self._shared.items()):
                parked.extend(entry.tickets)
                self._drop_shared(key, entry)
            for ticket in parked:
                if ticket.state in (_PARKED, _QUEUED):
                    ticket.state = _LEFT
                    ticket._wake()
            self._by_sock.clear()
            self._runnable.clear()
            thread = self._thread
            if thread is not None:
                os.eventfd_write(self._wake_fd, 1)
        if thread is not None:
            thread.join(timeout)
            self._epoll.close()
            os.close(self._wake_fd)


def wait_readable(hub, poller, sock_fd, shared, seconds, quiet=None):
    """Wait up to `seconds` until something registered in `poller` (a select.poll of
    the session's socket `sock_fd` and the descriptors of `shared`, [(key, fd)], as
    IdleHub.park takes them) is ready: first `quiet` seconds (COMMAND_QUIET) in the poll itself, then
    parked in `hub` (None: polled all along).  (ready, activation): the poll's
    events, [] when the time ran out; activation, when not None, is the hub's ticket,
    to end (done()) once the session waits again or ends."""
    deadline = time.monotonic() + seconds
    quiet = COMMAND_QUIET if quiet is None else quiet
    ready = poller.poll(max(0.0, min(quiet, seconds) if hub is not None else seconds) * 1000)
    while not ready:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return [], None
        ticket, _ = hub.park(sock_fd, shared, remaining)
        if ticket is None:              # the hub has stopped: poll for ourselves
            return poller.poll(remaining * 1000), None
        ready = poller.poll(0)
        if ready:
            return ready, ticket
        ticket.done()                   # the time ran out (or nothing was left to read)
    return ready, None
