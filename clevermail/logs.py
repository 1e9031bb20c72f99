"""Logging: setup, the per-session logger, and redaction of credentials.

Every line a session writes carries its short session id, protocol and peer
(`[smtp 3f9a2c 127.0.0.1]`).  Connects, authentication results, accepted messages and
disconnects are INFO; the raw dialogue is DEBUG, passed through `redact_command`
first so that AUTH, PASS and LOGIN arguments never reach a log.

Time stamps are ISO 8601 with the zone's offset (2026-12-02T21:05:09.123+01:00).
`[server] log_format = json` writes one JSON object a line instead (JsonFormatter:
time, level, logger, message, and session, protocol, peer and queue_id where the
record has them).  RecentErrors keeps the last WARNING and ERROR records in memory
for `clevermail status`.
"""

import collections
import collections.abc
import json
import logging
import os
import re
import time

from .log_writer import (LogWriter, console_handler, open_log_file, reopen,  # noqa: F401 (logs.reopen)
                         stderr_is_journal)

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
# An IMAP URLAUTH token (RFC 4467 ";urlauth=access:mech:token") is a bearer credential
# wherever it appears: in GENURLAUTH's answer, URLFETCH's arguments and answer, CATENATE.
_URL_TOKEN = re.compile(r"(;urlauth=[^:\s\"]*:[^:\s\"]+:)[0-9A-Fa-f]+", re.IGNORECASE)


def redact_tokens(text):
    """`text` (a command or a reply line) with URLAUTH tokens replaced by ***."""
    return _URL_TOKEN.sub(r"\1***", text) if ";" in text else text


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
    return redact_tokens(line.decode("utf-8", "replace"))


def setup_logging(level="INFO", log_file="", console=True, log_format="text"):
    """Configure the 'clevermail' logger tree for the `start` command (and the
    benchmarks, which log to a file only); log_format 'text' or 'json'.  Lines go to
    stderr and to `log_file` when set; with both, and stderr the systemd journal,
    the journal gets WARNING and above only."""
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
    fmt = make_formatter(log_format)
    handlers = [console_handler()] if console else []
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handlers.append(open_log_file(log_file))
        if console and stderr_is_journal():
            # under systemd the file has every line; the journal only what
            # `systemctl status` should show, not each line twice
            handlers[0].setLevel(logging.WARNING)
    for h in handlers:
        h.setFormatter(fmt)
        root.addHandler(h)
    root.propagate = False
    return root


class LogFormatter(logging.Formatter):
    """logging.Formatter with asctime in ISO 8601 with the zone's offset, its date and
    zone part formatted once a second, not once a record (a session logs about three
    records per message)."""

    def __init__(self, fmt):
        super().__init__(fmt)
        self._second = (None, "", "")
        self._text = fmt == LOG_FORMAT

    def format(self, record):
        # LOG_FORMAT's line in one f-string: logging.Formatter.format goes through
        # usesTime, formatMessage and the style object, which was more than half of a
        # log line's cost (a new SMTP session logs two).  The same text, and the same
        # record attributes set; a record with a traceback or stack takes the long way.
        if self._text and not (record.exc_info or record.exc_text or record.stack_info):
            record.message = record.getMessage()
            record.asctime = self.formatTime(record)
            return f"{record.asctime} {record.levelname} {record.name}: {record.message}"
        return super().format(record)

    def formatTime(self, record, datefmt=None):
        second = int(record.created)
        cached, text, zone = self._second   # one attribute: read together across threads
        if cached != second:
            text, zone = iso_second(second)
            self._second = (second, text, zone)
        return f"{text}.{int(record.msecs):03d}{zone}"


def iso_second(second):
    """('2026-12-02T21:05:09', '+01:00'): a Unix second in local time, ISO 8601."""
    local = time.localtime(second)
    offset = time.strftime("%z", local)             # '+0100'
    return time.strftime("%Y-%m-%dT%H:%M:%S", local), f"{offset[:3]}:{offset[3:]}"


def make_formatter(log_format="text"):
    """The formatter of a [server] log_format: 'text' or 'json'."""
    global _structured
    _structured = log_format == "json"
    return JsonFormatter() if _structured else LogFormatter(LOG_FORMAT)


# True while a JsonFormatter is configured: SessionLogger then puts its session, protocol
# and peer on each record as fields (in text they are already in the message prefix).
_structured = False

# The relay worker's lines start with the queue id ("%s: ..." with it as the first
# argument, "-" for none): the JSON queue_id field of such a record.
_QUEUE_ID_LOGGERS = ("clevermail.relay",)


class JsonFormatter(LogFormatter):
    """One JSON object a line: time, level, logger, message; session, protocol, peer
    and queue_id when the record has them; the traceback as 'exception'.  Messages are
    the same text as in the text format, so redaction is the same."""

    def __init__(self):
        super().__init__("%(message)s")

    def format(self, record):
        message = record.getMessage()
        out = {"time": self.formatTime(record), "level": record.levelname,
               "logger": record.name, "message": message}
        session = getattr(record, "session", None)
        if session is not None:
            out["session"], out["protocol"], out["peer"] = session, record.protocol, record.peer
            prefix = f"[{record.protocol} {session} {record.peer}] "
            if message.startswith(prefix):
                out["message"] = message[len(prefix):]
        queue_id = getattr(record, "queue_id", None)
        if queue_id is None and record.name in _QUEUE_ID_LOGGERS and record.args \
                and isinstance(record.msg, str) and record.msg.startswith("%s: ") \
                and record.args[0] != "-":
            queue_id = record.args[0]
        if queue_id is not None:
            out["queue_id"] = str(queue_id)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


class RecentErrors(logging.Handler):
    """The last `size` WARNING and ERROR records, kept in memory as plain dicts
    (time, level, logger, message; exception class if any) for `clevermail status`."""

    def __init__(self, size=20):
        super().__init__(logging.WARNING)
        self.records = collections.deque(maxlen=size)

    def emit(self, record):
        try:
            text, zone = iso_second(int(record.created))
            item = {"time": f"{text}{zone}", "level": record.levelname, "logger": record.name,
                    "message": record.getMessage()[:1000]}
            if record.exc_info and record.exc_info[0] is not None:
                item["exception"] = record.exc_info[0].__name__
            self.records.append(item)       # deque.append: atomic, no lock needed
        except Exception:
            self.handleError(record)

    def createLock(self):
        self.lock = None                    # emit is atomic: no handler lock

    def recent(self):
        return list(self.records)


class SessionRecord(logging.LogRecord):
    """A session line's LogRecord while the caller's file and line and the thread and
    process fields are off (setup_logging: `lean()`): LogRecord's attributes and values
    without its work for them (half of a record's cost; a new session logs two)."""

    def __init__(self, name, level, msg, args):
        ct = time.time()
        self.name, self.msg, self.levelno, self.levelname = name, msg, level, logging.getLevelName(level)
        if args and len(args) == 1 and isinstance(args[0], collections.abc.Mapping) and args[0]:
            args = args[0]          # as LogRecord: "%(key)s" with a mapping
        self.args = args
        self.pathname = self.filename = self.module = "(unknown file)"
        self.funcName, self.lineno = "(unknown function)", 0
        self.exc_info = self.exc_text = self.stack_info = None
        self.created, self.msecs, self.relativeCreated = ct, int((ct - int(ct)) * 1000) + 0.0, \
            (ct - logging._startTime) * 1000
        self.thread = self.threadName = self.processName = self.process = self.taskName = None


def lean():
    """True when a SessionRecord is what logging would make."""
    return (logging._srcfile is None and not (logging.logThreads or logging.logProcesses or
            logging.logMultiprocessing) and logging.getLogRecordFactory() is logging.LogRecord)


class SessionLogger(logging.LoggerAdapter):
    """Prefixes every message with protocol, session id and peer."""

    def __init__(self, logger, protocol, session_id, peer):
        super().__init__(logger, {})
        self.prefix = f"[{protocol} {session_id} {peer}] "
        self.fields = {"session": session_id, "protocol": protocol, "peer": peer}

    def process(self, msg, kwargs):
        return self.prefix + str(msg), kwargs

    def log(self, level, msg, *args, **kwargs):
        # The shortcut of LoggerAdapter.log -> process -> Logger.log, which checks the
        # level a second time: a session logs about three records per message.
        logger = self.logger
        if logger.isEnabledFor(level):
            if not kwargs and lean():
                record = SessionRecord(logger.name, level, self.prefix + str(msg), args)
                if _structured:
                    record.__dict__.update(self.fields)
                return logger.handle(record)
            if _structured:     # JSON: the session's fields on the record (text: the prefix)
                kwargs["extra"] = {**self.fields, **(kwargs.get("extra") or {})}
            logger._log(level, self.prefix + str(msg), args, **kwargs)
