"""Tests for clevermail.logs: credential redaction, the session logger, setup."""

import logging
import os
import sys

import pytest

from clevermail.logs import SessionLogger, redact_command, redact_tokens, setup_logging
from waiting import wait_for


@pytest.mark.parametrize("line, expected", [
    # IMAP
    (b"a1 LOGIN user pass\r\n", "a1 LOGIN ***"),
    (b'a1 login "user" "p w"', "a1 login ***"),
    (b"a1 LOGIN user {6}\r\n", "a1 LOGIN ***"),
    (b"a1 LOGIN {4+}", "a1 LOGIN ***"),
    (b"a1 LOGIN", "a1 LOGIN"),
    (b"a AUTHENTICATE PLAIN xxx", "a AUTHENTICATE PLAIN ***"),
    (b"a AUTHENTICATE PLAIN", "a AUTHENTICATE PLAIN"),
    (b"a2 authenticate xoauth2 dG9rZW4=", "a2 authenticate xoauth2 ***"),
    (b"a1 SELECT INBOX", "a1 SELECT INBOX"),
    (b"a1 LOGINx y", "a1 LOGINx y"),
    # SMTP
    (b"AUTH PLAIN xxx\r\n", "AUTH PLAIN ***"),
    (b"auth plain AGFsaWNlAHB3", "auth plain ***"),
    (b"AUTH LOGIN xxx", "AUTH LOGIN ***"),
    (b"AUTH LOGIN", "AUTH LOGIN"),
    (b"AUTH CRAM-MD5", "AUTH CRAM-MD5"),
    (b"AUTH PLAIN\txxx", "AUTH PLAIN ***"),
    (b"AUTH PLAIN  xxx", "AUTH PLAIN ***"),
    (b"MAIL FROM:<a@b> AUTH=<>", "MAIL FROM:<a@b> AUTH=<>"),
    (b"RCPT TO:<pass@example.test>", "RCPT TO:<pass@example.test>"),
    (b"EHLO client", "EHLO client"),
    # POP3
    (b"PASS secret\r\n", "PASS ***"),
    (b"pass two words", "pass ***"),
    (b"PASS\tsecret", "PASS ***"),
    (b"  PASS secret", "PASS ***"),
    (b"PASS", "PASS"),
    (b"PASSWORD x", "PASSWORD x"),
    (b"APOP mrose c4c9334bac560ecc979e58001b3e22fb", "APOP mrose ***"),
    (b"APOP mrose\tc4c9334bac560ecc979e58001b3e22fb", "APOP mrose ***"),
    (b"USER bob", "USER bob"),
    (b"AUTH PLAIN AGJvYgBzZWNyZXQ=", "AUTH PLAIN ***"),
    # str input and non-ASCII
    ("PASS geheim", "PASS ***"),
    ("APOP jösé digest", "APOP jösé ***"),
    ("a1 LOGIN jösé pässwörd", "a1 LOGIN ***"),
])
def test_redact_command(line, expected):
    assert redact_command(line) == expected


@pytest.mark.parametrize("secret_line", [
    b"a1 LOGIN alice hunter2", b"A1 Login alice hunter2", b"x AUTHENTICATE PLAIN hunter2",
    b"AUTH PLAIN hunter2", b"AUTH LOGIN hunter2", b"PASS hunter2", b"APOP alice hunter2",
    b"AUTH PLAIN\thunter2", b"\tPASS hunter2", b"AUTH XOAUTH2 hunter2",
])
def test_secret_never_survives(secret_line):
    assert "hunter2" not in redact_command(secret_line)


def test_urlauth_tokens_never_survive():
    token = "91354a473744909de610943775f92038"
    url = f"imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=user+fred:internal:{token}"
    assert redact_command(f'a1 URLFETCH "{url}"') == f'a1 URLFETCH "{url[:-len(token)]}***"'
    line = redact_tokens(f'* GENURLAUTH "{url}"')
    assert token not in line and line.endswith(':internal:***"')
    assert redact_tokens("* 1 FETCH (FLAGS ())") == "* 1 FETCH (FLAGS ())"


def test_session_logger_prefix(caplog):
    log = SessionLogger(logging.getLogger("clevermail.testproto"), "smtp", "3f9a2c", "192.0.2.7")
    with caplog.at_level(logging.DEBUG, logger="clevermail.testproto"):
        log.info("connect")
        log.debug("C: %s", "EHLO x")
        log.warning("n=%d", 3)
    assert [r.getMessage() for r in caplog.records] == [
        "[smtp 3f9a2c 192.0.2.7] connect",
        "[smtp 3f9a2c 192.0.2.7] C: EHLO x",
        "[smtp 3f9a2c 192.0.2.7] n=3",
    ]
    assert [r.levelname for r in caplog.records] == ["INFO", "DEBUG", "WARNING"]
    assert all(r.name == "clevermail.testproto" for r in caplog.records)


@pytest.fixture
def restore_clevermail_logger():
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


def test_setup_logging_to_file(tmp_path, restore_clevermail_logger):
    log_file = tmp_path / "logs" / "cm.log"
    root = setup_logging("warning", str(log_file))
    assert root is restore_clevermail_logger
    assert root.level == logging.WARNING
    assert root.propagate is False
    assert len(root.handlers) == 2
    logging.getLogger("clevermail.smtp").info("not shown")
    logging.getLogger("clevermail.smtp").warning("shown %s", 1)
    for h in root.handlers:
        h.flush()
    text = log_file.read_text(encoding="utf-8")
    assert "not shown" not in text
    assert "WARNING clevermail.smtp: shown 1" in text


@pytest.mark.parametrize("journal", ["this stream", "another stream", "unset"])
def test_under_systemd_the_journal_gets_warnings_only_when_a_log_file_has_all(
        tmp_path, restore_clevermail_logger, monkeypatch, journal):
    """JOURNAL_STREAM names the stream systemd connected as stderr: with log_file set,
    each line is in the file and only WARNING and above also in the journal (not each
    line twice); a stderr the unit or a shell redirected elsewhere gets everything."""
    stderr = open(tmp_path / "stderr", "w")
    monkeypatch.setattr(sys, "stderr", stderr)
    st = os.fstat(stderr.fileno())
    if journal == "this stream":
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    elif journal == "another stream":
        other = os.stat(tmp_path)
        monkeypatch.setenv("JOURNAL_STREAM", f"{other.st_dev}:{other.st_ino}")
    else:
        monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    try:
        for log_file in (str(tmp_path / "cm.log"), ""):
            root = setup_logging("INFO", log_file)
            logging.getLogger("clevermail.smtp").info("info %s", bool(log_file))
            logging.getLogger("clevermail.smtp").warning("warning %s", bool(log_file))
            for h in root.handlers:
                h.flush()
    finally:
        setup_logging("INFO", console=False)        # closes the handlers on our stderr
        stderr.close()
    text = (tmp_path / "stderr").read_text()
    assert (tmp_path / "cm.log").read_text().count("clevermail.smtp: ") == 2
    assert ("info True" in text) is (journal != "this stream")
    assert "warning True" in text
    assert "info False" in text and "warning False" in text     # no file: the journal has all


def test_setup_logging_twice_does_not_stack_handlers(restore_clevermail_logger):
    setup_logging("INFO")
    root = setup_logging("DEBUG")
    assert len(root.handlers) == 1
    assert root.level == logging.DEBUG
    assert setup_logging("bogus").level == logging.INFO


def test_log_file_lines_stay_whole_under_concurrent_writers(tmp_path, restore_clevermail_logger, thread_guard):
    """The file handler writes each record with one O_APPEND write and no lock: lines
    from many threads at once must neither interleave nor get lost."""
    import threading
    log_file = tmp_path / "cm.log"
    root = setup_logging("INFO", str(log_file), console=False)
    log = logging.getLogger("clevermail.test")

    def writer(n):
        for i in range(200):
            log.info("writer %02d line %03d %s", n, i, "x" * (n * 7))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for h in root.handlers:
        h.close()
    lines = log_file.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 16 * 200
    seen = set()
    for line in lines:
        head, _, text = line.partition(" INFO clevermail.test: ")
        n, i = int(text.split()[1]), int(text.split()[3])
        assert text == f"writer {n:02d} line {i:03d} {'x' * (n * 7)}"
        assert len(head) == len("2026-01-01T00:00:00.000+00:00")
        seen.add((n, i))
    assert len(seen) == 16 * 200


def test_log_file_is_appended_to_not_truncated(tmp_path, restore_clevermail_logger):
    log_file = tmp_path / "cm.log"
    log_file.write_text("earlier line\n", encoding="utf-8")
    root = setup_logging("INFO", str(log_file), console=False)
    logging.getLogger("clevermail.x").info("caf\u00e9 %d", 1)
    for h in root.handlers:
        h.close()
    assert log_file.read_text(encoding="utf-8").splitlines()[0] == "earlier line"
    assert log_file.read_text(encoding="utf-8").splitlines()[1].endswith("INFO clevermail.x: caf\u00e9 1")


def test_log_time_matches_the_record(restore_clevermail_logger):
    """The formatter caches the date per second: records from different seconds (and
    the milliseconds) must still come out right."""
    import time
    from clevermail.logs import LOG_FORMAT, LogFormatter
    fmt = LogFormatter(LOG_FORMAT)
    for created in (1_700_000_000.25, 1_700_000_000.999, 1_700_000_001.0, 1_600_000_000.5):
        record = logging.LogRecord("clevermail", logging.INFO, __file__, 1, "m", None, None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        local = time.localtime(created)
        zone = time.strftime("%z", local)
        expected = (time.strftime("%Y-%m-%dT%H:%M:%S", local) + f".{int(record.msecs):03d}"
                    + zone[:3] + ":" + zone[3:])
        assert fmt.format(record).startswith(expected + " INFO clevermail: m")


def test_flush_waits_for_every_line_logged_before_it(tmp_path, restore_clevermail_logger):
    log_file = tmp_path / "cm.log"
    root = setup_logging("INFO", str(log_file), console=False)
    for i in range(50):
        logging.getLogger("clevermail.x").info("line %d", i)
    root.handlers[0].flush()
    assert len(log_file.read_text(encoding="utf-8").splitlines()) == 50


def test_a_failing_log_write_never_reaches_the_caller(tmp_path, restore_clevermail_logger, capfd):
    """Logging must not stop mail: a log that cannot be written (disk full, bad fd) is
    reported once on stderr and the logging call itself never raises."""
    import os
    from clevermail.logs import LogWriter
    r, w = os.pipe()
    os.close(r)                            # writes to w now fail with EPIPE
    import signal
    old = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    handler = LogWriter(w, close_fd=True)
    try:
        logger = logging.getLogger("clevermail.broken")
        logger.addHandler(handler)
        logger.propagate = False
        for i in range(3):
            logger.error("lost %d", i)
        handler.flush()
        handler.flush()
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        handler.close()
        signal.signal(signal.SIGPIPE, old)
    assert capfd.readouterr().err.count("clevermail: cannot write the log") == 1


def test_log_writer_works_in_a_forked_child(tmp_path, restore_clevermail_logger):
    import os
    log_file = tmp_path / "cm.log"
    root = setup_logging("INFO", str(log_file), console=False)
    pid = os.fork()
    if pid == 0:                           # the child: its writer thread is a new one
        try:
            logging.getLogger("clevermail.child").info("from the child")
            root.handlers[0].flush()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    logging.getLogger("clevermail.parent").info("from the parent")
    root.handlers[0].flush()
    text = log_file.read_text(encoding="utf-8")
    assert "clevermail.child: from the child" in text
    assert "clevermail.parent: from the parent" in text


def test_a_log_that_cannot_keep_up_drops_lines_and_says_how_many(restore_clevermail_logger, thread_guard):
    """A log on a pipe nobody reads: the writer blocks, lines pile up to a bound, the
    rest are dropped (never blocking or growing the server), and the count is logged
    once the pipe drains."""
    import fcntl
    import os
    import threading
    import time
    from clevermail.logs import LogWriter
    r, w = os.pipe()
    flags = fcntl.fcntl(w, fcntl.F_GETFL)
    fcntl.fcntl(w, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    filled = 0
    try:
        while True:
            filled += os.write(w, b"f" * 4096)
    except BlockingIOError:
        pass
    fcntl.fcntl(w, fcntl.F_SETFL, flags)     # full pipe, blocking again
    handler = LogWriter(w, close_fd=True)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.max_pending = 5
    logger = logging.getLogger("clevermail.slowlog")
    logger.addHandler(handler)
    logger.propagate = False
    chunks = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: os.read(r, 65536), b"")))
    try:
        logger.error("first")
        # the writer took it and is stuck in write()
        assert wait_for(lambda: handler._queue.qsize() == 0, timeout=5, interval=0.005)
        for i in range(20):
            logger.error("line %d", i)
        assert handler._queue.qsize() == 5
        reader.start()
        handler.flush()
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        handler.close()                      # closes w: the reader sees EOF
        reader.join(5)
        os.close(r)
    text = b"".join(chunks)[filled:].decode()
    assert text.splitlines() == ["first"] + [f"line {i}" for i in range(5)] + [
        "clevermail: 15 log lines dropped: the log could not keep up"]


def test_a_session_record_is_what_logging_would_make(monkeypatch):
    """SessionLogger makes its records itself (logs.SessionRecord) while the caller's
    file and the thread and process fields are off, as setup_logging sets them: the
    same attributes with the same values as Logger.makeRecord's, the time aside."""
    from clevermail import logs
    monkeypatch.setattr(logging, "_srcfile", None)
    for flag in ("logThreads", "logProcesses", "logMultiprocessing"):
        monkeypatch.setattr(logging, flag, False)
    assert logs.lean()
    logger = logging.getLogger("clevermail.recordtest")
    made = []
    monkeypatch.setattr(logger, "handle", made.append)
    monkeypatch.setattr(logger, "isEnabledFor", lambda level: True)
    session = SessionLogger(logger, "smtp", "abc1", "192.0.2.1")
    for text, args in (("line", ()), ("line %s %d", ("x", 2)), ("line %(k)s", ({"k": "v"},))):
        made.clear()
        session.info(text, *args)
        [ours] = made
        assert type(ours) is logs.SessionRecord
        theirs = logger.makeRecord(logger.name, logging.INFO, "(unknown file)", 0,
                                   "[smtp abc1 192.0.2.1] " + text,
                                   args, None, "(unknown function)")
        timeless = lambda r: {k: v for k, v in vars(r).items() if k not in ("created", "msecs", "relativeCreated")}
        assert timeless(ours) == {**timeless(theirs), "taskName": None}
        assert ours.getMessage() == theirs.getMessage()
    made.clear()
    session.info("with extra", extra={"queue_id": "Q1"})     # the general path keeps extra
    assert type(made[0]) is not logs.SessionRecord and made[0].queue_id == "Q1"
    monkeypatch.setattr(logging, "logThreads", True)          # a field it leaves out is on
    assert not logs.lean()
