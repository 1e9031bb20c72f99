"""The metadata a FETCH asks for again and again, rendered once and kept: ENVELOPE,
BODY, BODYSTRUCTURE and header sections (BODY[HEADER], BODY[HEADER.FIELDS (...)],
BODY.PEEK forms, of the message or of a part) of each message, so that the clients'
and webmails' listing FETCHes read no message file once every session has seen a
message (issue 18: reading files for these was 42% of an IMAP process's time under
load).

`FetchCache` lives on the IMAP file handler, shared by every session: per message
(user, folder, UIDVALIDITY, UID) a small dict item key -> rendered bytes, filled by
fetch.py's renderers on first use.  A message's content never changes under its UID,
so an entry stays right for as long as the UIDVALIDITY does (a UID is never reused
within one); an expunged message's entry just ages out.  Entries are kept in
least-recently-used order and bounded by the bytes they hold.

The full message and its text (BODY[], BODY[TEXT], RFC822, BINARY) are never kept:
they are large and read once.

Kept across restarts: MailService.stop save()s it to <data_dir>/imap-fetch.cache
(cache_file.py: marshal, written whole and renamed into place, no fsync: it is only
a speed-up), and start load()s it back; a file that is missing, of another version or
damaged is ignored, and so is every entry in it that is not of the shape save() writes.
"""

import threading
from collections import OrderedDict

from . import cache_file

FILE_NAME = "imap-fetch.cache"
_FILE_TAG = ("clevermail fetch cache", 1)

# What one cached value costs beyond its bytes (the key tuple, the dict slot): counted
# so that the bound holds for many tiny values too.
_OVERHEAD = 100


class MessageMemo:
    """The cached items of one message, handed to one render (fetch._Content)."""

    __slots__ = ("_cache", "_key", "_items")

    def __init__(self, cache, key, items):
        self._cache, self._key, self._items = cache, key, items

    def get(self, item):
        return self._items.get(item)

    def put(self, item, value):
        self._cache._put(self._key, self._items, item, value)


class FetchCache:
    """Rendered metadata items per message, shared by the sessions (see the module
    docstring).  Thread-safe."""

    def __init__(self, max_bytes=64 << 20):
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._messages = OrderedDict()      # (folder key, uid) -> {item: bytes}
        self.size = 0                       # bytes held (values and _OVERHEAD each)

    def memo(self, folder_key, uid):
        """The MessageMemo of message `uid` of a folder (folder_key: user, folder name,
        UIDVALIDITY), made most recently used."""
        key = (folder_key, uid)
        with self._lock:
            items = self._messages.get(key)
            if items is None:
                items = self._messages[key] = {}
            else:
                self._messages.move_to_end(key)
        return MessageMemo(self, key, items)

    def _put(self, key, items, item, value):
        with self._lock:
            if item in items:
                return
            items[item] = value
            if key in self._messages:
                self.size += len(value) + _OVERHEAD
            else:           # evicted while it was being rendered: back, with all it holds
                self._messages[key] = items
                self.size += sum(len(v) + _OVERHEAD for v in items.values())
            self._evict()

    def _evict(self):
        """Drop least recently used messages until the bound holds (lock held);
        how many were dropped."""
        dropped = 0
        while self.size > self.max_bytes and len(self._messages) > 1:
            _, old = self._messages.popitem(last=False)
            self.size -= sum(len(v) + _OVERHEAD for v in old.values())
            dropped += 1
        return dropped

    def __len__(self):
        return len(self._messages)

    # -- across restarts ---------------------------------------------------------------
    def save(self, path):
        """Write the cache to `path` (least recently used first, as load() expects)."""
        with self._lock:
            entries = [(key, dict(items)) for key, items in self._messages.items() if items]
        cache_file.write(path, _FILE_TAG, entries)

    def load(self, path):
        """Add what save() wrote at `path` (within max_bytes); the number of messages
        loaded, 0 when the file is missing or not one of ours."""
        entries = cache_file.read(path, _FILE_TAG)
        if not isinstance(entries, list):
            return 0
        loaded = 0
        for entry in entries:
            if not _valid(entry):
                continue
            key, items = entry
            with self._lock:
                if key in self._messages:
                    continue
                self._messages[key] = items
                self.size += sum(len(v) + _OVERHEAD for v in items.values())
                loaded += 1 - self._evict()
        return max(loaded, 0)


def _valid(entry):
    """((folder key, uid), {item: bytes}) as save() writes it."""
    try:
        (folder, uid), items = entry
    except (TypeError, ValueError):
        return False
    return (isinstance(uid, int) and isinstance(folder, tuple) and isinstance(items, dict)
            and all(isinstance(v, bytes) for v in items.values()))
