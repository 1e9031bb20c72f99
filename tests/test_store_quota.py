"""Tests for clevermail.store.quota: quota values as written, the usage counted from
Maildir file names (never by reading a message), kept current with the disk
whoever wrote to it, and the checks (OverQuota, temporary or permanent)."""

import os

import pytest

from clevermail.store import MailStore, maildir
from clevermail.store.quota import (RACY_NS, OverQuota, QuotaLimits, Quotas, Usage,
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
    from clevermail.store.folder_ops import append_message
    return append_message(store, ALICE, name, wire, [])


def disk_total(root):
    total = 0
    for dirpath, _, files in os.walk(root):
        if os.path.basename(dirpath) in ("new", "cur"):
            total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
    return total


def test_usage_follows_changes_by_other_writers(store, tmp_path):
    """Another process (another instance, the CLI, procmail) writes and deletes
    files: the next look sees it, also within the same clock tick (no cached
    listing younger than RACY_NS is trusted)."""
    deliver(store)
    root = store.user_root(ALICE)
    first = store.quota.usage(ALICE)
    foreign = os.path.join(root, "new", "1700000001.P9.other")
    with open(foreign, "wb") as f:
        f.write(b"y" * 1000)
    assert store.quota.usage(ALICE) == Usage(first.storage + 1000, 2)
    os.unlink(foreign)
    assert store.quota.usage(ALICE) == first
    second = MailStore(tmp_path / "data")       # as another process would
    deliver(second)
    assert store.quota.usage(ALICE).messages == 2


def test_a_settled_directory_is_not_listed_again(store, monkeypatch):
    deliver(store)
    quotas = Quotas(store.users, clock=lambda: 1 << 62)      # every mtime long past
    expected = quotas.usage(ALICE)
    listed = []
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda p: listed.append(p) or real(p))
    assert quotas.usage(ALICE) == expected
    assert listed == []


def test_a_young_listing_is_not_trusted(store, monkeypatch):
    deliver(store)
    now = [0]
    quotas = Quotas(store.users, clock=lambda: now[0])
    inbox_new = os.path.join(store.user_root(ALICE), "new")
    now[0] = os.stat(inbox_new).st_mtime_ns + RACY_NS // 2
    quotas.usage(ALICE)
    listed = []
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda p: listed.append(p) or real(p))
    quotas.usage(ALICE)
    assert inbox_new in listed


def test_deleted_folder_frees_its_usage(store):
    store.create_folder(ALICE, "Old")
    store_append(store, "Old", b"z\r\n" * 100)
    before = store.quota.usage(ALICE)
    store.delete_folder(ALICE, "Old")
    assert store.quota.usage(ALICE) == Usage(before.storage - 200, before.messages - 1)


def test_folder_usage(store):
    deliver(store)
    path = store.folder_path(ALICE, "INBOX")
    assert store.quota.folder_usage(path) == Usage(disk_total_flat(path), 1)
    assert store.quota.folder_usage(store.folder_path(ALICE, "Trash")) == Usage(0, 0)


def disk_total_flat(path):
    return sum(os.path.getsize(os.path.join(path, sub, f))
               for sub in ("new", "cur") for f in os.listdir(os.path.join(path, sub)))


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
