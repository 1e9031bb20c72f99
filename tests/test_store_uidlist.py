"""Tests for clevermail.store.uidlist: UIDVALIDITY, UIDNEXT, base -> UID, compaction."""

import builtins
import os

import pytest

from clevermail.store import uidlist, uidvalidity
from clevermail.store.uidlist import UidList


def assign(ul, bases):
    """{base: uid} for `bases`, through UidList.assign_list."""
    return dict(zip(bases, ul.assign_list(bases)))


@pytest.fixture
def folder(tmp_path):
    return str(tmp_path)


def read(folder):
    with open(os.path.join(folder, uidlist.FILENAME), encoding="utf-8") as f:
        return f.read().splitlines()


def test_created_on_first_refresh(folder):
    u = UidList(folder)
    u.refresh()
    assert u.uidvalidity > 0
    assert u.uidnext == 1
    assert u.uids == {}
    assert read(folder) == [f"CM1 {u.uidvalidity} 1"]
    # no temp file left; the user's UIDVALIDITY mark (this folder is its own root)
    assert sorted(os.listdir(folder)) == sorted([uidlist.FILENAME, uidvalidity.FILENAME])


def test_assign_ascending_and_idempotent(folder):
    u = UidList(folder)
    assert assign(u, ["a", "b", "c"]) == {"a": 1, "b": 2, "c": 3}
    assert assign(u, ["b", "d"]) == {"b": 2, "d": 4}
    assert u.uidnext == 5
    assert read(folder)[1:] == ["1 a", "2 b", "3 c", "4 d"]


def test_assign_is_fsynced(folder, monkeypatch):
    u = UidList(folder)
    u.refresh()
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd) or real(fd))
    assign(u, ["x"])
    assert len(calls) == 1
    assign(u, ["x"])            # nothing new: no write, no fsync
    assert len(calls) == 1


def test_assign_writes_everything_despite_short_writes(folder, monkeypatch):
    # os.write may write less than asked (a signal, a disk filling up) without raising
    u = UidList(folder)
    u.refresh()
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, bytes(data[:5])))
    bases = [f"base{i}" for i in range(10)]
    assert u.assign_list(bases) == list(range(1, 11))
    monkeypatch.undo()
    assert read(folder)[1:] == [f"{i + 1} base{i}" for i in range(10)]
    again = UidList(folder)
    again.refresh()
    assert again.uids == u.uids and again.uidnext == 11


def test_second_instance_reads_and_continues(folder):
    a, b = UidList(folder), UidList(folder)
    assign(a, ["m1", "m2"])
    b.refresh()
    assert b.uids == {"m1": 1, "m2": 2}
    assert b.uidvalidity == a.uidvalidity
    assert assign(b, ["m3"]) == {"m3": 3}
    assert assign(a, ["m4", "m3"]) == {"m4": 4, "m3": 3}   # a refreshes before assigning
    c = UidList(folder)
    c.refresh()
    assert c.uids == {"m1": 1, "m2": 2, "m3": 3, "m4": 4}
    assert c.uidnext == 5


def test_concurrent_creators_keep_one_validity(folder):
    a, b = UidList(folder), UidList(folder)
    a._create()
    first = read(folder)
    b._create()                 # loses the race: the existing file stays
    assert read(folder) == first
    assert sorted(os.listdir(folder)) == sorted([uidlist.FILENAME, uidvalidity.FILENAME])


def test_torn_last_line_ignored_until_complete(folder):
    u = UidList(folder)
    assign(u, ["a"])
    with open(os.path.join(folder, uidlist.FILENAME), "a") as f:
        f.write("2 b")          # a writer that has not finished its line
    v = UidList(folder)
    v.refresh()
    assert v.uids == {"a": 1}
    assert v.uidnext == 2
    with open(os.path.join(folder, uidlist.FILENAME), "a") as f:
        f.write("\n")
    v.refresh()
    assert v.uids == {"a": 1, "b": 2}
    assert v.uidnext == 3


def test_forget_then_compact_never_reuses(folder):
    u = UidList(folder)
    assign(u, ["a", "b", "c"])
    validity = u.uidvalidity
    u.forget(["c"])
    u.compact({"a", "b"})
    assert read(folder) == [f"CM1 {validity} 4 0", "1 a", "2 b"]
    fresh = UidList(folder)
    fresh.refresh()
    assert fresh.uids == {"a": 1, "b": 2}
    assert fresh.uidnext == 4
    assert assign(fresh, ["d"]) == {"d": 4}
    # even compacting away everything keeps UIDNEXT
    fresh.compact(set())
    again = UidList(folder)
    assert assign(again, ["e"]) == {"e": 5}
    assert again.uidvalidity == validity


def test_compaction_seen_by_other_instance(folder):
    a, b = UidList(folder), UidList(folder)
    assign(a, ["x", "y"])
    b.refresh()
    a.compact({"y"})
    b.refresh()                 # new inode: re-read from the start
    assert b.uids == {"y": 2}
    assert assign(b, ["z"]) == {"z": 3}


def test_what_another_instance_appended_is_read_through_a_kept_descriptor(folder, monkeypatch):
    a, b = UidList(folder), UidList(folder)
    assign(a, ["x"])
    b.refresh()                 # opens its reader
    opened = []
    path = os.path.join(folder, uidlist.FILENAME)

    def spy(real):
        def opener(name, *args, **kwargs):
            if os.fspath(name) == path:
                opened.append(name)
            return real(name, *args, **kwargs)
        return opener

    monkeypatch.setattr(os, "open", spy(os.open))
    monkeypatch.setattr(builtins, "open", spy(builtins.open))
    for i, base in enumerate(["y", "z", "w"]):
        assign(a, [base])
        b.refresh()
        assert b.uids[base] == i + 2
    assert opened == []         # one pread each, no open of the path
    a.compact({"z", "w"})       # another inode: the path is opened again, read whole
    b.refresh()
    assert b.uids == {"z": 3, "w": 4}
    assert len(opened) == 1
    assign(a, ["v"])            # (its writer opens the new file once)
    b.refresh()
    assert b.uids == {"z": 3, "w": 4, "v": 5} and len(opened) == 2
    b.close()
    assert b._file._fd is None


def test_compact_only_when_live_given(folder):
    u = UidList(folder)
    assign(u, ["a", "b"])
    u.compact({"a", "b", "not-assigned"})
    assert u.uids == {"a": 1, "b": 2}
    assert u.uidnext == 3


def test_needs_compaction(folder):
    u = UidList(folder)
    assign(u, [f"base-{i:06d}-" + "x" * 60 for i in range(100)])
    assert not u.needs_compaction()           # all live: the file is the right size
    u.forget([f"base-{i:06d}-" + "x" * 60 for i in range(95)])
    assert u.needs_compaction()
    u.compact(set(u.uids))
    assert not u.needs_compaction()
    assert u.uidnext == 101


def test_claim_recent(folder):
    u = UidList(folder)
    assert u.claim_recent() == 0
    assign(u, ["a", "b"])
    assert u.claim_recent() == 0              # caller gets UIDs > 0 as recent
    assert u.claim_recent() == 2              # nothing new for the next one
    other = UidList(folder)
    assert other.claim_recent() == 2
    assign(u, ["c"])
    assert other.claim_recent() == 2
    assert u.claim_recent() == 3
    u.compact({"a", "b", "c"})
    again = UidList(folder)
    again.refresh()
    assert again.recent_upto == 3


def test_header_uidnext_beats_lines(folder):
    with open(os.path.join(folder, uidlist.FILENAME), "w") as f:
        f.write("CM1 77 50 0\n3 a\n")
    u = UidList(folder)
    u.refresh()
    assert (u.uidvalidity, u.uidnext, u.uids) == (77, 50, {"a": 3})
    assert assign(u, ["b"]) == {"b": 50}


def test_creation_and_compaction_fsync_the_directory(folder, monkeypatch):
    """The header (UIDVALIDITY) and a compacted file are durable with their names: an
    old file coming back after a crash could hand out a UID twice."""
    from clevermail import durable
    synced = []
    real = durable.fsync_dir
    monkeypatch.setattr(durable, "fsync_dir", lambda p: synced.append(p) or real(p))
    monkeypatch.setattr(uidlist, "fsync_dir", durable.fsync_dir)
    u = UidList(folder)
    u.refresh()
    assert synced == [folder, folder]           # the UIDVALIDITY mark, then the uidlist
    assign(u, ["a", "b"])
    u.compact({"b"})
    assert synced == [folder, folder, folder]
    assert read(folder) == [f"CM1 {u.uidvalidity} 3 0", "2 b"]
    assert sorted(os.listdir(folder)) == sorted([uidlist.FILENAME, uidvalidity.FILENAME])


def test_uidvalidity_is_new_for_every_file_even_within_one_second(folder, monkeypatch):
    """RFC 3501 2.3.1.1: a folder created again gets a new UIDVALIDITY; the clock
    alone gives the same value within a second (or after it was set back)."""
    monkeypatch.setattr(uidvalidity.time, "time", lambda: 1_700_000_000.5)
    seen = []
    for _ in range(3):
        u = UidList(folder)
        u.refresh()
        seen.append(u.uidvalidity)
        os.unlink(os.path.join(folder, uidlist.FILENAME))     # the folder deleted
    assert seen == [1_700_000_000, 1_700_000_001, 1_700_000_002]
    monkeypatch.setattr(uidvalidity.time, "time", lambda: 1_800_000_000.0)
    u = UidList(folder)
    u.refresh()
    assert u.uidvalidity == 1_800_000_000                     # the clock again when ahead


def test_uidvalidity_mark_is_per_user_root(tmp_path):
    """Maildir++: a folder (.Name) takes its values from the user root it sits in."""
    root = tmp_path / "user"
    sub = root / ".Work"
    sub.mkdir(parents=True)
    a, b = UidList(str(root)), UidList(str(sub))
    a.refresh()
    b.refresh()
    assert b.uidvalidity > a.uidvalidity
    assert (root / uidvalidity.FILENAME).read_text() == f"{b.uidvalidity}\n"
    assert not (sub / uidvalidity.FILENAME).exists()


# -- UIDs written unsynced under a reservation (the store's own APPEND and COPY) ----------
class DurableCopy:
    """What a machine crash would leave of the uidlist: its content as of the last
    os.fsync of it (os.fsync watched; lines written after it are lost)."""

    def __init__(self, folder, monkeypatch):
        self.path = os.path.join(folder, uidlist.FILENAME)
        self.synced = b""
        self.fsyncs = 0
        real = os.fsync

        def fsync(fd):
            real(fd)
            if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                self.fsyncs += 1
                with open(self.path, "rb") as f:
                    self.synced = f.read()
        monkeypatch.setattr(os, "fsync", fsync)

    def crash(self, monkeypatch, boot="another-boot"):
        """The machine went down and came back: unsynced lines gone, a new boot id."""
        with open(self.path, "wb") as f:
            f.write(self.synced)
        monkeypatch.setattr(uidlist, "BOOT_ID", boot)


def test_unsynced_assign_reserves_once_then_writes_without_fsync(folder, monkeypatch):
    monkeypatch.setattr(uidlist, "RESERVE", 10)
    u = UidList(folder)
    u.refresh()
    disk = DurableCopy(folder, monkeypatch)
    assert u.assign_list(["a"], durable=False) == [1]
    # the first UID above the reservation: the line and a reservation, fsynced
    assert disk.fsyncs == 1 and not u.unsynced
    assert read(folder)[1:] == ["1 a", f"N 11 {uidlist.BOOT_ID}"]
    assert u.assign_list(["b", "c"], durable=False) == [2, 3]
    assert disk.fsyncs == 1 and u.unsynced          # the caller fsyncs them
    assert u.assign_list(["c"], durable=False) == [3] and not u.unsynced   # nothing new
    assert u.assign_list([f"m{i}" for i in range(8)], durable=False) == list(range(4, 12))
    assert disk.fsyncs == 1 and u.unsynced          # up to 11: still reserved
    assert u.assign_list(["n"], durable=False) == [12]
    assert disk.fsyncs == 2                         # past 11: reserved again
    assert read(folder)[-1] == f"N 22 {uidlist.BOOT_ID}"
    # in the same boot every written line counts: another process continues after them
    other = UidList(folder)
    assert assign(other, ["d"]) == {"d": 13}


def test_a_machine_crash_never_lets_a_uid_be_given_twice(folder, monkeypatch):
    """UIDs handed out unsynced are lost with the page cache; the reservation, fsynced
    before any of them, moves UIDNEXT past every one after the machine restarts."""
    monkeypatch.setattr(uidlist, "RESERVE", 5)
    u = UidList(folder)
    u.refresh()
    disk = DurableCopy(folder, monkeypatch)
    told = []
    for i in range(12):                             # crosses two reservations
        told += u.assign_list([f"x{i}"], durable=False)
    assert told == list(range(1, 13))
    disk.crash(monkeypatch)
    after = UidList(folder)
    fresh = after.assign_list(["y"], durable=False)
    assert fresh[0] > max(told)
    assert after.uids.get("x11") is None            # its line was never fsynced
    # once the reservation line itself is lost, what it covered was lost with it: a
    # crash right after the first unsynced UID of a fresh file
    other = str(folder) + "-2"
    os.mkdir(other)
    v = UidList(other)
    v.refresh()
    disk = DurableCopy(other, monkeypatch)
    assert v.assign_list(["p"], durable=False) == [1]       # fsynced with its reservation
    assert v.assign_list(["q"], durable=False) == [2]       # not fsynced
    disk.crash(monkeypatch, boot="third-boot")
    w = UidList(other)
    assert w.assign_list(["r"], durable=False)[0] > 2


def test_a_reservation_of_this_boot_moves_nothing(folder, monkeypatch):
    """A process restarted (or killed) in the same boot lost no written line: UIDs
    continue right after them, without a gap."""
    u = UidList(folder)
    u.assign_list(["a", "b"], durable=False)
    again = UidList(folder)
    again.refresh()
    assert again.uidnext == 3 and again.reserved == u.reserved
    monkeypatch.setattr(uidlist, "BOOT_ID", "next-boot")
    after_reboot = UidList(folder)
    after_reboot.refresh()
    assert after_reboot.uidnext == u.reserved + 1 and after_reboot.reserved == 0


def test_compaction_keeps_the_reservation(folder, monkeypatch):
    u = UidList(folder)
    u.assign_list(["a", "b", "c"], durable=False)
    reserved = u.reserved
    u.forget(["a"])
    u.compact({"b", "c"})
    assert read(folder) == [f"CM1 {u.uidvalidity} 4 0", f"N {reserved} {uidlist.BOOT_ID}", "2 b", "3 c"]
    again = UidList(folder)
    again.refresh()
    assert again.reserved == reserved and again.uidnext == 4
    monkeypatch.setattr(uidlist, "BOOT_ID", "next-boot")
    after_reboot = UidList(folder)
    after_reboot.refresh()
    assert after_reboot.uidnext == reserved + 1


def test_without_a_boot_id_every_line_is_fsynced(folder, monkeypatch):
    monkeypatch.setattr(uidlist, "BOOT_ID", None)
    u = UidList(folder)
    u.refresh()
    disk = DurableCopy(folder, monkeypatch)
    assert u.assign_list(["a"], durable=False) == [1]
    assert u.assign_list(["b"], durable=False) == [2]
    assert disk.fsyncs == 2 and not u.unsynced
    assert read(folder)[1:] == ["1 a", "2 b"]
