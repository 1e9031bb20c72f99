"""Tests for clevermail.fsync_group: directory fsyncs shared by concurrent changes."""

import errno
import threading

import pytest

from clevermail import durable, fsync_group


class GatedFsync:
    """durable.fsync_dir stand-in: records each call and holds the first one until
    `release` is set, so the test decides what happens while an fsync runs."""

    def __init__(self):
        self.calls = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, path):
        self.calls.append(path)
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(30)


def start(target, *args):
    t = threading.Thread(target=target, args=args, daemon=True)
    t.start()
    return t


def test_a_change_made_during_an_fsync_waits_for_the_next_one(tmp_path, monkeypatch):
    gate = GatedFsync()
    monkeypatch.setattr(durable, "fsync_dir", gate)
    group = fsync_group.DirFsync(str(tmp_path))
    first = group.mark()
    done = []
    a = start(lambda: (group.wait(first), done.append("a")))
    assert gate.entered.wait(30)
    # three changes made while the first fsync runs: it cannot cover them
    later = [group.mark() for _ in range(3)]
    waiters = [start(lambda t=t: (group.wait(t), done.append(t))) for t in later]
    gate.release.set()
    for t in [a] + waiters:
        t.join(30)
    assert sorted(done, key=str) == sorted(["a"] + later, key=str)
    # one fsync for the first change, ONE more for the three that came during it
    assert gate.calls == [str(tmp_path), str(tmp_path)]


def test_a_change_made_before_an_fsync_began_needs_no_other(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(durable, "fsync_dir", calls.append)
    group = fsync_group.DirFsync(str(tmp_path))
    tickets = [group.mark() for _ in range(5)]
    for t in tickets:
        group.wait(t)
    assert calls == [str(tmp_path)]         # the first fsync began after all five changes
    group.sync()
    assert len(calls) == 2


def test_a_failed_fsync_is_raised_and_the_next_waiter_tries_again(tmp_path, monkeypatch):
    outcomes = [OSError(errno.EIO, "I/O error"), None]

    def fsync(path):
        result = outcomes.pop(0)
        if result is not None:
            raise result
    monkeypatch.setattr(durable, "fsync_dir", fsync)
    group = fsync_group.DirFsync(str(tmp_path))
    ticket = group.mark()
    with pytest.raises(OSError):
        group.wait(ticket)
    group.wait(ticket)                      # not taken as done: fsynced now
    assert outcomes == []


def test_a_directory_gone_since_the_change_is_nothing_to_sync(tmp_path):
    gone = tmp_path / "deleted-folder" / "cur"
    fsync_group.DirFsync(str(gone)).sync()


def test_one_group_per_directory_while_it_is_used(tmp_path):
    a = fsync_group.directory(str(tmp_path / "cur"))
    assert fsync_group.directory(str(tmp_path) + "/x/../cur") is a
    assert fsync_group.directory(str(tmp_path / "new")) is not a


def test_a_file_group_fsyncs_the_file(tmp_path, monkeypatch):
    path = tmp_path / "clevermail-uidlist"
    path.write_text("CM1 1 1\n")
    files, dirs = [], []
    monkeypatch.setattr(durable, "fsync_file", files.append)
    monkeypatch.setattr(durable, "fsync_dir", dirs.append)
    group = fsync_group.file(str(path))
    assert group is fsync_group.file(str(path)) and group is not fsync_group.directory(str(path))
    group.sync()
    assert files == [str(path)] and dirs == []


def test_wait_all_runs_the_fsyncs_side_by_side(tmp_path, monkeypatch):
    """Both fsyncs are in flight at once (one waits for the other to have begun),
    and wait_all returns only when both ended."""
    began = {"dir": threading.Event(), "file": threading.Event()}
    ended = []

    def fsync(kind, other):
        def run(path):
            began[kind].set()
            assert began[other].wait(30), f"{kind} waited alone: the fsyncs ran one after the other"
            ended.append(kind)
        return run
    monkeypatch.setattr(durable, "fsync_dir", fsync("dir", "file"))
    monkeypatch.setattr(durable, "fsync_file", fsync("file", "dir"))
    cur = fsync_group.DirFsync(str(tmp_path / "cur"))
    uidlist = fsync_group.DirFsync(str(tmp_path / "uidlist"), is_file=True)
    fsync_group.wait_all([(cur, cur.mark()), (uidlist, uidlist.mark())])
    assert sorted(ended) == ["dir", "file"]
    fsync_group.wait_all([(cur, 1), (uidlist, 1)])      # both done: nothing runs
    assert len(ended) == 2


def test_wait_all_raises_a_failed_fsync_after_every_one_ended(tmp_path, monkeypatch):
    ended = []

    def failing(path):
        raise OSError(errno.EIO, "I/O error")

    def slow_ok(path):
        ended.append(path)
    monkeypatch.setattr(durable, "fsync_dir", failing)
    monkeypatch.setattr(durable, "fsync_file", slow_ok)
    cur = fsync_group.DirFsync(str(tmp_path / "cur"))
    uidlist = fsync_group.DirFsync(str(tmp_path / "uidlist"), is_file=True)
    for order in ((cur, uidlist), (uidlist, cur)):     # the helper's fails, then the caller's
        with pytest.raises(OSError):
            fsync_group.wait_all([(group, group.mark()) for group in order])
        assert len(ended) == 1
        ended.clear()


def test_helper_threads_end_when_there_is_no_work(tmp_path, monkeypatch, thread_guard):
    """thread_guard: no helper outlives its work by more than HELPER_IDLE."""
    monkeypatch.setattr(fsync_group, "HELPER_IDLE", 0.05)
    monkeypatch.setattr(durable, "fsync_dir", lambda path: None)
    monkeypatch.setattr(durable, "fsync_file", lambda path: None)
    groups = [fsync_group.DirFsync(str(tmp_path / "cur")),
              fsync_group.DirFsync(str(tmp_path / "uidlist"), is_file=True)]
    for _ in range(20):
        fsync_group.wait_all([(g, g.mark()) for g in groups])


def test_later_returns_at_once_and_settle_waits_for_the_work(thread_guard, caplog):
    """later(): the call runs on the background thread, after the caller went on; an
    OSError is logged, not raised; settle() returns once all handed over have ended."""
    gate = threading.Event()
    ran = []

    def held(name):
        assert gate.wait(30)
        ran.append((name, threading.current_thread() is not main))

    def failing():
        raise OSError(errno.EACCES, "Permission denied")
    main = threading.current_thread()
    fsync_group.later(held, "first")
    fsync_group.later(failing)
    fsync_group.later(held, "second")
    assert ran == []
    assert not fsync_group.settle(timeout=0.05)     # the first is held: nothing could end
    gate.set()
    assert fsync_group.settle(timeout=30)
    assert ran == [("first", True), ("second", True)]
    assert "Permission denied" in caplog.text
