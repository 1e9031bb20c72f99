"""BODY[HEADER.FIELDS (...)] and BODY[HEADER.FIELDS.NOT (...)] of a message's top-level
header (RFC 3501 6.4.5), made from the header's fields split once.

Clients ask for header fields of one message with lists that vary (webmails; imaptest's
bench names 1-4 of 7 fields, so nearly every FETCH asks for another list): under its load
such answers were 1.7 per IMAP command, each made by splitting the header again (mime.py's
_header, from the BODY[HEADER] the fetch cache keeps) for one pass over its fields.  Here
a header is split once into (lower-case name, the field's lines) pairs, kept per process
(`FieldLines`, keyed by the header's bytes, of which the split is a pure function: the
fetch cache hands the same bytes object each time, whose hash Python keeps), and an
answer is one pass over the pairs, the same bytes mime.section gives (the golden check of
scripts/bench_mime.py compares them over its corpus).
"""

import threading
from collections import OrderedDict

from clevermail.imap import mime

__all__ = ["FieldLines", "field_lines", "select"]

# what a kept header costs beyond its lines: the entry, and a pair per field
_ENTRY = 200
_PAIR = 120


def field_lines(header):
    """The fields of a top-level header (its bytes, from the message's start up to and
    with the blank line, as BODY[HEADER] gives them) as (lower-case name, the field's
    lines ending in CRLF) in their order."""
    pm = mime.parse(header, repair=False)
    out = []
    for name, start, _, end in pm.top().fields:
        line = header[start:end]
        out.append((name, line if line.endswith(b"\n") else line + b"\r\n"))
    return tuple(out)


def select(lines, names, keep=True):
    """The HEADER.FIELDS answer (HEADER.FIELDS.NOT with keep=False) for `names`, a set of
    lower-case field names, from field_lines(): the fields in the header's order, then
    the blank line."""
    if keep:
        out = [line for name, line in lines if name in names]
    else:
        out = [line for name, line in lines if name not in names]
    out.append(b"\r\n")
    return b"".join(out)


class FieldLines:
    """field_lines() of recently used headers, least recently used first out, bounded by
    the bytes they hold (a header larger than a sixteenth of the bound is split each
    time, never kept).  Thread-safe."""

    def __init__(self, max_bytes=4 << 20):
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries = OrderedDict()       # header bytes -> (lines, cost)
        self.size = 0

    def get(self, header):
        entries = self._entries
        # a hit takes no lock: each OrderedDict call is one step under the GIL (a bytes
        # key hashes and compares in C), and an entry evicted between the two is gone
        entry = entries.get(header)
        if entry is not None:
            try:
                entries.move_to_end(header)
            except KeyError:
                pass
            return entry[0]
        lines = field_lines(header)
        cost = 2 * len(header) + _ENTRY + _PAIR * len(lines)    # the key and the lines
        if cost > self.max_bytes >> 4:
            return lines
        with self._lock:
            if header not in self._entries:
                self._entries[header] = (lines, cost)
                self.size += cost
                while self.size > self.max_bytes:
                    self.size -= self._entries.popitem(last=False)[1][1]
        return lines

    def __len__(self):
        return len(self._entries)
