"""Tests for clevermail.store.watch's FolderWatcher on its own: inotify wakes the
folders sessions wait on when another process changes them (a file written into new/,
renames in cur/, deleted or renamed folders, a lost-event overflow), events coalesce per
folder, a folder says whether it is watched, the watch limit and a missing inotify fall
back to polling, and its descriptors outlive a thread that has not ended.  The store's
use of it and IDLE end to end are in test_store_watch_store.py."""

import errno
import logging
import os
import shutil
import threading

from clevermail.store import maildir, watch
from clevermail.store.watch import EVENT, IN_Q_OVERFLOW, FolderWatcher
from components import component_missing
from waiting import wait_for
from watch_helpers import WAIT, FakeFolder, is_open, no_inotify, poll_until, watcher, write_into_new  # noqa: F401 (fixture)


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

def test_without_inotify_everything_is_a_no_op(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(watch, "_libc", no_inotify)
    with caplog.at_level(logging.WARNING, "clevermail.store"):
        w = FolderWatcher()
    assert not w.available and "inotify unavailable" in caplog.text
    w.start()
    folder = FakeFolder(str(tmp_path / "a"))
    w.update(folder)
    assert w.watched() == [] and not folder.waiters.watched
    w.stop()

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
    assert len(opened) == 1 and opened[0] >= 0 and not is_open(opened[0])


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
    assert all(is_open(fd) for fd in fds)
    release.set()
    assert wait_for(lambda: not any(is_open(fd) for fd in fds))
    assert not watcher.available
