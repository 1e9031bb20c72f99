"""Tests for clevermail.store.mailstore: users, durable delivery, folders, subscriptions,
UIDs that are never reused, and concurrency (threads and a second process)."""

import json
import os
import subprocess
import sys
import threading

import pytest

from clevermail.store import (SPECIAL_USE, FolderExists, InvalidName, MailStore, NoSuchFolder,
                              maildir, uidlist)
from clevermail.store import folders
from clevermail.store.folder import Folder
from fakes import RETURN_PATH

USER = "alice@example.test"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def msg(n):
    return b"Subject: message %d\r\n\r\nbody %d\r\n" % (n, n)


@pytest.fixture
def data(tmp_path):
    return str(tmp_path / "data")


@pytest.fixture
def store(data):
    return MailStore(data)


def run_child(code, *args, timeout=120):
    """Run `code` in a fresh interpreter (another process on the same store)."""
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout


# -- users ---------------------------------------------------------------------------------
def test_ensure_user_layout(store, data):
    root = store.ensure_user("Alice@Example.TEST")
    assert root == os.path.join(os.path.realpath(data), "mail", "example.test", "alice")
    for sub in ("tmp", "new", "cur"):
        assert os.path.isdir(os.path.join(root, sub))
    for name in SPECIAL_USE:
        assert os.path.isdir(os.path.join(root, "." + name, "cur"))
    assert store.list_folders(USER) == ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"]
    assert store.subscriptions(USER) == sorted(SPECIAL_USE)
    assert store.ensure_user(USER) == root


def test_remove_user(store):
    store.deliver_local("", [USER], msg(1))
    root = store.user_root(USER)
    store.remove_user(USER)
    assert not os.path.exists(root)
    store.remove_user(USER)              # twice is fine



def test_delivery_recreates_a_mailbox_removed_behind_the_stores_back(store):
    """The store remembers which mailboxes exist (no stat per delivery); a mailbox
    deleted by hand must still get the next message, not a failure."""
    import shutil
    store.deliver_local("", [USER], msg(1))
    root = store.user_root(USER)
    shutil.rmtree(root)
    store.deliver_local("", [USER], msg(2))
    assert len(os.listdir(os.path.join(root, "new"))) == 1
    # also when it is the second recipient of a message (hard link into its tmp/)
    other = "bob@example.test"
    store.deliver_local("", [other], msg(3))
    shutil.rmtree(store.user_root(other))
    store.prepare_local("", [USER, other], msg(4)).commit()
    assert len(os.listdir(os.path.join(store.user_root(other), "new"))) == 1
    assert len(os.listdir(os.path.join(root, "new"))) == 2

# -- delivery --------------------------------------------------------------------------------
def test_deliver_is_durable_before_returning(store, monkeypatch):
    store.ensure_user(USER)
    events = []
    real_fsync, real_link = os.fsync, os.link
    monkeypatch.setattr(os, "fsync", lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))) or real_fsync(fd))
    monkeypatch.setattr(os, "link", lambda s, d, **kw: events.append(("link", os.path.dirname(d))) or real_link(s, d, **kw))
    store.deliver_local("", [USER], msg(1))
    root = store.user_root(USER)
    new = os.listdir(os.path.join(root, "new"))
    assert len(new) == 1
    assert [e[0] for e in events] == ["fsync", "link", "fsync"]
    assert events[0][1] == os.path.join(root, "tmp", new[0])
    assert events[1][1] == os.path.join(root, "new")
    assert events[2][1] == os.path.join(root, "new")
    assert os.listdir(os.path.join(root, "tmp")) == []
    with open(os.path.join(root, "new", new[0]), "rb") as f:
        assert f.read() == maildir.to_disk(RETURN_PATH + msg(1))
    base, flags, size, wsize, date = maildir.parse_name(new[0])
    assert (size, wsize) == (len(RETURN_PATH + msg(1)) - 4, len(RETURN_PATH + msg(1)))


def test_failed_delivery_leaves_nothing(store, monkeypatch):
    store.ensure_user(USER)
    root = store.user_root(USER)

    def broken_link(src, dst, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "link", broken_link)
    with pytest.raises(OSError):
        store.deliver_local("", [USER], msg(1))
    for sub in ("tmp", "new", "cur"):
        assert os.listdir(os.path.join(root, sub)) == []


def test_prepare_local_writes_once_and_links(store, monkeypatch):
    users = ["a@example.test", "b@example.test", "c@other.test"]
    writes = []
    real = maildir.write_tmp
    monkeypatch.setattr(maildir, "write_tmp", lambda *a: writes.append(a[0]) or real(*a))
    pending = store.prepare_local("", users, msg(5))
    assert len(writes) == 1
    for u in users:
        assert os.listdir(os.path.join(store.user_root(u), "new")) == []
    pending.commit()
    inodes = set()
    for u in users:
        f = store.open_folder(u, "INBOX")
        assert f.read_message(f.uids[0]) == RETURN_PATH + msg(5)
        inodes.add(os.stat(f.file_path(f.entry(f.uids[0]))).st_ino)
        assert os.listdir(os.path.join(f.path, "tmp")) == []
        store.release_folder(f)
    assert len(inodes) == 1


def test_prepare_local_abort(store):
    pending = store.prepare_local("", ["a@example.test", "b@example.test"], msg(1))
    pending.abort()
    for u in ("a@example.test", "b@example.test"):
        root = store.user_root(u)
        assert [os.listdir(os.path.join(root, s)) for s in ("tmp", "new", "cur")] == [[], [], []]


# -- shared folders -------------------------------------------------------------------------------
def test_open_folder_is_shared_even_when_empty(store):
    a = store.open_folder(USER, "INBOX")
    b = store.open_folder(USER, "inbox")
    assert len(a) == 0
    assert a is b
    assert a.users == 2
    store.release_folder(a)
    store.release_folder(b)
    c = store.open_folder(USER, "INBOX")       # comes back from the unused cache
    assert c is a
    store.release_folder(c)


def test_open_missing_folder(store):
    with pytest.raises(NoSuchFolder):
        store.open_folder(USER, "Nope")
    f = store.open_folder("new@example.test", "INBOX")     # INBOX always exists
    assert len(f) == 0
    store.release_folder(f)


def test_folder_sees_delivery_after_sync_and_waiter_called(store):
    f = store.open_folder(USER, "INBOX")
    woken = []
    f.waiters.add(lambda: woken.append(len(f)))
    store.deliver_local("", [USER], msg(1))
    assert woken == [0]                  # told at once, before any sync
    assert f.sync() is True
    assert f.uids == [1]
    store.release_folder(f)


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


# -- UIDs are never reused ---------------------------------------------------------------------------
def test_uids_never_reused_after_expunge_and_restart(store, data):
    for i in range(5):
        store.deliver_local("", [USER], msg(i))
    f = store.open_folder(USER, "INBOX")
    validity = f.uidvalidity
    assert f.expunge([4, 5]) == [4, 5]
    store.release_folder(f)
    again = MailStore(data).open_folder(USER, "INBOX")     # a restarted server
    assert again.uids == [1, 2, 3]
    assert again.uidnext == 6
    assert again.uidvalidity == validity
    code = ("import sys, json; from clevermail.store import MailStore;"
            "s = MailStore(sys.argv[1]); s.deliver_local('', ['alice@example.test'], b'Subject: c\\r\\n\\r\\nc\\r\\n');"
            "f = s.open_folder('alice@example.test', 'INBOX'); print(json.dumps([f.uids, f.uidvalidity]))")
    uids, child_validity = json.loads(run_child(code, data))
    assert uids == [1, 2, 3, 6]
    assert child_validity == validity
    again.sync()
    assert again.uids == [1, 2, 3, 6]


def test_uids_never_reused_after_compaction(store, data):
    for i in range(200):
        store.deliver_local("", [USER], msg(i))
    f = store.open_folder(USER, "INBOX")
    f.expunge(list(range(1, 191)))
    f.sync(force=True)                                    # a full scan compacts the uidlist
    with open(os.path.join(f.path, uidlist.FILENAME)) as fh:
        lines = fh.read().splitlines()
    assert len(lines) == 11
    assert lines[0].split()[:3] == ["CM1", str(f.uidvalidity), "201"]
    store.deliver_local("", [USER], msg(999))
    f.sync()
    assert f.uids == list(range(191, 202))
    store.release_folder(f)
    fresh = MailStore(data).open_folder(USER, "INBOX")
    assert fresh.uids == list(range(191, 202))
    assert fresh.uidnext == 202


def test_uidvalidity_per_folder_kept(store, data):
    store.create_folder(USER, "X")
    f = store.open_folder(USER, "X")
    v = f.uidvalidity
    store.release_folder(f)
    g = MailStore(data).open_folder(USER, "X")
    assert g.uidvalidity == v


def test_folder_created_again_gets_a_new_uidvalidity_in_the_same_second_and_after_restart(
        store, data, monkeypatch):
    """RFC 3501 2.3.1.1: the UIDs a client cached for the deleted folder must not
    match the new one, even when both come within one second (the clock is frozen
    here) or from a restarted server (a new MailStore)."""
    from clevermail.store import uidvalidity
    monkeypatch.setattr(uidvalidity.time, "time", lambda: 1_700_000_000.25)
    seen = []

    def create_and_look(st):
        st.create_folder(USER, "Reborn")
        f = st.open_folder(USER, "Reborn")
        seen.append(f.uidvalidity)
        st.release_folder(f)
        st.delete_folder(USER, "Reborn")

    create_and_look(store)
    create_and_look(store)
    create_and_look(MailStore(data))                 # a restart
    store.ensure_user("bob@example.test")
    create_and_look(MailStore(data))
    assert len(set(seen)) == 4 and seen == sorted(seen)
    inbox = MailStore(data).open_folder("bob@example.test", "INBOX")
    assert inbox.uidvalidity == 1_700_000_000        # another user has a mark of its own


# -- concurrency ---------------------------------------------------------------------------------------
def test_concurrent_delivery_from_many_threads(store, data, thread_guard):
    threads_n, per_thread = 16, 50
    errors = []
    done = threading.Event()
    reader = store.open_folder(USER, "INBOX")

    def deliver(t):
        try:
            for i in range(per_thread):
                store.deliver_local("", [USER], b"Subject: t%d m%d\r\n\r\nx\r\n" % (t, i))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def syncer():
        try:
            while not done.is_set():
                reader.sync()
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    s = threading.Thread(target=syncer)
    s.start()
    workers = [threading.Thread(target=deliver, args=(t,)) for t in range(threads_n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    done.set()
    s.join(30)
    assert errors == []
    reader.sync()
    total = threads_n * per_thread
    assert len(reader) == total
    assert reader.uids == list(range(1, total + 1))
    subjects = sorted(reader.read_message(u).split(b"\r\n", 2)[1] for u in reader.uids)
    assert subjects == sorted(b"Subject: t%d m%d" % (t, i) for t in range(threads_n) for i in range(per_thread))
    store.release_folder(reader)
    fresh = MailStore(data).open_folder(USER, "INBOX")
    assert fresh.uids == list(range(1, total + 1))
    assert {fresh.entry(u).base: u for u in fresh.uids} == {reader.entry(u).base: u for u in reader.uids}


CHILD = r"""
import json, sys
from clevermail.store import MailStore
data, n = sys.argv[1], int(sys.argv[2])
s = MailStore(data)
f = s.open_folder('alice@example.test', 'INBOX')
print('ready', flush=True)
sys.stdin.readline()                  # start together with the parent
seen = {}
for i in range(n):
    s.deliver_local("", ['alice@example.test'], b'Subject: child %d\r\n\r\nc\r\n' % i)
    f.sync()
    if i % 10 == 0:
        f.store_flags(f.uids[-1:], {'S'}, '+')
    seen.update({f.entry(u).base: u for u in f.uids})
print(json.dumps(seen))
"""


def test_second_process_delivers_and_syncs_concurrently(store, data):
    n = 200
    store.ensure_user(USER)
    child = subprocess.Popen([sys.executable, "-c", CHILD, data, str(n)], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        f = store.open_folder(USER, "INBOX")
        assert child.stdout.readline() == "ready\n"
        child.stdin.write("go\n")
        child.stdin.flush()
        seen = {}
        for i in range(n):
            store.deliver_local("", [USER], b"Subject: parent %d\r\n\r\np\r\n" % i)
            f.sync()
            seen.update({f.entry(u).base: u for u in f.uids})
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    child_seen = json.loads(out)
    f.sync(force=True)
    final = {f.entry(u).base: u for u in f.uids}
    assert len(final) == 2 * n                                 # no lost message
    assert len(set(final.values())) == 2 * n                   # no duplicate UID
    assert sorted(final.values()) == f.uids
    subjects = sorted(f.read_message(u).split(b"\r\n", 2)[1] for u in f.uids)
    assert subjects == sorted([b"Subject: parent %d" % i for i in range(n)] +
                              [b"Subject: child %d" % i for i in range(n)])
    # both processes always agreed on every base -> UID
    for base, uid in list(seen.items()) + list(child_seen.items()):
        assert final[base] == uid
    store.release_folder(f)
    fresh = MailStore(data).open_folder(USER, "INBOX")
    assert {fresh.entry(u).base: u for u in fresh.uids} == final


def test_folder_being_deleted_is_never_listed(store, monkeypatch):
    from clevermail.store import tree
    store.create_folder(USER, "Doomed")
    seen = []
    real = tree.shutil.rmtree
    monkeypatch.setattr(tree.shutil, "rmtree",
                        lambda path, **kw: (seen.append(store.list_folders(USER)), real(path, **kw))[1])
    store.delete_folder(USER, "Doomed")
    assert seen == [["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"]]


def test_closed_folders_kept_in_memory_are_bounded_by_messages(tmp_path, monkeypatch):
    from clevermail.store import folders

    monkeypatch.setattr(folders, "KEEP_UNUSED_MESSAGES", 5)
    store = MailStore(str(tmp_path / "data"))
    for user in ("a@example.test", "b@example.test", "c@example.test"):
        for i in range(3):
            store.deliver_local("", [user], b"Subject: %d\r\n\r\nx\r\n" % i)
        store.release_folder(store.open_folder(user, "INBOX"))
    kept = [path.rsplit("/", 1)[-1] for path in store.folders.kept()]
    assert kept == ["c"]          # 3 + 3 > 5: only the most recently closed one stays


def test_opening_a_folder_removes_stale_tmp_debris(tmp_path):
    import time

    from clevermail.store import MailStore, maildir

    store = MailStore(str(tmp_path / "data"))
    root = store.ensure_user("alice@example.test")
    stale = os.path.join(root, "tmp", "crashed-delivery")
    fresh = os.path.join(root, "tmp", "delivery-in-progress")
    for path in (stale, fresh):
        with open(path, "wb") as f:
            f.write(b"half a message")
    old = time.time() - maildir.STALE_TMP_SECONDS - 60
    os.utime(stale, (old, old))
    folder = store.open_folder("alice@example.test", "INBOX")
    store.release_folder(folder)
    assert not os.path.exists(stale)
    assert os.path.exists(fresh)          # a delivery still being written is left alone
    assert len(folder) == 0


def test_clean_delivery_records_the_same_name_sizes_and_content(store):
    """prepare_local(clean=True) takes shortcuts (CRs deleted, W= from the wire
    length): the file, S= and W= must be what the general path gives."""
    wire = b"Return-Path: <a@b>\r\nSubject: x\r\n\r\n" + b"line\r\n" * 50 + b".dot\r\n"
    store.deliver_local("", [USER], wire)
    store.prepare_local("", [USER], wire, clean=True).commit()
    new = os.path.join(store.user_root(USER), "new")
    names = sorted(os.listdir(new))
    assert len(names) == 2
    sizes = {tuple(maildir.parse_name(n)[2:4]) for n in names}
    contents = set()
    for n in names:
        with open(os.path.join(new, n), "rb") as f:
            contents.add(f.read())
    assert len(sizes) == 1 and len(contents) == 1
    wire = RETURN_PATH + wire                  # what both stored
    assert sizes == {(len(wire) - wire.count(b"\r"), len(wire))}
