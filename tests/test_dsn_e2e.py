"""DSN (RFC 3461) end to end: smtplib sends with mail_options/rcpt_options through a
real MailService; the relay goes to a sink next hop on loopback that offers DSN or
not; reports come back to the sender's INBOX (read over POP3)."""

import email
import shutil
import smtplib
from email import policy

import pytest

from clevermail.config import load_config
from conftest import write_config
from relay_sink import Replies, ServiceEnv, Sink
from waiting import wait_for

pytestmark = pytest.mark.e2e

ALICE, BOB = ServiceEnv.ALICE, ServiceEnv.BOB
REMOTE = "carol@there.test"


def message(subject):
    return (f"From: {ALICE}\r\nTo: {REMOTE}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@example.test>\r\n\r\nThe body of {subject}.\r\n").encode()


@pytest.fixture
def replies():
    return Replies()


def start_env(tmp_path, relay_users, replies, dsn):
    shutil.copy(relay_users, tmp_path / "users.ini")
    sink = Sink(rcpt=replies, dsn=dsn)
    env = ServiceEnv(load_config(write_config(tmp_path, relay={"mx_port": sink.port})), sink)
    return env.start()


@pytest.fixture
def env(thread_guard, tmp_path, relay_users, replies):
    env = start_env(tmp_path, relay_users, replies, dsn=False)
    yield env
    env.stop()
    env.sink.close()


@pytest.fixture
def dsn_env(thread_guard, tmp_path, relay_users, replies):
    env = start_env(tmp_path, relay_users, replies, dsn=True)
    yield env
    env.stop()
    env.sink.close()


def send(env, rcpts, data, *, mail_options=(), rcpt_options=(), sender=ALICE):
    with smtplib.SMTP("127.0.0.1", env.service.port("smtp"), timeout=10) as s:
        s.ehlo("client.example.test")
        assert s.has_extn("dsn")
        s.login(ALICE, ServiceEnv.USERS[ALICE])
        return s.sendmail(sender, rcpts, data, mail_options=list(mail_options),
                          rcpt_options=list(rcpt_options))


def report_groups(raw):
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg.get_content_type() == "multipart/report"
    status = msg.get_payload()[1].get_payload()
    return msg, status[0], status[1:]


def test_a_next_hop_with_dsn_gets_the_parameters_also_after_a_restart(dsn_env, replies):
    replies.set(451, "4.7.1 greylisted")
    send(dsn_env, [REMOTE], message("passed"), mail_options=["RET=HDRS", "ENVID=QQ+2B314"],
         rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Carol+2Bx@there.test"])
    assert wait_for(dsn_env.deferred)
    dsn_env.stop()
    (entry,) = dsn_env.queue.list()
    assert (entry.ret, entry.envid) == ("HDRS", "QQ+314")
    assert (entry.recipients[0].notify, entry.recipients[0].orcpt) == (
        ["SUCCESS", "FAILURE"], "rfc822;Carol+x@there.test")
    replies.set(250, "2.1.5 ok")
    dsn_env.start()
    assert dsn_env.queue.flush(entry.id) == 1
    assert wait_for(lambda: dsn_env.sink.messages)
    [got] = dsn_env.sink.messages
    assert "RET=HDRS" in got.mail_params and "ENVID=QQ+2B314" in got.mail_params
    assert got.rcpt_params[REMOTE] == ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Carol+2Bx@there.test"]
    assert wait_for(lambda: dsn_env.queue.list() == [])
    assert dsn_env.inbox(ALICE) == []               # success is the next hop's to report


def test_a_next_hop_without_dsn_means_a_relayed_report(env):
    send(env, [REMOTE], message("relayed"), mail_options=["ENVID=E1"],
         rcpt_options=["NOTIFY=SUCCESS"])
    assert wait_for(lambda: env.sink.messages)
    [got] = env.sink.messages
    assert not any(p.startswith(("RET=", "ENVID=")) for p in got.mail_params)
    assert got.rcpt_params[REMOTE] == []
    (raw,) = env.wait_inbox(ALICE)
    msg, per_message, [group] = report_groups(raw)
    assert raw.startswith(b"Return-Path: <>\r\n")
    assert per_message["Original-Envelope-Id"] == "E1"
    assert (group["Action"], group["Final-Recipient"]) == ("relayed", f"rfc822; {REMOTE}")
    assert "Successful" in msg["Subject"]


def test_local_delivery_with_notify_success_reports_delivered_signed(env):
    send(env, [BOB], message("local"), rcpt_options=["NOTIFY=SUCCESS", "ORCPT=rfc822;bob@example.test"])
    (delivered,) = env.wait_inbox(BOB)
    assert b"Subject: local" in delivered
    (raw,) = env.wait_inbox(ALICE)
    _, _, [group] = report_groups(raw)
    assert group["Action"] == "delivered" and group["Original-Recipient"] == "rfc822;bob@example.test"
    assert b"DKIM-Signature:" in raw.split(b"\r\n\r\n", 1)[0]     # signed like every report of ours


def test_never_a_report_to_the_null_sender(env):
    send(env, [BOB], message("null"), rcpt_options=["NOTIFY=SUCCESS"], sender="")
    env.wait_inbox(BOB)
    assert env.queue.list() == [] and env.inbox(ALICE) == []


def test_notify_never_suppresses_the_bounce_and_ret_full_returns_the_message(env, replies):
    replies.set(550, "5.1.1 no such user here")
    send(env, [REMOTE, "dave@there.test"], message("refused"), mail_options=["RET=FULL"],
         rcpt_options=["NOTIFY=FAILURE"])
    (raw,) = env.wait_inbox(ALICE)
    msg, _, groups = report_groups(raw)
    assert [g["Action"] for g in groups] == ["failed", "failed"]
    assert msg.get_payload()[2].get_content_type() == "message/rfc822"
    assert b"The body of refused." in raw
    assert wait_for(lambda: env.queue.list() == [])
    send(env, [REMOTE], message("silent"), rcpt_options=["NOTIFY=NEVER"])
    assert wait_for(lambda: env.queue.list() == [])
    assert len(env.inbox(ALICE)) == 1


def test_bad_dsn_parameters_get_501_and_the_session_goes_on(env):
    with smtplib.SMTP("127.0.0.1", env.service.port("smtp"), timeout=10) as s:
        s.ehlo("client.example.test")
        s.login(ALICE, ServiceEnv.USERS[ALICE])
        code, text = s.mail(ALICE, ["RET=SOME"])
        assert (code, text) == (501, b"5.5.4 Bad DSN parameter: RET must be FULL or HDRS")
        code, text = s.mail(ALICE, ["ENVID=a+zz"])
        assert code == 501 and b"ENVID" not in text and b"two hex digits" in text
        assert s.mail(ALICE, ["RET=FULL", "ENVID=ok"])[0] == 250
        code, text = s.rcpt(BOB, ["NOTIFY=NEVER,DELAY"])
        assert code == 501 and b"cannot be combined" in text
        code, text = s.rcpt(BOB, ["ORCPT=bob@example.test"])
        assert code == 501 and b"addr-type;address" in text
        assert s.rcpt(BOB, ["NOTIFY=DELAY", "ORCPT=rfc822;bob@example.test"])[0] == 250
        assert s.noop()[0] == 250


def status_fields(raw):
    """The report's message/delivery-status part as [(name, value)] per group, the
    dates left out (they are the report's time)."""
    msg = email.message_from_bytes(raw, policy=policy.default)
    return [[(name, value) for name, value in group.items() if not name.endswith("-Date")]
            for group in msg.get_payload()[1].get_payload()]


def test_an_alias_expanded_to_several_targets_is_reported_expanded_once(dsn_env):
    dsn_env.service.aliases.add("team@example.test", [BOB, REMOTE])
    dsn_env.service.aliases.add("solo@example.test", [BOB])
    send(dsn_env, ["team@example.test", "solo@example.test"], message("expanded"),
         mail_options=["ENVID=X7"], rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
    assert wait_for(lambda: dsn_env.sink.messages)
    # the member beyond: its NOTIFY without SUCCESS (the expansion answered for it),
    # ORCPT the alias
    [got] = dsn_env.sink.messages
    assert got.rcpt_params[REMOTE] == ["NOTIFY=FAILURE", "ORCPT=rfc822;team@example.test"]
    assert wait_for(lambda: dsn_env.queue.list() == [])
    (raw,) = dsn_env.wait_inbox(ALICE)
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg["Subject"] == "Successful Mail Delivery Report"
    per_message, team, solo = status_fields(raw)
    assert per_message[0] == ("Reporting-MTA", f"dns; {dsn_env.settings.server.hostname}")
    assert per_message[1] == ("Original-Envelope-Id", "X7")
    assert team == [("Final-Recipient", "rfc822; team@example.test"), ("Action", "expanded"),
                    ("Status", "2.0.0"), ("Diagnostic-Code", "smtp; 250 2.0.0 expanded to 2 recipients")]
    # an alias of one target: that target's delivery answers for it
    assert solo == [("Final-Recipient", "rfc822; solo@example.test"), ("Action", "delivered"),
                    ("Status", "2.0.0"), ("Diagnostic-Code", "smtp; 250 2.0.0 delivered to the local mailbox")]
    text = msg.get_payload()[0].get_content()
    assert "<team@example.test>: 250 2.0.0 expanded to 2 recipients" in text
    assert "'expanded' that the address is an alias or list" in text
    assert len(dsn_env.wait_inbox(BOB)) == 1          # one copy for BOB (both aliases name him)


def test_an_expanded_alias_without_dsn_beyond_sends_no_relayed_report(env):
    env.service.aliases.add("team@example.test", [BOB, REMOTE])
    send(env, ["team@example.test"], message("quiet"), rcpt_options=["NOTIFY=SUCCESS"])
    assert wait_for(lambda: env.sink.messages)
    assert wait_for(lambda: env.queue.list() == [])
    (raw,) = env.wait_inbox(ALICE)                     # the expanded report, no "relayed" one
    [_, team] = status_fields(raw)
    assert ("Action", "expanded") in team


def test_a_queued_address_that_is_an_alias_of_several_targets_is_reported_expanded(env):
    """The relay worker's local delivery (SMTPFileHandler.deliver_queued) of a queued
    address that turns out to be an alias of several targets: reported "expanded"
    once, as the SMTP path reports it (RFC 3461 6.2.7.3), and each target delivered."""
    env.service.aliases.add("team@example.test", [BOB, REMOTE])
    pending = env.queue.prepare(ALICE, ["team@example.test"], message("queued-alias"), "QALIAS",
                                envid="E9", dsn={"team@example.test": (("SUCCESS",), None)})
    pending.commit()
    env.service.worker.kick()
    (raw,) = env.wait_inbox(ALICE)
    per_message, team = status_fields(raw)
    assert per_message[1] == ("Original-Envelope-Id", "E9")
    assert team == [("Final-Recipient", "rfc822; team@example.test"), ("Action", "expanded"),
                    ("Status", "2.0.0"), ("Diagnostic-Code", "smtp; 250 2.0.0 expanded to 2 recipients")]
    (copy,) = env.wait_inbox(BOB)
    assert b"Subject: queued-alias" in copy
    assert wait_for(lambda: [m for m in env.sink.messages if b"queued-alias" in m.data])
    assert wait_for(lambda: env.queue.list() == [])
