"""Tests for clevermail.store.modseq and the folder's modseq questions: a modseq per
message kept on disk (clevermail-modseq) and across restarts (a new MailStore over
the same directory, with and without the index cache), one modseq per change,
expunges remembered with their modseq, compaction, another process's changes
(a second MailStore over the same data), and changes made on disk by another program."""

import os

import pytest

from clevermail.store import MailStore, index, modseq
from clevermail.store.modseq import ModseqLog
from clevermail.store.uid_sets import parse_uid_set, uid_set_text

USER = "alice@example.test"


def msg(n):
    return b"Subject: message %d\r\n\r\nbody %d\r\n" % (n, n)


@pytest.fixture
def data(tmp_path):
    return str(tmp_path / "data")


class Opened:
    """INBOX of a MailStore over `data`, released (and its index saved) on close."""

    def __init__(self, data):
        self.store = MailStore(data)
        self.folder = self.store.open_folder(USER, "INBOX")

    def close(self):
        self.store.release_folder(self.folder)
        self.store.save_indexes()


def modseqs(folder):
    return {uid: folder.by_uid[uid].modseq for uid in folder.uids}


def fill(folder, n):
    return [folder.append(msg(i)) for i in range(n)]


def test_uid_sets():
    assert uid_set_text([1, 2, 3, 7, 9, 10]) == "1:3,7,9:10"
    assert uid_set_text([]) == ""
    assert parse_uid_set("1:3,7,9:10") == [1, 2, 3, 7, 9, 10]
    with pytest.raises(ValueError):
        parse_uid_set("1:x")


def test_one_modseq_per_change_and_none_for_no_change(data):
    o = Opened(data)
    f = o.folder
    start = f.modseq
    assert start >= 1
    uids = f.append_many([(msg(i), "", None) for i in range(3)])
    batch = f.modseq
    assert batch > start and set(modseqs(f).values()) == {batch}
    f.store_flags(uids[:2], "S", "+")
    assert f.modseq == batch + 1
    assert modseqs(f) == {uids[0]: batch + 1, uids[1]: batch + 1, uids[2]: batch}
    f.store_flags(uids[:2], "S", "+")          # nothing changes: no new modseq
    assert f.modseq == batch + 1
    f.expunge([uids[0]])
    assert f.modseq == batch + 2
    assert f.vanished_since(batch + 1) == [uids[0]]
    assert f.vanished_since(batch + 2) == []
    assert f.changed_since(batch) == [uids[1]]
    assert f.changed_since(start) == uids[1:]
    assert f.status().highestmodseq == f.modseq
    o.close()


@pytest.mark.parametrize("cached", [False, True])
def test_modseqs_and_expunges_survive_a_restart(data, monkeypatch, cached):
    monkeypatch.setattr(index, "MIN_MESSAGES", 0 if cached else 10 ** 9)
    o = Opened(data)
    uids = fill(o.folder, 5)
    o.folder.store_flags([uids[1]], "F", "+")
    mid = o.folder.modseq
    o.folder.expunge([uids[2], uids[3]])
    o.folder.store_flags([uids[4]], "S", "+")
    before, highest = modseqs(o.folder), o.folder.modseq
    o.close()
    assert os.path.exists(os.path.join(o.folder.path, index.FILENAME)) == cached

    o = Opened(data)
    f = o.folder
    assert modseqs(f) == before and f.modseq == highest
    assert f.vanished_since(mid) == [uids[2], uids[3]]
    assert f.changed_since(mid) == [uids[4]]
    f.store_flags([uids[0]], "D", "+")
    assert f.modseq == highest + 1 and f.changed_since(highest) == [uids[0]]
    o.close()


def test_a_flag_change_by_another_program_takes_a_new_modseq(data):
    o = Opened(data)
    f = o.folder
    uid = fill(f, 2)[0]
    entry = f.by_uid[uid]
    old = os.path.join(f.path, entry.sub, entry.filename())
    os.rename(old, os.path.join(f.path, "cur", entry.base + ":2,FS"))
    highest = f.modseq
    assert f.sync(force=True)
    assert f.by_uid[uid].modseq == f.modseq > highest
    assert f.changed_since(highest) == [uid]
    o.close()


def test_an_expunge_the_log_missed_is_logged_at_the_next_start(data):
    """A crash after the unlink, before the log line: the next start finds the message
    gone and remembers it as expunged, above every modseq handed out."""
    o = Opened(data)
    uids = fill(o.folder, 3)
    entry = o.folder.by_uid[uids[1]]
    highest = o.folder.modseq
    os.unlink(os.path.join(o.folder.path, entry.sub, entry.filename()))
    o.store.release_folder(o.folder)        # no sync, no index saved: as after a crash
    o = Opened(data)
    assert o.folder.uids == [uids[0], uids[2]]
    assert o.folder.vanished_since(highest) == [uids[1]]
    assert o.folder.modseq > highest
    o.close()


def test_another_process_changes_are_seen_with_newer_modseqs(data):
    a, b = Opened(data), Opened(data)
    uids = fill(a.folder, 3)
    b.folder.sync()
    seen = a.folder.modseq
    b.folder.store_flags([uids[0]], "S", "+")
    b.folder.expunge([uids[1]])
    assert a.folder.sync()
    assert a.folder.modseq > seen
    assert a.folder.changed_since(seen) == [uids[0]]
    assert a.folder.vanished_since(seen) == [uids[1]]
    # a change in `a` now goes above everything `b` gave out
    a.folder.store_flags([uids[2]], "F", "+")
    assert a.folder.modseq > b.folder.modseq
    a.close()
    b.close()


def test_compaction_keeps_what_matters_and_folds_old_expunges(data, monkeypatch):
    monkeypatch.setattr(modseq, "KEEP_EXPUNGED", 3)
    monkeypatch.setattr(ModseqLog, "needs_compaction", lambda self, live: self.lines - self.base > 6)
    o = Opened(data)
    f = o.folder
    uids = fill(f, 12)
    marks = []
    for uid in uids[:8]:
        marks.append(f.modseq)
        f.expunge([uid])
    for uid in uids[8:]:
        f.store_flags([uid], "S", "+")
    path = os.path.join(f.path, modseq.FILENAME)
    with open(path) as fh:
        lines = fh.read().splitlines()
    assert len(lines) < 1 + 12 + 8        # compacted at least once
    # the oldest expunges are folded into the floor; the newest are exact
    assert f.vanished_since(marks[0]) is None
    assert f.vanished_since(marks[-2]) == uids[6:8]
    before, highest = modseqs(f), f.modseq
    o.close()
    o = Opened(data)
    assert modseqs(o.folder) == before and o.folder.modseq == highest
    assert o.folder.vanished_since(marks[-2]) == uids[6:8]
    assert o.folder.vanished_since(marks[0]) is None
    o.close()


def test_a_damaged_or_foreign_file_costs_only_new_modseqs(data):
    o = Opened(data)
    uids = fill(o.folder, 2)
    path = os.path.join(o.folder.path, modseq.FILENAME)
    highest = o.folder.modseq
    o.store.release_folder(o.folder)
    with open(path, "a") as fh:
        fh.write("garbage line\nE x y\n")
    o = Opened(data)
    assert o.folder.uids == uids and o.folder.modseq >= highest
    o.folder.store_flags([uids[0]], "S", "+")
    assert o.folder.modseq > highest
    o.close()


def test_the_log_is_read_through_a_kept_descriptor_that_follows_replacements(tmp_path, monkeypatch):
    """Two logs on one folder (two processes): each reads what the other appended
    through its kept descriptor, without looking the path up again (an fstat, no stat
    or open per look), and finds the file anew after the other compacted it (renamed
    a new file over it) or it was deleted with its folder."""
    a, b = ModseqLog(str(tmp_path)), ModseqLog(str(tmp_path))
    assert a.refresh() == (True, [])
    a.append(7, [("M", 2, [1, 2])])
    assert b.refresh() == (True, [("M", 2, [1, 2])])
    a.refresh()
    b.append(7, [("E", 3, [1])])
    looked_up = []
    for name in ("stat", "open", "lstat"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda *args, real=real, name=name, **kw:
                            looked_up.append(name) or real(*args, **kw))
    assert a.refresh() == (False, [("E", 3, [1])])
    assert a.refresh() == (False, [])
    assert looked_up == []
    monkeypatch.undo()
    b.refresh()
    b.compact(7, {2: 2}, [(3, 1)], 0)
    assert a.refresh() == (True, [("M", 2, [2]), ("E", 3, [1])])
    a.append(7, [("M", 4, [2])])
    assert b.refresh() == (False, [("M", 4, [2])])
    assert a.highest == b.highest == 4
    os.unlink(os.path.join(str(tmp_path), modseq.FILENAME))
    assert a.refresh() == (True, [])
    a.append(7, [("M", 5, [2])])            # started anew, its header first
    assert b.refresh() == (True, [("M", 5, [2])]) and b.highest == 5
    a.close()
    b.close()
