"""The metadata a FETCH asks for again and again, rendered once and kept: ENVELOPE,
BODY, BODYSTRUCTURE and header sections (BODY[HEADER] and BODY.PEEK[HEADER], of the
message or of a part; a part's BODY[n.HEADER.FIELDS (...)]: the message's own header
fields are made from its kept header each time, header_fields.py) of each message, so
that the clients' and webmails' listing FETCHes read no message file once every session
has seen a message (issue 18: reading files for these was 42% of an IMAP process's time
under load).

`FetchCache` lives on the IMAP file handler, shared by every session: per message
(user, folder, UIDVALIDITY, UID) a small dict item key -> rendered bytes, filled by
fetch.py's renderers on first use.  A message's content never changes under its UID,
so an entry stays right for as long as the UIDVALIDITY does (a UID is never reused
within one); an expunged message's entry just ages out.  Entries are kept in
least-recently-used order and bounded by the bytes they hold.

The full message and its text (BODY[], BODY[TEXT], RFC822, BINARY) are never kept
here (nor in the journal): recently read messages are fetch_content.ContentCache's
(`FetchCache.content`), in this process only and bounded apart.

Shared by the processes of a data dir and kept across restarts: each folder's
fetch_journal.FolderJournal (<folder>/clevermail-fetch-cache).  A FETCH takes the
folder's FolderMemos: at its first miss it reads what other processes (or an earlier
run) appended to the journal since this process last looked, and at its end it appends
in one write what it rendered itself, so a message appended through one worker and
fetched through the other is parsed once and its file read once.
"""

import logging
import os
import threading
from collections import OrderedDict

from .fetch_content import ContentCache
from .fetch_journal import FILE_NAME as FOLDER_JOURNAL
from .fetch_journal import FolderJournal

log = logging.getLogger("clevermail.imap")

# The file of <data_dir> this cache was saved to at stop before the folders' journals
# took its place: read by no one, removed by the first FETCH that caches (forget_legacy)
LEGACY_FILE = "imap-fetch.cache"

# What one cached value costs beyond its bytes (the key tuple, the dict slot): counted
# so that the bound holds for many tiny values too.
_OVERHEAD = 100


class MessageMemo:
    """The cached items of one message in this process, without the folder's journal
    (FetchCache.memo): for a render outside a FETCH command (fetch.render_fetch,
    scripts/bench_mime.py); a FETCH hands its FolderMemos and each message's items.
    `items`: item -> bytes (read it, never write it: put)."""

    __slots__ = ("_cache", "_key", "items")

    def __init__(self, cache, key, items):
        self._cache, self._key, self.items = cache, key, items

    def get(self, item):
        return self.items.get(item)

    def put(self, item, value):
        self._cache._put(self._key, self.items, item, value)

    # what a render asks of a memo (fetch._Content), as of a command's FolderMemos
    def missing(self, uid, items, item):
        """`item`, not in `items` (this memo's): no journal to look at."""
        return None

    def keep(self, uid, items, item, value):
        self.put(item, value)


class FolderMemos:
    """The memos of one folder for one FETCH command, with its journal: read at the
    command's first miss (once), added to at its end (flush)."""

    __slots__ = ("_cache", "_key", "_journal", "_looked", "pending")

    def __init__(self, cache, folder_key, journal):
        self._cache, self._key, self._journal = cache, folder_key, journal
        self._looked = journal is None
        self.pending = {}           # uid -> {item: bytes} rendered by this command (flush)

    def items_of(self, uids):
        """The kept items of each of `uids` (a dict each, to read, never to write:
        keep()), in their order: looked up under one lock, then, if one is not in this
        process, once more after a look at the journal.  A render takes a message's
        dict and this FolderMemos (fetch.fetch_response): no object per message."""
        cache, folder_key = self._cache, self._key
        keys = [(folder_key, uid) for uid in uids]
        found, missing = [], 0
        messages = cache._messages
        get, move = messages.get, messages.move_to_end
        with cache._lock:
            for key in keys:
                items = get(key)
                if items is None:
                    missing += 1
                else:
                    move(key)
                found.append(items)
        if missing:
            if self.look():
                found = [cache._items(key) if items is None else items
                         for key, items in zip(keys, found)]
            found = [cache._add(key) if items is None else items for key, items in zip(keys, found)]
        return found

    def missing(self, uid, items, item):
        """`item` of message `uid`, not in its `items`: what another process rendered
        (the journal, read once per command), else None."""
        return items.get(item) if self.look() else None

    def keep(self, uid, items, item, value):
        """Keep `value` rendered here as `item` of message `uid` (`items`: its dict from
        items_of), for the journal too."""
        if self._cache._put((self._key, uid), items, item, value):
            self.added(uid, item, value)

    def look(self):
        """Take in what the journal gained since this process last read it, once per
        command; whether it was read."""
        if self._looked:
            return False
        self._looked = True
        try:
            self._cache._merge(self._key, self._journal.read_new())
        except OSError as exc:
            log.warning("-: %s not read: %s", self._journal.path, exc)
            return False
        return True

    def added(self, uid, item, value):
        self.pending.setdefault(uid, {})[item] = value

    def flush(self, live_uids):
        """Append what this command rendered (`pending`: nothing to do while it is
        empty) to the journal; `live_uids()`: the UIDs the folder still has (called only
        when the journal is rewritten)."""
        new, self.pending = self.pending, {}
        if new and self._journal is not None:
            try:
                self._journal.append(new, live_uids)
            except OSError as exc:
                log.warning("-: %s not written: %s", self._journal.path, exc)


class FetchCache:
    """Rendered metadata items per message, shared by the sessions (see the module
    docstring).  Thread-safe."""

    def __init__(self, max_bytes=64 << 20, journal_bytes=16 << 20, max_journals=256,
                 content_bytes=32 << 20):
        self.max_bytes = max_bytes
        self.content = ContentCache(content_bytes)     # recently read messages
        self.journal_bytes = journal_bytes
        self.max_journals = max_journals
        self._lock = threading.Lock()
        self._messages = OrderedDict()      # (folder key, uid) -> {item: bytes}
        self.size = 0                       # bytes held (values and _OVERHEAD each)
        self._journals = OrderedDict()      # folder key -> FolderJournal (an open file each)
        self.legacy_gone = False            # forget_legacy() ran

    def forget_legacy(self, data_dir):
        """Remove <data_dir>/imap-fetch.cache, what an earlier version kept this cache in
        (the journals replaced it; nothing reads it, and it stayed for ever): once per
        process, at the first FETCH that caches."""
        self.legacy_gone = True
        path = os.path.join(data_dir, LEGACY_FILE)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("-: %s not removed: %s", path, exc)
            return
        log.info("-: %s removed (FETCH metadata is kept in each folder's %s now)", path,
                 FOLDER_JOURNAL)

    def folder(self, folder_key, path_of):
        """The FolderMemos of a folder (folder_key: user, folder name, UIDVALIDITY) for
        one FETCH; path_of(): its journal's path, asked once per process and folder
        (None: kept in this process only)."""
        with self._lock:
            journal = self._journals.get(folder_key)
            if journal is not None:
                self._journals.move_to_end(folder_key)
        if journal is None:
            path = path_of()
            if path is not None:
                journal = self._journal(folder_key, path)
        return FolderMemos(self, folder_key, journal)

    def _journal(self, folder_key, path):
        made = FolderJournal(path, folder_key[-1], self.journal_bytes)
        with self._lock:
            journal = self._journals.setdefault(folder_key, made)
            old = self._journals.popitem(last=False)[1] \
                if len(self._journals) > self.max_journals else None
        if old is not None:
            old.retire()
        return journal

    def close(self):
        """Close every journal's file (new ones are made when next used)."""
        with self._lock:
            journals, self._journals = list(self._journals.values()), OrderedDict()
        for journal in journals:
            journal.retire()

    def _items(self, key):
        with self._lock:
            items = self._messages.get(key)
            if items is not None:
                self._messages.move_to_end(key)
            return items

    def _add(self, key):
        with self._lock:
            return self._messages.setdefault(key, {})

    def _merge(self, folder_key, records):
        """Add [(uid, {item: bytes})] read from a journal: items this process lacks."""
        with self._lock:
            for uid, items in records:
                key = (folder_key, uid)
                have = self._messages.get(key)
                if have is None:
                    self._messages[key] = items
                    self.size += sum(len(v) + _OVERHEAD for v in items.values())
                    continue
                for item, value in items.items():
                    if item not in have:
                        have[item] = value
                        self.size += len(value) + _OVERHEAD
            self._evict()

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
        """Keep a value rendered here; False when it was there already."""
        with self._lock:
            if item in items:
                return False
            items[item] = value
            if key in self._messages:
                self.size += len(value) + _OVERHEAD
            else:           # evicted while it was being rendered: back, with all it holds
                self._messages[key] = items
                self.size += sum(len(v) + _OVERHEAD for v in items.values())
            self._evict()
        return True

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
