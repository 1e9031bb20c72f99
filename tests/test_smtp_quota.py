"""Mailbox quotas over SMTP (session tier, a session on a socketpair): RCPT to a
full mailbox 452 4.2.2, 552 5.2.2 when the declared SIZE can never fit; after DATA
one reply for all when every copy is over quota, else the full mailboxes' copies
queued for the relay (retried while full, bounced when they never fit); aliases;
the relay's local deliveries (deliver_queued) and the worker's answers."""

import os

import pytest

from clevermail.aliases import AliasStore
from clevermail.relay.worker import RelayWorker
from clevermail.routing import Router
from clevermail.store.quota import OverQuota, QuotaLimits
from clevermail.smtp.handler import Recipient
from smtp_helpers import Env, make_users_file

ALICE, BOB = "alice@example.test", "bob@example.test"
MSG = "Subject: hi\r\n\r\nhello\r\n"


@pytest.fixture(scope="module")
def users_file(tmp_path_factory):
    return make_users_file(tmp_path_factory.mktemp("smtp-quota-users"))


@pytest.fixture
def env(tmp_path, users_file):
    e = Env(str(tmp_path / "data"), users_file)
    e.limits = {}
    e.store.quota.limits = lambda address: e.limits.get(address, QuotaLimits())
    yield e
    e.connect.end(wait=False)


def hello(env):
    c = env.connect()
    c.expect(250, "EHLO client.test")
    return c


def fill(env, address, n=1):
    # 2000 bytes each: a limit just above the usage still holds a whole message
    for _ in range(n):
        env.store.deliver_local("", [address], MSG.encode() + b"x" * 1998 + b"\r\n")
    return env.store.quota.usage(address)


def test_rcpt_to_a_full_mailbox_is_452_422(env):
    used = fill(env, ALICE)
    env.limits[ALICE] = QuotaLimits(storage=used.storage)
    c = hello(env)
    c.expect(250, "MAIL FROM:<a@remote.test>")
    assert c.expect(452, f"RCPT TO:<{ALICE}>").startswith("4.2.2 Mailbox full")
    c.expect(250, f"RCPT TO:<{BOB}>")            # the others go on
    c.expect(354, "DATA")
    c.send(MSG + ".\r\n")
    c.expect(250)
    assert len(env.inbox(ALICE)) == 1 and len(env.inbox(BOB)) == 1


def test_rcpt_with_room_for_the_declared_size_only(env):
    used = fill(env, ALICE)
    env.limits[ALICE] = QuotaLimits(storage=used.storage + 1000)
    c = hello(env)
    c.expect(250, "MAIL FROM:<a@remote.test> SIZE=1000")
    c.expect(250, f"RCPT TO:<{ALICE}>")
    c.expect(250, "RSET")
    c.expect(250, "MAIL FROM:<a@remote.test> SIZE=1001")
    assert c.expect(452, f"RCPT TO:<{ALICE}>").startswith("4.2.2 ")
    c.expect(250, "RSET")
    # larger than the whole quota: no clean-up will ever make room
    c.expect(250, f"MAIL FROM:<a@remote.test> SIZE={used.storage + 1001}")
    assert c.expect(552, f"RCPT TO:<{ALICE}>").startswith("5.2.2 Mailbox full")
    c.expect(250, "RSET")
    c.expect(250, "MAIL FROM:<a@remote.test>")     # the SIZE of before is forgotten
    c.expect(250, f"RCPT TO:<{ALICE}>")


def test_message_limit_at_rcpt(env):
    fill(env, ALICE, 2)
    env.limits[ALICE] = QuotaLimits(messages=2)
    c = hello(env)
    c.expect(250, "MAIL FROM:<a@remote.test>")
    c.expect(452, f"RCPT TO:<{ALICE}>")
    env.limits[ALICE] = QuotaLimits(messages=0)
    c.expect(552, f"RCPT TO:<{ALICE}>")


def test_single_recipient_over_quota_after_data(env):
    """The SIZE was not declared: the check after DATA refuses the one copy."""
    used = fill(env, ALICE)
    env.limits[ALICE] = QuotaLimits(storage=used.storage + 10)
    c = hello(env)
    c.expect(250, "MAIL FROM:<a@remote.test>")
    c.expect(250, f"RCPT TO:<{ALICE}>")
    c.expect(354, "DATA")
    c.send(MSG + ".\r\n")
    assert c.expect(452).startswith("4.2.2 ")
    env.limits[ALICE] = QuotaLimits(storage=10)           # and when it never fits
    c.expect(250, "MAIL FROM:<a@remote.test>")
    env.limits[ALICE] = QuotaLimits(storage=used.storage * 3)
    c.expect(250, f"RCPT TO:<{ALICE}>")
    env.limits[ALICE] = QuotaLimits(storage=10)
    c.expect(354, "DATA")
    c.send(MSG + ".\r\n")
    assert c.expect(552).startswith("5.2.2 ")
    assert len(env.inbox(ALICE)) == 1 and env.queued() == []


def test_multi_recipient_over_quota_copy_is_queued(env):
    """One reply after DATA for all: the others get their copy, the full mailbox's
    copy waits in the relay queue (delivered when there is room, else bounced)."""
    used = fill(env, ALICE)
    env.limits[ALICE] = QuotaLimits(storage=used.storage + 10)
    c = hello(env)
    c.expect(250, "MAIL FROM:<a@remote.test>")
    c.expect(250, f"RCPT TO:<{ALICE}>")
    c.expect(250, f"RCPT TO:<{BOB}>")
    c.expect(354, "DATA")
    c.send(MSG + ".\r\n")
    c.expect(250)
    assert len(env.inbox(BOB)) == 1 and len(env.inbox(ALICE)) == 1
    [entry] = env.queued()
    assert entry.sender == "a@remote.test"
    assert [r.address for r in entry.recipients] == [ALICE]


def test_a_queued_copy_keeps_the_folder_the_inbound_policy_chose(env):
    """A message the inbound checks quarantine goes to Junk: the full mailbox's copy
    waits in the queue with that folder, and the relay's local delivery files it
    there once there is room."""
    used = fill(env, ALICE)
    env.limits[ALICE] = QuotaLimits(storage=used.storage + 10)
    rcpts = [Recipient(ALICE, accounts=[ALICE]), Recipient(BOB, accounts=[BOB])]
    env.handler.deliver("a@remote.test", rcpts, MSG.encode(), b"", "QJUNK", folder="Junk")
    assert len(junk(env, BOB)) == 1
    [entry] = env.queued()
    assert [(r.address, r.folder, r.flags) for r in entry.recipients] == [(ALICE, "Junk", None)]
    assert worker_result(env, ALICE, folder="Junk").code == 452     # still full
    env.limits[ALICE] = QuotaLimits()
    assert worker_result(env, ALICE, folder="Junk").code == 250
    assert len(junk(env, ALICE)) == 1 and len(env.inbox(ALICE)) == 1
    assert worker_result(env, ALICE, folder="Archive", flags=["\\Seen"]).code == 250
    archived = os.listdir(os.path.join(env.store.folder_path(ALICE, "Archive"), "cur"))
    assert len(archived) == 1 and archived[0].endswith(":2,S")


def junk(env, address):
    path = env.store.folder_path(address, "Junk")
    return [n for sub in ("new", "cur") for n in os.listdir(os.path.join(path, sub))]


def test_every_copy_over_quota_is_one_refusal(env):
    for address in (ALICE, BOB):
        env.limits[address] = QuotaLimits(storage=fill(env, address).storage + 10)
    c = hello(env)
    c.expect(250, "MAIL FROM:<a@remote.test>")
    c.expect(250, f"RCPT TO:<{ALICE}>")
    c.expect(250, f"RCPT TO:<{BOB}>")
    c.expect(354, "DATA")
    c.send(MSG + ".\r\n")
    c.expect(452)
    assert env.queued() == [] and len(env.inbox(BOB)) == 1


@pytest.fixture
def aliases(env, tmp_path):
    store = AliasStore(str(tmp_path / "aliases.ini"), ["example.test"])
    env.handler.router = Router(env.accounts, store)
    return store


def test_alias_to_a_full_account(env, aliases):
    aliases.add("team@example.test", [ALICE])
    aliases.add("both@example.test", [ALICE, BOB])
    env.limits[ALICE] = QuotaLimits(messages=0)
    c = hello(env)
    c.expect(250, "MAIL FROM:<a@remote.test>")
    c.expect(552, "RCPT TO:<team@example.test>")       # the same rule as the account
    c.expect(250, "RCPT TO:<both@example.test>")       # bob has room
    c.expect(354, "DATA")
    c.send(MSG + ".\r\n")
    c.expect(250)
    assert len(env.inbox(BOB)) == 1 and env.inbox(ALICE) == []
    assert [r.address for r in env.queued()[0].recipients] == [ALICE]


# -- the relay's local deliveries -----------------------------------------------------------
def test_deliver_queued_over_quota(env):
    used = fill(env, ALICE)
    env.limits[ALICE] = QuotaLimits(storage=used.storage + 10)
    with pytest.raises(OverQuota) as err:
        env.handler.deliver_queued("a@remote.test", [ALICE], MSG.encode(), "Q1")
    assert not err.value.permanent
    env.limits[ALICE] = QuotaLimits(storage=5)
    with pytest.raises(OverQuota) as err:
        env.handler.deliver_queued("a@remote.test", [ALICE], MSG.encode(), "Q1")
    assert err.value.permanent
    assert len(env.inbox(ALICE)) == 1
    env.limits[ALICE] = QuotaLimits()
    env.handler.deliver_queued("a@remote.test", [ALICE], MSG.encode(), "Q1")
    assert len(env.inbox(ALICE)) == 2


def test_deliver_queued_alias_partly_full(env, aliases):
    aliases.add("both@example.test", [ALICE, BOB])
    env.limits[ALICE] = QuotaLimits(messages=0)
    env.handler.deliver_queued("a@remote.test", ["both@example.test"], MSG.encode(), "Q1")
    assert len(env.inbox(BOB)) == 1
    assert [r.address for r in env.queued()[0].recipients] == [ALICE]


def worker_result(env, address, folder=None, flags=None):
    """What the relay worker's local delivery (relay/local.py) answers for a queued
    recipient (with the folder and flags of a copy deferred by a full mailbox)."""
    worker = RelayWorker(env.queue, _settings(), resolver=None,
                         local_deliver=env.handler.deliver_queued, is_local=lambda a: True)
    return worker.local.deliver("a@remote.test", address, MSG.encode(), "QID", folder, flags)


def _settings():
    from clevermail.relay.settings import RelaySettings
    return RelaySettings(hostname="mx.example.test")


def test_worker_answers_full_mailbox(env):
    env.limits[ALICE] = QuotaLimits(messages=1)
    fill(env, ALICE)
    assert (worker_result(env, ALICE).code, worker_result(env, ALICE).text) == (452, "4.2.2 mailbox full")
    env.limits[ALICE] = QuotaLimits(messages=0)
    result = worker_result(env, ALICE)
    assert result.code == 552 and result.text.startswith("5.2.2 ")


def test_the_size_checked_is_the_size_stored(env):
    """The check after DATA counts the copy as the store writes it (Return-Path,
    Received, LF line ends): a limit of exactly that size takes it, one byte less not."""
    c = hello(env)

    def send(to):
        c.expect(250, "MAIL FROM:<a@remote.test>")
        c.expect(250, f"RCPT TO:<{to}>")
        c.expect(354, "DATA")
        c.send(MSG + ".\r\n")
        return c.reply()[0]

    assert send(ALICE) == 250
    one = env.store.quota.usage(ALICE).storage          # one copy as stored
    env.limits[ALICE] = QuotaLimits(storage=2 * one - 1)
    assert send(ALICE) == 452
    env.limits[ALICE] = QuotaLimits(storage=2 * one)
    assert send(ALICE) == 250
    assert env.store.quota.usage(ALICE).storage == 2 * one
