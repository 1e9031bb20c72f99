"""Tests for clevermail.store.mailstore: users, durable delivery, one shared Folder per
folder, and UIDs that are never reused (after expunges, compaction and restarts; a new
UIDVALIDITY for a folder created again, also within the same second).  Folder tree
changes are in test_store_mailstore_folders.py, concurrency in
test_store_concurrency.py."""

import json
import os
import subprocess
import sys

import pytest

from clevermail.store import SPECIAL_USE, MailStore, NoSuchFolder, maildir, uidlist

from fakes import RETURN_PATH
from mailstore_helpers import ROOT, data  # noqa: F401 (fixtures)
from store_helpers import USER, msg, store  # noqa: F401 (fixtures)


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
