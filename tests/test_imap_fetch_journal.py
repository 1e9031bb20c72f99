"""The per-folder FETCH metadata journal (clevermail/imap/fetch_journal.py): its records
(whole, not yet whole, damaged, of a foreign shape), two readers and writers on one file
as two worker processes are, the bound kept by rewriting, and two real processes
appending and rewriting at once without ever leaving a record that is not theirs."""

import marshal
import os
import subprocess
import sys
import zlib

import pytest

from clevermail.imap.fetch_journal import FILE_NAME, MAGIC, FolderJournal, decode, encode

HEADER_KEY = ((), "HEADER.FIELDS", frozenset({"from", "subject"}))


def items(uid):
    return {"ENVELOPE": b"(env %d)" % uid, HEADER_KEY: b"Subject: %d\r\n\r\n" % uid}


def test_records_round_trip():
    data = encode(7, 1, items(1)) + encode(7, 2, {"BODY": b"(b)"})
    assert decode(data) == ([(7, 1, items(1)), (7, 2, {"BODY": b"(b)"})], len(data), False)


def test_a_record_not_yet_whole_is_left_for_the_next_look():
    whole, partial = encode(7, 1, items(1)), encode(7, 2, items(2))
    for cut in (3, 11, 12, len(partial) - 1):
        records, pos, damaged = decode(whole + partial[:cut])
        assert records == [(7, 1, items(1))] and pos == len(whole) and not damaged
    assert decode(whole + partial, pos)[0] == [(7, 2, items(2))]


def payload_record(value):
    payload = marshal.dumps(value)
    return MAGIC + len(payload).to_bytes(4, "little") + zlib.crc32(payload).to_bytes(4, "little") + payload


@pytest.mark.parametrize("bad", [
    b"garbage that is no record at all",
    payload_record((7, 3, {"ENVELOPE": "a str"})),
    payload_record((7, 3, {"RFC822": b"not a kept item"})),
    payload_record((7, 3, {((1,), "HEADER", ("a",)): b"fields not a frozenset"})),
    payload_record((7, "3", {})),
    payload_record([7, 3, {}]),
    MAGIC + (1 << 30).to_bytes(4, "little") + b"\0\0\0\0",          # a length past any record
])
def test_damage_and_foreign_shapes_are_skipped(bad):
    good = encode(7, 1, items(1)), encode(7, 2, items(2))
    data = good[0] + bad + good[1]
    records, pos, damaged = decode(data)
    assert records == [(7, 1, items(1)), (7, 2, items(2))] and pos == len(data) and damaged


def test_a_flipped_byte_loses_its_record_only():
    data = bytearray(encode(7, 1, items(1)) + encode(7, 2, items(2)) + encode(7, 3, items(3)))
    data[len(encode(7, 1, items(1))) + 20] ^= 0x40
    records, _, damaged = decode(bytes(data))
    assert [r[1] for r in records] == [1, 3] and damaged


def journal(tmp_path, uidvalidity=7, max_bytes=1 << 20):
    return FolderJournal(str(tmp_path / FILE_NAME), uidvalidity, max_bytes)


def test_what_one_process_appends_the_other_reads_once(tmp_path):
    a, b = journal(tmp_path), journal(tmp_path)
    assert b.read_new() == []                   # no file yet
    a.append({1: items(1), 2: items(2)}, set)
    assert b.read_new() == [(1, items(1)), (2, items(2))]
    assert b.read_new() == []
    b.append({3: items(3)}, set)
    a.append({4: items(4)}, set)
    assert a.read_new() == [(3, items(3)), (4, items(4))]   # its own after another's: read back
    assert b.read_new() == [(4, items(4))]
    other = journal(tmp_path, uidvalidity=8)     # a folder made again: another UIDVALIDITY
    assert other.read_new() == []
    for j in (a, b, other):
        j.close()


def test_a_file_cut_short_or_deleted_is_read_again(tmp_path):
    a, b = journal(tmp_path), journal(tmp_path)
    a.append({1: items(1), 2: items(2)}, set)
    assert len(b.read_new()) == 2
    with open(a.path, "r+b") as f:
        f.truncate(len(encode(7, 1, items(1))))
    assert b.read_new() == [(1, items(1))]
    os.unlink(a.path)
    assert b.read_new() == []
    a.append({5: items(5)}, set)                # its descriptor was of the deleted file
    assert b.read_new() == [] and not os.path.exists(a.path)
    a.close()
    a.append({6: items(6)}, set)
    assert b.read_new() == [(6, items(6))]
    a.close()
    b.close()


def test_past_its_bound_it_keeps_the_newest_live_messages(tmp_path):
    size = len(encode(7, 10, items(10)))        # the same for every two-digit UID
    a, b = journal(tmp_path, max_bytes=10 * size), journal(tmp_path, max_bytes=10 * size)
    for uid in range(11, 20):
        a.append({uid: items(uid)}, lambda: set(range(1, 100)))
    assert len(b.read_new()) == 9 and os.path.getsize(a.path) == 9 * size
    live = set(range(11, 22)) - {19}            # 19 was expunged
    a.append({20: items(20), 21: items(21)}, lambda: live)
    records, _, damaged = decode(open(a.path, "rb").read())
    assert [r[1] for r in records] == [16, 17, 18, 20, 21] and not damaged    # half the bound
    assert b.read_new() == [(uid, items(uid)) for uid in (16, 17, 18, 20, 21)]   # the new file, whole
    b.append({22: items(22)}, lambda: live)
    assert a.read_new()[-1] == (22, items(22))
    a.close()
    b.close()


def test_split_items_of_a_message_are_merged_by_a_rewrite(tmp_path):
    a = journal(tmp_path, max_bytes=400)
    a.append({1: {"BODY": b"(b)"}}, set)
    a.append({1: {"ENVELOPE": b"(e)"}}, set)
    a.append({2: {"BODY": b"x" * 300}}, lambda: {1})
    assert decode(open(a.path, "rb").read())[0] == [(7, 1, {"BODY": b"(b)", "ENVELOPE": b"(e)"})]
    a.close()


WRITER = r"""
import sys
from clevermail.imap.fetch_journal import FolderJournal
path, who, count, bound = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
j = FolderJournal(path, 7, bound)
uids = set()
for n in range(count):
    uid = who * 100000 + n
    uids.add(uid)
    # sizes vary so that records straddle pages and one write holds several
    batch = {uid: {"ENVELOPE": (b"%d." % uid) * (1 + n % 300)},
             uid + 50000: {"BODY": b"%d" % uid}}
    j.append(batch, lambda: set(range(0, 10**6)))
    j.read_new()
"""


def expected(uid):
    base = uid if uid % 100000 < 50000 else uid - 50000
    n = base % 100000
    return {"BODY": b"%d" % base} if base != uid else {"ENVELOPE": (b"%d." % uid) * (1 + n % 300)}


@pytest.mark.parametrize("bound", [1 << 30, 64 << 10])      # never rewritten; rewritten often
def test_two_processes_writing_at_once_never_corrupt_it(tmp_path, bound):
    path = str(tmp_path / FILE_NAME)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, path, str(who), "400", str(bound)],
                                env=env) for who in (1, 2)]
    for w in writers:
        assert w.wait(timeout=120) == 0
    records, pos, damaged = decode(open(path, "rb").read())
    assert not damaged and pos == os.path.getsize(path)
    for uv, uid, got in records:
        assert uv == 7 and got == expected(uid)
    uids = {r[1] for r in records}
    if bound == 1 << 30:                        # every record of both is there
        assert uids == {who * 100000 + n + extra for who in (1, 2) for n in range(400)
                        for extra in (0, 50000)}
    else:
        assert os.path.getsize(path) <= bound + 2 * 300 * 8
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_a_journal_its_cache_let_go_opens_no_descriptor_again(tmp_path):
    """A FETCH still holding a folder's journal when the cache drops it (past
    max_journals) writes nothing rather than open a descriptor nobody would close."""
    from clevermail.imap.fetch_cache import FetchCache
    cache = FetchCache(max_journals=1)
    paths = {name: str(tmp_path / name) for name in ("a", "b")}
    in_flight = cache.folder(("alice", "A", 7), lambda: paths["a"])
    in_flight.added(1, "ENVELOPE", b"(env 1)")
    cache.folder(("alice", "B", 7), lambda: paths["b"])     # A's journal let go
    in_flight.flush(set)
    assert not os.path.exists(paths["a"])
    cache.close()
