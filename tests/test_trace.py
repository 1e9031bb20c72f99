"""`clevermail trace`: log lines read in both formats (pure), and the whole life of
messages traced from the log file of a real MailService (e2e): the accepting session,
local deliveries with their UIDs, relay attempts to a sink, the bounce, IMAP and POP3
retrievals, the queue entry of a deferred message; by queue id, Message-ID and
address with a time window, as text and JSON; through logrotate's rotated and gzip'd
files."""

import gzip
import imaplib
import json
import logging
import os
import poplib
import shutil
import smtplib
import ssl
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from clevermail import logs
from clevermail.cli import main
from clevermail.config import load_config
from clevermail.sandbox.certificate import ensure_certificate
from clevermail.trace.finder import queue_ids
from clevermail.trace.records import parse_line
from relay_sink import ServiceEnv, Sink
from waiting import wait_for

ALICE, BOB = ServiceEnv.ALICE, ServiceEnv.BOB


# -- pure ----------------------------------------------------------------------------------
def test_text_line_with_session():
    r = parse_line("2026-12-03T07:37:24.230+01:00 INFO clevermail.smtp: [smtp e78c223 127.0.0.1] "
                   "accepted id=A1B2C3 from=<a@x.test> local=<b@y.test> size=10 message-id=<m@x> helo=h")
    assert (r.protocol, r.session, r.peer, r.queue_id) == ("smtp", "e78c223", "127.0.0.1", "A1B2C3")
    assert r.message.startswith("accepted id=A1B2C3")
    assert r.time == datetime(2026, 12, 3, 6, 37, 24, 230000, tzinfo=timezone.utc)


def test_text_relay_line_leads_with_its_queue_id():
    r = parse_line("2026-12-03T07:37:24.230+00:00 INFO clevermail.relay: Q7: to=<c@z.test> relay=mx "
                   "tls=none attempt=1 status=sent: 250 ok")
    assert (r.queue_id, r.session) == ("Q7", "")
    assert parse_line("2026-12-03T07:37:24.230+00:00 INFO clevermail.relay: -: reload").queue_id == ""


def test_json_line():
    r = parse_line(json.dumps({"time": "2026-12-03T07:37:24.230+00:00", "level": "INFO",
                               "logger": "clevermail.smtp", "message": "connect", "session": "s1",
                               "protocol": "smtp", "peer": "::1", "queue_id": None}))
    assert (r.session, r.peer, r.message, r.queue_id) == ("s1", "::1", "connect", "")


@pytest.mark.parametrize("line", ["", "Traceback (most recent call last):", "  File x", "{not json",
                                  '{"time": "yesterday"}', "2026-13-45T99 INFO x: y"])
def test_other_lines_are_skipped(line):
    assert parse_line(line) is None


def _accepted(qid, when, sender, rcpts, mid):
    return parse_line(f"{when} INFO clevermail.smtp: [smtp s{qid} 127.0.0.1] accepted id={qid} "
                      f"from=<{sender}> local=" + ",".join(f"<{a}>" for a in rcpts)
                      + f" size=9 message-id={mid} helo=h")


def test_an_id_means_a_queue_id_a_message_id_or_an_address():
    records = [_accepted("Q1", "2026-12-03T08:00:00+00:00", "a@x.test", ["b@y.test"], "<m1@x.test>"),
               _accepted("Q2", "2026-12-03T09:00:00+00:00", "b@y.test", ["c@y.test"], "<m2@x.test>"),
               _accepted("Q3", "2026-12-03T10:00:00+00:00", "d@x.test", ["B@Y.test"], "-")]
    for i, r in enumerate(records):
        r.order = i
    assert queue_ids(records, "Q2") == ["Q2"]
    assert queue_ids(records, "<m1@x.test>") == ["Q1"]
    assert queue_ids(records, "m2@x.test") == ["Q2"]            # a bare Message-ID
    assert queue_ids(records, "b@y.test") == ["Q1", "Q2", "Q3"]   # sender or recipient, any case
    since = datetime(2026, 12, 3, 8, 30, tzinfo=timezone.utc)
    until = datetime(2026, 12, 3, 9, 30, tzinfo=timezone.utc)
    assert queue_ids(records, "b@y.test", since=since) == ["Q2", "Q3"]
    assert queue_ids(records, "b@y.test", since=since, until=until) == ["Q2"]
    assert queue_ids(records, "<nothing@x.test>") == []
    assert queue_ids(records, "nobody@x.test") == []
    assert queue_ids(records, "Q9") == []


# -- end to end ------------------------------------------------------------------------------
def _replies(address):
    if address.startswith("dave@"):
        return 550, "5.1.1 no such user"
    if address.startswith("erin@"):
        return 451, "4.7.1 try later"
    return 250, "2.1.5 ok"


@pytest.fixture
def server_log():
    """The clevermail logger as `clevermail start` sets it up (logs.setup_logging),
    then as it was."""
    root = logging.getLogger("clevermail")
    saved = (root.level, list(root.handlers), root.propagate, logs._structured)
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.level, root.propagate, logs._structured = saved[0], saved[2], saved[3]
    for handler in saved[1]:
        root.addHandler(handler)


@pytest.fixture(params=["text", "json"])
def env(request, tmp_path, relay_users, thread_guard, server_log):
    from conftest import write_config
    shutil.copy(relay_users, tmp_path / "users.ini")
    cert, key = ensure_certificate(str(tmp_path / "tls"))
    log_file = str(tmp_path / "clevermail.log")
    with Sink(rcpt=_replies) as sink:
        path = write_config(tmp_path, relay={"mx_port": sink.port, "retry_schedule": [3600]},
                            server={"log_file": log_file, "log_format": request.param,
                                    "log_retrievals": True},
                            tls={"certificate": cert, "key": key},
                            smtp={"listen": ["127.0.0.1:0"], "submission_listen": ["127.0.0.1:0"]})
        settings = load_config(path)
        logs.setup_logging("INFO", log_file, console=False, log_format=request.param)
        e = ServiceEnv(settings, sink).start()
        e.config_path, e.log_file, e.cafile = path, log_file, cert
        try:
            yield e
        finally:
            e.stop()


def submit(env, rcpts, message_id):
    """A message from ALICE over submission with STARTTLS; its queue id."""
    with smtplib.SMTP("127.0.0.1", env.service.port("submission"), timeout=10) as smtp:
        smtp.starttls(context=ssl.create_default_context(cafile=env.cafile))
        smtp.login(ALICE, env.USERS[ALICE])
        smtp.mail(ALICE)
        for rcpt in rcpts:
            assert smtp.rcpt(rcpt)[0] == 250
        code, text = smtp.data(f"From: {ALICE}\r\nSubject: traced\r\nMessage-ID: {message_id}\r\n\r\n"
                               "hello\r\n".encode())
        assert code == 250
        return text.decode().rpartition(" ")[2]


def trace(env, *args):
    logging.getLogger("clevermail").handlers[0].flush()     # the log writer's lines on disk
    result = CliRunner().invoke(main, ["--config", env.config_path, "trace", *args])
    return result


def test_the_whole_life_of_a_message(env):
    qid = submit(env, [BOB, "carol@there.test", "dave@there.test"], "<life-1@example.test>")
    # relayed to carol, refused for dave: a bounce to alice, then the entry is done
    assert wait_for(lambda: env.queue.list() == [] and env.sink.messages)
    env.wait_inbox(ALICE)
    imap = imaplib.IMAP4("127.0.0.1", env.service.port("imap"), timeout=10)
    imap.login(BOB, env.USERS[BOB])
    imap.select("INBOX")
    imap.fetch("1", "(BODY.PEEK[])")
    imap.logout()
    env.inbox(BOB)          # POP3 RETR

    result = trace(env, qid, "--json")
    assert result.exit_code == 0, result.output
    (msg,) = json.loads(result.output)["messages"]
    assert (msg["queue_id"], msg["message_id"], msg["sender"]) == (qid, "<life-1@example.test>", ALICE)
    texts = [(e["kind"], e["message"]) for e in msg["events"]]
    kinds = [k for k, _ in texts]
    assert kinds[0] == "session" and texts[0][1] == "connect"
    assert ("session", f"auth ok user={ALICE} (PLAIN)") in texts
    assert any(k == "session" and t.startswith("TLS TLSv1") for k, t in texts)
    accepted = kinds.index("accepted")
    # BOB's copy, and the bounce delivered to ALICE (a local sender) under <qid>-dsn
    delivered, bounce = [e for e in msg["events"] if e["kind"] == "delivered"]
    assert delivered["message"].startswith(f'id={qid} delivered to <{BOB}> folder="INBOX" '
                                           "message-id=<life-1@example.test> path=")
    assert delivered["note"] == "folder INBOX, uid 1"
    assert bounce["message"].startswith(f'id={qid}-dsn delivered to <{ALICE}> folder="INBOX" message-id=<')
    assert bounce["note"] == "folder INBOX, uid 1"
    relay = [t for k, t in texts if k == "relay"]
    assert any("to=<carol@there.test>" in t and "status=delivered" in t for t in relay)
    assert any("to=<dave@there.test>" in t and "550" in t for t in relay)
    assert any("bounce report" in t and f"<{ALICE}>" in t for t in relay)
    assert any("removed from the queue" in t for t in relay)
    retrieved = [e for e in msg["events"] if e["kind"] == "retrieved"]
    assert sorted((e["protocol"], e["message"]) for e in retrieved) == [
        ("imap", f"retrieved uid=1 user={BOB} folder=INBOX"),
        ("pop3", f"retrieved uid=1 user={ALICE} folder=INBOX"),     # the bounce (wait_inbox)
        ("pop3", f"retrieved uid=1 user={BOB} folder=INBOX")]
    # time order: the session before its accept, the relay and the retrievals after it
    times = [e["time"] for e in msg["events"]]
    assert times == sorted(times)
    assert kinds.index("retrieved") > accepted and kinds.index("relay") > accepted
    assert msg["queue"] == []                   # delivered, bounced, removed

    # the text form says the same, one line an event
    text = trace(env, qid)
    assert text.exit_code == 0
    assert f"message {qid}  <life-1@example.test>" in text.output
    assert f"delivered to <{BOB}>" in text.output and "(folder INBOX, uid 1)" in text.output


def test_a_deferred_message_shows_its_queue_entry_and_is_found_by_message_id_and_address(env):
    qid = submit(env, ["erin@there.test"], "<later-2@example.test>")
    assert wait_for(env.deferred)
    result = trace(env, "<later-2@example.test>", "--json")
    assert result.exit_code == 0, result.output
    (msg,) = json.loads(result.output)["messages"]
    assert msg["queue_id"] == qid
    assert any("status=deferred" in e["message"] for e in msg["events"] if e["kind"] == "relay")
    (entry,) = msg["queue"]
    assert [(r["address"], r["state"]) for r in entry["recipients"]] == [("erin@there.test", "deferred")]

    found = json.loads(trace(env, "erin@there.test", "--since", "1h", "--json").output)
    assert [m["queue_id"] for m in found["messages"]] == [qid]
    past = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    none = trace(env, "erin@there.test", "--until", past)
    assert none.exit_code == 1 and "nothing found" in none.output


def _rotate(env, compress):
    """What logrotate does: <log>.1 becomes <log>.2[.gz], <log> becomes <log>.1, and
    the server (SIGHUP -> logs.reopen) writes a new <log>."""
    log = env.log_file
    logging.getLogger("clevermail").handlers[0].flush()
    if os.path.exists(log + ".1"):
        if compress:
            with open(log + ".1", "rb") as src, gzip.open(log + ".2.gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.unlink(log + ".1")
        else:
            os.rename(log + ".1", log + ".2")
    os.rename(log, log + ".1")
    logs.reopen()


def test_rotated_and_gzipped_logs_are_read_in_time_order(env):
    qid = submit(env, [BOB], "<rotated-3@example.test>")
    env.wait_inbox(BOB)                             # POP3: RETR logged in what becomes .2.gz
    _rotate(env, compress=False)
    _rotate(env, compress=True)
    imap = imaplib.IMAP4("127.0.0.1", env.service.port("imap"), timeout=10)
    imap.login(BOB, env.USERS[BOB])
    imap.select("INBOX")
    imap.fetch("1", "(BODY.PEEK[])")                # logged in the live file
    imap.logout()
    with gzip.open(env.log_file + ".2.gz", "rt", encoding="utf-8") as f:
        assert f"accepted id={qid}" in f.read()       # a real gzip'd rotated file
    assert f"accepted id={qid}" not in open(env.log_file, encoding="utf-8").read()

    result = trace(env, qid, "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["logs"] == [env.log_file + ".2.gz", env.log_file + ".1", env.log_file]
    (msg,) = found["messages"]
    assert msg["message_id"] == "<rotated-3@example.test>"
    kinds = [e["kind"] for e in msg["events"]]
    assert kinds[0] == "session" and "accepted" in kinds and "delivered" in kinds
    assert sorted(e["protocol"] for e in msg["events"] if e["kind"] == "retrieved") == ["imap", "pop3"]
    times = [e["time"] for e in msg["events"]]
    assert times == sorted(times)
    # given in any order with --log, the same events in the same order
    shuffled = trace(env, qid, "--json", "--log", env.log_file, "--log", env.log_file + ".2.gz",
                     "--log", env.log_file + ".1")
    assert json.loads(shuffled.output)["messages"] == found["messages"]


def test_a_damaged_gzip_log_is_an_error(tmp_path):
    from conftest import write_config
    log = tmp_path / "clevermail.log"
    log.write_text("")
    (tmp_path / "clevermail.log.2.gz").write_bytes(gzip.compress(b"x" * 1000)[:20])
    path = write_config(tmp_path, server={"log_file": str(log)})
    result = CliRunner().invoke(main, ["--config", path, "trace", "ABC"])
    assert result.exit_code == 2
    assert "clevermail.log.2.gz" in result.output


def test_trace_without_a_log_says_so(tmp_path):
    from conftest import write_config
    path = write_config(tmp_path)
    result = CliRunner().invoke(main, ["--config", path, "trace", "ABC"])
    assert result.exit_code == 2
    assert "no log to read" in result.output


@pytest.mark.parametrize("setting, level, logged", [(False, logging.INFO, False),
                                                    (False, logging.DEBUG, True),
                                                    (True, logging.INFO, True)])
def test_retrievals_are_logged_at_info_only_with_log_retrievals(tmp_path, relay_users, make_config, caplog,
                                                                 thread_guard, setting, level, logged):
    from clevermail.service import MailService
    shutil.copy(relay_users, tmp_path / "users.ini")
    caplog.set_level(level, logger="clevermail")
    with MailService(make_config(tmp_path, server={"log_retrievals": setting})) as service:
        with smtplib.SMTP("127.0.0.1", service.port("smtp"), timeout=10) as smtp:
            smtp.sendmail("x@far.test", [BOB], b"Subject: r\r\n\r\nr\r\n")
        pop = poplib.POP3("127.0.0.1", service.port("pop3"), timeout=10)
        pop.user(BOB)
        pop.pass_(ServiceEnv.USERS[BOB])
        pop.retr(1)
        pop.quit()
    lines = [r.getMessage() for r in caplog.records if "retrieved uid=" in r.getMessage()]
    assert lines == ([f"[pop3 {lines[0].split()[1]} 127.0.0.1] retrieved uid=1 user={BOB} folder=INBOX"]
                     if logged else [])
