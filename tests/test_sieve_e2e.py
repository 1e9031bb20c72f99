"""Sieve end to end: a real MailService, smtplib to a user with an active script:
fileinto (with flags, :create, a missing folder), discard, redirect to the sink MX
with an SRS sender, reject, vacation once per sender and never to lists or <>, a
broken script keeping mail in INBOX, and the relay's local deliveries."""

import imaplib
import logging
import os
import smtplib

import pytest

from relay_sink import Replies, ServiceEnv
from waiting import wait_for

pytestmark = pytest.mark.e2e

ALICE, BOB = ServiceEnv.ALICE, ServiceEnv.BOB


@pytest.fixture
def replies():
    return Replies()


@pytest.fixture
def env(relay_env):
    return relay_env


def activate(env, text, user=BOB, name="main"):
    scripts = env.service.sieve_scripts
    scripts.put(user, name, text)
    scripts.activate(user, name)


def mx(env, sender, rcpts, body):
    with smtplib.SMTP("127.0.0.1", env.service.port("smtp"), timeout=10) as s:
        s.ehlo("mx.far.test")
        return s.sendmail(sender, rcpts, body)


def folder(env, user, name):
    """[(FETCH response head, message)] of a folder over IMAP."""
    imap = imaplib.IMAP4("127.0.0.1", env.service.port("imap"), timeout=10)
    try:
        imap.login(user, ServiceEnv.USERS[user])
        typ, data = imap.select(f'"{name}"', readonly=True)
        assert typ == "OK", name
        if int(data[0]) == 0:
            return []
        typ, data = imap.fetch("1:*", "(FLAGS BODY.PEEK[])")
        return [(item[0], item[1]) for item in data if isinstance(item, tuple)]
    finally:
        imap.logout()


def msg(subject="hi", extra=""):
    return (f"From: Far <someone@far.test>\r\nTo: Bob <{BOB}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <m-{subject.replace(' ', '-')}@far.test>\r\n{extra}\r\nhello there\r\n").encode()


def test_fileinto_with_flags_create_and_a_missing_folder(env):
    activate(env, r'''require ["fileinto", "imap4flags", "mailbox"];
    if header :contains "subject" "report" { fileinto :create :flags ["\\Seen", "$Report"] "Reports/Daily"; }
    elsif header :contains "subject" "nowhere" { fileinto "Missing"; }
    elsif header :contains "subject" "junk" { fileinto "Junk"; }
    ''')
    assert mx(env, "someone@far.test", [BOB], msg("daily report")) == {}
    got = folder(env, BOB, "Reports/Daily")
    assert len(got) == 1
    assert b"\\Seen" in got[0][0] and b"$Report" in got[0][0]
    assert b"Return-Path: <someone@far.test>" in got[0][1]
    assert env.inbox(BOB) == []
    # a folder that does not exist without :create: kept in INBOX
    assert mx(env, "someone@far.test", [BOB], msg("to nowhere")) == {}
    assert len(env.inbox(BOB)) == 1
    assert mx(env, "someone@far.test", [BOB], msg("junk")) == {}
    assert len(folder(env, BOB, "Junk")) == 1
    # an ordinary message: the implicit keep
    assert mx(env, "someone@far.test", [BOB, ALICE], msg("plain")) == {}
    assert len(env.inbox(BOB)) == 2 and len(env.inbox(ALICE)) == 1


def test_discard_and_stop(env):
    activate(env, 'if header :is "subject" "spam" { discard; stop; }\nkeep;')
    assert mx(env, "someone@far.test", [BOB, ALICE], msg("spam")) == {}
    assert env.inbox(BOB) == [] and len(env.inbox(ALICE)) == 1
    assert mx(env, "someone@far.test", [BOB], msg("ham")) == {}
    assert len(env.inbox(BOB)) == 1


def test_redirect_goes_through_the_relay_with_srs(env):
    activate(env, 'redirect "carol@there.test";\nif header :is "subject" "both" '
                  '{ redirect "dave@there.test"; keep; }')
    assert mx(env, "origin@far.test", [BOB], msg("fwd")) == {}
    assert wait_for(lambda: env.sink.messages)
    got = env.sink.messages[0]
    assert got.rcpts == ["carol@there.test"]
    local, _, domain = got.sender.rpartition("@")
    assert domain == "example.test" and local.startswith("SRS0=") and local.endswith("=far.test=origin")
    assert b"Subject: fwd" in got.data
    assert env.inbox(BOB) == []          # redirect cancelled the implicit keep
    # the null sender is never rewritten; keep stores a copy too
    assert mx(env, "", [BOB], msg("both")) == {}
    assert wait_for(lambda: len(env.sink.messages) == 3)
    assert {m.sender for m in env.sink.messages[1:]} == {""}
    assert sorted(r for m in env.sink.messages[1:] for r in m.rcpts) == ["carol@there.test",
                                                                         "dave@there.test"]
    assert len(env.inbox(BOB)) == 1


def test_vacation_once_per_sender_never_to_lists_or_null(env):
    activate(env, 'require "vacation";\nvacation :days 3 :subject "Away" "I am away until Monday.";')
    assert mx(env, "someone@there.test", [BOB], msg("first")) == {}
    assert wait_for(lambda: env.sink.messages)
    reply = env.sink.messages[0]
    assert reply.sender == "" and reply.rcpts == ["someone@there.test"]
    assert b"Auto-Submitted: auto-replied" in reply.data
    assert b"In-Reply-To: <m-first@far.test>" in reply.data
    assert b"Subject: Away" in reply.data and b"I am away until Monday." in reply.data
    assert f"From: <{BOB}>".encode() in reply.data
    assert len(env.inbox(BOB)) == 1                  # vacation keeps the message
    # the same sender again: no second reply in the period; lists, bulk, auto-replies,
    # the null sender and mail not addressed to bob get none
    assert mx(env, "someone@there.test", [BOB], msg("second")) == {}
    assert mx(env, "list@there.test", [BOB], msg("list", "List-Id: <l.far.test>\r\n")) == {}
    assert mx(env, "bulk@there.test", [BOB], msg("bulk", "Precedence: bulk\r\n")) == {}
    assert mx(env, "auto@there.test", [BOB], msg("auto", "Auto-Submitted: auto-replied\r\n")) == {}
    assert mx(env, "", [BOB], msg("null")) == {}
    assert mx(env, "bcc@there.test", [BOB],
              b"From: x@far.test\r\nTo: other@far.test\r\nSubject: bcc\r\n\r\nhi\r\n") == {}
    # another sender gets one
    assert mx(env, "other@there.test", [BOB], msg("third")) == {}
    assert wait_for(lambda: len(env.sink.messages) == 2)
    assert env.sink.messages[1].rcpts == ["other@there.test"]
    assert len(env.inbox(BOB)) == 8
    assert len(env.sink.messages) == 2
    # the record is durable, under bob's root
    assert os.path.exists(os.path.join(env.service.sieve_scripts.directory(BOB), "vacation.db"))


def test_reject_sends_a_refusal_to_the_sender_never_to_null(env):
    activate(env, 'require "reject";\nreject "Not here, please.";')
    assert mx(env, "someone@there.test", [BOB], msg("rejected")) == {}
    assert wait_for(lambda: env.sink.messages)
    mdn = env.sink.messages[0]
    assert mdn.sender == "" and mdn.rcpts == ["someone@there.test"]
    assert b"report-type=disposition-notification" in mdn.data
    assert b"Not here, please." in mdn.data
    assert b"Disposition: automatic-action/MDN-sent-automatically; deleted" in mdn.data
    assert mx(env, "", [BOB], msg("null rejected")) == {}
    assert env.inbox(BOB) == []
    assert len(env.sink.messages) == 1


def test_ereject_of_every_recipient_is_refused_at_the_end_of_data(env):
    """RFC 5429 2.1: when every recipient erejects, the SMTP reply says it (550
    5.7.1 with the script's reason, one printable line) and no MDN goes out; with
    another recipient that takes the message, the refusal goes as an MDN."""
    activate(env, 'require "ereject";\nereject text:\nNo more mail\r\n  for Bob, ever\t\x01\u00e9.\r\n.\r\n;')
    with pytest.raises(smtplib.SMTPDataError) as refused:
        mx(env, "someone@there.test", [BOB], msg("erejected"))
    assert (refused.value.smtp_code, refused.value.smtp_error) == (
        550, b"5.7.1 No more mail for Bob, ever ?.")
    activate(env, 'require "ereject";\nereject "Not for Alice either";', user=ALICE)
    with smtplib.SMTP("127.0.0.1", env.service.port("smtp"), timeout=10) as s:
        s.ehlo("mx.far.test")
        s.mail("someone@there.test")
        s.rcpt(BOB)
        s.rcpt(ALICE)
        assert s.data(msg("both")) == (550, b"5.7.1 No more mail for Bob, ever ?.")
        s.rset()
        s.mail("")                               # a bounce is refused the same way
        s.rcpt(ALICE)
        assert s.data(msg("bounce")) == (550, b"5.7.1 Not for Alice either")
    assert env.service.queue.list() == []
    assert env.inbox(BOB) == [] and env.inbox(ALICE) == []
    env.service.sieve_scripts.activate(ALICE, None)
    assert mx(env, "someone@there.test", [BOB, ALICE], msg("mixed")) == {}
    assert len(env.inbox(ALICE)) == 1 and env.inbox(BOB) == []
    assert wait_for(lambda: env.sink.messages)                  # Bob's refusal: an MDN
    assert b"No more mail" in env.sink.messages[0].data
    assert env.sink.messages[0].rcpts == ["someone@there.test"]


def test_a_copy_queued_by_a_full_mailbox_keeps_its_sieve_folder_and_flags(env):
    """Bob's mailbox has no room for the message now: his script runs at once (it
    sees the RCPT address, +detail and all), and his copy waits in the relay queue
    with the folder and flags it chose; once the quota is raised, the relay worker
    files it there, without running the script again."""
    activate(env, 'require ["fileinto", "imap4flags", "envelope", "subaddress"];\n'
                  'if envelope :detail "to" "lists" { fileinto :flags "\\\\Flagged" "Lists"; }')
    env.service.store.create_folder(BOB, "Lists")
    env.service.store.deliver_local("", [BOB], msg("first", extra="X: " + "y" * 2000 + "\r\n"))
    used = env.service.store.quota.usage(BOB).storage
    env.service.accounts.set_quota(BOB, storage=used + 100)       # room for a byte, not the message
    with smtplib.SMTP("127.0.0.1", env.service.port("smtp"), timeout=10) as s:
        s.ehlo("mx.far.test")
        s.mail("someone@there.test")                             # no SIZE: known after DATA
        assert s.rcpt(ALICE)[0] == 250 and s.rcpt(BOB.replace("@", "+lists@"))[0] == 250
        assert s.data(msg("to a list"))[0] == 250
    [entry] = env.service.queue.list()
    assert [(r.address, r.folder, r.flags) for r in entry.recipients] == [(BOB, "Lists", ["\\Flagged"])]
    activate(env, 'require "fileinto";\nfileinto "Elsewhere";')   # changed meanwhile: not run again
    env.service.accounts.set_quota(BOB, storage=None)
    env.service.queue.flush()
    assert wait_for(lambda: env.service.queue.list() == [], timeout=20)
    [(head, body)] = folder(env, BOB, "Lists")
    assert b"\\Flagged" in head and b"Subject: to a list" in body
    assert len(env.inbox(BOB)) == 1 and len(env.inbox(ALICE)) == 1


def test_a_broken_script_keeps_mail_in_inbox_and_warns(env, caplog):
    scripts = env.service.sieve_scripts
    scripts.put(BOB, "broken", "if header :frob { discard; }")   # stored behind the check
    scripts.activate(BOB, "broken")
    with caplog.at_level(logging.WARNING, logger="clevermail.sieve"):
        assert mx(env, "someone@far.test", [BOB], msg("kept")) == {}
    assert len(env.inbox(BOB)) == 1
    assert any(BOB in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    # a runtime failure (a fifth redirect) too
    activate(env, "\n".join(f'redirect "r{i}@there.test";' for i in range(5)))
    with caplog.at_level(logging.WARNING, logger="clevermail.sieve"):
        assert mx(env, "someone@far.test", [BOB], msg("too many")) == {}
    assert len(env.inbox(BOB)) == 2
    assert env.sink.messages == []


def test_relay_local_delivery_runs_the_script(env):
    activate(env, 'require "fileinto";\nfileinto "Archive";')
    env.service.handlers["smtp"].deliver_queued("someone@far.test", [BOB], msg("queued"), "Q1")
    assert len(folder(env, BOB, "Archive")) == 1
    assert env.inbox(BOB) == []


def test_a_redirect_loop_between_local_users_ends(env, caplog):
    activate(env, f'redirect "{ALICE}";', user=BOB)
    activate(env, f'redirect "{BOB}";', user=ALICE)
    with caplog.at_level(logging.WARNING, logger="clevermail.sieve"):
        assert mx(env, "someone@far.test", [BOB], msg("loop")) == {}
        # bob -> alice -> bob: bob's redirect already passed it, so bob keeps it
        assert wait_for(lambda: len(env.inbox(BOB)) == 1)
    kept = env.inbox(BOB)[0]
    assert f"Delivered-To: {BOB}".encode() in kept and f"Delivered-To: {ALICE}".encode() in kept
    assert env.inbox(ALICE) == []
    assert "would loop" in caplog.text


def test_the_vacation_reply_is_dkim_signed_for_the_users_domain(env):
    from click.testing import CliRunner

    from clevermail.cli import main
    from dkim_verify import verify, zone_lines
    from dns_server import DNSServer

    activate(env, 'require "vacation";\nvacation :subject "Away" "I am away.";')
    assert mx(env, "someone@there.test", [BOB], msg("signed")) == {}
    assert wait_for(lambda: env.sink.messages)
    reply = env.sink.messages[0].data
    listed = CliRunner().invoke(main, ["--config", env.config_path, "dkim", "list"])
    assert listed.exit_code == 0, listed.output
    with DNSServer("\n".join(zone_lines(listed.output))) as dns:
        results = verify(reply, dns.port)
    assert [(r["d"], r["ok"]) for r in results] == [("example.test", True), ("example.test", True)]
