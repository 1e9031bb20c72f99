"""The folder logs' kept descriptors (store/append_file.py) and what the writers do
after the folder's locks (store/changes.py): a line never goes to a log that was
replaced, nothing stays open once the Folder leaves memory, no tmp/ name is left,
and the quota ledger still counts every change."""

import os

import pytest

from clevermail import fsync_group
from clevermail.store import MailStore, maildirsize, uidlist
from clevermail.store.append_file import AppendFile
from clevermail.store.modseq import ModseqLog
from clevermail.store.quota import QuotaLimits
from clevermail.store.uidlist import UidList

ALICE = "alice@example.test"


def message(n):
    return b"Subject: message %d\r\n\r\nbody %d\r\n" % (n, n)


def open_fds_to(path):
    fds = "/proc/self/fd"
    found = []
    for fd in os.listdir(fds):
        try:
            if os.readlink(os.path.join(fds, fd)) == path:
                found.append(fd)
        except OSError:
            continue
    return found


def test_a_line_after_another_writer_compacted_goes_to_the_new_file(tmp_path):
    folder = str(tmp_path)
    a, b = UidList(folder), UidList(folder)
    assert a.assign_list(["x1", "x2"]) == [1, 2]       # a keeps the file open
    b.refresh()
    b.compact({"x2"})                                   # another process: a new inode
    assert a.assign_list(["x3"]) == [3]
    again = UidList(folder)
    again.refresh()
    assert again.uids == {"x2": 2, "x3": 3}
    assert open_fds_to(a.path) == open_fds_to(again.path) != []    # the old inode let go
    a.close()
    b.close()


def test_a_modseq_line_after_a_compaction_elsewhere_goes_to_the_new_file(tmp_path):
    a, b = ModseqLog(str(tmp_path)), ModseqLog(str(tmp_path))
    a.refresh()
    a.append(7, [("M", 2, [1, 2])])
    a.refresh()
    a.append(7, [("M", 3, [1])])                        # through the kept descriptor
    b.refresh()
    b.compact(7, {1: 3, 2: 2}, [], 0)
    a.refresh()
    a.append(7, [("E", 4, [2])])
    fresh = ModseqLog(str(tmp_path))
    full, records = fresh.refresh()
    assert full and records == [("M", 2, [2]), ("M", 3, [1]), ("E", 4, [2])]
    a.close()
    b.close()


def test_append_file_reopens_for_another_inode_and_closes(tmp_path):
    path = str(tmp_path / "log")
    with open(path, "w") as f:
        f.write("one\n")
    log = AppendFile(path)
    log.write(b"two\n", os.stat(path).st_ino)
    os.rename(path, path + ".old")
    with open(path, "w") as f:
        f.write("new\n")
    log.write(b"three\n", os.stat(path).st_ino)
    assert open(path).read() == "new\nthree\n"
    assert open(path + ".old").read() == "one\ntwo\n"
    log.close()
    log.close()
    assert open_fds_to(path) == []


@pytest.fixture
def store(tmp_path):
    return MailStore(tmp_path / "data")


def test_a_folder_leaving_memory_closes_its_logs(store):
    store.ensure_user(ALICE)
    store.create_folder(ALICE, "Work")
    folder = store.open_folder(ALICE, "Work")
    folder.append(message(1))
    folder.store_flags([1], {"S"}, "+")
    paths = [folder.uidlist.path, folder.modseqs.log.path]
    assert all(open_fds_to(p) for p in paths)
    store.release_folder(folder)
    folder.close()          # what the folder cache does when it lets the Folder go
    assert not any(open_fds_to(p) for p in paths)


def test_writers_leave_no_tmp_name_and_the_ledger_counts_every_change(tmp_path):
    limits = QuotaLimits(storage=10 ** 6)
    store = MailStore(tmp_path / "data")
    store.quota.limits = lambda address: limits
    store.ensure_user(ALICE)
    store.create_folder(ALICE, "Work")
    root = store.users.root(ALICE)
    store.quota.usage(ALICE)                           # the ledger exists from here on
    inbox, work = store.open_folder(ALICE, "INBOX"), store.open_folder(ALICE, "Work")
    try:
        inbox.append(message(1))
        inbox.append_many([(message(2), "", None), (message(3), "S", None)])
        inbox.copy_to([1, 2], work)
        inbox.expunge([3])
        assert fsync_group.settle(timeout=10)  # the expunged file's unlink runs after the reply
        for f in (inbox, work):
            assert os.listdir(os.path.join(f.path, "tmp")) == []
        assert maildirsize.read(root).usage == maildirsize.count_user(root)
        assert maildirsize.count_user(root).messages == 4
    finally:
        store.release_folder(inbox)
        store.release_folder(work)


def test_the_uidlist_line_of_an_append_is_written_through_the_kept_descriptor(store):
    store.ensure_user(ALICE)
    folder = store.open_folder(ALICE, "INBOX")
    try:
        uids = [folder.append(message(n)) for n in range(1, 4)]
        with open(folder.uidlist.path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        assert [line.split()[0] for line in lines if line[:1].isdigit()] == [str(u) for u in uids]
        assert len(open_fds_to(folder.uidlist.path)) == 1
        assert uidlist.FILENAME in os.listdir(folder.path)
    finally:
        store.release_folder(folder)
