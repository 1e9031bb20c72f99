"""Tests for clevermail.imap.idle: IdleWaiter and read_done on their own (a socketpair and
a recording handler), then IDLE (RFC 2177) in a session over socket.socketpair():
changes by other sessions and the store reported at once, DONE, the wrong
continuation and the timeout."""

import os
import socket
import threading

import pytest

from clevermail.imap.idle import IDLE_POLL, IDLE_POLL_WATCHED, IdleWaiter, read_done
from clevermail.imap.replies import IMAPBad
from clevermail.store.waiters import Waiters
from clevermail.wire import LineReader
from imap_helpers import (  # noqa: F401 (client, handler, open_session, selected, store: fixtures)
    ALICE, check, client, deliver, handler, message, open_session, selected, start_idle, store,
    two_logged_in, wait_idling)


class WatchRecorder:
    """The two IMAPFileHandler calls IdleWaiter makes, recorded, over a real folder
    wake-up (store/waiters.py)."""

    def __init__(self):
        self.waiters = Waiters()
        self.watching = {}

    def watch(self, view):
        self.watching[view] = waiter = self.waiters.join()
        return waiter

    def unwatch(self, view):
        self.watching.pop(view).close()


def look(waiter):
    """What the view's changes() does (IDLE's loop reads them after every wake-up)."""
    waiter.looking()
    waiter.looked()


@pytest.fixture
def sockets():
    ours, theirs = socket.socketpair()
    yield ours, theirs
    ours.close()
    theirs.close()


def test_waiter_wakes_on_a_folder_change_and_on_input(sockets):
    ours, theirs = sockets
    handler, view = WatchRecorder(), object()
    with IdleWaiter(ours, handler, view) as waiter:
        folder_waiter = handler.watching[view]
        assert waiter.wait(60) == (False, True)          # never looked: look first
        look(folder_waiter)
        assert waiter.wait(0) == (False, False)          # nothing yet
        handler.waiters.wake()                           # what the folder calls
        handler.waiters.wake_index()
        assert waiter.wait(60) == (False, True)
        assert waiter.wait(60) == (False, True)          # until the view looks
        look(folder_waiter)
        assert waiter.wait(0) == (False, False)
        theirs.sendall(b"DONE\r\n")
        assert waiter.wait(60) == (True, False)
    assert handler.watching == {} and len(handler.waiters) == 0


def test_a_change_while_asleep_wakes_the_poll(sockets):
    ours, _ = sockets
    handler, view = WatchRecorder(), object()
    with IdleWaiter(ours, handler, view) as waiter:
        look(handler.watching[view])
        timer = threading.Timer(0.05, handler.waiters.wake)
        timer.start()
        try:
            assert waiter.wait(60) == (False, True)
        finally:
            timer.join()


def test_the_look_for_unsignalled_changes_is_rare_only_where_inotify_follows(sockets):
    ours, _ = sockets
    handler, view = WatchRecorder(), object()
    with IdleWaiter(ours, handler, view) as waiter:
        assert waiter.poll_interval == IDLE_POLL
        handler.waiters.watched = True          # what store/watch.py sets while it watches
        assert waiter.poll_interval == IDLE_POLL_WATCHED > IDLE_POLL
        handler.waiters.watched = False         # the watch ended (folder gone, watcher stopped)
        assert waiter.poll_interval == IDLE_POLL
    with IdleWaiter(ours, handler, None) as waiter:     # no mailbox: nothing to look at
        assert waiter.poll_interval == IDLE_POLL


def test_waiters_of_one_folder_hold_no_descriptor_of_their_own():
    handler, view = WatchRecorder(), object()
    pairs = [socket.socketpair() for _ in range(50)]
    try:
        before = set(os.listdir("/proc/self/fd"))
        idlers = [IdleWaiter(ours, handler, (view, i)) for i, (ours, _) in enumerate(pairs)]
        for i, idler in enumerate(idlers):
            look(handler.watching[(view, i)])
            assert idler.wait(0) == (False, False)
        assert len(set(os.listdir("/proc/self/fd")) - before) <= 1   # the folder's one
        for idler in idlers:
            idler.close()
        assert set(os.listdir("/proc/self/fd")) <= before
    finally:
        for pair in pairs:
            for s in pair:
                s.close()


def test_waiter_without_a_mailbox_waits_on_the_socket_only(sockets):
    ours, theirs = sockets
    handler = WatchRecorder()
    with IdleWaiter(ours, handler, None) as waiter:
        assert handler.watching == {}
        theirs.close()                                   # EOF is input: the reader sees it
        assert waiter.wait(60) == (True, False)


def test_the_drain_signal_wakes_the_waiter(sockets):
    ours, _ = sockets
    handler, view = WatchRecorder(), object()
    drain = os.eventfd(0, os.EFD_NONBLOCK)
    try:
        with IdleWaiter(ours, handler, view, drain) as waiter:
            look(handler.watching[view])
            os.eventfd_write(drain, 1)
            assert waiter.wait(60) == (False, True)
    finally:
        os.close(drain)


@pytest.mark.parametrize("line", [b"DONE\r\n", b"done\r\n", b"DoNe\n"])
def test_read_done_accepts_done_in_any_case(sockets, line):
    ours, theirs = sockets
    theirs.sendall(line)
    assert read_done(LineReader(ours), 100) is None


@pytest.mark.parametrize("line", [b"i2 NOOP\r\n", b"DONE now\r\n", b"\r\n", b"x" * 200 + b"\r\n"])
def test_read_done_refuses_anything_else(sockets, line):
    ours, theirs = sockets
    theirs.sendall(line)
    with pytest.raises(IMAPBad, match="Expected DONE"):
        read_done(LineReader(ours), 100)


def test_read_done_at_eof(sockets):
    ours, theirs = sockets
    theirs.close()
    with pytest.raises(EOFError):
        read_done(LineReader(ours), 100)


def test_idle_reports_new_mail_at_once(selected, store):
    start_idle(selected)
    store.deliver_local("", [ALICE], message(4))
    assert selected.line() == "* 4 EXISTS"
    assert selected.line() == "* 4 RECENT"
    selected.send("DONE\r\n")
    check(selected.read_reply("i1"), "OK", "", "IDLE terminated")


def test_idle_reports_flags_and_expunges_of_others(open_session, store):
    deliver(store, 2)
    a, b = two_logged_in(open_session, select=True)
    start_idle(a)
    b.expect("STORE 2 +FLAGS.SILENT (\\Flagged)")
    assert a.line() == "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))"
    b.expect("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert a.line() == "* 1 FETCH (UID 1 FLAGS (\\Deleted \\Recent))"
    b.expect("EXPUNGE")
    assert a.line() == "* 1 EXPUNGE"
    a.send("done\r\n")
    check(a.read_reply("i1"), "OK")
    assert a.expect("FETCH 1 UID").untagged == ["* 1 FETCH (UID 2)"]


def test_idle_in_authenticated_state(client):
    start_idle(client)
    client.send("DONE\r\n")
    check(client.read_reply("i1"), "OK")


def test_idle_wrong_continuation(selected):
    start_idle(selected)
    selected.send("i2 NOOP\r\n")
    check(selected.read_reply("i1"), "BAD", None, "Expected DONE")
    selected.expect("NOOP", "OK")
    selected.expect("IDLE now", "BAD")


def test_idle_times_out(open_session):
    c = open_session(timeout=0.5)
    c.login()
    start_idle(c)
    assert c.line() == "* BYE Autologout; idle for too long"
    assert c.at_eof()


@pytest.mark.parametrize("mailbox, change", [("Work", "DELETE Work"),
                                             ("Work/Sub", "RENAME Work Job")],
                         ids=["deleted", "renamed"])
def test_idle_learns_at_once_that_its_mailbox_went_away(open_session, store, mailbox, change):
    a, b = two_logged_in(open_session, timeout=60)   # a missed wake fails on the client timeout
    b.expect(f"CREATE {mailbox}", "OK")
    a.select(mailbox)
    start_idle(a)
    wait_idling(store, mailbox)
    b.expect(change, "OK")
    assert a.line() == "* BYE Selected mailbox was deleted"   # not after the 30 s poll
    assert a.at_eof()


def test_idle_learns_at_once_that_inbox_was_renamed(open_session, store):
    deliver(store, 2)
    a, b = two_logged_in(open_session, timeout=60)   # a missed wake fails on the client timeout
    a.select()
    start_idle(a)
    wait_idling(store, "INBOX")
    b.expect("RENAME INBOX Saved", "OK")
    assert a.line() == "* 2 EXPUNGE"
    assert a.line() == "* 1 EXPUNGE"
    a.send("DONE\r\n")
    check(a.read_reply("i1"), "OK")
