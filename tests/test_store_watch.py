"""Tests for clevermail.store.watch: inotify wakes the folders sessions wait on when
another process changes them (a file written into new/, deleted or renamed folders,
a lost-event overflow), the watch limit and a missing inotify fall back to polling,
and the thread stops with the store; end to end, an IMAP client in IDLE sees EXISTS
for a file another process writes into its INBOX's new/, woken by inotify or, where
it is missing, found by IDLE's periodic look."""

import errno
import imaplib
import logging
import os
import select
import shutil
import subprocess
import sys
import threading
import time

import pytest

from clevermail.imap import idle
from clevermail.service import MailService
from clevermail.store import MailStore, maildir, watch
from clevermail.store.waiters import Waiters
from clevermail.store.watch import EVENT, IN_Q_OVERFLOW, FolderWatcher
from components import component_missing
from conftest import make_config
from imap_helpers import ALICE, PASSWORD, make_accounts, message
from waiting import wait_for

WAIT = 10.0   # bound for anything awaited; never asserted on


class FakeFolder:
    def __init__(self, path, waiting=True):
        self.path, self.waiting = path, waiting
        maildir.make_maildir(path)
        self.woken = threading.Event()
        self.waiters = Waiters()        # where the watcher says whether it follows us

    def disk_changed(self):
        self.woken.set()


@pytest.fixture
def watcher():
    w = FolderWatcher()
    if not w.available:
        component_missing("inotify is not available here")
    yield w
    w.stop()


def write_into_new(path, name="1700000000.M1P1Q1.other,S=3,W=4"):
    """What another Maildir writer does: tmp/ then a rename into new/."""
    with open(os.path.join(path, "tmp", name), "wb") as f:
        f.write(b"x\n\n")
    os.rename(os.path.join(path, "tmp", name), os.path.join(path, "new", name))


def poll_until(w, folder):
    """Read events until a batch wakes `folder`; returns that batch (bounded wait)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        woken = w.poll_once(max(0.0, deadline - time.monotonic()))
        assert woken is not None
        if folder in woken:
            return woken
    raise AssertionError("the folder was not woken within the bound")


def test_thread_wakes_a_held_folder_on_a_new_file(watcher, tmp_path, thread_guard):
    folder = FakeFolder(str(tmp_path / "box"))
    watcher.update(folder)
    watcher.start()
    write_into_new(folder.path)
    assert folder.woken.wait(WAIT)
    watcher.stop()                      # the thread ends (thread_guard checks)


def test_only_folders_waited_on_are_watched(watcher, tmp_path):
    held, unused = FakeFolder(str(tmp_path / "a")), FakeFolder(str(tmp_path / "b"), waiting=False)
    watcher.update(held)
    watcher.update(unused)
    assert watcher.watched() == [held]
    held.waiting = False
    watcher.update(held)
    assert watcher.watched() == []
    unused.waiting = True
    watcher.update(unused)
    write_into_new(unused.path)
    assert unused in poll_until(watcher, unused)


def test_expunge_and_flag_renames_in_cur_wake(watcher, tmp_path):
    folder = FakeFolder(str(tmp_path / "box"))
    name = "1700000000.M1P1Q1.other,S=3,W=4"
    with open(os.path.join(folder.path, "cur", name + ":2,"), "wb") as f:
        f.write(b"x\n\n")
    watcher.update(folder)
    os.rename(os.path.join(folder.path, "cur", name + ":2,"), os.path.join(folder.path, "cur", name + ":2,S"))
    assert folder in poll_until(watcher, folder)
    os.unlink(os.path.join(folder.path, "cur", name + ":2,S"))
    assert folder in poll_until(watcher, folder)


def test_overflow_wakes_every_watched_folder(watcher, tmp_path):
    a, b = FakeFolder(str(tmp_path / "a")), FakeFolder(str(tmp_path / "b"))
    watcher.update(a)
    watcher.update(b)
    woken = watcher.handle(EVENT.pack(-1, IN_Q_OVERFLOW, 0, 0))
    assert sorted(f.path for f in woken) == [a.path, b.path]


def test_events_are_coalesced_per_folder(watcher, tmp_path):
    folder = FakeFolder(str(tmp_path / "box"))
    watcher.update(folder)
    for i in range(20):
        write_into_new(folder.path, f"17000000{i:02d}.M1P1Q{i}.other,S=3,W=4")
    woken = poll_until(watcher, folder)
    assert woken == [folder]


def test_deleted_folder_wakes_and_is_no_longer_watched(watcher, tmp_path):
    folder = FakeFolder(str(tmp_path / "box"))
    watcher.update(folder)
    shutil.rmtree(folder.path)
    poll_until(watcher, folder)
    assert watcher.watched() == []


def test_folder_renamed_away_and_created_again_is_handed_to_on_gone(watcher, tmp_path):
    # the old Folder is detached by the cache (on_gone); the folder created again is
    # another folder, watched when a session opens its own Folder
    gone = []
    watcher.on_gone = gone.append
    folder = FakeFolder(str(tmp_path / "box"))
    watcher.update(folder)
    os.rename(folder.path, str(tmp_path / "moved"))
    maildir.make_maildir(folder.path)          # created again under the same name
    poll_until(watcher, folder)
    assert gone == [folder]
    assert watcher.watched() == []


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


def test_a_folder_says_it_is_watched_while_the_watch_lasts(watcher, tmp_path):
    """Waiters.watched (IDLE's rare look) from the watch's start to whatever ends it:
    the last waiter gone, the folder deleted, the watcher stopped."""
    a, b = FakeFolder(str(tmp_path / "a")), FakeFolder(str(tmp_path / "b"))
    assert not a.waiters.watched
    watcher.update(a)
    watcher.update(b)
    assert a.waiters.watched and b.waiters.watched
    a.waiting = False
    watcher.update(a)                       # its last waiter went
    assert not a.waiters.watched and b.waiters.watched
    a.waiting = True
    watcher.update(a)
    assert a.waiters.watched
    shutil.rmtree(a.path)                   # deleted by another process
    poll_until(watcher, a)
    assert not a.waiters.watched and b.waiters.watched
    watcher.stop()
    assert not b.waiters.watched


def test_watch_limit_falls_back_to_polling_with_one_warning(watcher, tmp_path, monkeypatch, caplog):
    import ctypes

    class Limited:
        def __init__(self, real):
            self.real = real
            self.inotify_rm_watch = real.inotify_rm_watch

        def inotify_add_watch(self, fd, path, mask):
            ctypes.set_errno(errno.ENOSPC)
            return -1

    monkeypatch.setattr(watcher, "_libc", Limited(watcher._libc))
    with caplog.at_level(logging.WARNING, "clevermail.store"):
        folders = [FakeFolder(str(tmp_path / name)) for name in "ab"]
        for folder in folders:
            watcher.update(folder)
    assert watcher.watched() == []
    assert not any(folder.waiters.watched for folder in folders)   # IDLE keeps its 30 s look
    assert [r.getMessage() for r in caplog.records].count(
        "inotify watch limit reached (fs.inotify.max_user_watches): folders opened from now on are polled") == 1


def _no_inotify():
    raise AttributeError("inotify_init1")      # what _libc() raises where it is missing


def test_without_inotify_everything_is_a_no_op(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(watch, "_libc", _no_inotify)
    with caplog.at_level(logging.WARNING, "clevermail.store"):
        w = FolderWatcher()
    assert not w.available and "inotify unavailable" in caplog.text
    w.start()
    folder = FakeFolder(str(tmp_path / "a"))
    w.update(folder)
    assert w.watched() == [] and not folder.waiters.watched
    w.stop()


def _is_open(fd):
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_a_failed_pipe_closes_the_inotify_descriptor(monkeypatch, caplog):
    opened = []
    real_libc = watch._libc

    class Recording:
        def __init__(self):
            self.real = real_libc()

        def __getattr__(self, name):
            return getattr(self.real, name)

        def inotify_init1(self, flags):
            opened.append(self.real.inotify_init1(flags))
            return opened[-1]

    def no_pipe(flags):
        raise OSError(errno.EMFILE, "Too many open files")

    try:
        Recording()
    except (OSError, AttributeError):
        component_missing("inotify is not available here")
    monkeypatch.setattr(watch, "_libc", Recording)
    monkeypatch.setattr(watch.os, "pipe2", no_pipe)
    with caplog.at_level(logging.WARNING, "clevermail.store"):
        w = FolderWatcher()
    monkeypatch.undo()
    assert not w.available and "inotify unavailable" in caplog.text
    assert len(opened) == 1 and opened[0] >= 0 and not _is_open(opened[0])


def test_stop_leaves_the_descriptors_to_a_thread_that_has_not_ended(watcher, tmp_path, thread_guard):
    # closed under the thread, their numbers could go to other files it would then read
    entered, release = threading.Event(), threading.Event()

    class HeldUp(FakeFolder):
        def disk_changed(self):
            entered.set()
            release.wait(WAIT)

    folder = HeldUp(str(tmp_path / "box"))
    watcher.update(folder)
    watcher.start()
    write_into_new(folder.path)
    assert entered.wait(WAIT)
    fds = (watcher._fd, watcher._stop_r, watcher._stop_w)
    watcher.stop(timeout=0)                 # the thread is still in disk_changed()
    assert all(_is_open(fd) for fd in fds)
    release.set()
    assert wait_for(lambda: not any(_is_open(fd) for fd in fds))
    assert not watcher.available


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
        monkeypatch.setattr(watch, "_libc", _no_inotify)
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
