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
- Thunderbird's: X-Mozilla-Status, a hex bit set: 0x1 \\Seen, 0x2 \\Answered,
  0x4 \\Flagged, 0x8 \\Deleted (deleted but not yet compacted away: kept, marked),
  0x1000 $Forwarded; X-Mozilla-Keys: keyword names separated by spaces.
- Headers removed, as Dovecot hides them (they describe the mbox, not the message):
  Status, X-Status, X-Keywords, X-UID, X-IMAPbase, X-IMAP, Content-Length, and
  Thunderbird's X-Mozilla-Status, X-Mozilla-Status2, X-Mozilla-Keys.  The pseudo
  message UW-IMAP and Dovecot keep first ("DON'T DELETE THIS MESSAGE", a first
  message with an X-IMAP header) is skipped.
- A directory of mbox files (mutt's ~/Mail, a Thunderbird profile's Mail/<account>)
  is a tree of folders: each mbox file one folder named by its path below the
  directory, Thunderbird's "Name.sbd" sub-directories holding the children of
  "Name".  Files that are not mbox files (indexes like *.msf, filter rules) are
  listed as ignored; an empty file is an empty folder.
"""

import calendar
import email.utils
import os
import re
from dataclasses import dataclass

from ..store import paths
from ..store.errors import InvalidName
from .message import Damaged, Incoming, SourceFolder, checked

_MONTHS = {m: i for i, m in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1)}
_DATE = re.compile(
    rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),? +(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(\d{1,2})"
    rb" +(\d{1,2}):(\d\d)(?::(\d\d))?(?: +([A-Za-z]{1,5}|[+-]\d{4}))? +(\d{4})(?: +([+-]\d{4}))?\s*\Z")
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)
HIDDEN = ("status", "x-status", "x-keywords", "x-uid", "x-imapbase", "x-imap", "content-length",
          "x-mozilla-status", "x-mozilla-status2", "x-mozilla-keys")
STATUS_FLAGS = {"R": "\\Seen", "r": "\\Answered"}
X_STATUS_FLAGS = {"A": "\\Answered", "F": "\\Flagged", "T": "\\Draft", "D": "\\Deleted"}
MOZILLA_FLAGS = {0x1: "\\Seen", 0x2: "\\Answered", 0x4: "\\Flagged", 0x8: "\\Deleted", 0x1000: "$Forwarded"}


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
        elif lname == "x-mozilla-status":
            try:
                bits = int(text, 16)
            except ValueError:
                bits = 0
            flags += [name for bit, name in MOZILLA_FLAGS.items() if bits & bit]
        elif lname == "x-mozilla-keys":
            flags += text.split()
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


IGNORED_SUFFIXES = (".msf", ".lock", ".dat", ".json", ".sqlite", ".html")


def read_mbox_dir(root, target="INBOX"):
    """(folders, problems, ignored) of a directory of mbox files: SourceFolders named
    by their paths below `root` (below `target` when that is not INBOX), (place,
    reason) for files that cannot be folders, and the paths of files that are not
    mbox files at all."""
    folders, problems, ignored = [], [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = os.path.relpath(dirpath, root)
        levels = [] if rel == "." else [d[:-4] if d.endswith(".sbd") else d for d in rel.split(os.sep)]
        for filename in sorted(filenames):
            path = os.path.join(dirpath, filename)
            if filename.startswith(".") or filename.endswith(IGNORED_SUFFIXES):
                ignored.append(path)
                continue
            name_levels = levels + [filename]
            if target.upper() != "INBOX":
                name_levels = target.split(paths.SEPARATOR) + name_levels
            try:
                name = _folder_name(name_levels)
                empty = os.path.getsize(path) == 0
                if not empty and not is_mbox(path):
                    ignored.append(path)
                    continue
                folders.append(SourceFolder(name, [] if empty else read_mbox(path)))
            except InvalidName as exc:
                problems.append((path, f"folder not imported: {exc}"))
            except (OSError, NotMbox) as exc:
                problems.append((path, f"not imported: {getattr(exc, 'strerror', None) or exc}"))
    return folders, problems, ignored


def _folder_name(levels):
    if levels[0].upper() == "INBOX":
        levels = ["INBOX", *levels[1:]]
    name = paths.SEPARATOR.join(levels)
    paths.split_folder(name)        # InvalidName when CleverMail cannot hold it
    return name
