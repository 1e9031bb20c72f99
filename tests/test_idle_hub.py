"""Tests for clevermail.idle_hub: parked session threads woken by their socket or by a
descriptor they share (watched once, through the hub's own dup), a few at a time (the
active limit, the lease), leaving by themselves on a timeout, and let go at stop."""

import os
import select
import signal
import socket
import threading

import pytest

from clevermail.idle_hub import WAKE_SIGNAL, IdleHub, wait_readable
from descriptors import fds
from waiting import wait_for

WAIT = 10.0     # bound for anything awaited; never asserted on
FOREVER = 1e9


@pytest.fixture
def hub():
    hub = IdleHub("test-idle-hub")
    yield hub
    hub.stop()


@pytest.fixture
def pairs():
    made = []

    def make(count=1):
        new = [socket.socketpair() for _ in range(count)]
        made.extend(new)
        return new
    yield make
    for a, b in made:
        a.close()
        b.close()


class Parker:
    """Threads parked in the hub; what each park() returned."""

    def __init__(self, hub, socks, shared=(), timeout=WAIT):
        self.results = []
        self.threads = [threading.Thread(target=self._park, args=(hub, s, shared, timeout))
                        for s in socks]
        for t in self.threads:
            t.start()

    def _park(self, hub, sock, shared, timeout):
        self.results.append(hub.park(sock.fileno(), shared, timeout))

    def join(self):
        for t in self.threads:
            t.join(WAIT)


def test_a_parked_session_wakes_when_its_socket_is_readable(hub, pairs):
    ((ours, theirs),) = pairs()
    parker = Parker(hub, [ours])
    assert wait_for(lambda: hub.parked == 1, timeout=WAIT)
    theirs.sendall(b"DONE\r\n")
    parker.join()
    ((ticket, woken),) = parker.results
    assert woken and hub.parked == 0
    ticket.done()


def _syscall(tid):
    """The system call thread `tid` of this process is blocked in ('running' if none)."""
    with open(f"/proc/self/task/{tid}/syscall") as f:
        return f.read().split()[0]


def _sigtimedwait_number():
    """The number /proc shows for a thread blocked in signal.sigtimedwait."""
    tids = []

    def wait():
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGWINCH])
        tids.append(threading.get_native_id())
        signal.sigtimedwait([signal.SIGWINCH], WAIT)
    thread = threading.Thread(target=wait)
    thread.start()
    assert wait_for(lambda: tids and _syscall(tids[0]) != "running", timeout=WAIT)
    number = _syscall(tids[0])
    signal.pthread_kill(thread.ident, signal.SIGWINCH)
    thread.join(WAIT)
    return number


def test_a_signal_left_pending_or_sent_to_the_process_wakes_nobody(hub, pairs):
    """A parked thread sleeps until the hub signals it alone: a wake-up signal left
    pending by an earlier park (sent as that one timed out) or one sent to the whole
    process lets no session go; its own socket then does."""
    sigtimedwait = _sigtimedwait_number()
    ((ours, theirs),) = pairs()
    out, tids = [], []

    def park():
        tids.append(threading.get_native_id())
        signal.pthread_sigmask(signal.SIG_BLOCK, [WAKE_SIGNAL])
        signal.pthread_kill(threading.get_ident(), WAKE_SIGNAL)    # pending: a stale one
        out.append(hub.park(ours.fileno(), [], WAIT * 10))
    thread = threading.Thread(target=park)
    thread.start()
    # the stale signal taken, the thread sleeps again, still parked
    assert wait_for(lambda: hub.parked == 1 and _syscall(tids[0]) == sigtimedwait, timeout=WAIT)
    os.kill(os.getpid(), WAKE_SIGNAL)       # ignored by the process as by the hub
    assert out == [] and hub.parked == 1
    theirs.sendall(b"DONE\r\n")
    thread.join(WAIT)
    [(ticket, woken)] = out
    assert woken and ticket.counted         # let go by the hub, not timed out
    ticket.done()
    assert hub._count == 0 and hub.parked == 0


def test_a_shared_descriptor_wakes_everyone_on_it_and_is_watched_once(pairs):
    hub = IdleHub("test-idle-hub", limit=100)
    try:
        sockets = [ours for ours, _ in pairs(20)]
        efd = os.eventfd(0, os.EFD_NONBLOCK)
        before = fds()
        parker = Parker(hub, sockets, [("folder", efd)])
        assert wait_for(lambda: hub.parked == 20, timeout=WAIT)
        # the epoll, its wake-up and one dup of the shared descriptor: not one per session
        assert len(fds() - before) == 3
        (hub_dup,) = [entry.fd for entry in hub._shared.values()]
        os.close(efd)           # the waiters' number may go: the hub watches its own dup
        os.eventfd_write(hub_dup, 1)     # the folder's wake-up, to the same file
        parker.join()
        assert len(parker.results) == 20 and all(woken for _, woken in parker.results)
        assert hub.parked == 0 and hub._shared == {}
        for ticket, _ in parker.results:
            ticket.done()
        assert hub._count == 0
    finally:
        hub.stop()


def test_sessions_are_let_go_a_few_at_a_time(pairs):
    hub = IdleHub("test-idle-hub", limit=2, lease=FOREVER)
    try:
        sockets = [ours for ours, _ in pairs(6)]
        efd = os.eventfd(0, os.EFD_NONBLOCK)
        parker = Parker(hub, sockets, [("drain", efd)])
        assert wait_for(lambda: hub.parked == 6, timeout=WAIT)
        os.eventfd_write(efd, 1)
        assert wait_for(lambda: len(parker.results) == 2, timeout=WAIT)
        assert hub._count == 2 and len(hub._runnable) == 4      # the rest wait their turn
        woken = 2
        while woken < 6:
            parker.results[woken - 2][0].done()        # one back: one more goes
            woken += 1
            assert wait_for(lambda: len(parker.results) == woken, timeout=WAIT)
            assert hub._count == 2
        parker.join()
        for ticket, _ in parker.results:
            ticket.done()
        assert hub._count == 0
        os.close(efd)
    finally:
        hub.stop()


def test_a_lease_ends_an_activation_that_never_comes_back(pairs):
    hub = IdleHub("test-idle-hub", limit=1, lease=0.01)
    try:
        sockets = [ours for ours, _ in pairs(3)]
        efd = os.eventfd(0, os.EFD_NONBLOCK)
        parker = Parker(hub, sockets, [("folder", efd)])
        assert wait_for(lambda: hub.parked == 3, timeout=WAIT)
        os.eventfd_write(efd, 1)
        parker.join()              # none calls done(): the leases let the others go
        assert len(parker.results) == 3 and all(woken for _, woken in parker.results)
        os.close(efd)
    finally:
        hub.stop()


def test_a_timeout_is_the_hubs_and_its_registrations_go(hub, pairs):
    ((ours, _),) = pairs()
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    ticket, woken = hub.park(ours.fileno(), [("folder", efd)], 0.01)
    assert woken and hub.parked == 0 and hub._shared == {}
    ticket.done()
    assert hub._count == 0
    os.close(efd)


def test_timeouts_of_sessions_woken_before_them_do_not_pile_up(hub, pairs):
    """A session woken again and again long before its timeout (a busy folder, IDLE's
    look minutes apart) leaves no heap entry behind each time beyond a bound."""
    ((ours, theirs),) = pairs()
    for _ in range(300):
        theirs.sendall(b"x")
        ticket, woken = hub.park(ours.fileno(), [], FOREVER)
        assert woken
        ours.recv(1)
        ticket.done()
        with hub._lock:
            assert len(hub._deadlines) <= 2 * len(hub._by_sock) + 64 + 1


def test_timeouts_are_let_go_a_few_at_a_time_too(pairs):
    """Sessions that went idle together time out together: the hub lets them go
    through the same line, never all at once."""
    hub = IdleHub("test-idle-hub", limit=1, lease=FOREVER)
    try:
        parker = Parker(hub, [ours for ours, _ in pairs(3)], timeout=0.01)
        assert wait_for(lambda: len(parker.results) == 1, timeout=WAIT)
        assert hub._count == 1
        for i in (1, 2):
            parker.results[i - 1][0].done()
            assert wait_for(lambda: len(parker.results) == i + 1, timeout=WAIT)
        parker.join()
        parker.results[2][0].done()
        assert hub._count == 0
    finally:
        hub.stop()


def test_stop_lets_every_parked_session_go_and_closes_its_descriptors(pairs):
    before = fds()
    hub = IdleHub("test-idle-hub")
    sockets = [ours for ours, _ in pairs(5)]
    after_sockets = fds()
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    parker = Parker(hub, sockets, [("folder", efd)], timeout=FOREVER)
    assert wait_for(lambda: hub.parked == 5, timeout=WAIT)
    hub.stop()
    parker.join()
    assert len(parker.results) == 5 and not any(t.is_alive() for t in parker.threads)
    assert hub.park(sockets[0].fileno(), [], WAIT) == (None, False)   # polls for itself
    os.close(efd)
    assert fds() - after_sockets == set() and before <= after_sockets


# -- wait_readable: a session between two commands ---------------------------------------
def poller_of(sock, *fds):
    poller = select.poll()
    for fd in (sock.fileno(),) + fds:
        poller.register(fd, select.POLLIN)
    return poller


def test_a_command_soon_after_the_last_never_reaches_the_hub(hub, pairs):
    [(ours, theirs)] = pairs()
    theirs.sendall(b"a NOOP\r\n")
    ready, activation = wait_readable(hub, poller_of(ours), ours.fileno(), [], WAIT, quiet=WAIT)
    assert [fd for fd, _ in ready] == [ours.fileno()] and activation is None
    assert hub._thread is None          # never parked: the hub did not even start


def test_a_quiet_session_parks_and_its_next_line_wakes_it(hub, pairs):
    [(ours, theirs)] = pairs()
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    out = []
    thread = threading.Thread(target=lambda: out.append(wait_readable(
        hub, poller_of(ours, efd), ours.fileno(), [("drain", efd)], WAIT, quiet=0)))
    thread.start()
    assert wait_for(lambda: hub.parked == 1, timeout=WAIT)
    theirs.sendall(b"a NOOP\r\n")
    thread.join(WAIT)
    [(ready, activation)] = out
    assert [fd for fd, _ in ready] == [ours.fileno()]
    assert activation is not None and hub._count == 1     # counted until it waits again
    activation.done()
    assert hub._count == 0 and hub.parked == 0
    os.close(efd)


def test_quiet_sessions_closed_at_once_are_let_go_a_few_at_a_time(pairs):
    hub = IdleHub("test-idle-hub", limit=2, lease=FOREVER)
    try:
        socks = pairs(5)
        out = []

        def wait(ours):
            out.append(wait_readable(hub, poller_of(ours), ours.fileno(), [], WAIT, quiet=0))
        threads = [threading.Thread(target=wait, args=(ours,)) for ours, _ in socks]
        for t in threads:
            t.start()
        assert wait_for(lambda: hub.parked == 5, timeout=WAIT)
        for _, theirs in socks:
            theirs.close()                  # every client gone at once
        # the hub may see the closes over several wake-ups: all of them, then 2 let go
        assert wait_for(lambda: hub.parked == 0 and len(out) == 2, timeout=WAIT)
        assert hub._count == 2 and len(hub._runnable) == 3
        for i in range(2, 5):
            out[i - 2][1].done()            # one session ended: one more goes
            assert wait_for(lambda: len(out) == i + 1, timeout=WAIT)
        for t in threads:
            t.join(WAIT)
        for ready, activation in out:
            assert ready and activation is not None     # each sees its EOF
            activation.done()
        assert hub._count == 0
    finally:
        hub.stop()


def test_a_quiet_wait_times_out_in_the_hub(hub, pairs):
    [(ours, _)] = pairs()
    assert wait_readable(hub, poller_of(ours), ours.fileno(), [], 0.05, quiet=0) == ([], None)
    assert hub.parked == 0 and hub._count == 0


def test_a_stopped_hub_leaves_the_wait_to_the_poll(pairs):
    hub = IdleHub("test-idle-hub")
    hub.stop()
    [(ours, theirs)] = pairs()
    theirs.sendall(b"x\r\n")
    ready, activation = wait_readable(hub, poller_of(ours), ours.fileno(), [], WAIT, quiet=0)
    assert ready and activation is None
