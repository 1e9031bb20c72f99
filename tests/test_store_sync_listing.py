"""store/sync.py's look after another process changed a folder: only the directory
whose mtime moved is listed, once; the listing is compared with the index's names
(scan.IndexNames, kept current by this process's own changes too); the uidlist is
read only when a name appeared or vanished; and a file missing from a listing is
believed gone only when it was in neither directory at one moment.  "Another
process" is a second MailStore on the same data directory (test_store_lockfree.py),
here one whose changes are not journaled (an older version, or another program: what a
writer journals is followed without a listing, test_store_cur_journal.py)."""

import os

import pytest

from clevermail.store import MailStore, cur_journal
from clevermail.store.uidlist import FILENAME as UIDLIST
from view_fixtures import ALICE, elsewhere, folder, message, store  # noqa: F401 (fixtures)


@pytest.fixture(autouse=True)
def unjournaled(monkeypatch):
    """No change is journaled (store/cur_journal.py): every look at a changed cur/ lists it."""
    monkeypatch.setattr(cur_journal, "line", lambda before, after, ops, modseq=None: None)


@pytest.fixture
def in_cur(folder, elsewhere):
    """Messages 1-3 moved to cur/ by the other process, and seen here (the index's
    names are built at that look)."""
    elsewhere.store_flags(elsewhere.uids, {"S"}, "+")
    assert folder.sync() is True
    assert [folder.entry(u).sub for u in folder.uids] == ["cur"] * 3


def _spy(monkeypatch, name):
    """Every path os.<name> is called with from now on."""
    seen = []
    real = getattr(os, name)

    def spy(path, *args, **kwargs):
        seen.append(os.fspath(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, name, spy)
    return seen


def test_an_expunge_by_another_process_is_believed_after_one_listing(folder, elsewhere, in_cur,
                                                                     monkeypatch):
    assert elsewhere.expunge([2]) == [2]
    listed = _spy(monkeypatch, "listdir")
    assert folder.sync() is True
    # cur/ alone, once: neither directory changed during the listing, so what it
    # lacks was in neither (no second look at both)
    assert listed == [os.path.join(folder.path, "cur")]
    assert folder.uids == elsewhere.uids == [1, 3]


def test_a_flag_change_by_another_process_reads_no_uidlist(folder, elsewhere, in_cur, monkeypatch):
    elsewhere.store_flags([1], {"F"}, "+")
    stats, opens = _spy(monkeypatch, "stat"), _spy(monkeypatch, "open")
    assert folder.sync() is True
    assert folder.entry(1).flags == "FS"
    assert [p for p in stats + opens if p.endswith(UIDLIST)] == []
    # a new name does read it: its UID is there
    uid = elsewhere.append(message(4))
    assert folder.sync() is True
    assert folder.uids == [1, 2, 3, uid]
    assert any(p.endswith(UIDLIST) for p in stats + opens)


def test_a_name_the_index_had_before_its_own_change_is_seen_again(folder, elsewhere, in_cur):
    # our own rename (the index's names follow it) ...
    folder.store_flags([1], {"F"}, "+")
    assert elsewhere.sync() is True
    # ... undone by the other process: the file is back under the name it had
    # when this process last listed cur/
    elsewhere.store_flags([1], {"F"}, "-")
    assert folder.sync() is True
    assert folder.entry(1).flags == "S"
    # our own expunge, then another change there: the expunge told once
    before = folder.modseq
    assert folder.expunge([2]) == [2]
    elsewhere.store_flags([3], {"F"}, "+")
    assert folder.sync() is True
    assert folder.uids == [1, 3] and folder.entry(3).flags == "FS"
    assert folder.changes_since(before) == ([2], [3])


def test_a_file_moved_to_new_while_cur_is_listed_is_not_believed_gone(folder, elsewhere, in_cur,
                                                                      monkeypatch):
    elsewhere.store_flags([2], {"F"}, "+")        # cur/ changed: the next look lists it alone
    cur, new = (os.path.join(folder.path, sub) for sub in ("cur", "new"))
    base = folder.entry(1).base
    real = os.listdir
    moved = []

    def listdir(path):
        names = real(path)
        if path == cur and not moved:
            # another program (a client marking it unread) moves message 1 back to
            # new/ while cur/ is read, after the listing passed where it now is
            name = next(n for n in names if n.startswith(base))
            os.rename(os.path.join(cur, name), os.path.join(new, base))
            moved.append(name)
            names = [n for n in names if n != name]
        return names

    monkeypatch.setattr(os, "listdir", listdir)
    before = folder.modseq
    assert folder.sync() is True
    assert moved
    assert folder.uids == [1, 2, 3]
    assert (folder.entry(1).sub, folder.entry(1).flags) == ("new", "")
    assert folder.entry(2).flags == "FS"
    expunged, flagged = folder.changes_since(before)
    assert expunged == [] and sorted(flagged) == [1, 2]


def test_a_listing_too_long_for_one_read_is_looked_at_again_before_an_expunge_is_believed(
        tmp_path, store, monkeypatch):
    """Past ONE_READ names a listing takes several system calls, which a rename can cut
    through; before Linux 6.13 the mtime may not show that rename (a clock tick's
    resolution), so the unchanged mtimes are not taken as proof: both directories are
    listed again, as for a changed one."""
    from clevermail.store import sync
    from view_fixtures import open_inbox

    monkeypatch.setattr(sync, "ONE_READ", 5)
    with open_inbox(store, ALICE, map(message, range(1, 9))) as mine:
        other = MailStore(tmp_path / "data")
        theirs = other.open_folder(ALICE, "INBOX")
        try:
            theirs.store_flags(theirs.uids, {"S"}, "+")     # all 8 in cur/
            assert mine.sync() is True
            assert theirs.expunge([4]) == [4]
            listed = _spy(monkeypatch, "listdir")
            assert mine.sync() is True
            assert listed == [os.path.join(mine.path, sub) for sub in ("cur", "new", "cur")]
            assert mine.uids == theirs.uids == [1, 2, 3, 5, 6, 7, 8]
        finally:
            other.release_folder(theirs)
