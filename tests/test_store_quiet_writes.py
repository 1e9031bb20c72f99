"""Store writes that need no cross-process lock, and the ones folded into another's:
a STORE or EXPUNGE that changes nothing takes no file lock (the index under the
folder's lock decides, store/changes.py), an APPEND by a session that has the folder
selected claims the new message's \\Recent in its own change (no second round of the
file lock at the session's next look), and a folder already in memory is opened
without a stat of its own (its sync's look finds it gone)."""

import os
import shutil

import pytest

from clevermail.store import NoSuchFolder, folder_ops
from clevermail.store.append_file import AppendFile
from clevermail.store.locks import FileLock
from clevermail.store.uidlist import UidList
from clevermail.store.view import Changes, FolderView, ViewMode
from view_fixtures import ALICE, folder, message, store  # noqa: F401 (fixtures)


@pytest.fixture
def flocks(monkeypatch):
    """The times any folder's file lock was taken (outermost holds only)."""
    taken = []
    real = FileLock.__enter__

    def enter(self):
        if self._depth == 0:
            taken.append(self.path)
        return real(self)

    monkeypatch.setattr(FileLock, "__enter__", enter)
    return taken


def test_a_store_that_changes_nothing_takes_no_file_lock(folder, flocks):
    v = FolderView(folder, "INBOX", ViewMode.SELECT)
    flocks.clear()          # (a SELECT's claim of \\Recent)
    assert v.set_flags([1, 2], ["\\Seen"], "+") == [1, 2]
    assert len(flocks) == 1
    # a message in new/ moves to cur/ even when its flags stay (a rename: the lock)
    assert folder.entry(3).sub == "new"
    assert v.set_flags([3], ["\\Flagged"], "-") == []
    assert folder.entry(3).sub == "cur" and len(flocks) == 2
    flocks.clear()
    assert v.set_flags([1, 2], ["\\Seen"], "+") == []          # already so
    assert v.set_flags([3], ["\\Flagged"], "-") == []          # not there to remove
    assert v.set_flags([99], ["\\Seen"], "+") == []            # no such message
    assert flocks == []
    # ... and one that changes something still does, with what it changed
    assert v.set_flags([1, 3], ["\\Seen"], "=") == [3]
    assert len(flocks) == 1
    assert folder.entry(3).flags == "S"


def test_unchanged_since_is_decided_without_the_file_lock_when_nothing_is_left(folder, flocks):
    v = FolderView(folder, "INBOX", ViewMode.SELECT)
    v.set_flags([1], ["\\Seen"], "+")
    seq = folder.entry(1).modseq
    flocks.clear()
    changed, modified = v.set_flags_unchanged_since([1, 2], ["\\Answered"], "+", seq - 1)
    assert (changed, modified) == ([2], [1])       # 1 changed after seq - 1: left alone
    changed, modified = v.set_flags_unchanged_since([1], ["\\Answered"], "+", seq - 1)
    assert (changed, modified) == ([], [1])
    assert len(flocks) == 1                        # only the first one changed anything


def test_an_expunge_with_nothing_deleted_takes_no_lock(folder, flocks, monkeypatch):
    v = FolderView(folder, "INBOX", ViewMode.SELECT)
    flocks.clear()
    ledger = []
    monkeypatch.setattr("clevermail.store.maildirsize.changing",
                        lambda root: ledger.append(root) or open(os.devnull))
    assert v.expunge_deleted() == []
    assert v.expunge([]) == [] and v.expunge([42]) == []
    assert flocks == [] and ledger == []
    v.set_flags([2], ["\\Deleted"], "+")
    flocks.clear()
    assert v.expunge_deleted() == [2]
    assert len(flocks) == 1 and len(ledger) == 1
    assert folder.uids == [1, 3]


def test_an_append_claims_recent_for_the_appending_sessions_view(store, folder, flocks, monkeypatch):
    mine = FolderView(folder, "INBOX", ViewMode.SELECT)
    other = FolderView(folder, "INBOX", ViewMode.SELECT)
    examining = FolderView(folder, "INBOX", ViewMode.EXAMINE)
    claims = []
    real = folder.claim_recent
    monkeypatch.setattr(folder, "claim_recent", lambda: claims.append(1) or real())
    flocks.clear()
    writes = []
    real_write = AppendFile.write
    monkeypatch.setattr(AppendFile, "write", lambda self, data, *a, **k: (
        writes.append((os.path.basename(self.path), data)), real_write(self, data, *a, **k))[1])
    validity, uid = folder_ops.append_message(store, ALICE, "INBOX", message(4), [], view=mine)
    assert uid == 4 and len(flocks) == 1          # the append's own hold, no other
    lines = [data for name, data in writes if name == "clevermail-uidlist"]
    assert len(lines) == 1 and b"\nR 4\n" in lines[0]     # one write, the claim in it
    assert other.changes() == Changes(new=(4,))   # not the first to see it
    assert mine.changes() == Changes(new=(4,), recent=frozenset({4}))
    assert examining.changes() == Changes(new=(4,))     # claims none
    assert claims == [] and len(flocks) == 1
    # the claim is in the file, written with the UID's line: another process sees it
    again = UidList(folder.path)
    again.refresh()
    assert (again.uidnext, again.recent_upto) == (5, 4)
    # a later message another writer brought is claimed at the look, as before
    store.deliver_local("", [ALICE], message(5))
    assert mine.changes() == Changes(new=(5,), recent=frozenset({5}))
    assert claims == [1]
    assert other.changes() == Changes(new=(5,))


def test_a_batch_append_claims_recent_too_and_only_for_that_folder(store, folder):
    store.create_folder(ALICE, "Other")
    mine = FolderView(folder, "INBOX", ViewMode.SELECT)
    other = FolderView(folder, "INBOX", ViewMode.SELECT)
    with folder_ops.appending(store, ALICE, "INBOX", mine) as appender:
        uids, _ = appender.append_many([(message(4), [], None), (message(5), [], None)])
    assert uids == [4, 5]
    # an APPEND to another folder claims nothing for this view
    folder_ops.append_message(store, ALICE, "Other", message(6), [], view=mine)
    assert other.changes() == Changes(new=(4, 5))
    assert mine.changes() == Changes(new=(4, 5), recent=frozenset({4, 5}))
    status = folder_ops.folder_status(store, ALICE, "Other")
    assert (status.messages, status.recent) == (1, 1)       # its \Recent is still unclaimed


def test_a_view_without_recent_claims_nothing_in_an_append(store, folder):
    rev2 = FolderView(folder, "INBOX", ViewMode.SELECT, recent=False)
    rev1 = FolderView(folder, "INBOX", ViewMode.SELECT)
    folder_ops.append_message(store, ALICE, "INBOX", message(4), [], view=rev2)
    assert rev2.changes() == Changes(new=(4,))
    assert rev1.changes() == Changes(new=(4,), recent=frozenset({4}))


def test_a_folder_in_memory_deleted_behind_the_stores_back_is_no_such_folder(store, folder):
    store.create_folder(ALICE, "Gone")
    held = store.open_folder(ALICE, "Gone")
    try:
        shutil.rmtree(held.path)                  # another program
        with pytest.raises(NoSuchFolder):
            store.open_folder(ALICE, "Gone")
        with pytest.raises(NoSuchFolder):
            folder_ops.folder_status(store, ALICE, "Gone")
    finally:
        store.release_folder(held)


def test_appends_before_a_look_each_keep_their_recent(store, folder):
    # pipelined APPENDs: the session looks once after both; another session's claim
    # between them takes only what came in between
    mine = FolderView(folder, "INBOX", ViewMode.SELECT)
    other = FolderView(folder, "INBOX", ViewMode.SELECT)
    folder_ops.append_message(store, ALICE, "INBOX", message(4), [], view=mine)
    folder_ops.append_message(store, ALICE, "INBOX", message(5), [], view=mine)
    store.deliver_local("", [ALICE], message(6))
    assert other.changes() == Changes(new=(4, 5, 6), recent=frozenset({6}))
    folder_ops.append_message(store, ALICE, "INBOX", message(7), [], view=mine)
    assert mine.changes() == Changes(new=(4, 5, 6, 7), recent=frozenset({4, 5, 7}))
    folder_ops.append_message(store, ALICE, "INBOX", message(8), [], view=mine)
    assert mine.changes() == Changes(new=(8,), recent=frozenset({8}))
    assert other.changes() == Changes(new=(7, 8))
