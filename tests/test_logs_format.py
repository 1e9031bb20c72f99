"""Tests for the log formats of clevermail.logs (ISO 8601 times with the zone, the
JSON lines of `[server] log_format = json`, RecentErrors) and for the SMTP accept
line (every local recipient, the Message-ID, queue id, size, sender), end to end
through a real MailService logging to a file."""

import base64
import datetime
import json
import logging
import smtplib
import sys

import pytest

from clevermail import logs
from clevermail.logs import JsonFormatter, RecentErrors, SessionLogger, setup_logging
from clevermail.service import MailService
from clevermail.smtp.message import message_id, recipients_text
from clevermail.smtp.handler import Recipient

import fakes
from relay_sink import FakeResolver, Sink, mx_zone
from waiting import wait_for


@pytest.fixture
def clevermail_logger(monkeypatch):
    """The 'clevermail' logger and the JSON switch put back as they were."""
    monkeypatch.setattr(logs, "_structured", False)
    root = logging.getLogger("clevermail")
    saved = (root.level, list(root.handlers), root.propagate)
    yield root
    for h in list(root.handlers):
        root.removeHandler(h)
        if h not in saved[1]:
            h.close()
    root.setLevel(saved[0])
    for h in saved[1]:
        root.addHandler(h)
    root.propagate = saved[2]


def read_lines(root, path):
    for h in root.handlers:
        h.flush()
    return path.read_text(encoding="utf-8").splitlines()


def record(name, msg, args=(), level=logging.INFO, **attrs):
    r = logging.LogRecord(name, level, __file__, 1, msg, args, None)
    r.__dict__.update(attrs)
    return r


# -- pure -------------------------------------------------------------------------------------
def test_json_line_has_time_level_logger_message_and_fields():
    out = json.loads(JsonFormatter().format(record(
        "clevermail.smtp", "[smtp 3f9a2c 192.0.2.7] accepted id=%s", ("Q1",),
        session="3f9a2c", protocol="smtp", peer="192.0.2.7", queue_id="Q1")))
    assert out["level"] == "INFO" and out["logger"] == "clevermail.smtp"
    assert out["message"] == "accepted id=Q1"          # the prefix is in the fields instead
    assert (out["session"], out["protocol"], out["peer"], out["queue_id"]) == ("3f9a2c", "smtp", "192.0.2.7", "Q1")
    assert datetime.datetime.fromisoformat(out["time"]).utcoffset() is not None


def test_json_relay_lines_carry_their_queue_id():
    fmt = JsonFormatter()
    assert json.loads(fmt.format(record("clevermail.relay", "%s: to=<%s>", ("Q7", "a@b"))))["queue_id"] == "Q7"
    assert "queue_id" not in json.loads(fmt.format(record("clevermail.relay", "%s: pass failed", ("-",))))
    assert "queue_id" not in json.loads(fmt.format(record("clevermail.smtp", "%s: x", ("Q8",))))


def test_json_line_carries_the_traceback():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys
        r = logging.LogRecord("clevermail.x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    out = json.loads(JsonFormatter().format(r))
    assert out["message"] == "failed" and "ValueError: boom" in out["exception"]
    assert "\n" not in JsonFormatter().format(r)        # one line, whatever the message


def test_text_time_is_iso_8601_with_the_offset():
    line = logs.LogFormatter(logs.LOG_FORMAT).format(record("clevermail.x", "m"))
    stamp = line.split(" ", 1)[0]
    assert "T" in stamp and datetime.datetime.fromisoformat(stamp).utcoffset() is not None


def test_text_line_is_what_logging_formatter_makes_of_the_format():
    """LogFormatter builds LOG_FORMAT's line itself (the hot path): the same text as
    logging.Formatter with the same time, traceback or not."""
    ours = logs.LogFormatter(logs.LOG_FORMAT)

    class Reference(logging.Formatter):
        formatTime = ours.formatTime

    reference = Reference(logs.LOG_FORMAT)
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    cases = [record("clevermail.smtp", "[smtp 1a 127.0.0.1] connect"),
             record("clevermail.smtp", "accepted id=%s size=%d", ("Q1", 42), level=logging.WARNING),
             record("clevermail.relay", "%s: 100%% done", ("-",)),
             record("clevermail.x", "failed", exc_info=exc_info),
             record("clevermail.x", "with stack", stack_info="Stack (most recent call last):\n  here")]
    for r in cases:
        expected = reference.format(logging.makeLogRecord(r.__dict__))
        assert ours.format(r) == expected
        assert r.message == r.getMessage() and r.asctime == expected.split(" ", 1)[0]
    assert "Traceback" in ours.format(cases[3]) and "ValueError: boom" in ours.format(cases[3])
    assert ours.format(cases[1]).split(" ", 1)[1] == "WARNING clevermail.smtp: accepted id=Q1 size=42"


def test_recent_errors_keeps_the_last_warnings_and_errors(clevermail_logger):
    recent = RecentErrors(size=3)
    log = logging.getLogger("clevermail.test-recent")
    log.addHandler(recent)
    try:
        log.info("not kept")
        for i in range(5):
            log.warning("warning %d", i)
        try:
            raise OSError("disk")
        except OSError:
            log.exception("store failed")
    finally:
        log.removeHandler(recent)
    got = recent.recent()
    assert [r["message"] for r in got] == ["warning 3", "warning 4", "store failed"]
    assert got[-1]["level"] == "ERROR" and got[-1]["exception"] == "OSError"
    assert got[-1]["logger"] == "clevermail.test-recent"
    assert datetime.datetime.fromisoformat(got[-1]["time"]).utcoffset() is not None


@pytest.mark.parametrize("data, expected", [
    (b"Subject: x\r\nMessage-ID: <a@b>\r\n\r\nbody", "<a@b>"),
    (b"message-id:\r\n <folded@b>\r\n\r\n", "<folded@b>"),
    (b"Subject: x\r\n\r\nMessage-ID: <in-the-body@b>\r\n", "-"),
    (b"Subject: x\r\n\r\n", "-"),
    (b"Message-ID: <a\x01\x1bb>\r\n\r\n", "<a??b>"),
    (b"Message-ID: <" + b"x" * 500 + b">\r\n\r\n", "<" + "x" * 199),
])
def test_message_id_for_the_log(data, expected):
    assert message_id(data) == expected


def test_recipients_text_names_each_local_account_once_and_each_relay_address():
    rcpts = [Recipient("alice+x@example.test", ["alice@example.test"]),
             Recipient("Alice@example.test", ["alice@example.test"]),
             Recipient("team@example.test", ["bob@example.test", "alice@example.test"]),
             Recipient("carol@there.test"),
             Recipient("fwd@example.test", external=["dave@else.test"], forwarded=True)]
    assert recipients_text(rcpts) == ("local=<alice@example.test>,<bob@example.test> "
                                      "relay=<carol@there.test> forward=<dave@else.test>")


def test_session_logger_puts_its_fields_on_records_only_for_json(clevermail_logger, caplog):
    log = SessionLogger(logging.getLogger("clevermail.testproto"), "imap", "ab12", "192.0.2.9")
    with caplog.at_level(logging.INFO, logger="clevermail.testproto"):
        log.info("text")
        logs.make_formatter("json")
        log.info("json", extra={"queue_id": "Q2"})
    text, structured = caplog.records
    assert not hasattr(text, "session")
    assert (structured.session, structured.protocol, structured.peer, structured.queue_id) == (
        "ab12", "imap", "192.0.2.9", "Q2")


# -- end to end ------------------------------------------------------------------------------------
@pytest.mark.e2e
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_smtp_accept_line_in_both_formats(tmp_path, make_config, thread_guard, clevermail_logger, log_format):
    fakes.make_accounts(tmp_path / "users.ini", users=(fakes.ALICE, fakes.BOB))
    log_file = tmp_path / "cm.log"
    root = setup_logging("DEBUG", str(log_file), console=False, log_format=log_format)
    with Sink() as sink:
        conf = make_config(tmp_path, server={"domains": [fakes.DOMAIN]}, relay={"mx_port": sink.port})
        with MailService(conf, resolver=FakeResolver(mx_zone(["there.test"]))) as service:
            with smtplib.SMTP("127.0.0.1", service.port("smtp"), timeout=10) as s:
                s.ehlo("client.example.test")
                s.user, s.password = fakes.ALICE, fakes.PASSWORD
                s.auth("PLAIN", s.auth_plain)
                s.sendmail(fakes.ALICE, [fakes.ALICE, fakes.BOB, "carol@there.test"],
                           b"Subject: hi\r\nMessage-ID: <m-42@client.example.test>\r\n\r\nhello\r\n")
            assert wait_for(lambda: sink.messages)
    lines = read_lines(root, log_file)
    text = "\n".join(lines)
    assert fakes.PASSWORD not in text
    sasl = base64.b64encode(f"\0{fakes.ALICE}\0{fakes.PASSWORD}".encode()).decode()
    assert sasl not in text                             # the SASL response, redacted
    accepted = [line for line in lines if "accepted id=" in line]
    assert len(accepted) == 1
    line = accepted[0]
    for part in (f"local=<{fakes.ALICE}>,<{fakes.BOB}>", "relay=<carol@there.test>",
                 "message-id=<m-42@client.example.test>", f"from=<{fakes.ALICE}>",
                 "helo=client.example.test"):
        assert part in line
    if log_format == "text":
        stamp = line.split(" ", 1)[0]
        assert "[smtp " in line and " 127.0.0.1] accepted id=" in line
    else:
        assert all(json.loads(raw) for raw in lines)    # every line is one object
        obj = json.loads(line)
        stamp = obj["time"]
        assert obj["protocol"] == "smtp" and obj["peer"] == "127.0.0.1" and obj["session"]
        assert obj["message"].startswith(f"accepted id={obj['queue_id']} ")
        assert f"size=" in obj["message"]
        # the session's other lines carry the same session id
        same = [json.loads(raw) for raw in lines if json.loads(raw).get("session") == obj["session"]]
        assert any(o["message"] == "connect" for o in same)
        assert any(o["message"].startswith("C: AUTH PLAIN ***") for o in same)
        relayed = [json.loads(raw) for raw in lines if "to=<carol@there.test>" in raw]
        assert relayed and relayed[0]["queue_id"] == obj["queue_id"]
    assert datetime.datetime.fromisoformat(stamp).utcoffset() is not None
