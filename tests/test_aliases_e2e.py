"""Aliases end to end: `clevermail alias` edits seen by the running MailService, an alias
to a list, the catch-all, forwarding to a sink MX with an SRS envelope sender and the
bounce to that address reversed and sent on, forged SRS refused, the hop limit, and an
alias counting as its owner's for sending."""

import smtplib

import pytest
from click.testing import CliRunner

from clevermail.cli import main
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


def alias(env, *args):
    result = CliRunner().invoke(main, ["alias", *args, "--config", env.config_path],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def mx(env, sender, rcpts, body=b"Subject: hi\r\n\r\nhello\r\n"):
    """Unauthenticated, as another MX would send; returns smtplib's refused dict."""
    with smtplib.SMTP("127.0.0.1", env.service.port("smtp"), timeout=10) as s:
        s.ehlo("mx.far.test")
        return s.sendmail(sender, rcpts, body)


def test_list_and_catch_all_through_the_cli(env):
    assert alias(env, "add", "team@example.test", ALICE, BOB).output == \
        f"team@example.test -> {ALICE}, {BOB}\n"
    assert mx(env, "someone@far.test", ["Team@example.test"]) == {}
    assert len(env.inbox(ALICE)) == 1 and len(env.inbox(BOB)) == 1
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        mx(env, "someone@far.test", ["typo@example.test"])
    assert info.value.recipients["typo@example.test"][0] == 550
    alias(env, "add", "@example.test", BOB)
    assert mx(env, "someone@far.test", ["typo@example.test", "team@example.test"]) == {}
    assert len(env.inbox(BOB)) == 2                      # one copy, two routes to bob
    assert len(env.inbox(ALICE)) == 2
    listing = alias(env, "list").output
    assert listing == f"@example.test -> {BOB}\nteam@example.test -> {ALICE}, {BOB}\n"
    alias(env, "del", "@example.test")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        mx(env, "someone@far.test", ["typo@example.test"])


def test_forward_with_srs_and_the_reversed_bounce(env):
    alias(env, "add", "fwd@example.test", "carol@there.test")
    assert mx(env, "origin@there.test", ["fwd@example.test"]) == {}
    assert wait_for(lambda: env.sink.messages)
    got = env.sink.messages[0]
    assert got.rcpts == ["carol@there.test"]
    local, _, domain = got.sender.rpartition("@")
    assert domain == "example.test" and local.startswith("SRS0=") and local.endswith("=there.test=origin")
    # the next hop bounces to the SRS address: it goes back to the original sender
    assert mx(env, "", [got.sender], b"Subject: bounce\r\n\r\nundeliverable\r\n") == {}
    assert wait_for(lambda: len(env.sink.messages) == 2)
    bounce = env.sink.messages[1]
    assert (bounce.sender, bounce.rcpts) == ("", ["origin@there.test"])
    # a forged one is refused at RCPT
    forged = got.sender.replace("=origin@", "=victim@")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        mx(env, "", [forged])
    assert info.value.recipients[forged][:2] == (550, b"5.7.1 Invalid or expired bounce address")


def test_null_sender_is_not_rewritten_when_forwarding(env):
    alias(env, "add", "fwd@example.test", "carol@there.test")
    assert mx(env, "", ["fwd@example.test"]) == {}
    assert wait_for(lambda: env.sink.messages)
    assert env.sink.messages[0].sender == ""


def test_a_looping_message_is_refused(env):
    hops = b"".join(b"Received: from hop%d by mx\r\n" % i for i in range(31))
    with pytest.raises(smtplib.SMTPDataError) as info:
        mx(env, "someone@far.test", [ALICE], hops + b"Subject: loop\r\n\r\nx\r\n")
    assert (info.value.smtp_code, info.value.smtp_error[:5]) == (554, b"5.4.6")
    assert env.inbox(ALICE) == []


def test_an_alias_is_its_owners_to_send_as(env):
    alias(env, "add", "sales@example.test", ALICE, "partner@there.test")
    body = b"From: Sales <sales@example.test>\r\nSubject: offer\r\n\r\nbuy\r\n"
    assert env.send([BOB], body, sender="sales@example.test", login=ALICE) == {}
    assert len(env.inbox(BOB)) == 1
    with pytest.raises(smtplib.SMTPSenderRefused) as info:
        env.send([ALICE], body, sender="sales@example.test", login=BOB)
    assert info.value.smtp_code == 553
