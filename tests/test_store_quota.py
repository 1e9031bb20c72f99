"""Tests for clevermail.store.quota and its ledger (store/maildirsize.py): quota
values as written, the usage counted from Maildir file names (never by reading a
message) and kept in the maildirsize ledger by every writer in every process,
recalculated when missing, too long or stale, and the checks (OverQuota, temporary
or permanent), binding under the ledger's lock."""

import os
import threading
import time

import pytest

from clevermail.store import MailStore, maildir, maildirsize
from clevermail.store.folder_ops import append_message
from clevermail.store.quota import (OverQuota, QuotaLimits, Quotas, Usage,
                                    count_names, format_storage, parse_messages,
                                    parse_storage, user_limits)

ALICE = "alice@example.test"
MSG = b"Subject: hi\r\n\r\nhello\r\n"          # 23 bytes on the wire, 20 on disk


# -- values --------------------------------------------------------------------------------
@pytest.mark.parametrize("text, value", [
    ("1048576", 1048576), ("10k", 10240), ("10K", 10240), ("500M", 500 << 20), ("1G", 1 << 30),
    ("2GiB", 2 << 30), ("3gb", 3 << 30), ("1T", 1 << 40), (" 7 ", 7), ("0", 0),
    ("none", None), ("Unlimited", None), ("", None)])
def test_parse_storage(text, value):
    assert parse_storage(text) == value


@pytest.mark.parametrize("text", ["1.5G", "-1", "G", "1X", "ten", "1 G B"])
def test_parse_storage_refuses(text):
    with pytest.raises(ValueError, match="is not a size"):
        parse_storage(text)


def test_parse_messages():
    assert parse_messages("1000") == 1000
    assert parse_messages("0") == 0
    assert parse_messages("none") is None
    for bad in ("1k", "-3", "x"):
        with pytest.raises(ValueError, match="not a number of messages"):
            parse_messages(bad)


@pytest.mark.parametrize("size", [0, 1, 1000, 1024, 1536 * 1024, 1 << 30, 3 << 40, None])
def test_format_storage_reads_back(size):
    assert parse_storage(format_storage(size)) == size
    assert format_storage(1 << 30) == "1G"


def test_user_limits_over_the_default():
    default = QuotaLimits(1000, 10)
    assert user_limits(("default", "default"), default) == default
    assert user_limits((5, "default"), default) == QuotaLimits(5, 10)
    assert user_limits((None, None), default) == QuotaLimits(None, None)
    assert user_limits(("default", 0), QuotaLimits()) == QuotaLimits(None, 0)


# -- counting ------------------------------------------------------------------------------
def test_count_names_reads_sizes_from_names_only(tmp_path):
    names = ["1.M1P1Q1.h,S=100,W=104", "2.M1P1Q2.h,S=23,W=25:2,S", ".hidden", "3.x,S=7:2,"]
    assert count_names(str(tmp_path), names) == Usage(130, 3)    # no file exists: none opened


def test_count_names_measures_names_without_sizes(tmp_path):
    (tmp_path / "1700000000.foreign").write_bytes(b"x" * 321)
    names = ["1700000000.foreign", "2.h,S=9,W=10", "gone-already"]
    assert count_names(str(tmp_path), names) == Usage(330, 3)


# -- usage of a user -----------------------------------------------------------------------
@pytest.fixture
def store(tmp_path):
    return MailStore(tmp_path / "data")


def deliver(store, address=ALICE, data=MSG):
    store.deliver_local("", [address], data)


def test_usage_of_a_new_user_is_zero(store):
    assert store.quota.usage("nobody@example.test") == Usage(0, 0)


def test_usage_counts_every_folder(store):
    deliver(store)
    deliver(store)
    uidvalidity, uid = store_append(store, "Trash", b"x\r\n" * 50)
    on_disk = disk_total(store.user_root(ALICE))
    assert store.quota.usage(ALICE) == Usage(on_disk, 3)
    assert on_disk == 2 * len(b"Return-Path: <>\n" + maildir.to_disk(MSG)) + 100


def store_append(store, name, wire):
    return append_message(store, ALICE, name, wire, [])


def disk_total(root):
    total = 0
    for dirpath, _, files in os.walk(root):
        if os.path.basename(dirpath) in ("new", "cur"):
            total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
    return total


def ledger(store, address=ALICE):
    with open(os.path.join(store.user_root(address), maildirsize.FILE_NAME), "rb") as f:
        return f.read()


def recount(store, address=ALICE):
    return maildirsize.count_user(store.user_root(address))


def test_every_writer_keeps_the_ledger_exact(store):
    """Delivery, APPEND, COPY, EXPUNGE, folder DELETE: each appends its line, and the
    ledger's sum is always what the file names say."""
    deliver(store)
    # made by the first reservation: limits line, the sum then, the delivery's line
    assert ledger(store) == f"\n0 0\n{recount(store).storage} 1\n".encode()
    deliver(store)
    store_append(store, "Trash", b"x\r\n" * 50)
    store.create_folder(ALICE, "Old")
    store_append(store, "Old", b"z\r\n" * 100)
    inbox = store.open_folder(ALICE, "INBOX")
    try:
        inbox.copy_to(inbox.uids[:1], inbox)
        assert store.quota.usage(ALICE) == recount(store) == Usage(recount(store).storage, 5)
        inbox.expunge(inbox.uids[:2])
    finally:
        store.release_folder(inbox)
    store.delete_folder(ALICE, "Old")
    assert store.quota.usage(ALICE) == recount(store) == Usage(recount(store).storage, 2)
    lines = ledger(store).splitlines()
    assert len(lines) == 9 and lines[-1].startswith(b"-")      # no recalculation took place


def test_a_flag_change_costs_nothing(store, monkeypatch):
    deliver(store)
    usage = store.quota.usage(ALICE)
    before = ledger(store)
    inbox = store.open_folder(ALICE, "INBOX")
    try:
        inbox.store_flags(inbox.uids, "S", "+")
    finally:
        store.release_folder(inbox)
    assert ledger(store) == before
    listed = []
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda p: listed.append(p) or real(p))
    assert store.quota.usage(ALICE) == usage
    assert listed == []                              # a check reads the ledger only


def test_another_process_is_counted(store, tmp_path):
    deliver(store)
    store.quota.usage(ALICE)
    second = MailStore(tmp_path / "data")           # as another process would
    deliver(second)
    assert store.quota.usage(ALICE).messages == 2


def test_a_missing_or_broken_ledger_is_recalculated(store):
    deliver(store)
    deliver(store)
    path = os.path.join(store.user_root(ALICE), maildirsize.FILE_NAME)
    for broken in (None, b"", b"1S\n12 1\n7 x\n", b"1S\n12 1\n7", b"\n-999 -3\n"):
        if broken is None:
            os.unlink(path)
        else:
            with open(path, "wb") as f:
                f.write(broken)
        assert store.quota.usage(ALICE) == recount(store)
        assert ledger(store) == f"\n{recount(store).storage} 2\n".encode()


def test_a_long_ledger_is_recalculated(store):
    deliver(store)
    store.quota.usage(ALICE)
    path = os.path.join(store.user_root(ALICE), maildirsize.FILE_NAME)
    with open(path, "ab") as f:
        f.write(b"5 1\n-5 -1\n" * (maildirsize.MAX_BYTES // 10))
    assert store.quota.usage(ALICE) == recount(store)
    assert os.path.getsize(path) < 40


def test_foreign_writers_are_found_when_over_a_limit_and_stale(store):
    """A program that writes the Maildir without the ledger (procmail) is seen at
    the next recalculation: when the ledger says the user is over a limit and has
    not changed for STALE_SECONDS (Maildir++'s rule)."""
    deliver(store)
    store.quota.limits = lambda address: QuotaLimits(None, 1)
    root = store.user_root(ALICE)
    assert store.quota.usage(ALICE).messages == 1
    with open(os.path.join(root, "new", "1700000001.P9.other"), "wb") as f:
        f.write(b"y" * 1000)
    assert store.quota.usage(ALICE).messages == 1             # not seen yet
    maildirsize.append(root, (10, 1))                         # a line whose file was lost
    assert store.quota.usage(ALICE).messages == 2             # over, but fresh: trusted
    old = time.time() - maildirsize.STALE_SECONDS - 1
    os.utime(os.path.join(root, maildirsize.FILE_NAME), (old, old))
    assert store.quota.usage(ALICE) == recount(store) and recount(store).messages == 2
    assert ledger(store) == f"1C\n{recount(store).storage} 2\n".encode()


def test_no_recalculation_while_a_writer_is_between_file_and_line(store):
    """A writer holds the shared lock from its file change to its line: a
    recalculation then is skipped (its listing could disagree with the lines),
    and the usage is counted without keeping it."""
    deliver(store)
    root = store.user_root(ALICE)
    os.unlink(os.path.join(root, maildirsize.FILE_NAME))
    with maildirsize.changing(root):
        assert store.quota.usage(ALICE) == recount(store)
        assert not os.path.exists(os.path.join(root, maildirsize.FILE_NAME))
    assert store.quota.usage(ALICE) == recount(store)
    assert os.path.exists(os.path.join(root, maildirsize.FILE_NAME))


def test_an_aborted_delivery_gives_its_room_back(store):
    deliver(store)
    before = store.quota.usage(ALICE)
    pending = store.prepare_local("", [ALICE], MSG)
    assert store.quota.usage(ALICE).messages == before.messages + 1    # reserved
    pending.commit()
    pending.abort()                                 # a later part of the transaction failed
    assert store.quota.usage(ALICE) == before == recount(store)
    pending.abort()                                 # idempotent
    assert store.quota.usage(ALICE) == before


def test_a_reservation_checks_under_the_ledger_lock(store):
    """Two deliveries at the same moment cannot both take the last room: the check
    waits for the ledger lock, and sees the line of the one that held it."""
    deliver(store)
    used = store.quota.usage(ALICE)
    store.quota.limits = lambda address: QuotaLimits(None, used.messages + 1)
    root = store.user_root(ALICE)
    outcome = []

    def second():
        try:
            store.prepare_local("", [ALICE], MSG).commit()
            outcome.append("stored")
        except OverQuota as exc:
            outcome.append(exc)

    with maildirsize.locked(root) as fd:
        t = threading.Thread(target=second)
        t.start()
        t.join(0.3)
        assert t.is_alive()                     # waiting for the lock, not checked yet
        os.write(fd, b"20 1\n")                 # the first delivery takes the last room
    t.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], OverQuota)
    assert not outcome[0].permanent


def test_concurrent_deliveries_never_go_over(store):
    deliver(store)
    used = store.quota.usage(ALICE)
    store.quota.limits = lambda address: QuotaLimits(None, used.messages + 3)
    start = threading.Barrier(8)
    refused = []

    def one():
        start.wait()
        try:
            store.deliver_local("", [ALICE], MSG)
        except OverQuota:
            refused.append(1)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(refused) == 5
    assert store.quota.usage(ALICE) == recount(store) == Usage(recount(store).storage, used.messages + 3)


def test_deleted_folder_frees_its_usage(store):
    store.create_folder(ALICE, "Old")
    store_append(store, "Old", b"z\r\n" * 100)
    before = store.quota.usage(ALICE)
    store.delete_folder(ALICE, "Old")
    assert store.quota.usage(ALICE) == Usage(before.storage - 200, before.messages - 1)


# -- checks ----------------------------------------------------------------------------------
def limited(store, storage=None, messages=None):
    store.quota.limits = lambda address: QuotaLimits(storage, messages)
    return store.quota


def test_no_limits_no_refusal(store):
    assert store.quota.refusal(ALICE, 10 ** 12, 10 ** 6) is None


def test_storage_refusals(store):
    deliver(store)
    used = store.quota.usage(ALICE).storage
    quotas = limited(store, storage=used + 100)
    assert quotas.refusal(ALICE, 100) is None
    full = quotas.refusal(ALICE, 101)
    assert isinstance(full, OverQuota) and full.resource == "storage" and not full.permanent
    never = quotas.refusal(ALICE, used + 101)
    assert never.permanent and never.limit == used + 100
    with pytest.raises(OverQuota, match="mailbox full"):
        quotas.check(ALICE, 101)


def test_size_zero_asks_for_any_room(store):
    deliver(store)
    used = store.quota.usage(ALICE).storage
    assert limited(store, storage=used + 1).refusal(ALICE, 0) is None
    refused = limited(store, storage=used).refusal(ALICE, 0)
    assert refused is not None and not refused.permanent
    assert limited(store, storage=0).refusal(ALICE, 0).permanent


def test_message_refusals(store):
    deliver(store)
    quotas = limited(store, messages=3)
    assert quotas.refusal(ALICE, 10, count=2) is None
    assert not quotas.refusal(ALICE, 10, count=3).permanent
    assert quotas.refusal(ALICE, 10, count=4).permanent
    assert quotas.refusal(ALICE, 10, count=3).resource == "messages"
