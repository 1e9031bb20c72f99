"""The sort keys of messages, read once and kept: what makes a repeated SORT or THREAD
of an unchanged folder cheap (RFC 5256 needs header fields of every message).

`SortCache` lives on the IMAP file handler, shared by every session: per folder
(user, name, UIDVALIDITY) a dict UID -> sort.SortKeys.  A message's content never
changes under its UID, so an entry stays right for as long as the UIDVALIDITY does;
an expunged UID's entry is dropped when it is next looked at.  The folders are kept
in least-recently-used order, bounded by the total number of messages held.

`memo()` keeps the last few SORT and THREAD results of a folder by the UIDs they were
asked about, so the same request again (another session, the same folder) is a lookup.

`header_fields()` reads the header fields sort.py needs from the head of a message
file: the file is read only up to the end of its header.
"""

import threading
from collections import OrderedDict

from ..store.errors import MessageGone
from .sort import FIELDS, sort_keys

_WANTED = frozenset(f.encode() for f in FIELDS)
_FIRST_READ = 8192
_HEADER_LIMIT = 1 << 20      # a header longer than this is read no further


def read_header(f):
    """The header of an open binary message file (LF or CRLF line ends), up to the
    blank line that ends it (or _HEADER_LIMIT)."""
    data = f.read(_FIRST_READ)
    while True:
        end = data.find(b"\n\n")
        end2 = data.find(b"\n\r\n")
        if end2 >= 0 and (end < 0 or end2 < end):
            end = end2
        if end >= 0:
            return data[:end + 1]
        if len(data) >= _HEADER_LIMIT:
            return data
        more = f.read(len(data))
        if not more:
            return data
        data += more


def header_fields(header):
    """{lower-case name: unfolded value bytes} of the first occurrence of each of
    sort.FIELDS in a header."""
    out = {}
    name = None         # the field whose continuation lines follow, if it is wanted
    for line in header.split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if name is not None:
                out[name] += line.rstrip(b"\r")
            continue
        name = None
        colon = line.find(b":")
        if colon > 0:
            key = line[:colon].rstrip(b" \t").lower()
            if key in _WANTED:
                key = key.decode("ascii")
                if key not in out:
                    name = key
                    out[key] = line[colon + 1:].rstrip(b"\r")
    for key, value in out.items():
        out[key] = value.strip()
    return out


def keys_of_header(header):
    return sort_keys(header_fields(header))


class SortCache:
    """UID -> SortKeys per folder, shared by the sessions (see the module docstring).
    Thread-safe: the keys of missing UIDs are made outside the lock."""

    def __init__(self, max_messages=500_000, max_results=8):
        self.max_messages = max_messages
        self.max_results = max_results      # memo() results kept per folder
        self._folders = OrderedDict()     # (address, name, uidvalidity) -> {uid: SortKeys}
        self._results = {}                # the same key -> OrderedDict(request -> result)
        self._held = 0
        self._lock = threading.Lock()

    def keys(self, folder, uids, read_header):
        """[SortKeys] for `uids` of `folder` ((address, name, uidvalidity)), in their
        order; `read_header(uid)` gives the header bytes of one not yet known (it may
        raise for a message expunged meanwhile: that UID's entry is None)."""
        with self._lock:
            known = self._folders.get(folder)
            if known is None:
                known = self._folders[folder] = {}
            else:
                self._folders.move_to_end(folder)
            missing = [u for u in uids if u not in known]
        made = {}
        for uid in missing:
            try:
                made[uid] = keys_of_header(read_header(uid))
            except (FileNotFoundError, MessageGone, KeyError):
                made[uid] = None      # expunged meanwhile
        with self._lock:
            if made:
                known = self._folders.setdefault(folder, known)
                before = len(known)
                known.update((u, k) for u, k in made.items() if k is not None)
                self._held += len(known) - before
                self._trim(folder)
            get = known.get
            return [made.get(u) if u in made else get(u) for u in uids]

    def memo(self, folder, key, compute):
        """compute() once per `key` for a folder: the last few SORT and THREAD results
        (a pure function of the UIDs asked about, whose contents never change), so the
        same request from the next session (a webmail's next page) costs a lookup."""
        with self._lock:
            results = self._results.setdefault(folder, OrderedDict())
            if key in results:
                results.move_to_end(key)
                return results[key]
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
