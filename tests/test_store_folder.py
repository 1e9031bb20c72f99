"""Tests for clevermail.store.folder: index sync, flags, keywords, expunge, append, copy,
change log and change notification."""

import os
import select
import threading

import pytest

from clevermail.store import folder as foldermod
from clevermail.store import changes, maildir, scan
from clevermail.store.errors import MessageGone
from clevermail.store.flags import MAX_KEYWORDS
from clevermail.store.sync import FolderSync
from clevermail.store.mailstore import MailStore
from store_helpers import USER, inbox, msg, names, store  # noqa: F401 (fixtures)
from fakes import RETURN_PATH


# -- sync ---------------------------------------------------------------------------------
def test_sync_sees_deliveries(store, inbox):
    assert len(inbox) == 0
    assert inbox.sync() is False
    for i in range(3):
        store.deliver_local("", [USER], msg(i))
    assert inbox.sync() is True
    assert inbox.uids == [1, 2, 3]
    assert inbox.uidnext == 4
    assert inbox.uidvalidity > 0
    assert inbox.sync() is False
    e = inbox.entry(2)
    wire = RETURN_PATH + msg(1)         # as local delivery stores it
    assert (e.uid, e.sub, e.flags, e.size, e.wsize) == (2, "new", "", len(wire) - 4, len(wire))
    assert inbox.read_message(2) == wire


def test_sizes_come_from_names_not_files(store, inbox, monkeypatch):
    def no_measuring(*a):
        raise AssertionError("opened a message file for its size")

    monkeypatch.setattr(scan, "measure", no_measuring)
    for i in range(5):
        store.deliver_local("", [USER], msg(i, b"x" * i))
    inbox.sync()
    assert [inbox.entry(u).wsize for u in inbox.uids] == [len(RETURN_PATH + msg(i, b"x" * i)) for i in range(5)]


def test_foreign_file_without_sizes_is_measured(inbox):
    path = os.path.join(inbox.path, "new", "1700000000.foreign.host")
    with open(path, "wb") as f:
        f.write(b"Subject: x\n\nbody\n")
    inbox.sync()
    e = inbox.entry(inbox.uids[0])
    assert (e.size, e.wsize, e.date, e.base) == (17, 20, 1700000000, "1700000000.foreign.host")
    assert inbox.read_message(e.uid) == b"Subject: x\r\n\r\nbody\r\n"


def test_only_changed_directories_are_listed(store, inbox, monkeypatch):
    store.deliver_local("", [USER], msg(1))
    inbox.sync()
    listed = []
    real = FolderSync._list
    monkeypatch.setattr(FolderSync, "_list", lambda self, sub: listed.append(sub) or real(self, sub))
    assert inbox.sync() is False
    assert listed == []
    store.deliver_local("", [USER], msg(2))
    assert inbox.sync() is True
    assert listed == ["new"]


def test_external_flag_change_is_not_an_expunge(store, inbox):
    store.deliver_local("", [USER], msg(1))
    store.deliver_local("", [USER], msg(2))
    inbox.sync()
    mark = inbox.modseq
    base = inbox.entry(1).base
    # what mutt does when a message is read: new/X -> cur/X:2,S
    os.rename(os.path.join(inbox.path, "new", base), os.path.join(inbox.path, "cur", base + ":2,S"))
    assert inbox.sync() is True
    assert inbox.uids == [1, 2]
    assert (inbox.entry(1).sub, inbox.entry(1).flags) == ("cur", "S")
    assert inbox.changes_since(mark) == ([], [1])
    assert inbox.flag_names(inbox.entry(1).flags) == ("\\Seen",)


def test_external_delete_is_an_expunge(store, inbox):
    store.deliver_local("", [USER], msg(1))
    store.deliver_local("", [USER], msg(2))
    inbox.sync()
    mark = inbox.modseq
    os.unlink(inbox.file_path(inbox.entry(1)))
    assert inbox.sync() is True
    assert inbox.uids == [2]
    assert inbox.changes_since(mark) == ([1], [])
    with pytest.raises(MessageGone):
        inbox.entry(1)


def test_open_message_follows_a_moved_file(store, inbox):
    store.deliver_local("", [USER], msg(1))
    inbox.sync()
    base = inbox.entry(1).base
    os.rename(os.path.join(inbox.path, "new", base), os.path.join(inbox.path, "cur", base + ":2,F"))
    with inbox.open_message(1) as f:
        assert f.read() == maildir.to_disk(RETURN_PATH + msg(1))
    assert inbox.entry(1).flags == "F"


def test_open_message_gone(store, inbox):
    store.deliver_local("", [USER], msg(1))
    inbox.sync()
    os.unlink(inbox.file_path(inbox.entry(1)))
    with pytest.raises(MessageGone):
        inbox.open_message(1)
    with pytest.raises(MessageGone):
        inbox.read_message(99)


# -- flags ---------------------------------------------------------------------------------
def test_system_flag_letters(inbox):
    assert inbox.letters_for(["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"]) == set("SRFTD")
    assert inbox.letters_for(["\\SEEN", "\\deleted"]) == {"S", "T"}
    assert inbox.letters_for(["\\Recent", "\\Unknown"]) == set()
    assert inbox.flag_names("DFRST") == ("\\Draft", "\\Flagged", "\\Answered", "\\Seen", "\\Deleted")


def test_store_flags_modes_rename_into_cur(store, inbox, tmp_path):
    for i in range(3):
        store.deliver_local("", [USER], msg(i))
    inbox.sync()
    mark = inbox.modseq
    changed = inbox.store_flags([1, 2], {"S"}, "+")
    assert [e.uid for e in changed] == [1, 2]
    assert inbox.entry(1).filename().endswith(":2,S")
    assert names(inbox, "new") == [inbox.entry(3).base]
    assert names(inbox, "cur") == sorted([inbox.entry(1).base + ":2,S", inbox.entry(2).base + ":2,S"])
    assert inbox.changes_since(mark) == ([], [1, 2])
    assert inbox.store_flags([1], {"S"}, "+") == []          # no change: not reported
    assert [e.uid for e in inbox.store_flags([1], {"F", "T"}, "=")] == [1]
    assert inbox.entry(1).flags == "FT"
    assert [e.uid for e in inbox.store_flags([1], {"T"}, "-")] == [1]
    assert inbox.entry(1).flags == "F"
    assert inbox.store_flags([99], {"S"}, "+") == []
    # a second view (another process) reads the same flags from the names
    other = MailStore(str(tmp_path / "data"))
    view = other.open_folder(USER, "INBOX")
    assert [(u, view.entry(u).flags) for u in view.uids] == [(1, "F"), (2, "S"), (3, "")]
    other.release_folder(view)


def test_store_flags_equal_moves_new_to_cur(store, inbox):
    store.deliver_local("", [USER], msg(1))
    inbox.sync()
    assert inbox.store_flags([1], set(), "=") == []           # flags unchanged ...
    assert inbox.entry(1).sub == "cur"                          # ... but no longer new
    assert names(inbox, "cur") == [inbox.entry(1).base + ":2,"]


def test_keywords(store, inbox, tmp_path):
    store.deliver_local("", [USER], msg(1))
    inbox.sync()
    letters = inbox.letters_for(["$Label1", "\\Seen", "Work"])
    assert letters == {"a", "b", "S"}
    assert inbox.keywords() == ["$Label1", "Work"]
    assert inbox.letters_for(["work", "$label1"]) == {"a", "b"}     # case-insensitive
    inbox.store_flags([1], letters, "+")
    assert inbox.entry(1).flags == "Sab"
    assert inbox.flag_names("Sab") == ("\\Seen", "$Label1", "Work")
    assert inbox.letters_for(["New"], create=False) == set()
    assert inbox.keywords() == ["$Label1", "Work"]
    other = MailStore(str(tmp_path / "data")).open_folder(USER, "INBOX")
    assert other.keywords() == ["$Label1", "Work"]
    assert other.flag_names(other.entry(1).flags) == ("\\Seen", "$Label1", "Work")


def test_keyword_slots_are_limited(inbox):
    for i in range(MAX_KEYWORDS):
        assert inbox.can_add_keywords()
        assert inbox.letters_for([f"k{i}"]) == {chr(97 + i)}
    assert not inbox.can_add_keywords()
    assert inbox.letters_for(["one-too-many"]) == set()
    assert len(inbox.keywords()) == 26


# -- expunge / append / copy --------------------------------------------------------------------
def test_expunge(store, inbox):
    for i in range(4):
        store.deliver_local("", [USER], msg(i))
    inbox.sync()
    inbox.store_flags([2], {"T"}, "+")
    mark = inbox.modseq
    paths_before = {u: inbox.file_path(inbox.entry(u)) for u in inbox.uids}
    assert inbox.expunge([2, 3, 42]) == [2, 3]
    assert inbox.uids == [1, 4]
    assert not os.path.exists(paths_before[2]) and not os.path.exists(paths_before[3])
    assert inbox.changes_since(mark) == ([2, 3], [])
    store.deliver_local("", [USER], msg(9))
    inbox.sync()
    assert inbox.uids == [1, 4, 5]


def test_expunge_does_not_hide_a_concurrent_delivery(store, inbox, monkeypatch):
    """A delivery landing in new/ while an expunge runs must be found by the next sync
    (deliveries do not take the folder lock)."""
    store.deliver_local("", [USER], msg(1))
    inbox.sync()
    real = changes.maildirsize.append
    state = {"delivered": False}

    def ledger_append_with_delivery(root, usage):
        # the expunge writes its ledger line under its locks, after the unlinks
        if not state["delivered"]:
            state["delivered"] = True
            store.deliver_local("", [USER], msg(2))       # another SMTP session, same moment
        return real(root, usage)

    monkeypatch.setattr(changes.maildirsize, "append", ledger_append_with_delivery)
    assert inbox.expunge([1]) == [1]
    monkeypatch.setattr(changes.maildirsize, "append", real)
    assert state["delivered"]
    inbox.sync()
    assert inbox.uids == [2]


def test_append_with_flags_and_date(inbox):
    wire = msg(7)
    uid = inbox.append(wire, letters="SF", date=1_600_000_000)
    assert uid == 1 and inbox.uids == [1]
    e = inbox.entry(1)
    assert (e.sub, e.flags, e.date, e.size, e.wsize) == ("cur", "FS", 1_600_000_000, len(wire) - 3, len(wire))
    assert names(inbox, "cur") == [e.base + ":2,FS"]
    assert inbox.read_message(1) == wire
    assert inbox.sync() is False                  # our own change needs no relisting
    assert inbox.append(msg(8)) == 2


def test_copy_to(store, inbox):
    store.create_folder(USER, "Projects")
    target = store.open_folder(USER, "Projects")
    try:
        for i in range(3):
            store.deliver_local("", [USER], msg(i))
        inbox.sync()
        inbox.store_flags([2], {"F"}, "+")
        target.append(msg(100))
        assert inbox.copy_to([2, 3, 77], target) == [(2, 2), (3, 3)]
        assert target.uids == [1, 2, 3]
        assert target.entry(2).flags == "F"
        assert target.read_message(3) == RETURN_PATH + msg(2)
        assert os.stat(inbox.file_path(inbox.entry(2))).st_ino == os.stat(target.file_path(target.entry(2))).st_ino
        assert inbox.uids == [1, 2, 3]
        assert os.listdir(os.path.join(target.path, "tmp")) == []
    finally:
        store.release_folder(target)


def test_copy_gives_uids_in_source_order_whatever_the_dates(store, inbox):
    """Copies keep their internal dates, so their file names need not sort in source
    order; the new UIDs still follow the source UIDs (COPYUID pairs them in order)."""
    store.create_folder(USER, "Kept")
    target = store.open_folder(USER, "Kept")
    try:
        inbox.append(msg(1), "", 1_700_000_000)
        inbox.append(msg(2), "", 1_600_000_000)     # older than the message before it
        inbox.append(msg(3), "", 1_650_000_000)
        assert inbox.copy_to([1, 2, 3], target) == [(1, 1), (2, 2), (3, 3)]
        assert [target.entry(u).date for u in target.uids] == [1_700_000_000, 1_600_000_000, 1_650_000_000]
        assert target.read_message(2) == msg(2)
    finally:
        store.release_folder(target)


# -- change log and notification -------------------------------------------------------------
def test_changes_since_log_limit(store, inbox, monkeypatch):
    monkeypatch.setattr(foldermod, "LOG_LIMIT", 5)
    store.deliver_local("", [USER], msg(1))
    inbox.sync()
    mark = inbox.modseq
    for i in range(10):
        inbox.store_flags([1], {"S"}, "+" if i % 2 == 0 else "-")
    assert inbox.changes_since(mark) is None
    recent = inbox.modseq - 2
    assert inbox.changes_since(recent) == ([], [1, 1])


def looked(waiter):
    """What FolderView.changes does around its look at the folder."""
    waiter.looking()
    waiter.looked()


def test_waiters_woken_by_every_kind_of_change(store, inbox):
    # a waiter that looks at the folder after each wake-up (as FolderView.changes does)
    waiter = inbox.waiters.join()
    looked(waiter)
    store.deliver_local("", [USER], msg(1))          # notify of an open folder
    assert waiter.woken
    looked(waiter)
    inbox.sync()                         # new message found
    assert waiter.woken
    for change in (lambda: inbox.store_flags([1], {"S"}, "+"), lambda: inbox.append(msg(2)),
                   lambda: inbox.expunge([1])):
        looked(waiter)
        change()
        assert waiter.woken
    looked(waiter)
    assert inbox.sync() is False
    assert not waiter.woken              # nothing changed: nobody woken
    waiter.close()
    assert len(inbox.waiters) == 0


def test_a_sleeping_waiter_is_woken_through_the_folders_descriptor(store, inbox):
    waiter = inbox.waiters.join()
    looked(waiter)
    fd = waiter.arm()
    store.deliver_local("", [USER], msg(1))
    assert select.select([fd], [], [], 0)[0] == [fd]   # the poll beside the socket returns
    waiter.disarm()
    assert waiter.arm() is None          # woken: it looks before it sleeps again
    waiter.close()


def test_notify_does_not_wait_for_the_folder_lock(store, inbox):
    """A delivery wakes waiters while another thread holds the folder lock (an IMAP
    sync or expunge): SMTP's 250 never queues behind it."""
    woken = []
    inbox.waiters.add(lambda: woken.append(1))
    waiter = inbox.waiters.join()
    looked(waiter)
    held, done = threading.Event(), threading.Event()
    outcome = {}

    def holder():
        with inbox.lock:
            held.set()
            # if notify() needed the lock it would still be blocked when this gives up
            outcome["released_by_timeout"] = not done.wait(30)

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert held.wait(30)
        store.deliver_local("", [USER], msg(1))         # commit -> Folder.notify()
        inbox.notify()
        done.set()
    finally:
        done.set()
        t.join()
    assert outcome == {"released_by_timeout": False}
    assert woken == [1, 1] and waiter.woken
    waiter.close()


def test_claim_recent_once(store, inbox):
    store.deliver_local("", [USER], msg(1))
    store.deliver_local("", [USER], msg(2))
    inbox.sync()
    assert inbox.claim_recent() == 0     # UIDs above 0 are \Recent for this caller
    assert inbox.claim_recent() == 2     # and for nobody else
    store.deliver_local("", [USER], msg(3))
    inbox.sync()
    assert inbox.claim_recent() == 2
