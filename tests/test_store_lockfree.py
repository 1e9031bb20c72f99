"""The looks that take no folder lock (store/sync.py `_look`, FolderView.changes'
first test, FlagMap's table, Folder.open_message's first try): a reader may miss a
change still being made, never see half of one, and never lose one for good.

"Another process" is a second MailStore on the same data directory (its own Folder
objects, file locks and index, as a [server] worker has); racing writers are threads.
"""

import os
import threading

import pytest

from clevermail.store import MailStore, flags
from clevermail.store.view import NO_CHANGES, Changes, FolderView, ViewMode
from fakes import RETURN_PATH
from view_fixtures import ALICE, elsewhere, folder, message, store  # noqa: F401 (fixtures)



def view(folder):
    return FolderView(folder, "INBOX", ViewMode.SELECT, recent=False)


def test_another_process_changes_between_two_quiet_looks_are_seen(folder, elsewhere):
    v = view(folder)
    assert v.changes() is NO_CHANGES and folder.sync() is False     # the quiet looks
    uid = elsewhere.append(message(4))
    assert v.changes() == Changes(new=(uid,))
    assert v.changes() is NO_CHANGES
    elsewhere.store_flags([2], {"F"}, "+")
    assert v.changes() == Changes(flags=((2, frozenset({"\\Flagged"})),))
    assert v.changes() is NO_CHANGES
    elsewhere.expunge([1])
    assert v.changes() == Changes(expunged=(1,))
    elsewhere.letters_for(["$Important"])
    elsewhere.store_flags([3], elsewhere.letters_for(["$Important"]), "+")
    assert v.changes() == Changes(flags=((3, frozenset({"$Important"})),))
    assert folder.keywords() == ["$Important"]


def test_a_quiet_look_does_not_wait_for_a_writer_holding_the_lock(folder):
    v = view(folder)
    assert folder.letters_for(["$Known"]) == {"a"}
    assert v.changes() is NO_CHANGES
    held, done = threading.Event(), threading.Event()

    def writer():
        with folder.lock:
            held.set()
            done.wait(60)

    t = threading.Thread(target=writer)
    t.start()
    held.wait()
    answers = []
    # each of these used to take the folder's lock: with a writer inside, they waited
    looker = threading.Thread(target=lambda: answers.extend(
        [folder.sync(), v.changes(), folder.keywords(), folder.can_add_keywords(),
         folder.letters_for(["\\Seen", "$known"]), folder.read_message(1)]))
    looker.start()
    looker.join(30)
    finished = not looker.is_alive()
    done.set()
    t.join()
    looker.join()
    assert finished
    assert answers == [False, NO_CHANGES, ["$Known"], True, {"S", "a"}, RETURN_PATH + message(1)]


def _race(folder, work, looks):
    """Run `work` in a thread while `looks` (a FolderView) looks again and again;
    every Changes it got, with one last look after the work is done."""
    seen = []
    stop = threading.Event()
    errors = []

    def run():
        try:
            work()
        except BaseException as exc:       # pragma: no cover - reported below
            errors.append(exc)
        finally:
            stop.set()

    t = threading.Thread(target=run)
    t.start()
    while not stop.is_set():
        changes = looks.changes()
        if changes.new:
            # a new UID is only ever reported whole: its message is in the index
            got = looks.messages([looks.seq_of(u) for u in changes.new])
            assert [m.uid for m in got] == list(changes.new)
        seen.append(changes)
    t.join()
    seen.append(looks.changes())
    assert not errors
    return seen


def test_racing_appends_in_this_process_are_never_missed(folder):
    v = view(folder)
    appended = []
    seen = _race(folder, lambda: appended.extend(folder.append(message(10 + i)) for i in range(150)), v)
    assert [u for c in seen for u in c.new] == appended
    assert v.uids == folder.uids


def test_racing_appends_of_another_process_are_never_missed(folder, elsewhere):
    v = view(folder)
    appended = []
    seen = _race(folder, lambda: appended.extend(elsewhere.append(message(10 + i)) for i in range(150)), v)
    assert [u for c in seen for u in c.new] == appended
    assert v.uids == folder.uids == sorted(elsewhere.uids)


@pytest.mark.parametrize("writer", ["here", "elsewhere"])
def test_racing_flag_changes_and_expunges_are_never_lost(folder, elsewhere, writer):
    w = folder if writer == "here" else elsewhere
    extra = w.append_many([(message(10 + i), "", None) for i in range(60)])
    v = view(folder)
    v.changes()

    def work():
        for i, uid in enumerate(extra):
            w.store_flags([1], {"F"}, "+" if i % 2 else "-")
            if i % 3 == 0:
                w.expunge([uid])

    seen = _race(folder, work, v)
    last_flags = [names for c in seen for uid, names in c.flags if uid == 1]
    assert last_flags[-1] == frozenset({"\\Flagged"})       # the last change: i = 59, "+"
    assert [u for c in seen for u in c.expunged] == extra[::3]
    assert v.messages([1])[0].flags == frozenset({"\\Flagged"})


def test_a_keyword_whose_save_failed_is_never_shown(folder, monkeypatch):
    def refuse(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(flags, "atomic_write", refuse)
    with pytest.raises(OSError):
        folder.letters_for(["$Later"])
    assert folder.keywords() == []
    monkeypatch.undo()
    assert folder.letters_for(["$Later"]) == {"a"}
    assert folder.keywords() == ["$Later"]


def test_new_mail_another_view_claimed_is_not_claimed_again(folder, store, monkeypatch):
    first = FolderView(folder, "INBOX", ViewMode.SELECT)
    second = FolderView(folder, "INBOX", ViewMode.SELECT)
    store.deliver_local("", [ALICE], message(4))
    assert first.changes() == Changes(new=(4,), recent=frozenset({4}))
    claims = []
    real = folder.claim_recent
    monkeypatch.setattr(folder, "claim_recent", lambda: claims.append(1) or real())
    # the mark already covers UID 4: nothing to claim, no file lock to take for it
    assert second.changes() == Changes(new=(4,))
    assert claims == []
    store.deliver_local("", [ALICE], message(5))
    assert second.changes() == Changes(new=(5,), recent=frozenset({5}))
    assert claims == [1]


# -- the folder list, kept while the user's root directory is unchanged (store/tree.py) --

def test_the_folder_list_follows_another_process_and_other_programs(store, tmp_path):
    store.ensure_user(ALICE)
    other = MailStore(tmp_path / "data")
    before = set(store.list_folders(ALICE))
    assert set(store.list_folders(ALICE)) == before          # the kept listing
    other.create_folder(ALICE, "Work", special_use=("\\Archive",))
    assert set(store.list_folders(ALICE)) == before | {"Work"}
    assert store.special_use(ALICE)["Work"] == ("\\Archive",)
    other.rename_folder(ALICE, "Work", "Play")
    assert set(store.list_folders(ALICE)) == before | {"Play"}
    assert store.special_use(ALICE)["Play"] == ("\\Archive",)
    other.delete_folder(ALICE, "Play")
    assert set(store.list_folders(ALICE)) == before
    assert "Play" not in store.special_use(ALICE)
    # a program making a Maildir++ folder with cur/ last: listed once cur/ is there
    half = os.path.join(store.users.root(ALICE), ".Made")
    os.mkdir(half)
    assert set(store.list_folders(ALICE)) == before
    os.mkdir(os.path.join(half, "cur"))
    assert set(store.list_folders(ALICE)) == before | {"Made"}


def test_the_folder_list_and_special_use_come_from_one_look(store, tmp_path, monkeypatch):
    store.ensure_user(ALICE)
    other = MailStore(tmp_path / "data")
    root = store.users.root(ALICE)
    looks = []
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda path, *a, **k: (
        looks.append(1) if os.fspath(path) == root else None) or real_stat(path, *a, **k))
    listing = store.folder_listing(ALICE)
    assert (list(listing.names), dict(listing.special_use)) == (store.list_folders(ALICE),
                                                               store.special_use(ALICE))
    looks.clear()
    assert store.folder_listing(ALICE) is listing   # unchanged tree: the same object
    assert looks == [1]                     # LIST: the root's mtime read once
    with pytest.raises(TypeError):
        listing.special_use["Work"] = ("\\Archive",)     # shared: read-only
    other.create_folder(ALICE, "Work", special_use=("\\Archive",))
    changed = store.folder_listing(ALICE)
    assert changed is not listing and "Work" not in listing.names
    assert "Work" in changed.names and changed.special_use["Work"] == ("\\Archive",)
