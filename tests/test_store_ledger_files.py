"""Tests for clevermail.store.ledger_files: the quota ledger's descriptors kept open per
user (the lock file and maildirsize), the shared lock this process's writers of a
user take together, and what a kept descriptor does when its file is replaced by a
recalculation or removed with the user's tree."""

import os
import shutil
import threading

import pytest

from clevermail.store import ledger_files, maildir, maildirsize
from clevermail.store.maildirsize import Usage
from clevermail.store.quota import NO_LIMITS


@pytest.fixture
def root(tmp_path):
    path = str(tmp_path / "alice")
    maildir.make_maildir(path)
    return path


def lines(root):
    with open(os.path.join(root, maildirsize.FILE_NAME), "rb") as f:
        return f.read().splitlines()


def test_a_change_after_the_first_looks_up_no_path(root, monkeypatch):
    """The lock file and the ledger are opened once: each later change is an fstat,
    the flocks and the write (issue 18: two opens per APPEND and per EXPUNGE)."""
    maildirsize.recalculate(root, NO_LIMITS)
    with maildirsize.changing(root):
        maildirsize.append(root, (10, 1))
    opened = []
    real = os.open
    monkeypatch.setattr(os, "open", lambda *a, **k: opened.append(a[0]) or real(*a, **k))
    for _ in range(3):
        with maildirsize.changing(root):
            maildirsize.append(root, (5, 1))
    assert opened == []
    assert lines(root)[1:] == [b"0 0", b"10 1", b"5 1", b"5 1", b"5 1"]


def test_lines_follow_a_recalculation_that_replaced_the_ledger(root):
    """A recalculation renames a new ledger over the old one: the next line goes to the
    new file, not to the kept inode that lost its name."""
    maildirsize.recalculate(root, NO_LIMITS)
    with maildirsize.changing(root):
        maildirsize.append(root, (10, 1))
    with open(os.path.join(root, "cur", "1.M1P1Q1.h,S=7,W=8:2,"), "wb") as f:
        f.write(b"x" * 7)
    assert maildirsize.recalculate(root, NO_LIMITS) == Usage(7, 1)
    with maildirsize.changing(root):
        maildirsize.append(root, (3, 1))
    assert lines(root) == [b"", b"7 1", b"3 1"]
    assert maildirsize.read(root).usage == Usage(10, 2)


def test_a_missing_ledger_is_not_made_by_a_writer(root):
    with maildirsize.changing(root):
        maildirsize.append(root, (10, 1))
    assert not os.path.exists(os.path.join(root, maildirsize.FILE_NAME))
    maildirsize.recalculate(root, NO_LIMITS)
    os.unlink(os.path.join(root, maildirsize.FILE_NAME))
    with maildirsize.changing(root):
        maildirsize.append(root, (10, 1))       # the kept descriptor's file has no name
    assert not os.path.exists(os.path.join(root, maildirsize.FILE_NAME))


def test_the_shared_lock_is_held_while_any_writer_of_this_process_is_inside(root):
    """Writers of one user in several threads share one flock: a recalculation (of this
    or another process) stays out until the last of them has left, not the first."""
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with maildirsize.changing(root):
            first_in.set()
            second_in.wait(10)
        first_out.set()

    t = threading.Thread(target=first)
    t.start()
    first_in.wait(10)
    with maildirsize.changing(root):
        second_in.set()
        first_out.wait(10)
        t.join(10)
        assert maildirsize.recalculate(root, NO_LIMITS) is None    # kept out
    assert maildirsize.recalculate(root, NO_LIMITS) == Usage(0, 0)


def test_a_hold_keeps_the_lock_until_released(root):
    hold = maildirsize.Hold(root)
    with maildirsize.changing(root):
        pass
    assert maildirsize.recalculate(root, NO_LIMITS) is None
    hold.release()
    hold.release()                              # idempotent
    assert maildirsize.recalculate(root, NO_LIMITS) == Usage(0, 0)


def test_a_user_tree_made_again_is_locked_through_its_new_lock_file(root):
    """The user was deleted and made again (another process): the kept lock
    descriptor's file has no name any more, and a writer must lock the new one, or a
    recalculation of the new tree would not be kept out."""
    with maildirsize.changing(root):
        pass
    shutil.rmtree(root)
    maildir.make_maildir(root)
    with maildirsize.changing(root):
        assert maildirsize.recalculate(root, NO_LIMITS) is None
    with pytest.raises(FileNotFoundError):      # no root: as an open of the lock file
        shutil.rmtree(root)
        with maildirsize.changing(root):
            pass


def test_descriptors_are_kept_for_a_bounded_number_of_users(tmp_path, monkeypatch):
    """Past MAX_KEPT users the oldest entries nobody holds are closed; one held is
    not, and goes on working; a user whose entry was closed gets a new one."""
    monkeypatch.setattr(ledger_files, "_cache", type(ledger_files._cache)())
    monkeypatch.setattr(ledger_files, "MAX_KEPT", 2)
    roots = []
    for n in range(4):
        roots.append(str(tmp_path / f"u{n}"))
        maildir.make_maildir(roots[-1])
        maildirsize.recalculate(roots[-1], NO_LIMITS)
    held = maildirsize.Hold(roots[0])
    for r in roots[1:]:
        with maildirsize.changing(r):
            maildirsize.append(r, (1, 1))
    assert ledger_files.kept_count() == 2
    assert roots[0] in ledger_files._cache        # held: kept, and still locking
    gone = [r for r in roots if r not in ledger_files._cache]
    assert len(gone) == 2
    assert maildirsize.recalculate(roots[0], NO_LIMITS) is None
    held.release()
    assert maildirsize.recalculate(roots[0], NO_LIMITS) == Usage(0, 0)
    for r in gone:                              # closed: a new entry, the line written
        with maildirsize.changing(r):
            maildirsize.append(r, (2, 1))
        assert maildirsize.read(r).usage == Usage(3, 2)
    for kept in list(ledger_files._cache.values()):
        assert kept.evict()


def test_an_entry_closed_under_its_user_is_not_used(root):
    """A thread that took an entry just before it was closed (evicted) does not lock or
    write through its closed descriptors: it asks for the user's entry again."""
    maildirsize.recalculate(root, NO_LIMITS)
    entry = ledger_files.kept(root)
    with maildirsize.changing(root):
        maildirsize.append(root, (1, 1))
    assert entry.evict()
    assert entry.share() is False and entry.append(b"1 1\n") is False
    assert entry.lock_fd is None and entry.ledger_fd is None
    with maildirsize.changing(root):
        maildirsize.append(root, (2, 1))
        assert maildirsize.recalculate(root, NO_LIMITS) is None
    assert ledger_files.kept(root) is not entry
    assert maildirsize.read(root).usage == Usage(3, 2)
