"""IMAP QUOTA (RFC 9208), STATUS SIZE (RFC 8438), DELETED/DELETED-STORAGE and
APPENDLIMIT (RFC 7889) over a socketpair session: exact responses, APPEND and COPY
refused NO [OVERQUOTA] with nothing stored, MOVE refused only when the user is over
quota already and never into Trash, usage written by another process seen at the
next command."""

import os

import pytest

from clevermail.store import MailStore
from clevermail.store.folder_ops import folder_status
from clevermail.store.quota import QuotaLimits
from fakes import RETURN_PATH
from imap_helpers import (ALICE, append, check, client, deliver, handler, message,  # noqa: F401
                          open_session, selected, store)


@pytest.fixture
def limits(store):
    """Set {address: QuotaLimits}; nobody has a limit unless the test says so."""
    table = {}
    store.quota.limits = lambda address: table.get(address, QuotaLimits())
    return table


def used(store, address=ALICE):
    return store.quota.usage(address)


def kib_up(n):
    return -(-n // 1024)


def test_capabilities(client):
    caps = client.expect("CAPABILITY").untagged[0].split()
    for cap in ("QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE", "STATUS=SIZE", "APPENDLIMIT=1048576"):
        assert cap in caps
    assert "QUOTASET" not in caps


def test_no_limit_means_a_root_without_resources(client, limits):
    r = client.expect("GETQUOTAROOT INBOX")
    assert r.untagged == ['* QUOTAROOT "INBOX" ""']
    assert client.expect('GETQUOTA ""').untagged == []


def test_getquotaroot_numbers(client, store, limits):
    deliver(store, 3)
    limits[ALICE] = QuotaLimits(storage=10 * 1024 + 512, messages=100)
    u = used(store)
    r = client.expect("GETQUOTAROOT Trash")
    assert r.untagged == ['* QUOTAROOT "Trash" ""',
                          f'* QUOTA "" (STORAGE {kib_up(u.storage)} 10 MESSAGE 3 100)']
    limits[ALICE] = QuotaLimits(messages=5)
    assert client.expect('GETQUOTA ""').untagged == ['* QUOTA "" (MESSAGE 3 5)']
    # a mailbox that does not exist yet: the root that would hold it
    assert client.expect("GETQUOTAROOT Later").untagged[0] == '* QUOTAROOT "Later" ""'


def test_usage_follows_another_writer(client, store, limits):
    """Another CleverMail process (the CLI, a second instance) writes the same
    ledger: seen at the next command.  A program that writes the Maildir without it
    is seen once the ledger is recalculated (here: removed by the operator)."""
    limits[ALICE] = QuotaLimits(storage=1 << 20, messages=10)
    deliver(store, 1)
    used(store)
    MailStore(os.path.dirname(store.mail_root)).deliver_local("", [ALICE], message(1))
    u = used(store)
    assert u.messages == 2
    assert client.expect('GETQUOTA ""').untagged == [f'* QUOTA "" (STORAGE {kib_up(u.storage)} 1024 MESSAGE 2 10)']
    root = store.user_root(ALICE)
    with open(os.path.join(root, ".Trash", "new", "1700000000.P1.elsewhere"), "wb") as f:
        f.write(b"x" * 5000)                    # another program, no S= in the name
    assert used(store) == u
    os.unlink(os.path.join(root, "maildirsize"))
    u = used(store)
    assert u.messages == 3
    assert client.expect('GETQUOTA ""').untagged == [f'* QUOTA "" (STORAGE {kib_up(u.storage)} 1024 MESSAGE 3 10)']


@pytest.mark.parametrize("command, status, code", [
    ('GETQUOTA "other"', "NO", "NONEXISTENT"),
    ("GETQUOTA", "BAD", ""),
    ('GETQUOTA "" x', "BAD", ""),
    ("GETQUOTAROOT", "BAD", ""),
    ('GETQUOTAROOT "a/../b" x', "BAD", ""),
    ('SETQUOTA "" (STORAGE 512)', "NO", "NOPERM"),
    ('SETQUOTA ""', "BAD", ""),
    ('SETQUOTA "" STORAGE', "BAD", ""),
])
def test_refusals(client, command, status, code):
    client.expect(command, status, code)


def test_append_over_quota(client, store, limits):
    deliver(store, 1)
    limits[ALICE] = QuotaLimits(storage=used(store).storage + 50)
    data = message(9)                           # over 50 bytes
    r = append(client, "INBOX", data)
    check(r, "NO", "OVERQUOTA")
    assert used(store).messages == 1
    limits[ALICE] = QuotaLimits(storage=used(store).storage + len(data))
    ok = append(client, "INBOX", data)
    check(ok, "OK")
    assert "[APPENDUID " in ok.tagged
    limits[ALICE] = QuotaLimits(messages=2)
    check(append(client, "Drafts", data), "NO", "OVERQUOTA")


def test_copy_over_quota_move_allowed(selected, store, limits):
    limits[ALICE] = QuotaLimits(messages=4)
    assert "[COPYUID " in selected.expect("COPY 1 Trash", "OK").tagged
    selected.expect("COPY 2:3 Trash", "NO", "OVERQUOTA")
    assert used(store).messages == 4
    # MOVE takes nothing more of the one root: allowed when full (at the limit)
    selected.expect("MOVE 3 Archive", "OK")
    assert used(store).messages == 4
    limits[ALICE] = QuotaLimits(storage=used(store).storage)
    selected.expect("UID COPY 1 Archive", "NO", "OVERQUOTA")


def test_move_when_over_quota(selected, store, limits):
    """Over the limit already (it was lowered): a MOVE is refused, except into
    \\Trash, so that the user can still clean up."""
    limits[ALICE] = QuotaLimits(messages=2)
    r = selected.expect("MOVE 1 Archive", "NO", "OVERQUOTA")
    assert r.tagged.endswith("NO [OVERQUOTA] Mailbox quota exceeded")
    selected.expect("UID MOVE 2 Drafts", "NO", "OVERQUOTA")
    assert folder_status(store, ALICE, "Archive").messages == 0
    assert folder_status(store, ALICE, "INBOX").messages == 3
    selected.expect("MOVE 1:2 Trash", "OK")
    assert used(store).messages == 3
    limits[ALICE] = QuotaLimits(storage=used(store).storage - 1)
    selected.expect("UID MOVE 3 Archive", "NO", "OVERQUOTA")
    limits[ALICE] = QuotaLimits(storage=used(store).storage)        # at the limit, not over
    selected.expect("UID MOVE 3 Archive", "OK")


def test_status_sizes(selected, store):
    selected.expect("STORE 2 +FLAGS (\\Deleted)")
    sizes = [len(RETURN_PATH + message(n)) for n in (1, 2, 3)]     # delivered: Return-Path first
    rfc822 = selected.expect("FETCH 1:3 RFC822.SIZE").untagged
    assert [int(line.split()[-1].rstrip(")")) for line in rfc822] == sizes
    r = selected.expect("STATUS INBOX (MESSAGES SIZE DELETED DELETED-STORAGE APPENDLIMIT)")
    assert r.untagged == [f'* STATUS "INBOX" (MESSAGES 3 SIZE {sum(sizes)} DELETED 1 '
                          f'DELETED-STORAGE {sizes[1]} APPENDLIMIT 1048576)']
    r = selected.expect("STATUS Trash (SIZE DELETED)")
    assert r.untagged == ['* STATUS "Trash" (SIZE 0 DELETED 0)']
    selected.expect("STATUS Nowhere (SIZE)", "NO", "NONEXISTENT")


def test_multiappend_over_quota_stores_none(client, store, limits):
    limits[ALICE] = QuotaLimits(messages=1)
    data = message(1)
    tag = next(client.tags)
    client.send(f"{tag} APPEND INBOX {{{len(data)}+}}\r\n".encode() + data
                + f" {{{len(data)}+}}\r\n".encode() + data + b"\r\n")
    check(client.read_reply(tag), "NO", "OVERQUOTA")
    assert used(store).messages == 0
