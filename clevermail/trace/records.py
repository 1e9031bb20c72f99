"""Log lines as records (from the live log file and logrotate's rotated copies,
gzip'd or not, in time order): the text format of logs.py (`<time> <LEVEL> <logger>:
[<protocol> <session> <peer>] <message>`) and its JSON format (one object a line), in
one shape.  A line that is neither (a traceback's continuation) belongs to the record
before it and is skipped.  Lines are read as UTF-8 with replacement: a log is text
written by the server, but a client's bytes may be in it."""

import gzip
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime

_TEXT = re.compile(r"^(?P<time>\d{4}-\d\d-\d\dT\S+) (?P<level>[A-Z]+) (?P<logger>[\w.]+): "
                   r"(?:\[(?P<protocol>\w+) (?P<session>\S+) (?P<peer>[^\]\s]+)\] )?(?P<message>.*)$")
# Relay lines begin with the queue id: "<qid>: to=<...> ..." ('-' for none)
_RELAY_QID = re.compile(r"^(?P<qid>[\w.-]+): ")
_ID_FIELD = re.compile(r"(?:^|\s)id=(?P<qid>[\w.-]+)")


@dataclass
class Record:
    time: datetime
    level: str
    logger: str
    message: str
    session: str = ""
    protocol: str = ""
    peer: str = ""
    queue_id: str = ""
    source: str = ""            # file:line, for the curious
    order: int = 0              # position in the files read, to keep ties in order

    def to_json(self):
        return {"time": self.time.isoformat(timespec="milliseconds"), "level": self.level,
                "logger": self.logger, "session": self.session or None,
                "protocol": self.protocol or None, "peer": self.peer or None,
                "queue_id": self.queue_id or None, "message": self.message}


def parse_line(line):
    """The Record of one log line, or None."""
    line = line.rstrip("\r\n")
    if line.startswith("{"):
        try:
            d = json.loads(line)
            when = datetime.fromisoformat(d["time"])
        except (ValueError, KeyError, TypeError):
            return None
        record = Record(when, d.get("level", ""), d.get("logger", ""), d.get("message", ""),
                        d.get("session") or "", d.get("protocol") or "", d.get("peer") or "",
                        d.get("queue_id") or "")
    else:
        m = _TEXT.match(line)
        if m is None:
            return None
        try:
            when = datetime.fromisoformat(m["time"])
        except ValueError:
            return None
        record = Record(when, m["level"], m["logger"], m["message"], m["session"] or "",
                        m["protocol"] or "", m["peer"] or "")
    if not record.queue_id:
        record.queue_id = queue_id_of(record)
    return record


def queue_id_of(record):
    """The queue id a text line names: a relay line's leading one, or id=."""
    if record.logger.startswith("clevermail.relay"):
        m = _RELAY_QID.match(record.message)
        if m and m["qid"] != "-":
            return m["qid"]
    m = _ID_FIELD.search(record.message)
    return m["qid"] if m else ""


# logrotate's names for an old log: <log>.1, <log>.2.gz, ... (higher is older), or with
# its dateext option <log>-20261203[.gz] (later is newer)
_NUMBERED = re.compile(r"\.(\d+)(?:\.gz)?\Z")
_DATED = re.compile(r"-(\d{8,10})(?:\.gz)?\Z")


def rotated(log_file):
    """The log file and its rotated copies (logrotate's numbered or dateext names,
    plain or gzip'd), oldest first, the live file last."""
    directory, base = os.path.split(log_file)
    try:
        names = os.listdir(directory or ".")
    except OSError:
        names = []
    dated, numbered = [], []
    for name in names:
        if not name.startswith(base) or name == base:
            continue
        rest = name[len(base):]
        if m := _NUMBERED.match(rest):
            numbered.append((-int(m[1]), name))
        elif m := _DATED.match(rest):
            dated.append((m[1], name))
    older = [n for _, n in sorted(dated)] + [n for _, n in sorted(numbered)]
    return [os.path.join(directory, n) for n in older] + [log_file]


def _open(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def read_logs(paths):
    """Every record of the files (plain, or gzip'd when the name ends in .gz), in time
    order: the files may come in any order (rotated ones too), and a stable sort keeps
    lines of the same time in file order.  A missing file is skipped (a rotated name
    that is not there yet).  Returns (records, [paths read])."""
    out, read = [], []
    for path in paths:
        try:
            f = _open(path)
        except FileNotFoundError:
            continue
        with f:
            read.append(path)
            try:
                for n, line in enumerate(f, 1):
                    record = parse_line(line)
                    if record is not None:
                        record.source = f"{path}:{n}"
                        out.append(record)
            except (OSError, EOFError) as exc:
                # a damaged or truncated .gz: said, never silently half-read
                raise LogError(f"{path}: {exc}") from None
    out.sort(key=lambda r: r.time if r.time.tzinfo else r.time.astimezone())
    for i, record in enumerate(out):
        record.order = i
    return out, read


class LogError(Exception):
    """A log file that cannot be read to its end (a damaged .gz)."""
