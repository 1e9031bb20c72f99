"""`clevermail queue list|show|dump|flush|delete|bounce|hold|release` (click's CliRunner)
against the queue of a running MailService built from the same config file: the CLI
acts from outside the server, the server's worker notices (flush -> delivered, bounce
-> DSN, hold -> never attempted). The filter, id and audit tests at the end use real
queue files without a server (tests/test_cli_queue_filters.py)."""
import json
import re

import pytest
from click.testing import CliRunner

from clevermail.cli import main
from relay_sink import Replies, ServiceEnv
from waiting import wait_for

pytestmark = pytest.mark.e2e

ALICE = ServiceEnv.ALICE
REMOTE, OTHER = "carol@there.test", "dave@there.test"
MSG = (f"From: {ALICE}\r\nTo: {REMOTE}\r\nSubject: queued for the CLI\r\n"
       # with a Date, so that submission adds nothing to it (RFC 6409 8; DKIM goes on top)
       "Message-ID: <cli@example.test>\r\nDate: Wed, 02 Dec 2026 10:00:00 +0000\r\n\r\nbody\r\n").encode()


@pytest.fixture
def replies():
    return Replies(451, "4.7.1 greylisted, try later")


@pytest.fixture
def env(relay_env):
    return relay_env


@pytest.fixture
def deferred(env):
    """A message to REMOTE and OTHER, tried once and deferred; returns its entry."""
    env.send([REMOTE, OTHER], MSG)
    entry = wait_for(env.deferred)
    assert entry, env.queue.list()
    return entry


def cli(env, *args):
    return CliRunner().invoke(main, ["--config", env.config_path, "queue", *args],
                              catch_exceptions=False)


def test_list_empty(env):
    result = cli(env, "list")
    assert result.exit_code == 0 and result.stdout == "queue is empty\n"
    assert json.loads(cli(env, "list", "--json").stdout) == []


def test_list_shows_recipients_with_state_attempts_next_and_last_reply(env, deferred):
    result = cli(env, "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert deferred.id == deferred.queue_id                  # one id: the entry is named by it
    assert lines[0].startswith(f"{deferred.id}  age ")
    assert lines[0].endswith(f"from <{ALICE}>")
    for address in (REMOTE, OTHER):
        line = next(x for x in lines if f"<{address}>" in x)
        assert re.search(r"  deferred  attempts 1  next in \d+m\d\ds  last: 451 4\.7\.1 greylisted", line), line

    data = json.loads(cli(env, "list", "--json").stdout)
    assert [e["id"] for e in data] == [deferred.id] and data[0]["sender"] == ALICE
    rcpts = {r["address"]: r for r in data[0]["recipients"]}
    assert set(rcpts) == {REMOTE, OTHER}
    for r in rcpts.values():
        assert (r["state"], r["attempts"]) == ("deferred", 1)
        assert r["next_attempt"] > data[0]["arrival"] and r["last_reply"].startswith("451 4.7.1")


def test_show_prints_envelope_history_and_headers(env, deferred):
    result = cli(env, "show", deferred.id)
    assert result.exit_code == 0
    out = result.stdout
    assert out.startswith(f"{deferred.id}  age ")
    assert "queued  from <alice@example.test> to 2 recipient(s)" in out
    assert f"deferred  <{REMOTE}> via mx.there.test[127.0.0.1]:{env.sink.port}: 451 4.7.1" in out
    assert "\nReceived: from client.example.test" in out and "Subject: queued for the CLI" in out
    assert "body" not in out.split("Subject: queued for the CLI")[1]     # headers only


def send_and_get_queue_id(env, rcpts, data):
    """One message over SMTP; the queue id of the server's 250 reply to DATA."""
    import smtplib
    with smtplib.SMTP("127.0.0.1", env.service.port("smtp"), timeout=10) as s:
        s.ehlo("client.example.test")
        s.login(ALICE, ServiceEnv.USERS[ALICE])
        s.mail(ALICE)
        for rcpt in rcpts:
            assert s.rcpt(rcpt)[0] == 250
        code, text = s.data(data)
    assert code == 250, text
    return re.fullmatch(rb"2\.0\.0 Ok: queued as (\S+)", text).group(1).decode()


def test_the_id_of_the_250_reply_works_with_every_verb(env, replies):
    qid = send_and_get_queue_id(env, [REMOTE], MSG)
    assert wait_for(env.deferred)
    assert [e.id for e in env.queue.list()] == [qid]
    assert cli(env, "show", qid).stdout.startswith(f"{qid}  age ")
    assert cli(env, "show", qid.lower()).exit_code == 0                # case does not matter
    assert json.loads(cli(env, "show", qid, "--json").stdout)["queue_id"] == qid
    assert cli(env, "hold", qid).stdout == f"held {qid}\n"
    assert cli(env, "release", qid).stdout == f"released {qid}\n"
    replies.set(250, "2.1.5 ok")
    assert cli(env, "flush", qid).stdout in (f"{qid} due now\n", f"{qid}: nothing to retry\n")
    assert wait_for(lambda: env.queue.list() == [])


def test_dump_writes_the_queued_message_byte_for_byte(env, deferred):
    result = CliRunner().invoke(main, ["--config", env.config_path, "queue", "dump", deferred.id],
                                catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stdout_bytes == env.queue.read_body(deferred.id)
    assert result.stdout_bytes.endswith(MSG) and result.stdout_bytes.startswith(b"Received: ")


def test_a_held_entry_is_not_attempted_by_the_running_worker_until_released(env, deferred, replies):
    replies.set(250, "2.1.5 ok")
    assert cli(env, "hold", deferred.id).stdout == f"held {deferred.id}\n"
    assert cli(env, "list", "--state", "held").stdout.splitlines()[0].endswith("HELD")
    assert cli(env, "flush", deferred.id).stdout == f"{deferred.id} is held: not flushed (release it)\n"
    attempts = [r.attempts for r in env.queue.get(deferred.id).recipients]
    # the worker passes every 0.2 s: give it several chances to do wrong
    assert not wait_for(lambda: env.sink.messages or env.queue.list() == [], timeout=1.5)
    assert [r.attempts for r in env.queue.get(deferred.id).recipients] == attempts
    assert cli(env, "release", deferred.id).stdout == f"released {deferred.id}\n"
    assert wait_for(lambda: env.queue.list() == [])
    assert [sorted(m.rcpts) for m in env.sink.messages] == [sorted([REMOTE, OTHER])]


def test_flush_one_entry_while_the_service_runs_delivers_it(env, deferred, replies):
    replies.set(250, "2.1.5 ok")
    result = cli(env, "flush", deferred.id)
    assert (result.exit_code, result.stdout) == (0, f"{deferred.id} due now\n")
    assert wait_for(lambda: env.queue.list() == [])
    assert [sorted(m.rcpts) for m in env.sink.messages] == [sorted([REMOTE, OTHER])]


def test_flush_all(env, deferred, replies):
    replies.set(250, "2.1.5 ok")
    refused = cli(env, "flush")                         # never everything by accident
    assert refused.exit_code == 1 and refused.stderr.startswith("error: which entries?")
    assert cli(env, "flush", "--all").stdout == f"{deferred.id} due now\n"
    assert wait_for(lambda: env.queue.list() == [])
    assert len(env.sink.messages) == 1
    assert cli(env, "flush", "--all").stdout == "no entries match\n"


def test_bounce_sends_a_dsn_to_the_sender(env, deferred):
    result = cli(env, "bounce", deferred.id)
    assert (result.exit_code, result.stdout) == (0, f"{deferred.id} will be bounced\n")
    (dsn,) = env.wait_inbox(ALICE)
    assert b"multipart/report" in dsn and b"report-type=delivery-status" in dsn
    text = dsn.decode("utf-8", "replace")
    assert REMOTE in text and OTHER in text and "cancelled by the administrator" in text
    assert wait_for(lambda: env.queue.list() == [])
    assert env.sink.messages == []


def test_delete_removes_the_entry_without_a_report(env, deferred):
    result = cli(env, "delete", deferred.id)
    assert (result.exit_code, result.stdout) == (0, f"deleted {deferred.id}\n")
    assert env.queue.list() == []
    assert not list(env.queue.path.glob(f"{deferred.id}.*"))
    assert cli(env, "list").stdout == "queue is empty\n"
    assert env.inbox(ALICE) == [] and env.sink.messages == []


def test_unknown_id_is_a_one_line_error(env):
    for entry_id in ("0000000000000deadbeef00", "../../etc/passwd", "F96A5CBBFEF4"):
        for command in ("show", "dump", "flush", "delete", "bounce", "hold", "release"):
            result = cli(env, command, entry_id)
            assert result.exit_code == 1, (command, entry_id)
            assert result.stderr == f"error: no queue entry {entry_id}\n"
            assert result.stdout == ""


def test_a_keyerror_from_a_bug_is_not_reported_as_an_unknown_entry(tmp_path, write_config, monkeypatch):
    from clevermail.relay.queue import RelayQueue

    def buggy(self, entry_id):
        return {}["no such key"]            # a programming error inside the queue
    path = write_config(tmp_path)
    RelayQueue(tmp_path / "data" / "queue").enqueue("a@example.test", ["b@there.test"], MSG, "0000000000003cc")
    monkeypatch.setattr(RelayQueue, "get", buggy)
    result = CliRunner().invoke(main, ["--config", path, "queue", "show", "0000000000003cc"])
    assert isinstance(result.exception, KeyError)
    assert "no queue entry" not in result.stderr


def test_damaged_envelope_is_reported_and_skipped_by_flush_all(tmp_path, write_config):
    path = write_config(tmp_path)
    queue_dir = tmp_path / "data" / "queue"
    queue_dir.mkdir(parents=True)
    (queue_dir / "0000000000003cc.json").write_text("{not json")
    runner = CliRunner()
    for command in ("show", "flush", "bounce"):
        result = runner.invoke(main, ["--config", path, "queue", command, "0000000000003cc"])
        assert result.exit_code == 1, command
        assert result.stderr.startswith("error: queue entry 0000000000003cc is damaged: ")
    result = runner.invoke(main, ["--config", path, "queue", "flush", "--all"])
    assert (result.exit_code, result.stdout) == (0, "no entries match\n")
    assert runner.invoke(main, ["--config", path, "queue", "delete", "0000000000003cc"]).exit_code == 0
    assert not (queue_dir / "0000000000003cc.json").exists()
