"""Tests for the store's use of its inotify watcher (clevermail.store.watch through
MailStore and the folder view): a held folder deleted by another process is detached,
only folders waited on are watched until the store stops, each change wakes each waiter
once and a change after the look is never lost; end to end, an IMAP client in IDLE sees
EXISTS for a file another process writes into its INBOX's new/, woken by inotify or,
where it is missing, found by IDLE's periodic look.  The watcher on its own is in
test_store_watch.py."""

import imaplib
import select
import shutil
import subprocess
import sys
import threading

import pytest

from clevermail.imap import idle
from clevermail.service import MailService
from clevermail.store import MailStore, watch
from components import component_missing
from conftest import make_config
from imap_helpers import ALICE, PASSWORD, make_accounts, message
from watch_helpers import WAIT, no_inotify, write_into_new


def test_store_detaches_a_held_folder_deleted_by_another_process(tmp_path, thread_guard):
    store = MailStore(str(tmp_path / "data"))
    store.start_watching()
    if not store.folders.watcher.available:
        store.stop_watching()
        component_missing("inotify is not available here")
    store.create_folder(ALICE, "Foo")
    old = store.open_folder(ALICE, "Foo")
    woken = threading.Event()
    old.waiters.add(woken.set)
    shutil.rmtree(old.path)                     # as another process's DELETE would
    assert woken.wait(WAIT)
    assert old.gone
    store.create_folder(ALICE, "Foo")
    new = store.open_folder(ALICE, "Foo")
    assert new is not old
    store.release_folder(new)
    store.release_folder(old)
    store.stop_watching()


def test_store_watches_the_folders_waited_on_until_stopped(tmp_path, thread_guard, monkeypatch):
    store = MailStore(str(tmp_path / "data"))
    store.start_watching()
    watcher = store.folders.watcher
    if not watcher.available:
        store.stop_watching()
        component_missing("inotify is not available here")
    updates = []
    real_update = watcher.update
    monkeypatch.setattr(watcher, "update", lambda folder: (updates.append(folder), real_update(folder)))
    inbox = store.open_folder(ALICE, "INBOX")
    store.release_folder(store.open_folder(ALICE, "INBOX"))     # STATUS, APPEND: no watch
    store.release_folder(store.open_folder(ALICE, "Trash"))
    assert watcher.watched() == [] and updates == []
    woken, other = threading.Event(), threading.Event()
    inbox.waiters.add(woken.set)                 # the first waiter: watched
    inbox.waiters.add(other.set)                 # a second one changes nothing
    assert watcher.watched() == [inbox] and updates == [inbox]
    write_into_new(inbox.path)                  # as another process would
    assert woken.wait(WAIT) and other.wait(WAIT)
    inbox.waiters.remove(woken.set)
    assert watcher.watched() == [inbox]
    inbox.waiters.remove(other.set)              # the last waiter gone: not watched
    assert watcher.watched() == [] and updates == [inbox, inbox]
    store.release_folder(inbox)
    store.stop_watching()                       # the thread ends (thread_guard checks)
    assert store.folders.watcher is None


# -- once per change ---------------------------------------------------------------------------
def watched_inbox(tmp_path):
    """A store with a held INBOX of one message, and two IDLE-like views watching it
    (each has looked once, as IDLE does before it first sleeps)."""
    from clevermail.store.view import ViewMode, close_view, open_view
    store = MailStore(str(tmp_path / "data"))
    store.deliver_local("", [ALICE], message(1))
    views = [open_view(store, ALICE, "INBOX", ViewMode.SELECT) for _ in range(2)]
    waiters = [view.watch() for view in views]
    for view in views:
        view.changes()

    def close():
        for view in views:
            view.unwatch()
            close_view(store, view)
    return store, views, waiters, close


def woken(waiters):
    return tuple(w.woken for w in waiters)


def test_a_delivery_wakes_each_waiter_once(tmp_path):
    store, (a, b), (wa, wb), close = watched_inbox(tmp_path)
    try:
        store.deliver_local("", [ALICE], message(2))      # notify() wakes both
        assert woken((wa, wb)) == (True, True)
        assert a.changes().new == (2,)     # a's sync indexes it: b was woken already,
        assert woken((wa, wb)) == (False, True)           # and a read it
        assert b.changes().new == (2,)
        # the watcher's event for the same file comes late: the index shows it already
        a._folder.disk_changed()
        assert woken((wa, wb)) == (False, False)
        assert not a.changes() and not b.changes()
    finally:
        close()


def test_a_change_found_by_a_sync_wakes_the_waiters_that_looked(tmp_path):
    store, (a, b), (wa, wb), close = watched_inbox(tmp_path)
    try:
        folder = a._folder
        write_into_new(folder.path)         # another process, no notify
        folder.disk_changed()               # the watcher: the index is behind
        assert woken((wa, wb)) == (True, True)
        assert len(a.changes().new) == 1 and len(b.changes().new) == 1
        assert woken((wa, wb)) == (False, False)
        # both looked: the next change of the index wakes both again
        b.set_flags([1], ["\\Flagged"], "+")
        assert woken((wa, wb)) == (True, True)
        assert b.changes().flags == ()     # its own change: nothing to tell
        a.set_flags([1], ["\\Seen"], "+")
        assert woken((wa, wb)) == (True, True)
        assert b.changes().flags == ((1, frozenset({"\\Seen", "\\Flagged"})),)
        assert not a.changes()          # its own change was the last one
        assert woken((wa, wb)) == (False, False)
    finally:
        close()


def test_a_change_after_the_look_is_never_lost(tmp_path):
    # a waiter woken, whose view has not looked yet, stays woken; the moment it looks,
    # the next change wakes it again
    store, (a, b), (wa, wb), close = watched_inbox(tmp_path)
    try:
        store.deliver_local("", [ALICE], message(2))
        assert b.changes().new == (2,)
        a.set_flags([1], ["\\Seen"], "+")
        assert woken((wa, wb)) == (True, True)
        assert b.changes().flags and (a.changes().new == (2,))
        assert woken((wa, wb)) == (False, False)
        fds = {wa.arm(), wb.arm()}
        assert len(fds) == 1            # both asleep on the folder's one descriptor
        store.deliver_local("", [ALICE], message(3))
        assert woken((wa, wb)) == (True, True)
        assert select.select(list(fds), [], [], 0)[0] == list(fds)
        wa.disarm()
        wb.disarm()
    finally:
        close()


# -- end to end ---------------------------------------------------------------------------------
@pytest.mark.e2e
@pytest.mark.parametrize("inotify", [True, False], ids=["inotify", "no-inotify"])
def test_idle_sees_a_file_written_into_new_by_another_process(tmp_path, thread_guard, monkeypatch,
                                                              inotify):
    """With inotify the change wakes the session at once (its periodic look is made
    rare: never within this test); without it the look finds the change."""
    if inotify:
        monkeypatch.setattr(idle, "IDLE_POLL", 0.01)            # not what finds it
        monkeypatch.setattr(idle, "IDLE_POLL_WATCHED", 1e6)
    else:
        monkeypatch.setattr(watch, "_libc", no_inotify)
        monkeypatch.setattr(idle, "IDLE_POLL", 0.2)
    waits = []
    real_wait = idle.IdleWaiter.wait
    monkeypatch.setattr(idle.IdleWaiter, "wait",
                        lambda self, seconds: (waits.append(seconds), real_wait(self, seconds))[1])
    conf = make_config(tmp_path, limits={"auth_failure_delay": 0, "imap_timeout": 60})
    make_accounts(conf.server.users_file)
    service = MailService(conf).start()
    try:
        if service.store.folders.watcher.available != inotify:
            component_missing("inotify is not available here")
        service.store.deliver_local("", [ALICE], message(1))
        c = imaplib.IMAP4("127.0.0.1", service.port("imap"), timeout=WAIT)
        try:
            assert c.login(ALICE, PASSWORD)[0] == "OK"
            assert c.select("INBOX") == ("OK", [b"1"])
            tag = c._new_tag()
            c.send(tag + b" IDLE\r\n")
            assert c.readline() == b"+ idling\r\n"
            inbox = service.store.user_root(ALICE)
            # another process, as a Maildir writer: tmp/, then a rename into new/
            code = ("import os, sys; d = sys.argv[1]; n = '1700000000.M1P9Q9.elsewhere,S=30,W=32';"
                    "open(os.path.join(d, 'tmp', n), 'wb').write(b'Subject: from elsewhere\\n\\nhello\\n');"
                    "os.rename(os.path.join(d, 'tmp', n), os.path.join(d, 'new', n))")
            subprocess.run([sys.executable, "-c", code, inbox], check=True, timeout=60)
            lines = []
            while b"* 2 EXISTS\r\n" not in lines:      # each read bounded by WAIT seconds
                line = c.readline()
                assert line, "connection closed during IDLE"
                lines.append(line)
            c.send(b"DONE\r\n")
            assert c._command_complete("IDLE", tag) == ("OK", [b"IDLE terminated"])
            typ, data = c.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            assert data[0][1] == b"Subject: from elsewhere\r\n\r\n"
            # the watched folder's session never waited the short look's time
            assert waits and all(seconds > 1 for seconds in waits) == inotify
        finally:
            c.logout()
    finally:
        service.stop()
