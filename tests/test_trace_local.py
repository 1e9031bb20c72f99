"""`clevermail trace` follows every local delivery to its retrievals, whoever made it
(e2e, a real MailService and its log file): copies Sieve files (fileinto into other
folders, :copy, mailbox :create) and the relay worker's local deliveries (a copy
deferred by a full mailbox and delivered later, a reversed SRS bounce, a bounce to
a local sender), each with its folder, UID and IMAP/POP3 retrieval."""

import imaplib
import json
import logging
import shutil
import smtplib

import pytest
from click.testing import CliRunner

from clevermail import logs
from clevermail.cli import main
from clevermail.config import load_config
from clevermail.sandbox.certificate import ensure_certificate
from relay_sink import ServiceEnv, Sink
from test_trace import _replies, server_log, submit  # noqa: F401 (server_log: a fixture)
from waiting import wait_for

pytestmark = pytest.mark.e2e

ALICE, BOB = ServiceEnv.ALICE, ServiceEnv.BOB
FILLER = b"Subject: filler\r\n\r\n" + (b"x" * 98 + b"\r\n") * 20


@pytest.fixture
def env(tmp_path, relay_users, thread_guard, server_log):  # noqa: F811
    from conftest import write_config
    shutil.copy(relay_users, tmp_path / "users.ini")
    cert, key = ensure_certificate(str(tmp_path / "tls"))
    log_file = str(tmp_path / "clevermail.log")
    with Sink(rcpt=_replies) as sink:
        path = write_config(tmp_path, relay={"mx_port": sink.port, "interval": 0.2, "retry_schedule": [1]},
                            server={"log_file": log_file, "log_retrievals": True,
                                    # a local sender's forwarded mail gets an SRS sender too
                                    "srs_domain": "localhost"},
                            tls={"certificate": cert, "key": key},
                            smtp={"listen": ["127.0.0.1:0"], "submission_listen": ["127.0.0.1:0"]})
        logs.setup_logging("INFO", log_file, console=False)
        e = ServiceEnv(load_config(path), sink).start()
        e.config_path, e.cafile = path, cert
        try:
            yield e
        finally:
            e.stop()


def cli(env, *args):
    result = CliRunner().invoke(main, ["--config", env.config_path, *args])
    assert result.exit_code == 0, result.output
    return result.output


def traced(env, ident):
    """The one message `clevermail trace ID --json` finds."""
    logging.getLogger("clevermail").handlers[0].flush()
    (msg,) = json.loads(cli(env, "trace", ident, "--json"))["messages"]
    return msg


def fetch(env, user, folder):
    """IMAP: SELECT the folder and FETCH the body of its every message (logged
    retrievals); how many there were."""
    imap = imaplib.IMAP4("127.0.0.1", env.service.port("imap"), timeout=10)
    try:
        imap.login(user, ServiceEnv.USERS[user])
        typ, data = imap.select(f'"{folder}"')
        assert typ == "OK", folder
        count = int(data[0])
        if count:
            imap.fetch(f"1:{count}", "(BODY.PEEK[])")
        return count
    finally:
        imap.logout()


def deliveries(msg):
    """{(account, folder): note} of the trace's delivered events."""
    out = {}
    for e in msg["events"]:
        if e["kind"] == "delivered":
            text = e["message"]
            account = text.split("<", 1)[1].split(">", 1)[0]
            out[(account, json.loads(text.split(" folder=", 1)[1].split(" message-id=", 1)[0]))] = e["note"]
    return out


def retrievals(msg):
    return sorted((e["protocol"], e["message"]) for e in msg["events"] if e["kind"] == "retrieved")


def test_sieve_copies_are_traced_to_their_folders_and_retrievals(env):
    scripts = env.service.sieve_scripts
    scripts.put(BOB, "main", 'require ["fileinto", "copy", "mailbox"];\r\n'
                             'fileinto :copy :create "Archive/2026";\r\n'
                             'if header :contains "subject" "traced" { fileinto :create "Work"; }\r\n')
    scripts.activate(BOB, "main")
    qid = submit(env, [BOB], "<sieve-1@example.test>")
    assert fetch(env, BOB, "Archive/2026") == 1 and fetch(env, BOB, "Work") == 1
    assert fetch(env, BOB, "INBOX") == 0            # fileinto without :copy: no keep

    msg = traced(env, qid)
    assert deliveries(msg) == {(BOB, "Archive/2026"): "folder Archive/2026, uid 1",
                               (BOB, "Work"): "folder Work, uid 1"}
    delivered = [e["message"] for e in msg["events"] if e["kind"] == "delivered"]
    assert all(f"id={qid} delivered to <{BOB}> folder=" in t and " message-id=<sieve-1@example.test> path="
               in t for t in delivered)
    assert retrievals(msg) == [("imap", f"retrieved uid=1 user={BOB} folder=Archive/2026"),
                               ("imap", f"retrieved uid=1 user={BOB} folder=Work")]


def test_a_quota_deferred_copy_is_traced_when_the_worker_delivers_it(env):
    env.service.store.deliver_local("", [BOB], FILLER)
    used = env.service.store.quota.usage(BOB).storage
    cli(env, "user", "quota", BOB, "--storage", str(used + 1000))
    with_filler = b"Subject: big\r\nMessage-ID: <big-2@example.test>\r\n\r\n" + FILLER
    with smtplib.SMTP("127.0.0.1", env.service.port("smtp"), timeout=10) as smtp:
        smtp.login(ALICE, ServiceEnv.USERS[ALICE])
        smtp.mail(ALICE)                # no SIZE: the size is known after DATA only
        assert smtp.rcpt(BOB)[0] == smtp.rcpt(ALICE)[0] == 250
        assert smtp.data(with_filler)[0] == 250
    qid = env.queue.list()[0].queue_id
    assert wait_for(lambda: env.queue.list()[0].recipients[0].attempts >= 1)   # tried: still full
    cli(env, "user", "quota", BOB, "--storage", "1M")
    assert wait_for(lambda: env.queue.list() == [], timeout=15)
    assert fetch(env, BOB, "INBOX") == 2             # the filler, then the deferred copy
    env.inbox(ALICE)                                 # POP3 RETR of ALICE's copy

    msg = traced(env, "<big-2@example.test>")
    assert msg["queue_id"] == qid
    assert deliveries(msg) == {(ALICE, "INBOX"): "folder INBOX, uid 1",
                               (BOB, "INBOX"): "folder INBOX, uid 2"}
    assert retrievals(msg) == [("imap", f"retrieved uid=2 user={BOB} folder=INBOX"),
                               ("pop3", f"retrieved uid=1 user={ALICE} folder=INBOX")]
    kinds = [e["kind"] for e in msg["events"]]
    # the worker's delivery comes after its deferral, in time order
    assert kinds.index("relay") < [i for i, e in enumerate(msg["events"])
                                   if e["kind"] == "delivered" and f"<{BOB}>" in e["message"]][0]


def test_a_reversed_srs_bounce_delivered_locally_is_traced(env):
    cli(env, "alias", "add", "fwd@example.test", "carol@there.test")
    env.send(["fwd@example.test"], b"Subject: fwd\r\nMessage-ID: <fwd-3@example.test>\r\n\r\nhi\r\n")
    assert wait_for(lambda: env.sink.messages)
    srs = env.sink.messages[0].sender
    assert srs.startswith("SRS0=")
    # the next hop's bounce to the SRS address: reversed, queued, delivered to ALICE by the worker
    bounce = b"Subject: bounced\r\nMessage-ID: <bounce-3@there.test>\r\n\r\nundeliverable\r\n"
    with smtplib.SMTP("127.0.0.1", env.service.port("smtp"), timeout=10) as smtp:
        assert smtp.sendmail("", [srs], bounce) == {}
    assert wait_for(lambda: env.queue.list() == [])
    assert fetch(env, ALICE, "INBOX") == 1

    msg = traced(env, "<bounce-3@there.test>")
    assert deliveries(msg) == {(ALICE, "INBOX"): "folder INBOX, uid 1"}
    assert any(e["kind"] == "accepted" and f"forward=<{ALICE}>" in e["message"] for e in msg["events"])
    assert retrievals(msg) == [("imap", f"retrieved uid=1 user={ALICE} folder=INBOX")]


def test_a_bounce_to_a_local_sender_is_traced_to_its_retrieval(env):
    qid = submit(env, ["dave@there.test"], "<refused-4@example.test>")     # the sink says 550
    assert wait_for(lambda: env.queue.list() == [])
    assert fetch(env, ALICE, "INBOX") == 1

    msg = traced(env, qid)
    (delivered,) = [e for e in msg["events"] if e["kind"] == "delivered"]
    assert delivered["message"].startswith(f"id={qid}-dsn delivered to <{ALICE}> folder=\"INBOX\" message-id=<")
    assert delivered["queue_id"] == f"{qid}-dsn" and delivered["note"] == "folder INBOX, uid 1"
    assert retrievals(msg) == [("imap", f"retrieved uid=1 user={ALICE} folder=INBOX")]
