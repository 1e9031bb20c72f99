"""Tests for clevermail.smtp.handler: the all-or-nothing delivery transaction (every
mailbox and the queue entry prepared, mailboxes committed first, the queue last, any
failure taking everything back) and the one final-delivery path it shares with the
relay: Return-Path on local copies, on relay-side local deliveries and on local
delivery reports (<>)."""

import os

import pytest

from clevermail.relay import queue as queuemod
from clevermail.relay.queue import RelayQueue
from clevermail.relay.settings import RelaySettings
from clevermail.relay.worker import RelayWorker
from clevermail.smtp.handler import DeliveryFailed, Recipient, SMTPFileHandler
from clevermail.store import MailStore, maildir
from relay_sink import FakeResolver, Replies, ServiceEnv, Sink, mx_zone, wait_for

ALICE, BOB = "alice@example.test", "bob@example.test"
TRACE = b"Received: from client (client [127.0.0.1]) by mail.example.test; today\r\n"
DATA = b"Subject: hello\r\n\r\nbody line\r\n.dot line\r\n"


@pytest.fixture
def store(tmp_path):
    return MailStore(str(tmp_path / "data"))


@pytest.fixture
def queue(tmp_path):
    return RelayQueue(tmp_path / "queue")


@pytest.fixture
def handler(store, queue):
    return SMTPFileHandler(store, accounts=None, queue=queue)


def rcpts(*addresses):
    return [Recipient(a, (a,) if a.endswith("@example.test") else ()) for a in addresses]


def stored(store, address):
    """The files of an INBOX, sub-directory by sub-directory."""
    root = store.user_root(address)
    return {sub: sorted(os.listdir(os.path.join(root, sub))) for sub in ("tmp", "new", "cur")}


def inbox(store, address):
    folder = store.open_folder(address, "INBOX")
    try:
        return [folder.read_message(uid) for uid in folder.uids]
    finally:
        store.release_folder(folder)


def queue_files(queue):
    return sorted(p.name for p in queue.path.iterdir() if p.is_file() and p.name != ".lock") + \
        sorted(p.name for p in queue.tmp.iterdir())


EMPTY = {"tmp": [], "new": [], "cur": []}


# -- Return-Path on local copies ---------------------------------------------------------
def test_local_copies_get_return_path_and_trace(handler, store, queue):
    assert handler.deliver(ALICE, rcpts(BOB, "carol@example.test", BOB), DATA, TRACE, "Q1") == (2, 0)
    for user in (BOB, "carol@example.test"):
        assert inbox(store, user) == [b"Return-Path: <alice@example.test>\r\n" + TRACE + DATA]
    assert queue.list() == []


def test_null_sender_gets_an_empty_return_path(handler, store):
    handler.deliver("", rcpts(BOB), DATA, TRACE, "Q2")
    assert inbox(store, BOB) == [b"Return-Path: <>\r\n" + TRACE + DATA]


def test_remote_copy_has_no_return_path(handler, store, queue):
    """Return-Path is added at final delivery only (RFC 5321 4.4), not when relaying."""
    handler.deliver(ALICE, rcpts(BOB, "dave@there.test"), DATA, TRACE, "Q3")
    [entry] = queue.list()
    assert queue.read_body(entry.id) == TRACE + DATA
    assert inbox(store, BOB)[0].startswith(b"Return-Path: <alice@example.test>\r\n")


def test_a_sender_with_a_line_break_never_becomes_a_header(handler, store):
    store.ensure_user(BOB)
    with pytest.raises(DeliveryFailed):
        handler.deliver("a@b\r\nX-Evil: 1", rcpts(BOB), DATA, TRACE, "Q4")
    assert stored(store, BOB) == EMPTY


# -- all or nothing ----------------------------------------------------------------------
def test_queue_commit_failure_after_the_mailbox_commits_rolls_everything_back(
        handler, store, queue, monkeypatch):
    """The mailboxes are committed first; when the queue commit then fails, the
    committed copies are taken back too, and nothing waits in the queue."""
    store.ensure_user(BOB)
    store.ensure_user("carol@example.test")
    committed = []
    real_commit = maildir.commit_tmp

    def commit_tmp(*a, **kw):
        committed.append(real_commit(*a, **kw))
        return committed[-1]

    def broken_queue_commit(self):
        assert len(committed) == 2 and all(os.path.exists(p) for p in committed)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(maildir, "commit_tmp", commit_tmp)
    monkeypatch.setattr(queuemod.PendingEntry, "commit", broken_queue_commit)
    with pytest.raises(DeliveryFailed, match="No space left"):
        handler.deliver(ALICE, rcpts(BOB, "carol@example.test", "dave@there.test"), DATA, TRACE, "Q5")
    assert len(committed) == 2
    for user in (BOB, "carol@example.test"):
        assert stored(store, user) == EMPTY
        assert inbox(store, user) == []
    assert queue_files(queue) == [] and queue.list() == []


def test_second_mailbox_commit_failure_rolls_back_the_first(handler, store, queue, monkeypatch):
    real_commit = maildir.commit_tmp
    calls = []

    def commit_tmp(*a, **kw):
        calls.append(a[0])
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        return real_commit(*a, **kw)

    monkeypatch.setattr(maildir, "commit_tmp", commit_tmp)
    with pytest.raises(DeliveryFailed):
        handler.deliver(ALICE, rcpts(BOB, "carol@example.test", "dave@there.test"), DATA, TRACE, "Q6")
    for user in (BOB, "carol@example.test"):
        assert stored(store, user) == EMPTY
    assert queue_files(queue) == []


def test_queue_prepare_failure_leaves_no_local_copy(handler, store, queue, monkeypatch):
    def broken_prepare(*a, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(queue, "prepare", broken_prepare)
    with pytest.raises(DeliveryFailed):
        handler.deliver(ALICE, rcpts(BOB, "dave@there.test"), DATA, TRACE, "Q7")
    assert stored(store, BOB) == EMPTY


def test_the_queue_is_not_woken_when_a_mailbox_fails(handler, store, queue, monkeypatch):
    """A committed queue entry wakes the relay worker, which must never send what a
    later failure would take back: the queue commits last."""
    woken = []
    queue.on_commit = lambda: woken.append(True)

    def broken_commit(*a, **kw):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(maildir, "commit_tmp", broken_commit)
    with pytest.raises(DeliveryFailed):
        handler.deliver(ALICE, rcpts(BOB, "dave@there.test"), DATA, TRACE, "Q8")
    assert woken == [] and queue_files(queue) == []


# -- the relay's local deliveries go the same way ----------------------------------------------
@pytest.fixture
def worker(store, queue, thread_guard):
    sink = Sink(rcpt={"gone@there.test": (550, "5.1.1 no such user")})
    settings = RelaySettings(hostname="mail.example.test", mx_port=sink.port, connect_timeout=5)
    w = RelayWorker(queue, settings, FakeResolver(mx_zone(["there.test"])),
                    local_deliver=lambda sender, addresses, data, qid: store.deliver_local(sender, addresses, data),
                    is_local=lambda a: a.endswith("@example.test"))
    yield w
    w.stop()
    sink.close()


def test_relay_side_local_delivery_gets_return_path(worker, store, queue):
    """A queued recipient that turned out to be local is delivered by the worker
    through the store's final-delivery path, so it carries Return-Path."""
    queue.enqueue(ALICE, [BOB], TRACE + DATA, "Q9")
    worker.run_once()
    assert queue.list() == []
    assert inbox(store, BOB) == [b"Return-Path: <alice@example.test>\r\n" + TRACE + DATA]


def test_local_delivery_report_gets_an_empty_return_path(worker, store, queue):
    queue.enqueue(ALICE, ["gone@there.test"], TRACE + DATA, "Q10")
    worker.run_once()
    assert queue.list() == []
    [dsn] = inbox(store, ALICE)
    assert dsn.startswith(b"Return-Path: <>\r\n")
    assert b"5.1.1" in dsn and b"multipart/report" in dsn


# -- and so does the running service --------------------------------------------------------------
@pytest.fixture
def replies():
    return Replies()


@pytest.mark.e2e
def test_service_relay_deliveries_carry_return_path(relay_env, replies):
    """MailService hands the relay worker the store's final-delivery path: a bounce
    into the sender's INBOX has Return-Path <>, a queued local recipient the sender."""
    env = relay_env
    replies.set(550, "5.1.1 no such user here")
    env.send(["carol@there.test"], b"Subject: bounced\r\n\r\nHello.\r\n")
    (dsn,) = env.wait_inbox(ServiceEnv.ALICE)
    assert dsn.startswith(b"Return-Path: <>\r\n")
    env.queue.enqueue(ServiceEnv.ALICE, [ServiceEnv.BOB], TRACE + DATA, "Q11")
    (copy,) = env.wait_inbox(ServiceEnv.BOB)
    assert copy == b"Return-Path: <alice@example.test>\r\n" + TRACE + DATA
    assert wait_for(lambda: env.queue.list() == [])


# -- queued local mail is resolved to accounts as RCPT TO resolves it --------------------------
@pytest.fixture
def account_handler(tmp_path, store, queue):
    from fakes import make_accounts
    accounts = make_accounts(str(tmp_path / "users.ini"), users=(ALICE, BOB))
    return SMTPFileHandler(store, accounts, queue)


def test_deliver_queued_resolves_detail_case_and_u_labels(account_handler, store):
    """A recipient spelt Bob+news@EXAMPLE.test lands in bob's INBOX, never in a mailbox
    made up from the raw address; two spellings of one account give one copy."""
    account_handler.deliver_queued(ALICE, ["Bob+news@EXAMPLE.test", BOB], TRACE + DATA, "Q11")
    assert inbox(store, BOB) == [b"Return-Path: <alice@example.test>\r\n" + TRACE + DATA]
    users = os.listdir(os.path.join(store.mail_root, "example.test"))
    assert sorted(users) == ["bob"]


def test_deliver_queued_unknown_account_is_a_lookup_error_and_stores_nothing(account_handler, store):
    with pytest.raises(LookupError):
        account_handler.deliver_queued(ALICE, [BOB, "nobody@example.test"], TRACE + DATA, "Q11")
    assert not os.path.exists(os.path.join(store.mail_root, "example.test", "nobody"))
    assert not os.path.exists(os.path.join(store.mail_root, "example.test", "bob"))


def test_worker_fails_a_queued_local_recipient_without_account(account_handler, store, queue):
    """The relay worker hands queued local mail to deliver_queued: an address of a local
    domain without an account fails for good (550 5.1.1, bounced to the sender),
    as RCPT TO would have answered, instead of a mailbox being created for it."""
    settings = RelaySettings(hostname="mail.example.test", connect_timeout=5)
    w = RelayWorker(queue, settings, FakeResolver(mx_zone([])),
                    local_deliver=account_handler.deliver_queued,
                    is_local=lambda a: a.lower().endswith("@example.test"))
    try:
        queue.enqueue(ALICE, ["nobody@example.test", "Bob@example.test"], TRACE + DATA, "Q12")
        w.run_once()
    finally:
        w.stop()
    assert queue.list() == []
    assert inbox(store, BOB) == [b"Return-Path: <alice@example.test>\r\n" + TRACE + DATA]
    [dsn] = inbox(store, ALICE)
    assert dsn.startswith(b"Return-Path: <>\r\n") and b"nobody@example.test" in dsn
    assert b"5.1.1" in dsn
    assert not os.path.exists(os.path.join(store.mail_root, "example.test", "nobody"))


def test_worker_drops_a_report_to_a_local_sender_without_account(account_handler, store, queue,
                                                                  caplog):
    """A report owed to a sender of a local domain who has no account is not queued
    (it would only meet the same 550, and a report about a report is never sent):
    it is logged and dropped, and no mailbox is made for the sender."""
    settings = RelaySettings(hostname="mail.example.test", connect_timeout=5)
    w = RelayWorker(queue, settings, FakeResolver(mx_zone([])),
                    local_deliver=account_handler.deliver_queued,
                    is_local=lambda a: a.lower().endswith("@example.test"))
    try:
        queue.enqueue("ghost@example.test", ["nobody@example.test"], TRACE + DATA, "Q13")
        with caplog.at_level("WARNING", "clevermail.relay"):
            w.run_once()
    finally:
        w.stop()
    assert queue.list() == []
    assert "report is dropped: no local mailbox for <ghost@example.test>" in caplog.text
    assert sorted(os.listdir(os.path.join(store.mail_root))) == []
