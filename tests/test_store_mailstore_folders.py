"""Tests for clevermail.store.mailstore's folders: create, list, delete and rename (with
children and subscriptions, INBOX's messages moved), a folder created again or replaced
by another process while the old one is held, lock files closed as folders leave
memory, opens racing deletes, and subscriptions."""

import os
import threading

import pytest

from clevermail.store import FolderExists, InvalidName, MailStore, NoSuchFolder, folders, maildir, uidlist
from clevermail.store.folder import Folder

from fakes import RETURN_PATH
from mailstore_helpers import data  # noqa: F401 (fixtures)
from store_helpers import USER, msg, store  # noqa: F401 (fixtures)


# -- folders --------------------------------------------------------------------------------------
def test_create_list_delete(store):
    store.create_folder(USER, "Projects")
    store.create_folder(USER, "Projects/2024")
    store.create_folder(USER, "a.b")
    store.create_folder(USER, "100%")
    store.create_folder(USER, "Entwürfe/日本")
    with pytest.raises(FolderExists):
        store.create_folder(USER, "Projects")
    with pytest.raises(FolderExists):
        store.create_folder(USER, "INBOX")
    assert store.list_folders(USER) == ["INBOX", "100%", "Archive", "Drafts", "Entwürfe/日本", "Junk",
                                        "Projects", "Projects/2024", "Sent", "Trash", "a.b"]
    assert store.folder_exists(USER, "a.b")
    assert not store.folder_exists(USER, "a")
    store.delete_folder(USER, "Projects")
    assert not store.folder_exists(USER, "Projects")
    assert store.folder_exists(USER, "Projects/2024")          # children stay
    with pytest.raises(NoSuchFolder):
        store.delete_folder(USER, "Projects")
    with pytest.raises(InvalidName):
        store.delete_folder(USER, "INBOX")
    root = store.user_root(USER)
    assert not [d for d in os.listdir(root) if "deleted" in d]


def test_delete_folder_with_mail(store):
    store.create_folder(USER, "Old")
    f = store.open_folder(USER, "Old")
    f.append(msg(1))
    store.release_folder(f)
    store.delete_folder(USER, "Old")
    assert "Old" not in store.list_folders(USER)
    store.create_folder(USER, "Old")
    g = store.open_folder(USER, "Old")
    assert len(g) == 0
    store.release_folder(g)


@pytest.mark.parametrize("change", ["delete", "rename"])
def test_folder_created_again_is_a_new_folder_while_the_old_one_is_held(store, change):
    store.create_folder(USER, "Foo")
    old = store.open_folder(USER, "Foo")          # a session still holds it
    old.append(msg(1))
    old.letters_for(["$Old"])
    if change == "delete":
        store.delete_folder(USER, "Foo")
    else:
        store.rename_folder(USER, "Foo", "Bar")
    assert old.gone
    store.create_folder(USER, "Foo")
    new = store.open_folder(USER, "Foo")
    assert new is not old and not new.gone
    assert len(new) == 0 and new.keywords() == []
    assert new.uidvalidity != old.uidvalidity
    new.append(msg(2))
    store.release_folder(old)                     # the old one leaves memory, the new stays
    assert store._open[new.path] is new
    store.release_folder(new)
    assert store.open_folder(USER, "Foo") is new


def test_a_folder_replaced_by_another_process_is_never_written_by_the_old_folder(store, data):
    # no watcher: another process deletes Foo and creates it again while a session
    # here holds it; the old Folder must never give out UIDs in the new folder's
    # uidlist (its file lock is on the deleted folder's lock file)
    store.create_folder(USER, "Foo")
    old = store.open_folder(USER, "Foo")
    old.append(msg(1))
    old_validity = old.uidvalidity
    other = MailStore(data)
    other.delete_folder(USER, "Foo")
    other.create_folder(USER, "Foo")
    theirs = other.open_folder(USER, "Foo")
    theirs.append(msg(2))
    name = "1700000000.M1P1Q1.other,S=3,W=4"          # written into new/ by a third program
    with open(os.path.join(theirs.path, "new", name), "wb") as f:
        f.write(b"x\n\n")
    new = store.open_folder(USER, "Foo")
    assert new is not old and old.gone and not new.gone
    assert new.uidvalidity == theirs.uidvalidity != old_validity
    assert len(new) == 2
    with pytest.raises(FileNotFoundError):
        old.sync()
    with open(os.path.join(theirs.path, uidlist.FILENAME), encoding="utf-8") as f:
        assigned = [line.split()[1] for line in f.read().splitlines()[1:] if line[:1].isdigit()]
    assert len(assigned) == len(set(assigned)) == 2
    store.release_folder(new)
    store.release_folder(old)
    other.release_folder(theirs)


def lock_files_open():
    """Lock files this process holds a descriptor on (deleted ones included)."""
    fds = "/proc/self/fd"
    if not os.path.isdir(fds):
        pytest.skip("no /proc/self/fd here")
    out = []
    for n in os.listdir(fds):
        try:
            target = os.readlink(os.path.join(fds, n))
        except OSError:
            continue        # the listing's own descriptor, closed meanwhile
        if "clevermail-lock" in target:
            out.append(target)
    return out


def test_a_folder_leaving_memory_closes_its_lock_file(store, monkeypatch):
    # detached (deleted while held, or while kept unused) or evicted from the kept ones:
    # else each leaves a descriptor open for the life of the process
    monkeypatch.setattr(folders, "KEEP_UNUSED_FOLDERS", 1)
    for name in ("Held", "Kept", "A", "B"):
        store.create_folder(USER, name)
    held = store.open_folder(USER, "Held")
    held.append(msg(1))
    store.delete_folder(USER, "Held")
    store.release_folder(held)
    kept = store.open_folder(USER, "Kept")
    kept.append(msg(1))
    store.release_folder(kept)
    store.delete_folder(USER, "Kept")
    for name in ("A", "B"):                         # B's release evicts A
        f = store.open_folder(USER, name)
        f.append(msg(1))
        store.release_folder(f)
    assert store.folders.kept() == [store.folder_path(USER, "B")]
    assert [p for p in lock_files_open() if p.startswith(store.mail_root)] == [
        os.path.join(store.folder_path(USER, "B"), "clevermail-lock")]


def test_open_racing_a_delete_never_brings_the_folder_back(store, monkeypatch):
    # the DELETE lands between open_folder's check that the folder exists and the
    # building of its Folder (which makes a missing tmp/, new/ or cur/)
    store.create_folder(USER, "Foo")
    real = folders.Folder

    def deleted_first(*args, **kw):
        store.delete_folder(USER, "Foo")
        return real(*args, **kw)

    monkeypatch.setattr(folders, "Folder", deleted_first)
    with pytest.raises(NoSuchFolder):       # the client's NO [NONEXISTENT], no server error
        store.open_folder(USER, "Foo")
    assert not store.folder_exists(USER, "Foo")
    assert "Foo" not in store.list_folders(USER)
    assert store.folder_path(USER, "Foo") not in store._open


class RecordingWatcher:
    """What FolderCache asks of its watcher: update() when a folder's first waiter
    comes or its last goes."""

    def __init__(self):
        self.watched = set()
        self.updates = 0

    def update(self, folder):
        self.updates += 1
        (self.watched.add if folder.waiting else self.watched.discard)(folder)


@pytest.mark.parametrize("held", [False, True], ids=["first", "already-held"])
def test_failed_open_gives_back_its_session_count_and_touches_no_watch(store, monkeypatch, held):
    # e.g. a SELECT racing a DELETE: the sync after the count was taken fails
    store.folders.watcher = watcher = RecordingWatcher()
    store.create_folder(USER, "Foo")
    other = store.open_folder(USER, "Foo") if held else None
    waiter = threading.Event().set
    if held:
        other.waiters.add(waiter)            # an IDLE session on it: watched
    real_sync = Folder.sync

    def failing_sync(folder, force=False):
        raise FileNotFoundError("deleted meanwhile")

    monkeypatch.setattr(Folder, "sync", failing_sync)
    with pytest.raises(FileNotFoundError):
        store.open_folder(USER, "Foo")
    monkeypatch.setattr(Folder, "sync", real_sync)
    path = store.folder_path(USER, "Foo")
    if held:
        assert other.users == 1 and store._open[path] is other and watcher.watched == {other}
        assert watcher.updates == 1
        other.waiters.remove(waiter)
        store.release_folder(other)
    assert path not in store._open and watcher.watched == set()
    assert watcher.updates == (2 if held else 0)       # opening and releasing: no update
    folder = store.open_folder(USER, "Foo")
    assert folder.users == 1
    store.release_folder(folder)


def test_a_new_folder_is_built_outside_the_cache_lock(store, monkeypatch):
    # Folder() creates directories: a delivery's notify() takes the cache's lock before
    # SMTP's 250 and must not wait behind that disk I/O.  Another open() that builds
    # the same folder meanwhile wins; the spare is dropped
    store.create_folder(USER, "Foo")
    cache, real = store.folders, maildir.make_maildir
    locked, racing = [], []

    def make_maildir(path, **kw):
        locked.append(cache._lock.locked())
        if len(locked) == 1 and not locked[0]:
            racing.append(store.open_folder(USER, "Foo"))      # as another thread would
        real(path, **kw)

    monkeypatch.setattr(maildir, "make_maildir", make_maildir)
    folder = store.open_folder(USER, "Foo")
    assert locked == [False, False]
    assert folder is racing[0] and folder.users == 2
    assert store._open[folder.path] is folder
    store.release_folder(folder)
    store.release_folder(racing[0])
    assert folder.path not in store._open


def test_rename_with_children_and_subscriptions(store):
    store.create_folder(USER, "Work")
    store.create_folder(USER, "Work/A")
    store.create_folder(USER, "Work/A/deep")
    store.create_folder(USER, "Workshop")
    store.subscribe(USER, "Work")
    store.subscribe(USER, "Work/A")
    store.subscribe(USER, "Workshop")
    f = store.open_folder(USER, "Work/A")
    f.append(msg(1), letters="S")
    store.release_folder(f)
    store.rename_folder(USER, "Work", "Job")
    names = store.list_folders(USER)
    assert "Job" in names and "Job/A" in names and "Job/A/deep" in names
    assert "Work" not in names and "Work/A" not in names
    assert "Workshop" in names                                   # a prefix, not a child
    subs = store.subscriptions(USER)
    assert "Job" in subs and "Job/A" in subs and "Workshop" in subs
    assert "Work" not in subs and "Work/A" not in subs
    g = store.open_folder(USER, "Job/A")
    assert [g.entry(u).flags for u in g.uids] == ["S"]
    assert g.read_message(g.uids[0]) == msg(1)
    store.release_folder(g)


def test_rename_errors(store):
    store.create_folder(USER, "A")
    store.create_folder(USER, "B")
    with pytest.raises(FolderExists):
        store.rename_folder(USER, "A", "B")
    with pytest.raises(FolderExists):
        store.rename_folder(USER, "A", "INBOX")
    with pytest.raises(NoSuchFolder):
        store.rename_folder(USER, "Missing", "C")
    with pytest.raises(InvalidName):
        store.rename_folder(USER, "A", "../escape")


def test_rename_inbox_moves_messages(store):
    for i in range(3):
        store.deliver_local("", [USER], msg(i))
    inbox = store.open_folder(USER, "INBOX")
    inbox.store_flags([1], {"S"}, "+")
    store.release_folder(inbox)
    store.rename_folder(USER, "INBOX", "Old Mail")
    old = store.open_folder(USER, "Old Mail")
    assert sorted(old.read_message(u) for u in old.uids) == sorted(RETURN_PATH + msg(i) for i in range(3))
    assert sorted(old.entry(u).flags for u in old.uids) == ["", "", "S"]
    store.release_folder(old)
    inbox = store.open_folder(USER, "INBOX")
    inbox.sync()
    assert len(inbox) == 0
    store.deliver_local("", [USER], msg(9))
    inbox.sync()
    assert len(inbox) == 1
    store.release_folder(inbox)


def test_subscriptions(store, data):
    store.subscribe(USER, "Lists/python")
    store.subscribe(USER, "Lists/python")
    store.subscribe(USER, "Sent", on=False)
    assert store.subscriptions(USER) == ["Archive", "Drafts", "Junk", "Trash", "Lists/python"]
    store.subscribe(USER, "Nope", on=False)
    assert MailStore(data).subscriptions(USER) == ["Archive", "Drafts", "Junk", "Trash", "Lists/python"]
    with pytest.raises(InvalidName):
        store.subscribe(USER, "../x")
