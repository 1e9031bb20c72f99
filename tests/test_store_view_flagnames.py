"""Tests for the flag-name sets a FolderView keeps (store/view.py, view_values.FlagNames):
made once per flag combination and kept across calls, made anew once the folder's keyword
table changes (a keyword added here, or by another process on the same data dir)."""

from clevermail.store import MailStore
from clevermail.store.view import FolderView, ViewMode
from view_fixtures import ALICE, folder, store  # noqa: F401 (fixtures)


def view(folder):
    return FolderView(folder, "INBOX", ViewMode.SELECT)


def test_names_are_kept_across_calls(folder):
    v = view(folder)
    first = v.messages([1, 2])
    again = v.messages([2, 1])
    # one frozenset per combination, the same object call after call (no rebuild)
    assert first[0].flags is first[1].flags is again[0].flags
    assert first[0].flags == frozenset({"\\Recent"})
    v.set_flags([1], ["\\Seen"], "+")
    assert v.messages([1])[0].flags == frozenset({"\\Seen", "\\Recent"})
    assert v.messages([2])[0].flags is first[1].flags


def test_a_keyword_added_by_another_view_is_named(folder):
    v, other = view(folder), view(folder)
    assert v.messages([1])[0].flags == frozenset({"\\Recent"})
    kept = v.keywords()
    assert kept == [] and v.keywords() is kept       # the same list while nothing changed
    other.set_flags([1, 2], ["$Work"], "+")
    assert v.keywords() == ["$Work"]
    assert v.messages([1])[0].flags == frozenset({"$Work", "\\Recent"})
    other.set_flags([3], ["$Home", "$Work"], "+")
    changes = v.changes()
    assert dict(changes.flags)[3] == frozenset({"$Home", "$Work", "\\Recent"})
    assert [m.flags for m in v.messages([1, 2, 3])] == [
        frozenset({"$Work", "\\Recent"})] * 2 + [frozenset({"$Home", "$Work", "\\Recent"})]


def test_a_keyword_added_by_another_process_is_named(folder, tmp_path):
    v = view(folder)
    assert v.messages([2])[0].flags == frozenset({"\\Recent"})
    # another process: its own MailStore and Folder on the same data dir
    elsewhere = MailStore(tmp_path / "data")
    theirs = elsewhere.open_folder(ALICE, "INBOX")
    try:
        FolderView(theirs, "INBOX", ViewMode.EXAMINE).set_flags([1], ["$Other"], "+")
        FolderView(theirs, "INBOX", ViewMode.EXAMINE).set_flags([2], ["$Later"], "+")
    finally:
        elsewhere.release_folder(theirs)
    changes = v.changes()
    assert v.keywords() == ["$Other", "$Later"]
    assert dict(changes.flags) == {1: frozenset({"$Other", "\\Recent"}),
                                   2: frozenset({"$Later", "\\Recent"})}
    assert [m.flags for m in v.messages([1, 2, 3])] == [
        frozenset({"$Other", "\\Recent"}), frozenset({"$Later", "\\Recent"}), frozenset({"\\Recent"})]
