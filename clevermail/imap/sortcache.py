"""The sort keys of messages, read once and kept, also across restarts: what makes a
SORT or THREAD of a folder cheap after the first (RFC 5256 needs header fields of
every message).

`SortCache` lives on the IMAP file handler, shared by every session: per folder
(user, name, UIDVALIDITY) a dict UID -> sort.LazyKeys.  A message's content never
changes under its UID (a Maildir file is never rewritten: a changed message is a new
file, so a new UID), so an entry stays right for as long as the UIDVALIDITY does; a
folder deleted and created again, here or by another process, has another one.  The
entries of expunged UIDs are dropped when a SORT or THREAD of the whole folder sees
them no longer there.  Folders are kept in least-recently-used order, bounded by the
total number of messages held.

Reading a folder the first time (`keys_of_view`) opens each message file with
os.open/os.read up to the end of its header, keeps only the lines of the fields
sort.py needs (sort.field_lines, one regex pass) and reads its Date: field; the other
fields are parsed when a SORT or THREAD first asks for them (sort.LazyKeys).

`memo()` keeps the last few SORT and THREAD results of a folder by the UIDs they were
asked about, so the same request again (another session, the same folder) is a lookup.

Across restarts: MailService.stop save()s the keys to <data_dir>/imap-sort.cache
(cache_file.py) and start load()s them, so the first SORT after a restart reads no
message file.  Every value of the file is checked before it is used: a file or folder
entry that is not what save() writes is ignored (the keys are read again from the
messages), never trusted.
"""

import functools
import gc
import os
import threading
from collections import OrderedDict
from contextlib import contextmanager

from ..store import view_index
from ..store.errors import MessageGone
from . import cache_file
from .sort import LazyKeys, header_fields, keys_of_header  # noqa: F401  (header_fields: tests)

FILE_NAME = "imap-sort.cache"
_FILE_TAG = ("clevermail sort cache", 1)
_FIRST_READ = 8192
_HEADER_LIMIT = 1 << 20      # a header longer than this is read no further


_gc_lock = threading.Lock()
_gc_holders = 0             # threads inside gc_paused()
_gc_was_enabled = False


@contextmanager
def gc_paused():
    """The cyclic GC held back while a SORT or THREAD of a large folder makes 100,000
    objects that all stay (keys) or go at once (thread.py breaks its tree's cycles):
    it would walk the whole heap again and again for nothing (seconds at 100,000
    messages, issue 12).  Reference counting frees garbage meanwhile; nested and
    concurrent holders re-enable it once, when the last one leaves."""
    global _gc_holders, _gc_was_enabled
    with _gc_lock:
        if _gc_holders == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_holders += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0 and _gc_was_enabled:
                gc.enable()


def _header_end(data):
    """The length of the header in `data` (through the LF before the blank line), or
    -1 when `data` holds no blank line yet."""
    end = data.find(b"\n\n")
    end2 = data.find(b"\n\r\n")
    if end2 >= 0 and (end < 0 or end2 < end):
        end = end2
    return end + 1 if end >= 0 else -1


def read_header(f):
    """The header of an open binary message file (LF or CRLF line ends), up to the
    blank line that ends it (or _HEADER_LIMIT)."""
    return _read_head(f.read)


def read_head(path):
    """read_header() of the file at `path`, without a Python file object (a first
    SORT opens 100,000 of them); FileNotFoundError when it is gone."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return _read_head(functools.partial(os.read, fd))
    finally:
        os.close(fd)


def _read_head(read):
    """read(n) more bytes, doubling, until the header's blank line or _HEADER_LIMIT."""
    data = read(_FIRST_READ)
    while True:
        end = _header_end(data)
        if end >= 0:
            return data[:end]
        if len(data) >= _HEADER_LIMIT:
            return data
        more = read(len(data))
        if not more:
            return data
        data += more


class SortCache:
    """UID -> LazyKeys per folder, shared by the sessions (see the module docstring).
    Thread-safe: the keys of missing UIDs are made outside the lock."""

    def __init__(self, max_messages=500_000, max_results=8):
        self.max_messages = max_messages
        self.max_results = max_results      # memo() results kept per folder
        self._folders = OrderedDict()     # (address, name, uidvalidity) -> {uid: LazyKeys}
        self._results = {}                # the same key -> OrderedDict(request -> result)
        self._held = 0
        self._lock = threading.Lock()

    def keys_of_view(self, view, folder, uids):
        """keys() of `uids` of a store FolderView: the message files are opened by
        the paths the view gives for them all at once, and one that moved meanwhile
        (a flag changed) through the view, which looks again.  When `uids` are all of
        the view's messages, the entries of UIDs expunged since are dropped."""
        def read_one(uid):
            with view.open_message(uid) as f:
                return read_header(f)

        def read_many(missing):
            for uid, path in zip(missing, view_index.message_paths(view, missing)):
                head = None
                if path is not None:
                    try:
                        head = read_head(path)
                    except FileNotFoundError:       # moved meanwhile: the view looks again
                        pass
                if head is None:
                    try:
                        head = read_one(uid)
                    except (FileNotFoundError, MessageGone):
                        continue                    # expunged
                yield uid, head
        keys = self._keys(folder, uids, read_many)
        if len(uids) == len(view) and self.held(folder) > len(uids):
            self.forget(folder, set(uids))
        return keys

    def keys(self, folder, uids, read_header):
        """[LazyKeys] for `uids` of `folder` ((address, name, uidvalidity)), in their
        order; `read_header(uid)` gives the header bytes of one not yet known (it may
        raise for a message expunged meanwhile: that UID's entry is None)."""
        def read_many(missing):
            for uid in missing:
                try:
                    yield uid, read_header(uid)
                except (FileNotFoundError, MessageGone, KeyError):
                    pass
        return self._keys(folder, uids, read_many)

    def _keys(self, folder, uids, read_many):
        with self._lock:
            known = self._folders.get(folder)
            if known is None:
                known = self._folders[folder] = {}
            else:
                self._folders.move_to_end(folder)
            missing = [u for u in uids if u not in known]
        made = {}
        if missing:
            with gc_paused():
                made = {uid: keys_of_header(head) for uid, head in read_many(missing)}
        with self._lock:
            if made:
                known = self._folders.setdefault(folder, known)
                before = len(known)
                known.update(made)
                self._held += len(known) - before
                self._trim(folder)
            get = known.get
            return [made.get(u) or get(u) for u in uids] if made else list(map(get, uids))

    def held(self, folder):
        """How many messages' keys are kept for a folder."""
        with self._lock:
            return len(self._folders.get(folder, ()))

    def memo(self, folder, key, compute):
        """compute() once per `key` for a folder: the last few SORT and THREAD results
        (a pure function of the UIDs asked about, whose contents never change), so the
        same request from the next session (a webmail's next page) costs a lookup."""
        with self._lock:
            results = self._results.setdefault(folder, OrderedDict())
            if key in results:
                results.move_to_end(key)
                return results[key]
        with gc_paused():
            value = compute()
        with self._lock:
            results = self._results.setdefault(folder, OrderedDict())
            results[key] = value
            while len(results) > self.max_results:
                results.popitem(last=False)
        return value

    def forget(self, folder, live_uids):
        """Drop the entries of UIDs no longer in `live_uids` (a set)."""
        with self._lock:
            known = self._folders.get(folder)
            if known:
                gone = [u for u in known if u not in live_uids]
                for u in gone:
                    del known[u]
                self._held -= len(gone)

    def _trim(self, keep):
        # oldest folders first; the folder just used stays even alone over the bound
        while self._held > self.max_messages and len(self._folders) > 1:
            name, known = next(iter(self._folders.items()))
            if name == keep:
                self._folders.move_to_end(name)
                continue
            del self._folders[name]
            self._results.pop(name, None)
            self._held -= len(known)

    # -- across restarts ---------------------------------------------------------------
    def save(self, path):
        """Write the keys to `path` (least recently used folder first, as load()
        expects), per folder in columns: UIDs, then each LazyKeys.state() field."""
        with self._lock:
            folders = [(folder, list(known.items())) for folder, known in self._folders.items() if known]
        entries = []
        for folder, items in folders:
            uids = [uid for uid, _ in items]
            columns = tuple(map(list, zip(*(keys.state() for _, keys in items))))
            entries.append((folder, uids) + columns)
        cache_file.write(path, _FILE_TAG, entries)

    def load(self, path):
        """Add what save() wrote at `path` (within max_messages); the number of
        messages loaded.  A folder entry that is not exactly what save() writes is
        skipped whole."""
        entries = cache_file.read(path, _FILE_TAG)
        if not isinstance(entries, list):
            return 0
        loaded = 0
        for entry in entries:
            known = _restore(entry)
            if known is None:
                cache_file.log.warning("-: %s: a damaged folder entry ignored", path)
                continue
            folder = entry[0]
            with self._lock:
                if folder in self._folders or not known:
                    continue
                self._folders[folder] = known
                self._held += len(known)
                loaded += len(known)
                self._trim(folder)
        return loaded


def _restore(entry):
    """{uid: LazyKeys} of one folder entry save() wrote; None when it is not one."""
    if not isinstance(entry, tuple) or len(entry) != 7:
        return None
    folder, uids, dates, raws, subjects, addresses, ids = entry
    if not (isinstance(folder, tuple) and len(folder) == 3 and isinstance(folder[0], str)
            and isinstance(folder[1], str) and isinstance(folder[2], int)):
        return None
    columns = (uids, dates, raws, subjects, addresses, ids)
    if not all(isinstance(c, list) and len(c) == len(uids) for c in columns):
        return None
    known = {}
    for uid, date, raw, subject, address, ident in zip(*columns):
        if not (type(uid) is int and (date is None or type(date) is int)
                and (raw is None or type(raw) is bytes)
                and (subject is None or _is_subject(subject))
                and (address is None or _is_addresses(address))
                and (ident is None or _is_ids(ident))):
            return None
        if raw is None and None in (subject, address, ident):
            return None         # a group neither kept nor makeable
        known[uid] = LazyKeys.restore(date, raw, subject, address, ident)
    return known


def _is_subject(group):
    return (type(group) is tuple and len(group) == 2 and type(group[0]) is str
            and type(group[1]) is bool)


def _is_addresses(group):
    return type(group) is tuple and len(group) == 5 and all(type(v) is str for v in group)


def _is_ids(group):
    return (type(group) is tuple and len(group) == 2 and (group[0] is None or type(group[0]) is str)
            and type(group[1]) is tuple and all(type(v) is str for v in group[1]))
