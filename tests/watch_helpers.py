"""Helpers for the inotify folder-watch tests (test_store_watch.py,
test_store_watch_store.py): WAIT, a FakeFolder the watcher can wake, the `watcher`
fixture (a FolderWatcher, stopped at teardown; a skip where inotify is missing), a
Maildir writer's tmp/-then-new/ rename, a bounded poll, and a stand-in for a libc
without inotify."""

import os
import threading
import time

import pytest

from clevermail.store import maildir
from clevermail.store.waiters import Waiters
from clevermail.store.watch import FolderWatcher
from components import component_missing

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


def no_inotify():
    raise AttributeError("inotify_init1")      # what _libc() raises where it is missing


def is_open(fd):
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True
