"""store/cur_journal.py: a change another process made in cur/ is followed from the
lines it journaled, without a listing of cur/, and the index ends as a listing would
have made it; anything the journal does not cover (a change by another program, a
compacted modseq file) is found by a listing as before.  "Another process" is a
second MailStore on the same data directory (view_fixtures.elsewhere)."""

import os

import pytest

from clevermail.store import cur_journal, locks, maildir
from clevermail.store.cur_journal import CurJournal
from fakes import flock_is_held
from view_fixtures import ALICE, elsewhere, folder, message, store  # noqa: F401 (fixtures)


# -- the chain (pure) ----------------------------------------------------------------------
def test_lines_that_chain_from_the_stamp_to_now_are_taken_once():
    j = CurJournal()
    j.add(10, 20, ["f1=S"])
    j.add(20, 20, ["x2"])         # a change in the same clock tick: mtime unchanged
    j.add(20, 35, ["nA:2,"], 7)
    assert j.take(10, 35) == [(10, 20, ["f1=S"], None), (20, 20, ["x2"], None), (20, 35, ["nA:2,"], 7)]
    assert j.take(35, 35) == []             # taken: forgotten


@pytest.mark.parametrize("since, now", [(9, 35), (10, 36), (None, 35)])
def test_lines_that_do_not_lead_from_the_stamp_to_now_are_refused(since, now):
    j = CurJournal()
    j.add(10, 20, ["f1=S"])
    j.add(20, 35, ["x2"])
    assert j.take(since, now) is None
    assert j.records == []


def test_a_gap_between_two_lines_is_refused():
    j = CurJournal()
    j.add(10, 20, ["f1=S"])
    j.add(21, 35, ["x2"])       # something happened between 20 and 21 that nobody journaled
    assert j.take(10, 35) is None


def test_a_damaged_line_or_too_many_lines_break_the_journal_until_taken():
    j = CurJournal()
    j.read(["J", "10", "x"])
    assert j.take(10, 10) is None
    # an empty name, no UID, an op no writer makes, a modseq that is no number or 0
    for op in ("n", "f", "q1", "m", "mx", "m0", "m07"):
        j.read(["J", "10", "11", op, "x1"])
        assert j.take(10, 11) is None
    j.read(["J", "10", "11", "x1"])
    assert j.take(10, 11) == [(10, 11, ["x1"], None)]
    j.read(["J", "10", "11", "m42", "x1", "f2=S"])
    assert j.take(10, 11) == [(10, 11, ["x1", "f2=S"], 42)]
    for i in range(cur_journal.MOST + 1):
        j.add(i, i + 1, ["x1"])
    assert j.take(0, cur_journal.MOST + 1) is None
    j.add(5, 6, ["x1"])             # the next sync starts afresh
    assert j.take(5, 6) == [(5, 6, ["x1"], None)]


def test_an_op_that_cannot_be_written_gives_no_line():
    assert cur_journal.line(1, 2, ["f3=FS", "nA,S=1:2,"]) == "J 1 2 f3=FS nA,S=1:2,\n"
    assert cur_journal.line(1, 2, ["x3"], 17) == "J 1 2 m17 x3\n"
    assert cur_journal.line(1, 2, ["na b:2,"]) is None
    assert cur_journal.line(1, 2, ["nh\u00e9:2,"]) is None


# -- two processes ---------------------------------------------------------------------------
@pytest.fixture
def in_cur(folder, elsewhere):
    """Messages 1-3 moved to cur/ by the other process, and seen here; new/ as both
    last listed it (a move out of new/ is not journaled: new/ is listed after it)."""
    elsewhere.store_flags(elsewhere.uids, {"S"}, "+")
    assert folder.sync() is True
    elsewhere.sync()
    assert [folder.entry(u).sub for u in folder.uids] == ["cur"] * 3


@pytest.fixture
def listings(monkeypatch):
    """The directories os.listdir is called for from now on."""
    seen = []
    real = os.listdir

    def spy(path="."):
        seen.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "listdir", spy)
    return seen


def _followed_again(folder, elsewhere, listings, uid):
    """After a listing: the other process's next flag change is followed without one."""
    elsewhere.sync()
    del listings[:]
    elsewhere.store_flags([uid], {"F"}, "+")
    assert folder.sync() is True
    assert listings == []
    _same(folder, elsewhere)


def _same(a, b):
    """Both indexes hold the same messages under the same names."""
    assert a.uids == b.uids
    assert [(a.entry(u).base, a.entry(u).sub, a.entry(u).flags) for u in a.uids] == \
           [(b.entry(u).base, b.entry(u).sub, b.entry(u).flags) for u in b.uids]


def test_flags_set_by_another_process_are_followed_without_a_listing(folder, elsewhere, in_cur, listings):
    before = folder.modseq
    elsewhere.store_flags([1, 3], {"F"}, "+")
    assert folder.sync() is True
    assert listings == []
    assert folder.entry(1).flags == folder.entry(3).flags == "FS"
    assert folder.changes_since(before) == ([], [1, 3])
    _same(folder, elsewhere)
    # the names are the index's: the file opens under them
    assert folder.read_message(3) == elsewhere.read_message(3)


def test_an_expunge_by_another_process_is_followed_without_a_listing(folder, elsewhere, in_cur, listings):
    before = folder.modseq
    assert elsewhere.expunge([2]) == [2]
    assert folder.sync() is True
    assert listings == []
    assert folder.uids == [1, 3]
    assert folder.changes_since(before) == ([2], [])
    assert folder.vanished_since(before) == [2]


def test_messages_another_process_appended_are_indexed_under_its_uids(folder, elsewhere, in_cur, listings):
    one = elsewhere.append(message(4), "F")
    many = elsewhere.append_many([(message(5), "", None), (message(6), "Sa", None)])
    assert folder.sync() is True
    assert listings == []
    assert folder.uids == [1, 2, 3, one, *many]
    _same(folder, elsewhere)
    assert folder.read_message(many[1]) == message(6)
    assert folder.entry(one).size == elsewhere.entry(one).size


def test_a_copy_into_the_folder_by_another_process_is_followed(folder, elsewhere, in_cur, listings):
    pairs = elsewhere.copy_to([1, 3], elsewhere)      # a copy within the folder: two new files
    assert folder.sync() is True
    assert listings == []
    assert folder.uids == [1, 2, 3] + [new for _, new in pairs]
    _same(folder, elsewhere)


def test_the_chain_passes_through_this_process_own_change(folder, elsewhere, in_cur, listings):
    elsewhere.store_flags([1], {"F"}, "+")
    # our own change before we followed theirs (an APPEND looks at nothing first): our
    # stamp of cur/ is left behind, so our line is kept for our next sync
    uid = folder.append(message(9), "S")
    assert elsewhere.expunge([3]) == [3]       # (it follows ours first: below)
    assert folder.sync() is True
    assert listings == []
    assert folder.uids == [1, 2, uid]
    assert folder.entry(1).flags == "FS"
    assert elsewhere.sync() is False
    assert listings == []
    _same(folder, elsewhere)


def _modseq_file_size(folder):
    return os.path.getsize(os.path.join(folder.path, "clevermail-modseq"))


def test_a_follow_gives_the_writers_modseqs_and_writes_no_line(folder, elsewhere, in_cur, listings):
    before = folder.modseq
    elsewhere.store_flags([1, 3], {"F"}, "+")
    flagged = elsewhere.entry(1).modseq
    assert elsewhere.expunge([2]) == [2]
    expunged = elsewhere.modseq
    uid = elsewhere.append(message(4), "S")
    size = _modseq_file_size(folder)
    assert folder.sync() is True
    assert listings == []
    assert _modseq_file_size(folder) == size        # the writer's lines say it all
    # one MODSEQ per message whichever process is asked (RFC 7162 3.1.1)
    assert [folder.entry(u).modseq for u in folder.uids] == [elsewhere.entry(u).modseq for u in folder.uids]
    assert folder.entry(3).modseq == flagged > before
    assert folder.modseq == elsewhere.modseq == folder.entry(uid).modseq > expunged > flagged
    assert folder.changed_since(flagged - 1) == [1, 3, uid]
    assert folder.changed_since(flagged) == [uid]
    assert folder.changes_since(flagged) == ([2], [])
    assert folder.vanished_since(expunged - 1) == [2]
    assert folder.vanished_since(expunged) == []


def test_a_line_read_in_this_process_own_change_takes_a_modseq_of_its_own(folder, elsewhere, in_cur, listings):
    elsewhere.store_flags([1], {"F"}, "+")
    theirs = elsewhere.entry(1).modseq
    # our change reads their line (not followed yet) and takes a modseq above it,
    # which a session here may be told before the follow
    uid = folder.append(message(9), "S")
    told = folder.modseq
    assert told > theirs
    size = _modseq_file_size(folder)
    assert folder.sync() is True
    assert listings == []
    # so the change followed must come after what was told, or a session at `told`
    # would never hear of it
    assert folder.entry(1).modseq > told
    assert folder.changes_since(told) == ([], [1])
    assert folder.changed_since(told) == [1]
    assert folder.entry(uid).modseq == told
    assert _modseq_file_size(folder) > size        # and logged as this process's


def test_a_line_without_a_modseq_takes_one_of_this_process(folder, elsewhere, in_cur, listings, monkeypatch):
    before = folder.modseq
    real = cur_journal.line
    monkeypatch.setattr(cur_journal, "line", lambda b, a, ops, modseq=None: real(b, a, ops))   # an older writer
    elsewhere.store_flags([2], {"F"}, "+")
    assert folder.sync() is True
    assert listings == []
    assert folder.entry(2).flags == "FS"
    assert folder.entry(2).modseq > before
    assert folder.changes_since(before) == ([], [2])


def test_a_store_on_an_index_another_process_made_stale_keeps_both_changes(folder, elsewhere, in_cur):
    # imaptest's "store": two sessions on two workers change one message's flags
    folder.store_flags([1], {"R"}, "+")
    changed = elsewhere.store_flags([1], {"S"}, "-")     # its index still says "S" alone
    assert [e.uid for e in changed] == [1]
    assert elsewhere.entry(1).flags == "R"
    assert folder.sync() is True and folder.entry(1).flags == "R"
    # and a -FLAGS its stale index thinks has nothing to do
    folder.store_flags([2], {"F"}, "+")
    assert elsewhere.store_flags([2], {"F"}, "-") != []
    assert folder.sync() is True and folder.entry(2).flags == "S"


def test_an_expunge_on_an_index_another_process_made_stale_finds_the_flag(folder, elsewhere, in_cur):
    # imaptest's "expunge2": the flag set here, the EXPUNGE there before it looked
    folder.store_flags([2], {"T"}, "+")
    assert elsewhere.expunge_flagged("T", elsewhere.uids) == [2]
    assert folder.sync() is True and folder.uids == [1, 3]
    # and a flag cleared here is not expunged there on its stale index
    folder.store_flags([3], {"T"}, "+")
    assert elsewhere.sync() is True
    folder.store_flags([3], {"T"}, "-")
    assert elsewhere.expunge_flagged("T", elsewhere.uids) == []
    assert elsewhere.uids == [1, 3]


def test_a_change_by_another_program_is_found_by_a_listing(folder, elsewhere, in_cur, listings):
    elsewhere.store_flags([1], {"F"}, "+")
    # a mail program renames a file itself (no folder lock, no journal line)
    entry = folder.entry(2)
    cur = os.path.join(folder.path, "cur")
    os.rename(os.path.join(cur, entry.base + ":2,S"), os.path.join(cur, entry.base + ":2,RS"))
    assert folder.sync() is True
    assert listings == [cur]
    assert folder.entry(1).flags == "FS" and folder.entry(2).flags == "RS"
    _followed_again(folder, elsewhere, listings, 3)


def test_a_compacted_modseq_file_makes_the_next_look_list(folder, elsewhere, in_cur, listings):
    elsewhere.store_flags([1], {"F"}, "+")
    with elsewhere.lock, elsewhere.file_lock(), elsewhere.changing():
        elsewhere.modseqs._compact(elsewhere.uidlist.uidvalidity, elsewhere.by_uid)
    elsewhere.store_flags([2], {"F"}, "+")
    assert folder.sync() is True
    assert listings == [os.path.join(folder.path, "cur")]
    _same(folder, elsewhere)


def test_a_delivery_into_new_is_listed_and_the_journal_line_before_it_forgotten(folder, elsewhere, in_cur,
                                                                                  listings):
    elsewhere.store_flags([1], {"F"}, "+")
    _deliver(folder, message(7))
    assert folder.sync() is True
    assert sorted(listings) == sorted(os.path.join(folder.path, sub) for sub in ("cur", "new"))
    assert len(folder.uids) == 4 and folder.entry(1).flags == "FS"
    _followed_again(folder, elsewhere, listings, 2)


def _deliver(folder, data):
    """A message linked into new/ as a delivery does (maildir.py), no folder lock."""
    base = maildir.new_base(len(data), len(data), None)
    tmp = maildir.write_tmp(folder.path, data, base)
    maildir.commit_tmp(folder.path, tmp, base)


def _lock_is_held(folder_path):
    """Whether someone holds the folder's file lock now."""
    return flock_is_held(os.path.join(folder_path, locks.LOCK_NAME))


def test_a_delivery_into_cur_links_under_the_folder_file_lock(folder, monkeypatch):
    # a writer's journal line says all that changed in cur/ between its two looks:
    # nothing of this store may link there without the lock
    seen = []
    real = maildir.link_into

    def spy(folder_path, tmp, name, sub="new"):
        seen.append((sub, _lock_is_held(folder_path)))
        return real(folder_path, tmp, name, sub)

    monkeypatch.setattr(maildir, "link_into", spy)
    data = message(8)
    base = maildir.new_base(len(data), len(data), None)
    maildir.commit_tmp(folder.path, maildir.write_tmp(folder.path, data, base), base + ":2,F", sub="cur")
    maildir.commit_tmp(folder.path, maildir.write_tmp(folder.path, data, base + "x"), base + "x", sub="new")
    assert seen == [("cur", True), ("new", False)]
    assert not _lock_is_held(folder.path)
    assert folder.sync() is True and len(folder.uids) == 5


def test_the_rename_of_inbox_moves_the_files_under_its_file_lock(store, folder, monkeypatch):
    held = []
    real = os.rename

    def spy(src, dst):
        if os.path.basename(os.path.dirname(src)) in ("new", "cur"):
            held.append(_lock_is_held(folder.path))
        return real(src, dst)

    monkeypatch.setattr(os, "rename", spy)
    store.rename_folder(ALICE, "INBOX", "Old")
    assert held and all(held)
    assert folder.sync() is True and folder.uids == []
