"""Tests for clevermail.store.view: a session's FolderView of a shared Folder and the
Changes value its changes() returns.

Views are built over a real Folder from a MailStore in tmp_path; "another session"
is a second view, or the Folder / the store itself changing the same folder.
"""

import dataclasses
import os
import threading

import pytest

from clevermail.store import MessageGone
from clevermail.store.view import NO_CHANGES, Changes, FolderView, ViewMode, close_view, open_view
from fakes import RETURN_PATH
from view_fixtures import ALICE, folder, message, store  # noqa: F401 (fixtures)
from waiting import wait_for


def view(folder, readonly=False, owned=()):
    return FolderView(folder, "INBOX", ViewMode.EXAMINE if readonly else ViewMode.SELECT, owned)


# -- the value object ------------------------------------------------------------------

def test_changes_is_a_frozen_value():
    c = Changes(expunged=(1,), flags=((2, frozenset({"\\Seen"})),), new=(4,), recent=frozenset({4}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.new = ()
    assert c == Changes((1,), ((2, frozenset({"\\Seen"})),), (4,), frozenset({4}), False)
    assert c and Changes(gone=True) and not NO_CHANGES and NO_CHANGES == Changes()


# -- the snapshot ----------------------------------------------------------------------

def test_numbering_and_messages(folder):
    v = view(folder)
    assert len(v) == 3 and v.uids == [1, 2, 3]
    assert [v.seq_of(u) for u in (1, 2, 3, 4)] == [1, 2, 3, None]
    assert v.uid_at(2) == 2
    msgs = v.messages([1, 3])
    assert [(m.seq, m.uid) for m in msgs] == [(1, 1), (3, 3)]
    assert msgs[0].flags == frozenset({"\\Recent"})
    assert msgs[0].size == len(RETURN_PATH + message(1))      # as local delivery stored it
    assert isinstance(msgs[0].internaldate, int)
    assert v.read_message(1) == RETURN_PATH + message(1)
    with v.open_message(3) as f:
        assert f.read() == (RETURN_PATH + message(3)).replace(b"\r\n", b"\n")    # disk form
    assert [m.uid for m in v.messages([3, 1])] == [3, 1]
    assert [tuple(m) for m in v.messages([1, 3])] == list(v.iter_messages([1, 3]))
    assert v.sizes() == [len(RETURN_PATH + message(i)) for i in (1, 2, 3)]
    assert v.first_unseen() == 1
    folder.store_flags([1], {"S"}, "+")
    assert v.first_unseen() == 2


def test_messages_expunged_meanwhile_keep_their_index_data(folder):
    """RFC 2180 4.1: until the view forgets an expunged message it still shows its
    flags, date and size; its content is gone.  expunged=False leaves it out."""
    v = view(folder)
    folder.store_flags([2], {"F"}, "+")
    before = v.messages([2])
    folder.expunge([2])
    assert v.messages([1, 2, 3])[1] == before[0]
    assert [tuple(m) for m in v.messages([1, 2, 3])] == list(v.iter_messages([1, 2, 3]))
    assert [(m.seq, m.uid) for m in v.messages([1, 2, 3], expunged=False)] == [(1, 1), (3, 3)]
    assert folder.store_flags([2], {"S"}, "+") == []        # no effect on it
    assert v.messages([2])[0].flags == frozenset({"\\Flagged", "\\Recent"})
    with pytest.raises(MessageGone):
        v.read_message(2)
    assert v.sizes()[1] == 0
    assert v.flag_search([]) == [1, 3]


def test_messages_expunged_long_ago_are_left_out(folder, monkeypatch):
    monkeypatch.setattr("clevermail.store.folder.LOG_LIMIT", 1)
    v = view(folder)
    folder.expunge([1])
    folder.expunge([2])
    assert [(m.seq, m.uid) for m in v.messages([1, 2, 3])] == [(2, 2), (3, 3)]


def test_recent_handed_to_one_view_only(folder, store):
    examine = view(folder, readonly=True)
    first = view(folder)
    second = view(folder)
    assert examine.recent == {1, 2, 3}       # EXAMINE sees \Recent but does not take it
    assert first.recent == {1, 2, 3}
    assert second.recent == set()
    store.deliver_local("", [ALICE], message(4))
    assert second.changes() == Changes(new=(4,), recent=frozenset({4}))
    assert first.changes() == Changes(new=(4,))
    assert examine.changes() == Changes(new=(4,))
    assert (first.recent, second.recent, examine.recent) == ({1, 2, 3}, {4}, {1, 2, 3})


def test_recent_owned_before_is_kept_if_the_message_exists(folder):
    view(folder)                              # takes \Recent of 1..3
    folder.expunge([3])
    again = view(folder, owned={1, 3})
    assert again.recent == {1}


def test_flag_search(folder):
    v = view(folder)
    folder.store_flags([1], {"S"}, "+")
    folder.store_flags([2], {"S", "F"}, "+")
    assert v.flag_search([("\\seen", False)]) == [3]
    assert v.flag_search([("\\seen", True), ("\\flagged", False)]) == [1]
    assert v.flag_search([]) == [1, 2, 3]
    assert v.flag_search([("$label", True)]) is None      # not a system flag
    folder.expunge([1])
    assert v.flag_search([("\\seen", False)]) == [3]
    assert v.flag_search([("\\seen", True)], uids=True) == [2]
    store_view = FolderView(folder, "INBOX", ViewMode.EXAMINE)          # numbering moved
    assert store_view.flag_search([("\\seen", False)]) == [2]
    assert store_view.flag_search([("\\seen", False)], uids=True) == [3]


def test_flags_by_name_mark_seen_and_expunge_deleted(folder):
    v = view(folder)
    assert v.set_flags([1, 3], ["\\Deleted", "$Work", "\\Recent"], "+") == [1, 3]
    assert {m.uid: m.flags for m in v.messages([1, 3])} == {
        1: frozenset({"\\Deleted", "$Work", "\\Recent"}), 3: frozenset({"\\Deleted", "$Work", "\\Recent"})}
    assert v.set_flags([3], ["$work"], "-") == [3]       # keywords match in any case
    assert v.set_flags([1], ["$Unknown"], "-") == []     # removing defines nothing
    assert v.keywords() == ["$Work"]
    v.set_flags([2], ["\\Seen"], "+")
    assert v.mark_seen([1, 2, 3, 99]) == {1, 3}
    assert v.mark_seen([1, 2, 3]) == set()
    assert v.expunge_deleted(among={2, 3}) == [3]
    assert v.expunge_deleted() == [1]
    assert v.expunge_deleted() == []
    assert folder.uids == [2]


def test_expunge_flagged_looks_again_after_another_process_cleared_the_flag(folder):
    # another process renamed the file to drop \Deleted before we took the file lock;
    # our index still says T: the unlink misses, and the rescan must be believed
    v = view(folder)
    folder.store_flags([1], {"T"}, "+")
    entry = folder.get(1)
    os.rename(folder.file_path(entry), os.path.join(folder.path, "cur", entry.base + ":2,"))
    assert v.expunge_deleted() == []
    assert folder.uids == [1, 2, 3]


# -- the diff --------------------------------------------------------------------------

def test_nothing_changed(folder):
    assert view(folder).changes() is NO_CHANGES


def test_expunge_by_another_stays_numbered_until_forgotten(folder):
    v = view(folder)
    folder.expunge([1, 3])
    assert v.changes() == Changes(expunged=(1, 3))
    assert v.uids == [1, 2, 3]
    assert v.changes() is NO_CHANGES           # reported once
    assert v.forget(3) == 3 and v.forget(1) == 1 and v.forget(1) is None
    assert v.uids == [2] and v.recent == {2}


def test_flag_change_by_another_is_reported_own_is_not(folder):
    v, other = view(folder), view(folder)
    other.set_flags([2], ["\\Flagged"], "+")
    # v holds \Recent of the three (it was first): the names say so
    assert v.changes() == Changes(flags=((2, frozenset({"\\Flagged", "\\Recent"})),))
    assert other.changes() is NO_CHANGES
    v.set_flags([1], ["\\Seen"], "+")
    folder.store_flags([1], {"F"}, "+")        # someone else, after our own change
    assert v.changes() == Changes(flags=((1, frozenset({"\\Flagged", "\\Seen", "\\Recent"})),))
    assert other.changes() == Changes(flags=((1, frozenset({"\\Flagged", "\\Seen"})),))


def test_new_mail_joins_the_numbering(folder, store):
    v = view(folder)
    store.deliver_local("", [ALICE], message(4))
    store.deliver_local("", [ALICE], message(5))
    assert v.changes() == Changes(new=(4, 5), recent=frozenset({4, 5}))
    assert v.uids == [1, 2, 3, 4, 5] and v.seq_of(5) == 5


def test_flag_change_of_new_or_expunged_message_is_not_reported(folder, store):
    v = view(folder)
    store.deliver_local("", [ALICE], message(4))
    folder.sync()
    folder.store_flags([4], {"S"}, "+")         # new: the client will fetch its flags
    folder.store_flags([2], {"T"}, "+")
    folder.expunge([2])
    assert v.changes() == Changes(expunged=(2,), new=(4,), recent=frozenset({4}))


def test_log_trimmed_full_compare(folder, monkeypatch):
    v = view(folder)
    folder.store_flags([1], {"F"}, "+")
    folder.expunge([3])
    monkeypatch.setattr(folder, "_log_floor", folder.modseq + 1)
    assert folder.changes_since(v.modseq) is None
    assert v.changes() == Changes(expunged=(3,), flags=((1, frozenset({"\\Flagged", "\\Recent"})),))


def test_changes_made_on_disk_by_another_program(folder):
    v = view(folder)
    entry = folder.entry(2)
    os.rename(folder.file_path(entry), os.path.join(folder.path, "cur", entry.base + ":2,S"))
    os.unlink(folder.file_path(folder.entry(1)))
    assert v.changes() == Changes(expunged=(1,), flags=((2, frozenset({"\\Seen", "\\Recent"})),))


def test_deleted_folder_is_gone(store):
    store.ensure_user(ALICE)
    store.create_folder(ALICE, "Work")
    v = open_view(store, ALICE, "Work", ViewMode.SELECT)
    try:
        store.delete_folder(ALICE, "Work")
        assert v.changes() == Changes(gone=True)
    finally:
        close_view(store, v)
    assert store._open == {}


def test_recent_is_claimed_once_while_a_folder_is_replaced(store, monkeypatch):
    # Two SELECTs at once: one got Foo's Folder just before a RENAME detached it (Foo
    # then created again with a message of UID 1, as the old one had), the other gets
    # the new Folder.  They lock different lock files: if the detached one claimed,
    # both could read the same \Recent mark before either wrote it.
    from clevermail.store.folder_ops import append_message
    from clevermail.store.uidlist import UidList
    store.ensure_user(ALICE)
    store.create_folder(ALICE, "Foo")
    append_message(store, ALICE, "Foo", message(1), [])
    old = store.open_folder(ALICE, "Foo")
    store.rename_folder(ALICE, "Foo", "Bar")
    store.create_folder(ALICE, "Foo")
    append_message(store, ALICE, "Foo", message(2), [])
    real_claim = UidList.claim_recent
    read, go = threading.Event(), threading.Event()
    first = threading.current_thread()

    def claim(uidlist):
        if threading.current_thread() is first:
            return real_claim(uidlist)
        uidlist.refresh()
        mark = uidlist.recent_upto          # read...
        read.set()
        go.wait(10)                         # ...the other SELECT claims meanwhile...
        real_claim(uidlist)                 # ...then write
        return mark

    monkeypatch.setattr(UidList, "claim_recent", claim)
    results = []

    def select_old():
        try:
            results.append(FolderView(old, "Foo", ViewMode.SELECT).recent)
        except FileNotFoundError:
            results.append("gone")

    t = threading.Thread(target=select_old)
    t.start()
    try:
        wait_for(lambda: read.is_set() or not t.is_alive())
        new = open_view(store, ALICE, "Foo", ViewMode.SELECT)
    finally:
        go.set()
        t.join(10)
    try:
        assert new.recent == {1}
        assert results == ["gone"]          # the detached Folder claimed nothing
    finally:
        close_view(store, new)
        store.release_folder(old)


def test_the_three_modes(folder, store):
    maildrop = FolderView(folder, "INBOX", ViewMode.MAILDROP)     # POP3
    assert maildrop.recent == set() and not maildrop.readonly
    examine = FolderView(folder, "INBOX", ViewMode.EXAMINE)
    assert examine.recent == {1, 2, 3} and examine.readonly
    select = FolderView(folder, "INBOX", ViewMode.SELECT)         # neither took \Recent
    assert select.recent == {1, 2, 3} and not select.readonly
    store.deliver_local("", [ALICE], message(4))
    assert maildrop.changes() == Changes(new=(4,))                # never claims either
    assert select.changes() == Changes(new=(4,), recent=frozenset({4}))


# -- whole-folder reads (store/view_index.py) ----------------------------------------------------

def columns_rows(cols):
    """IndexColumns as iter_messages' rows."""
    return list(zip(cols.seqs, cols.uids, map(cols.flag_names.__getitem__, cols.flag_keys),
                    cols.dates(), cols.sizes(), cols.modseqs()))


def test_index_columns_are_what_iter_messages_gives(folder, store):
    from clevermail.store.view_index import index_columns, message_paths
    folder.store_flags([2], {"S", "F"}, "+")
    for v in (view(folder), view(folder, readonly=True, owned=(3,))):
        for seqs in (range(1, 4), [3, 1], range(2, 4), [], range(1, 1)):
            cols = index_columns(v, seqs)
            assert columns_rows(cols) == list(v.iter_messages(seqs)) and len(cols) == len(seqs)
            assert cols.ascending == isinstance(seqs, range)
    v = view(folder)        # \Recent went to the first view
    cols = index_columns(v, range(1, 4))
    assert [cols.flag_names[k] for k in cols.flag_keys] == [frozenset(), frozenset({"\\Seen", "\\Flagged"}),
                                                             frozenset()]
    paths = message_paths(v, [3, 1])
    with open(paths[0], "rb") as f, v.open_message(3) as g:
        assert f.read() == g.read()
    folder.expunge([2])
    # a message expunged but not yet reported: iter_messages shows what it had
    assert index_columns(v, range(1, 4)) is None
    assert message_paths(v, [2, 1])[0] is None
