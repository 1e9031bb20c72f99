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
    fmt = logging.Formatter(LOG_FORMAT)
    handlers = [logging.StreamHandler(sys.stderr)] if console else []
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for h in handlers:
        h.setFormatter(fmt)
        root.addHandler(h)
    root.propagate = False
    return root


class SessionLogger(logging.LoggerAdapter):
    """Prefixes every message with protocol, session id and peer."""

    def __init__(self, logger, protocol, session_id, peer):
        super().__init__(logger, {})
        self.prefix = f"[{protocol} {session_id} {peer}] "

    def process(self, msg, kwargs):
        return self.prefix + str(msg), kwargs
