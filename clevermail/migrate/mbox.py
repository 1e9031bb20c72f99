"""Reading mbox files (the import side).

Format (RFC 4155, and the mboxo/mboxrd variants of qmail's mbox(5)):
- A message starts at a "From_" line, "From <sender> <asctime date>[ zone]", at the
  start of the file or after an empty line; a later "From " line counts only when its
  date parses too (as mutt's is_from() decides), so a stray "From " in a body that
  nobody quoted stays body text.  The empty line before the next From_ line is the
  separator, not message text.
- Quoting: mboxrd writes a body line ">*From " with one more ">", mboxo (Python's
  mailbox module, mutt, Dovecot) writes "From " as ">From ".  Reading removes one
  ">" from every ">+From " line: exact for mboxrd and for the "From " lines mboxo
  quoted; an mboxo body line that really began ">From " loses its ">" (mboxo cannot
  tell the two apart).
- The internal date is the From_ line's date (UTC when it names no numeric zone, as
  Python's mailbox writes it); without one, the Date: header; without that, the
  file's mtime, so a second import finds the same date.
- Flags as mutt and Dovecot write them: Status: R \\Seen (O only means "not new"),
  r \\Answered (mutt); X-Status: A \\Answered, F \\Flagged, T \\Draft, D \\Deleted;
  X-Keywords: keyword names separated by spaces or commas (Dovecot).
- Headers removed, as Dovecot hides them (they describe the mbox, not the message):
  Status, X-Status, X-Keywords, X-UID, X-IMAPbase, X-IMAP, Content-Length.  The
  pseudo message UW-IMAP and Dovecot keep first ("DON'T DELETE THIS MESSAGE",
  a first message with an X-IMAP header) is skipped.
"""

import calendar
import email.utils
import os
import re
from dataclasses import dataclass

from .message import Damaged, Incoming, checked

_MONTHS = {m: i for i, m in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1)}
_DATE = re.compile(
    rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),? +(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(\d{1,2})"
    rb" +(\d{1,2}):(\d\d)(?::(\d\d))?(?: +([A-Za-z]{1,5}|[+-]\d{4}))? +(\d{4})(?: +([+-]\d{4}))?\s*\Z")
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)
HIDDEN = ("status", "x-status", "x-keywords", "x-uid", "x-imapbase", "x-imap", "content-length")
STATUS_FLAGS = {"R": "\\Seen", "r": "\\Answered"}
X_STATUS_FLAGS = {"A": "\\Answered", "F": "\\Flagged", "T": "\\Draft", "D": "\\Deleted"}


class NotMbox(Exception):
    """The file is not an mbox (it does not start with a From_ line)."""


class PseudoMessage(Exception):
    """The folder's internal-data message (UW-IMAP, Dovecot): not mail, not imported."""


def from_line_date(line):
    """Epoch seconds of a From_ line's date, or None when it has none that parses."""
    m = _DATE.search(line.rstrip(b"\r\n"))
    if not m:
        return None
    month, day, hour, minute, second, zone1, year, zone2 = m.groups()
    try:
        stamp = calendar.timegm((int(year), _MONTHS[month.decode()], int(day), int(hour), int(minute),
                                 int(second or 0), 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    for zone in (zone1, zone2):
        if zone and zone[:1] in (b"+", b"-"):
            offset = int(zone[1:3]) * 3600 + int(zone[3:5]) * 60
            stamp -= offset if zone[:1] == b"+" else -offset
    return stamp


@dataclass
class MboxMessage:
    """One message of an mbox: where it is and its From_ date; load() reads it."""

    path: str
    number: int
    start: int
    end: int
    date: int

    @property
    def origin(self):
        return f"{self.path} message {self.number}"

    def load(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.start)
                raw = f.read(self.end - self.start)
        except OSError as exc:
            raise Damaged(f"cannot read: {exc.strerror or exc}") from None
        raw = raw.replace(b"\r\n", b"\n")
        if raw.endswith(b"\n\n"):
            raw = raw[:-1]          # the separator line before the next From_
        head, sep, body = raw.partition(b"\n\n")
        lines, flags, internal = _strip_headers(head + (b"\n" if sep else b""))
        if internal and self.number == 1:      # the pseudo message is always the first
            raise PseudoMessage()
        raw = lines + sep[1:] + _QUOTED_FROM.sub(rb"\1", body) if sep else lines
        date = self.date
        if date is None:
            date = _header_date(raw)
        if date is None:
            date = int(os.stat(self.path).st_mtime)
        return Incoming(checked(raw), tuple(dict.fromkeys(flags)), date)


def _strip_headers(head):
    """(header block without the mbox headers, flag names, is the pseudo message)."""
    kept, flags, internal = [], [], False
    dropping = False
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):       # a continuation of the field before
            if not dropping:
                kept.append(line)
            continue
        name, colon, value = line.partition(b":")
        lname = name.strip().lower().decode("latin-1")
        dropping = bool(colon) and lname in HIDDEN
        if not dropping:
            kept.append(line)
            continue
        text = value.decode("latin-1").strip()
        if lname == "status":
            flags += [STATUS_FLAGS[c] for c in text if c in STATUS_FLAGS]
        elif lname == "x-status":
            flags += [X_STATUS_FLAGS[c] for c in text if c in X_STATUS_FLAGS]
        elif lname == "x-keywords":
            flags += [k for k in re.split(r"[\s,]+", text) if k]
        elif lname == "x-imap":
            internal = True
    return b"".join(kept), flags, internal


def _header_date(raw):
    head = raw.split(b"\n\n", 1)[0]
    m = re.search(rb"^Date:[ \t]*(.*(?:\n[ \t].*)*)", head, re.MULTILINE | re.IGNORECASE)
    if not m:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(m.group(1).decode("latin-1").replace("\n", " "))
        return int(parsed.timestamp())
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


def is_mbox(path):
    try:
        with open(path, "rb") as f:
            return f.read(5) == b"From "
    except OSError:
        return False


def read_mbox(path):
    """The messages of an mbox file, in file order (NotMbox when it is not one)."""
    found = []
    with open(path, "rb") as f:
        offset = 0
        previous_blank = True
        start = date = None
        for line in f:
            if line.startswith(b"From ") and previous_blank:
                line_date = from_line_date(line)
                if offset == 0 or line_date is not None:
                    if start is not None:
                        found.append((start, offset, date))
                    start, date = offset + len(line), line_date
            elif offset == 0:
                raise NotMbox(f"{path}: not an mbox file (it does not start with a From_ line)")
            previous_blank = line in (b"\n", b"\r\n")
            offset += len(line)
        if start is None:
            raise NotMbox(f"{path}: not an mbox file (it is empty)")
        found.append((start, offset, date))
    return [MboxMessage(path, n, s, e, d) for n, (s, e, d) in enumerate(found, 1)]
