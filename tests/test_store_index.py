"""Tests for clevermail.store.index: the folder index cache survives a restart, and
directories changed after the save are re-listed."""

import marshal
import os
import shutil

import pytest

from clevermail.store import MailStore, index, uidlist
from clevermail.store.folder import Folder
from clevermail.store.sync import FolderSync

USER = "alice@example.test"
N = 520


def state(folder):
    return [(u, folder.entry(u).base, folder.entry(u).sub, folder.entry(u).flags, folder.entry(u).size,
             folder.entry(u).wsize, folder.entry(u).date) for u in folder.uids]


def saved_messages(data, uids):
    """The messages as a cache-less full scan sees them."""
    folder = Folder(MailStore(data).folder_path(USER, "INBOX"), "INBOX")
    folder.sync()
    return [folder.read_message(u) for u in uids]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A folder of N messages, some flagged, whose index was saved (built once)."""
    data = str(tmp_path_factory.mktemp("index") / "data")
    store = MailStore(data)
    for i in range(N):
        store.deliver_local("", [USER], b"Subject: %d\r\n\r\nbody %d\r\n" % (i, i))
    f = store.open_folder(USER, "INBOX")
    f.store_flags(range(1, 200), {"S"}, "+")
    f.store_flags(range(50, 60), f.letters_for(["\\Flagged", "$Work"]), "+")
    f.expunge([3, 4])
    f.sync()
    store.release_folder(f)
    store.save_indexes()
    assert os.path.exists(os.path.join(f.path, index.FILENAME))
    return data, state(f)


@pytest.fixture
def data(tmp_path, template):
    """A copy of the template; copytree keeps every mtime, so the saved stamps match."""
    copy = str(tmp_path / "data")
    shutil.copytree(template[0], copy)
    return copy


@pytest.fixture
def saved(data, template):
    return template[1], MailStore(data).folder_path(USER, "INBOX")


@pytest.fixture
def listed(monkeypatch):
    calls = []
    real = FolderSync._list
    monkeypatch.setattr(FolderSync, "_list", lambda self, sub: calls.append(sub) or real(self, sub))
    return calls


def test_restart_loads_identical_index_without_listing(data, saved, listed):
    before, _ = saved
    f = MailStore(data).open_folder(USER, "INBOX")
    assert listed == []
    assert state(f) == before
    assert len(f) == N - 2
    assert f.flag_names(f.entry(55).flags) == ("\\Flagged", "\\Seen", "$Work")
    assert f.uidnext == N + 1
    assert [f.read_message(u) for u in f.uids[::50]] == saved_messages(data, f.uids[::50])


def test_changed_directories_are_relisted(data, saved, listed):
    before, path = saved
    other = MailStore(data)                       # another process changes the folder
    g = other.open_folder(USER, "INBOX")
    listed.clear()
    other.deliver_local("", [USER], b"Subject: late\r\n\r\nlate\r\n")
    g.sync()
    g.store_flags([300], {"F"}, "+")
    g.expunge([1])
    f = MailStore(data).open_folder(USER, "INBOX")
    assert sorted(set(listed)) == ["cur", "new"]
    assert state(f) == state(g)
    assert f.uids[-1] == N + 1
    assert f.entry(300).flags == "F"
    assert 1 not in f.uids
    # and the result equals a full scan without any cache
    os.unlink(os.path.join(path, index.FILENAME))
    h = MailStore(data).open_folder(USER, "INBOX")
    assert state(h) == state(f)


def test_only_the_changed_directory_is_relisted(data, saved, listed):
    before, _ = saved
    store = MailStore(data)
    store.deliver_local("", [USER], b"Subject: new one\r\n\r\nx\r\n")      # touches new/ only
    f = store.open_folder(USER, "INBOX")
    assert listed == ["new"]
    assert state(f)[:-1] == before
    assert f.uids[-1] == N + 1


def test_unreadable_cache_means_full_scan(data, saved, listed):
    before, path = saved
    with open(os.path.join(path, index.FILENAME), "wb") as fh:
        fh.write(b"\x00garbage")
    f = MailStore(data).open_folder(USER, "INBOX")
    assert state(f) == before
    assert sorted(listed) == ["cur", "new"]


@pytest.mark.parametrize("payload", [
    (index.VERSION, {}, 0, (1, 2)),                   # columns of the wrong type
    (index.VERSION, {}, 0, ([1], [2])),               # wrong number of columns
    (index.VERSION + 1, {}, 0, ()),                   # a newer format
    [1, 2, 3],
])
def test_malformed_cache_means_full_scan(data, saved, payload):
    before, path = saved
    validity = MailStore(data).open_folder(USER, "INBOX").uidvalidity
    if isinstance(payload, tuple) and payload[2] == 0:
        payload = payload[:2] + (validity,) + payload[3:]
    with open(os.path.join(path, index.FILENAME), "wb") as fh:
        fh.write(marshal.dumps(payload))
    f = MailStore(data).open_folder(USER, "INBOX")
    assert state(f) == before


def test_cache_of_another_uidvalidity_is_ignored(data, saved, listed):
    before, path = saved
    with open(os.path.join(path, uidlist.FILENAME)) as fh:
        lines = fh.read().splitlines()
    head = lines[0].split()
    head[1] = str(int(head[1]) + 1)
    with open(os.path.join(path, uidlist.FILENAME), "w") as fh:
        fh.write("\n".join([" ".join(head)] + lines[1:]) + "\n")
    f = MailStore(data).open_folder(USER, "INBOX")
    assert sorted(listed) == ["cur", "new"]
    assert state(f) == before


def test_small_folders_are_not_cached(data):
    store = MailStore(data)
    for i in range(10):
        store.deliver_local("", ["bob@example.test"], b"Subject: %d\r\n\r\nx\r\n" % i)
    f = store.open_folder("bob@example.test", "INBOX")
    assert index.save(f) is False
    assert not os.path.exists(os.path.join(f.path, index.FILENAME))


def test_unchanged_folder_is_not_saved_twice(data, saved):
    _, path = saved
    store = MailStore(data)
    f = store.open_folder(USER, "INBOX")
    f.store_flags([100], {"D"}, "+")
    assert index.save(f) is True
    assert index.save(f) is False


def test_warm_up_loads_saved_indexes_into_memory(data, template, monkeypatch):
    import threading

    store = MailStore(data)
    scans = []
    monkeypatch.setattr(FolderSync, "_first_scan", lambda self: scans.append(self.folder.path) or False)
    assert store.warm_up(threading.Event()) == 1
    folder = store.open_folder(USER, "INBOX")        # served from memory, not loaded again
    assert state(folder) == template[1]
    assert scans == []
    store.release_folder(folder)


def test_warm_up_stops_when_asked(data):
    import threading

    stop = threading.Event()
    stop.set()
    assert MailStore(data).warm_up(stop) == 0


def test_a_cache_saved_before_a_machine_crash_keeps_the_reservation(data, saved, listed, monkeypatch):
    """The uidlist's `N` lines before the cache's offset are not read again: the cache
    carries the reservation, and after a machine crash (another boot id) UIDNEXT moves
    past it as a full read would (uidlist.py: UIDs up to it may have been handed out)."""
    store = MailStore(data)
    f = store.open_folder(USER, "INBOX")
    uid = f.append(b"Subject: appended\r\n\r\nx\r\n")     # reserves UIDs past it
    reserved = f.uidlist.reserved
    assert reserved > uid
    assert index.save(f) is True
    same_boot = MailStore(data).open_folder(USER, "INBOX")
    assert same_boot.uidnext == uid + 1 and same_boot.uidlist.reserved == reserved
    monkeypatch.setattr(uidlist, "BOOT_ID", "after-the-crash")
    listed.clear()
    g = MailStore(data).open_folder(USER, "INBOX")
    assert listed == []                                  # served from the cache
    assert g.uidnext == reserved + 1
    assert g.append(b"Subject: after\r\n\r\ny\r\n") == reserved + 1
