"""Logging: setup, the per-session logger, and redaction of credentials.

Every line a session writes carries its short session id, protocol and peer
(`[smtp 3f9a2c 127.0.0.1]`).  Connects, authentication results, accepted messages and
disconnects are INFO; the raw dialogue is DEBUG, passed through `redact_command`
first so that AUTH, PASS and LOGIN arguments never reach a log.
"""

import logging
import os
import re
import sys
import time

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Commands whose arguments are secrets, per protocol verb position:
# SMTP "AUTH PLAIN <b64>", POP3 "PASS x" / "AUTH PLAIN <b64>", IMAP "tag LOGIN u p" /
# "tag AUTHENTICATE PLAIN <b64>".  A bare base64 line (SASL continuation) is redacted
# by the session, which knows it is inside an AUTH exchange.
# Tabs count as spaces: a lenient parser that splits on any whitespace must not turn
# "AUTH PLAIN<TAB>secret" into one kept word.
_SECRET = re.compile(rb"^(?P<keep>(?:[^ \t]+[ \t]+)?(?:AUTH|AUTHENTICATE|PASS|LOGIN|APOP)\b[ \t]*(?:[^ \t]+)?)(?P<rest>.*)$",
                     re.IGNORECASE | re.DOTALL)
_LOGIN = re.compile(rb"^(?P<keep>[^ \t]+[ \t]+LOGIN\b[ \t]*)(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
_PASS = re.compile(rb"^(?P<keep>PASS\b[ \t]*)(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)


def redact_command(line):
    """A command line fit for the log: credentials replaced by ***."""
    if isinstance(line, str):
        line = line.encode("utf-8", "replace")
    # leading blanks stripped too: "  PASS x" must not slip past the anchored patterns
    line = line.rstrip(b"\r\n").lstrip(b" \t")
    for pattern in (_PASS, _LOGIN, _SECRET):
        m = pattern.match(line)
        if m:
            rest = m.group("rest").strip()
            return (m.group("keep").rstrip() + (b" ***" if rest else b"")).decode("utf-8", "replace")
    return line.decode("utf-8", "replace")


def setup_logging(level="INFO", log_file="", console=True):
    """Configure the 'clevermail' logger tree for the `start` command (and the
    benchmarks, which log to a file only)."""
    # Records never print thread or process fields: skip collecting them (hot path).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    # ...nor the caller's file and line: finding them walks the stack on every record
    # (the logging HOWTO's "Optimization" section documents this switch).
    logging._srcfile = None
    root = logging.getLogger("clevermail")
    root.setLevel(getattr(logging, str(level).upper(), logging.INFO))
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    fmt = LogFormatter(LOG_FORMAT)
    handlers = [logging.StreamHandler(sys.stderr)] if console else []
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handlers.append(AppendFileHandler(log_file))
    for h in handlers:
        h.setFormatter(fmt)
        root.addHandler(h)
    root.propagate = False
    return root


class LogFormatter(logging.Formatter):
    """logging.Formatter with the date part of asctime formatted once a second, not
    once a record (a session logs about three records per message)."""

    def __init__(self, fmt):
        super().__init__(fmt)
        self._second = (None, "")

    def formatTime(self, record, datefmt=None):
        second = int(record.created)
        cached, text = self._second        # one attribute: read together across threads
        if cached != second:
            text = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
            self._second = (second, text)
        return f"{text},{int(record.msecs):03d}"


class AppendFileHandler(logging.Handler):
    """A log file written with one os.write per record on an O_APPEND descriptor.

    logging.FileHandler holds the handler lock across its write and flush, so under
    load every session thread that logs queues behind the one inside the kernel.  Here
    there is no lock: the kernel keeps each append whole and in order (O_APPEND), and
    there is no user-space buffer to flush or to lose."""

    def __init__(self, path):
        super().__init__()
        self.path = os.path.abspath(path)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def createLock(self):
        self.lock = None                   # acquire()/release() become no-ops

    def emit(self, record):
        try:
            data = (self.format(record) + "\n").encode("utf-8", "replace")
            while data:
                data = data[os.write(self.fd, data):]
        except Exception:
            self.handleError(record)

    def close(self):
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)
        super().close()


class SessionLogger(logging.LoggerAdapter):
    """Prefixes every message with protocol, session id and peer."""

    def __init__(self, logger, protocol, session_id, peer):
        super().__init__(logger, {})
        self.prefix = f"[{protocol} {session_id} {peer}] "

    def process(self, msg, kwargs):
        return self.prefix + str(msg), kwargs
