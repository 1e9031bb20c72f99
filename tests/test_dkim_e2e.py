"""DKIM end to end: a real MailService on port 0 signs what authenticated clients send
(submission port and MX port with AUTH), relayed to a sink MX or delivered locally, and
its own bounces; dkimpy's verifier in a separate process checks each signature against
a loopback DNS server whose zone is exactly what `clevermail dkim list` printed.
Unauthenticated and foreign-From mail stays unsigned; the RFC 6409 fix-ups; a missing
key stops the start and fails `config check`."""

import logging
import os
import re
import shutil
import smtplib

import pytest
from click.testing import CliRunner

from clevermail.cli import main
from clevermail.config import load_config
from clevermail.service import MailService, StartupError
from dkim_verify import verify, zone_lines
from dns_server import DNSServer
from relay_sink import Replies, ServiceEnv, Sink
from waiting import wait_for

pytestmark = pytest.mark.e2e

ALICE, BOB = ServiceEnv.ALICE, ServiceEnv.BOB
REMOTE = "carol@there.test"


def cli(config_path, *args):
    return CliRunner().invoke(main, ["--config", config_path, *args], catch_exceptions=False)


def message(subject, sender=ALICE, to=REMOTE, extra=""):
    return (f"From: Alice <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n{extra}"
            f"\r\nHello,\r\n.a line that starts with a dot\r\n\r\n  trailing  \r\n").encode()


def dated(subject, **kw):
    return message(subject, extra=f"Date: Wed, 02 Dec 2026 10:00:00 +0000\r\n"
                                  f"Message-ID: <{subject}@example.test>\r\n", **kw)


def signatures(data):
    return re.findall(rb"(?im)^dkim-signature:", data.split(b"\r\n\r\n", 1)[0])


@pytest.fixture
def env(thread_guard, tmp_path, relay_users, write_config):
    """A started ServiceEnv with a submission listener, relaying to a Sink that answers
    RCPT with env.replies, and env.dns: the zone `clevermail dkim list` printed."""
    shutil.copy(relay_users, tmp_path / "users.ini")
    replies = Replies()
    sink = Sink(rcpt=replies)
    path = write_config(tmp_path, relay={"mx_port": sink.port},
                        smtp={"listen": ["127.0.0.1:0"], "submission_listen": ["127.0.0.1:0"]},
                        # alice may also send as a domain hosted elsewhere (not signed here)
                        senders={"send_as": ["alice@example.test=*@elsewhere.test"]})
    env = ServiceEnv(load_config(path), sink)
    env.config_path, env.replies = path, replies
    try:
        env.start()
        listed = cli(path, "dkim", "list")
        assert listed.exit_code == 0, listed.output
        env.zone = zone_lines(listed.output)
        assert len(env.zone) == 2           # example.test: rsa and ed25519 (localhost: none)
        with DNSServer("\n".join(env.zone)) as dns:
            env.dns = dns
            yield env
    finally:
        env.stop()
        sink.close()


def submit(env, rcpts, data, login=ALICE, port_kind="submission", envelope=ALICE):
    with smtplib.SMTP("127.0.0.1", env.service.port(port_kind), timeout=10) as s:
        s.ehlo("client.example.test")
        if login is not None:
            s.user, s.password = login, ServiceEnv.USERS[login]
            assert s.auth("PLAIN", s.auth_plain)[0] == 235
        return s.sendmail(envelope, list(rcpts), data)


def sink_message(env):
    assert wait_for(lambda: env.sink.messages)
    return env.sink.messages[0].data


def assert_verified(env, data, domain="example.test"):
    results = verify(data, env.dns.port)
    assert [(r["d"], r["a"], r["ok"]) for r in results] == [
        (domain, "rsa-sha256", True), (domain, "ed25519-sha256", True)], results
    return results


def test_submission_relayed_to_the_sink_verifies_outside(env):
    assert submit(env, [REMOTE], dated("relayed")) == {}
    data = sink_message(env)
    assert data.startswith(b"Received: ")          # the trace is added after signing
    results = assert_verified(env, data)
    assert {r["s"] for r in results} == {line.split(".")[0] for line in env.zone}
    assert len(signatures(data)) == 2


def test_local_delivery_verifies_and_mx_port_with_auth_is_signed_too(env):
    submit(env, [BOB], dated("local"))
    env.send([BOB], dated("over the MX port"))       # AUTH on the MX listener
    stored = env.wait_inbox(BOB, 2)
    for data in stored:
        assert data.startswith(b"Return-Path: <alice@example.test>\r\nReceived: ")
        assert_verified(env, data)


def test_submission_fixups_add_date_and_message_id_before_signing(env):
    submit(env, [REMOTE], message("bare"))
    data = sink_message(env)
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    assert re.search(r"(?m)^Date: \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r?$", head)
    [msgid] = re.findall(r"(?mi)^Message-ID: (.*)\r?$", head)
    assert re.fullmatch(r"<[0-9a-f]{32}@mail\.example\.test>", msgid.strip())
    # added to the header section, covered by the signature
    assert head.index("Subject: bare") < head.index("Date: ")
    results = assert_verified(env, data)
    names = re.sub(r"\s", "", results[0]["h"]).split(":")
    assert names.count("date") == 2 and names.count("message-id") == 2


def test_fixups_leave_existing_fields_alone(env):
    submit(env, [REMOTE], dated("kept"))
    head = sink_message(env).split(b"\r\n\r\n", 1)[0]
    assert head.count(b"\r\nDate: ") == 1 and head.count(b"\r\nMessage-ID: ") == 1
    assert b"Message-ID: <kept@example.test>" in head


def test_a_bounce_is_signed_for_the_postmasters_domain(env):
    env.replies.set(550, "5.1.1 no such user here")
    submit(env, [REMOTE], dated("bounced"))
    (dsn,) = env.wait_inbox(ALICE)
    assert b"multipart/report" in dsn
    assert_verified(env, dsn)


def test_an_unauthenticated_mx_message_is_not_signed(env):
    # a local From: header, but no AUTH (the envelope must be foreign without it)
    submit(env, [BOB], message("anonymous", to=BOB), login=None, port_kind="smtp",
           envelope="someone@remote.test")
    (data,) = env.wait_inbox(BOB)
    assert signatures(data) == []
    assert b"\r\nDate: " not in data.split(b"\r\n\r\n", 1)[0]   # no fix-ups for relayed mail


def test_a_foreign_from_is_not_signed(env):
    submit(env, [REMOTE], dated("foreign", sender="alice@elsewhere.test"), envelope="alice@elsewhere.test")
    assert signatures(sink_message(env)) == []


def test_first_start_logs_the_records_dkim_list_shows(tmp_path, write_config, thread_guard, caplog):
    path = write_config(tmp_path)
    with caplog.at_level(logging.INFO, logger="clevermail.dkim"):
        with MailService(load_config(path)):
            pass
    logged = [r.getMessage().removeprefix("dkim: ") for r in caplog.records
              if " IN TXT " in r.getMessage()]
    listed = cli(path, "dkim", "list")
    assert logged == zone_lines(listed.output) and len(logged) == 2
    key_dir = tmp_path / "data" / "dkim" / "example.test"
    names = sorted(os.listdir(key_dir))
    assert len(names) == 4 and names[0] == ".lock" and names[-1] == "selectors"
    assert names[1].endswith("e.ed25519.key") and names[2].endswith("r.rsa.key")
    assert all(os.stat(key_dir / n).st_mode & 0o777 == 0o600 for n in names)
    assert os.stat(key_dir).st_mode & 0o777 == 0o700
    assert not (tmp_path / "data" / "dkim" / "localhost").exists()
    # a second start makes no new keys
    with MailService(load_config(path)):
        pass
    assert zone_lines(cli(path, "dkim", "list").output) == logged


def test_a_missing_key_file_stops_the_start_and_fails_config_check(tmp_path, write_config, thread_guard):
    path = write_config(tmp_path)
    with MailService(load_config(path)):
        pass
    key_dir = tmp_path / "data" / "dkim" / "example.test"
    [rsa_file] = [name for name in os.listdir(key_dir) if name.endswith(".rsa.key")]
    os.unlink(key_dir / rsa_file)
    with pytest.raises(StartupError) as info:
        MailService(load_config(path)).start()
    assert "DKIM" in str(info.value) and rsa_file in str(info.value) and "missing" in str(info.value)
    result = cli(path, "config", "check")
    assert result.exit_code == 1
    assert rsa_file in result.stderr and "missing" in result.stderr
    assert "config ok" not in result.output
    # and no key was silently made in its place
    assert rsa_file not in os.listdir(key_dir)


def test_signing_off_signs_nothing_and_makes_no_keys(tmp_path, relay_users, write_config, thread_guard):
    shutil.copy(relay_users, tmp_path / "users.ini")
    sink = Sink()
    path = write_config(tmp_path, relay={"mx_port": sink.port}, dkim={"sign": False})
    env = ServiceEnv(load_config(path), sink)
    try:
        env.start()
        env.send([BOB], dated("unsigned"))
        (data,) = env.wait_inbox(BOB)
        assert signatures(data) == []
        assert not (tmp_path / "data" / "dkim").exists()
        assert cli(path, "config", "check").exit_code == 0
    finally:
        env.stop()
        sink.close()
