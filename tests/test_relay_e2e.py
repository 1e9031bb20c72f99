"""The relay end to end through the real MailService: SMTP AUTH submission, the queue,
the worker, a sink MX on 127.0.0.1 (FakeResolver), bounces into the sender's INBOX
(read back over POP3), deferral and flush, relay denial, a mixed local/remote message,
and a restart with a deferred entry."""
import email
import smtplib
from email import policy

import pytest

from relay_sink import Replies, ServiceEnv
from waiting import wait_for

pytestmark = pytest.mark.e2e

ALICE, BOB = ServiceEnv.ALICE, ServiceEnv.BOB
REMOTE = "carol@there.test"


def message(subject: str) -> bytes:
    return (f"From: {ALICE}\r\nTo: {REMOTE}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@example.test>\r\n\r\nHello {subject}.\r\n"
            ".a line that starts with a dot\r\n").encode()


@pytest.fixture
def replies():
    return Replies()


@pytest.fixture
def env(relay_env):
    return relay_env


def test_authenticated_relay_reaches_the_mx_with_envelope_and_trace(env):
    assert env.send([REMOTE], message("relayed")) == {}
    assert wait_for(lambda: env.sink.messages)
    got = env.sink.messages[0]
    assert (got.sender, got.rcpts) == (ALICE, [REMOTE])
    assert got.helo == "mail.example.test"
    headers = email.message_from_bytes(got.data, policy=policy.default)
    assert "by mail.example.test (CleverMail)" in headers["Received"]
    assert got.data.startswith(b"Received: ")
    assert got.data.endswith(b"Hello relayed.\r\n.a line that starts with a dot\r\n")
    assert wait_for(lambda: env.queue.list() == [])
    assert len(env.sink.messages) == 1


def test_5xx_from_the_mx_bounces_into_the_senders_inbox(env, replies):
    replies.set(550, "5.1.1 no such user here")
    env.send([REMOTE], message("bounced"))
    (dsn,) = env.wait_inbox(ALICE)
    msg = email.message_from_bytes(dsn, policy=policy.default)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["To"] and ALICE in msg["To"]
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert "message/delivery-status" in parts
    text = dsn.decode("utf-8", "replace")
    assert f"rfc822;{REMOTE}" in text.replace(" ", "") and "5.1.1" in text
    assert "Subject: bounced" in text                        # the original's headers
    assert wait_for(lambda: env.queue.list() == [])
    assert env.sink.messages == []


def test_4xx_defers_then_queue_flush_delivers(env, replies):
    replies.set(451, "4.7.1 greylisted, come back later")
    env.send([REMOTE], message("greylisted"))
    entry = wait_for(env.deferred)
    assert entry, env.queue.list()
    r = entry.recipients[0]
    assert (r.address, r.attempts) == (REMOTE, 1) and "451" in r.last_reply
    assert r.next_attempt > entry.arrival + 60               # default retry_schedule: minutes
    assert env.sink.messages == []
    replies.set(250, "2.1.5 ok")
    assert env.queue.flush() == 1                            # as `clevermail queue flush` does
    assert wait_for(lambda: env.sink.messages)
    assert wait_for(lambda: env.queue.list() == [])
    assert [m.rcpts for m in env.sink.messages] == [[REMOTE]]
    assert env.inbox(ALICE) == []                            # no bounce, no delay warning


def test_unauthenticated_relay_is_refused_and_nothing_is_queued(env):
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        env.send([REMOTE], message("open-relay"), sender="spammer@elsewhere.test", login=None)
    assert info.value.recipients[REMOTE][0] == 554
    assert env.queue.list() == []
    assert list((env.queue.path).glob("*.eml")) == []
    assert env.sink.messages == [] and env.sink.sessions == []


def test_local_and_remote_recipients_in_one_message(env, replies):
    replies.set(451, "4.3.0 not now")                        # keep the entry in the queue
    env.send([BOB, REMOTE], message("mixed"))
    (local,) = env.wait_inbox(BOB)
    assert local.startswith(b"Return-Path: <" + ALICE.encode() + b">\r\nReceived: ")
    assert b"Subject: mixed" in local
    entry = wait_for(env.deferred)
    assert entry, env.queue.list()
    assert [r.address for r in entry.recipients] == [REMOTE] and entry.sender == ALICE
    assert len(env.queue.list()) == 1 and env.inbox(ALICE) == []


def test_restart_with_a_deferred_entry_delivers_it_exactly_once(env, replies):
    replies.set(451, "4.7.1 greylisted")
    env.send([REMOTE], message("restart"))
    assert wait_for(env.deferred)
    env.stop()
    (entry,) = env.queue.list()
    assert entry.recipients[0].state == "deferred"

    replies.set(250, "2.1.5 ok")
    env.start()                                              # a new MailService, same data dir
    # Not due yet (minutes away): the new worker leaves it alone until the flush.
    assert env.deferred() is not None and env.sink.messages == []
    assert env.queue.flush(entry.id) == 1
    assert wait_for(lambda: env.queue.list() == [])
    assert len(env.sink.messages) == 1
    assert b"Subject: restart" in env.sink.messages[0].data
