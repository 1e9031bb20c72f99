"""Recently read messages, kept for FETCH's content items (RFC 3501 6.4.5: BODY[],
BODY[TEXT], BODY[part], RFC822, RFC822.TEXT; RFC 3516 BINARY[...]): the message's wire
bytes with their MIME parse (mime.ParsedMessage), so that a message fetched again soon
after (a client reads the parts one by one after the BODYSTRUCTURE, several sessions
open the same new message, imaptest's bench fetches each message in five forms) is
answered with no file opened, read and converted, and no parse made again.

`ContentCache` lives on the shared fetch_cache.FetchCache (one per IMAP file handler,
so per process), keyed by (folder key, UID) as the metadata memos are: a message's
content never changes under its UID within one UIDVALIDITY (Maildir files are never
rewritten; a message that changes is a new file, so a new UID).  Two checks still guard
every use: fetch.py takes a kept message only for one the folder index holds (a message
expunged that the session was not told of yet answers as before, from the file or not
at all), and only when its length is the size the index gives for that UID.

Bounded by bytes, least recently used first: each message counts its bytes and an
estimate of its parse (per part and per header field, counted when the parse is made),
and a message larger than a sixteenth of the bound is never kept (read each time).
A kept ParsedMessage is shared by the sessions' threads: its parse is made lazily and
idempotently (mime.py), so two sessions parsing it at once make the same tree.
"""

import threading
from collections import OrderedDict

__all__ = ["ContentCache"]

# What one kept message costs beyond its bytes: the entry, the ParsedMessage; each part
# (a Part with its lists) and each header field (a list of four, a name) of its parse
_ENTRY = 512
_PART = 400
_FIELD = 300


def parse_cost(pm):
    """Bytes a ParsedMessage holds, estimated: its raw bytes and what its parse made."""
    cost = _ENTRY + len(pm.raw)
    root = pm.parsed_root()
    if root is not None:
        stack = [root]
        while stack:
            part = stack.pop()
            cost += _PART + _FIELD * len(part.fields)
            stack.extend(part.children)
    else:
        top = pm.parsed_top()
        if top is not None:
            cost += _PART + _FIELD * len(top.fields)
    return cost


class ContentCache:
    """ParsedMessage by (folder key, UID), bounded by bytes (see the module docstring).
    Thread-safe."""

    def __init__(self, max_bytes=32 << 20):
        self.max_bytes = max_bytes
        self.max_message = max_bytes // 16
        self._lock = threading.Lock()
        self._entries = OrderedDict()       # key -> [ParsedMessage, cost, parse state]
        self.size = 0

    def get(self, key, size):
        """The kept ParsedMessage of `key` if its length is `size`, made most recently
        used; else None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if len(entry[0].raw) != size:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def keep(self, key, pm):
        """Keep `pm` as the message of `key` (again: counted anew once its parse grew),
        unless it is too large."""
        if len(pm.raw) > self.max_message:
            return
        state = (pm.parsed_root() is not None, pm.parsed_top() is not None)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is pm and entry[2] == state:
            return                  # kept as it is (a read of a dict: no lock needed)
        cost = parse_cost(pm)
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is not None:
                self.size -= entry[1]
            self._entries[key] = [pm, cost, state]
            self.size += cost
            while self.size > self.max_bytes and self._entries:
                self.size -= self._entries.popitem(last=False)[1][1]

    def __len__(self):
        return len(self._entries)
