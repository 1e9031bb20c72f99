"""Log lines as records: the text format of logs.py (`<time> <LEVEL> <logger>:
[<protocol> <session> <peer>] <message>`) and its JSON format (one object a line), in
one shape.  A line that is neither (a traceback's continuation) belongs to the record
before it and is skipped.  Lines are read as UTF-8 with replacement: a log is text
written by the server, but a client's bytes may be in it."""

import json
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


def read_logs(paths):
    """Every record of the files, in file order (a missing file is skipped: a rotated
    name that is not there yet).  Returns (records, [paths read])."""
    out, read = [], []
    for path in paths:
        try:
            f = open(path, encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue
        with f:
            read.append(path)
            for n, line in enumerate(f, 1):
                record = parse_line(line)
                if record is not None:
                    record.source = f"{path}:{n}"
                    record.order = len(out)
                    out.append(record)
    return out, read
