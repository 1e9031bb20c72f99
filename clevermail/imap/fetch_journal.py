"""The per-folder file through which the FETCH metadata cache (fetch_cache.py) is shared
by every process serving a data dir ([server] workers = N, instances on one data dir)
and kept across restarts: <folder>/clevermail-fetch-cache, an append-only journal (as
Dovecot's dovecot.index.cache is beside its index).  Issue 18: with workers = 2 each
process parsed every fresh message (and read its file) for itself.

A record is b"CMF1", the payload's length and its CRC-32 (4 bytes each, little-endian),
then the payload: marshal of (UIDVALIDITY, UID, {item: bytes}) (fetch_cache.py's item
keys).  A process appends the records one FETCH made in one write() to a descriptor
opened with O_APPEND: the kernel serialises appends to a file, so the records of two
processes never interleave.  A reader reads from where it stopped to the end and takes
each whole record whose checksum and shape hold; it stops before a record not yet whole
(a write in progress) and steps over a damaged one to the next b"CMF1" (a writer that
died mid-record: what others append later starts after it).  marshal reads only plain
values, and every value is checked before it is used: nothing in the file is trusted.

Bounded: once a write takes the file past `max_bytes`, that process rewrites it with
the newest records of the folder's live messages (half the bound) under a new name and
renames it into place, holding a non-blocking flock of the old file so that two never
rewrite it at once; a damaged file is rewritten the same way at the next write.  A
process still reading the old file sees another inode at its next look and reads the
new one from its start; what a process appended to the old one meanwhile is lost, and
rendered again when asked (it is only a speed-up).  No fsync, for the same reason.
"""

import fcntl
import logging
import marshal
import os
import struct
import threading
import zlib

log = logging.getLogger("clevermail.imap")

FILE_NAME = "clevermail-fetch-cache"
MAGIC = b"CMF1"
_HEAD = struct.Struct("<4sII")        # magic, payload length, CRC-32 of the payload
MAX_RECORD = 4 << 20                  # a longer length field is damage, not a record
_SIMPLE_ITEMS = frozenset(("ENVELOPE", "BODY", "BODYSTRUCTURE"))


def encode(uidvalidity, uid, items):
    """One record: the items rendered for message `uid`."""
    payload = marshal.dumps((uidvalidity, uid, items))
    return _HEAD.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def decode(data, pos=0):
    """The records of `data` from `pos`: ([(uidvalidity, uid, items)], the position up
    to which it was read (before a record not yet whole), whether damage was met)."""
    out, damaged, n = [], False, len(data)
    while pos + _HEAD.size <= n:
        magic, length, crc = _HEAD.unpack_from(data, pos)
        end = pos + _HEAD.size + length
        if magic == MAGIC and length <= MAX_RECORD:
            if end > n:
                break           # not whole yet: a write in progress, or a torn tail
            entry = _entry(data[pos + _HEAD.size:end], crc)
            if entry is not None:
                out.append(entry)
                pos = end
                continue
        damaged = True
        nxt = data.find(MAGIC, pos + 1)
        # no later record: keep the last bytes, which may start one being written
        pos = nxt if nxt >= 0 else max(pos + 1, n - len(MAGIC) + 1)
    return out, pos, damaged


def _entry(payload, crc):
    if zlib.crc32(payload) != crc:
        return None
    try:
        entry = marshal.loads(payload)
    except (ValueError, EOFError, TypeError):
        return None
    return entry if _valid(entry) else None


def _valid(entry):
    """(uidvalidity, uid, {item key: bytes}) with fetch_cache.py's item keys."""
    if not (isinstance(entry, tuple) and len(entry) == 3):
        return False
    uidvalidity, uid, items = entry
    if not (type(uidvalidity) is int and type(uid) is int and isinstance(items, dict)):
        return False
    for key, value in items.items():
        if type(value) is not bytes:
            return False
        if key in _SIMPLE_ITEMS:
            continue
        if not (type(key) is tuple and len(key) == 3 and type(key[0]) is tuple
                and all(type(n) is int for n in key[0]) and type(key[1]) is str
                and type(key[2]) is frozenset and all(type(f) is str for f in key[2])):
            return False
    return True


class FolderJournal:
    """One folder's journal as this process sees it: an open descriptor, how far it
    has read, the file's inode (to see a rewrite).  Thread-safe."""

    def __init__(self, path, uidvalidity, max_bytes=16 << 20):
        self.path, self.uidvalidity, self.max_bytes = path, uidvalidity, max_bytes
        self._lock = threading.Lock()
        self._fd = -1
        self._ino = None
        self._offset = 0            # read up to here
        self._damaged = False       # rewrite at the next append
        self._retired = False       # dropped by its cache: never opened again

    def close(self):
        """Close the descriptor; the next read or append opens the file again."""
        with self._lock:
            self._close()

    def retire(self):
        """Close for good: its cache let it go (FetchCache), and a FETCH still holding
        it must not open a descriptor that nobody would close."""
        with self._lock:
            self._retired = True
            self._close()

    def _close(self):
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self._ino, self._offset = -1, None, 0

    def _open(self, create):
        if self._retired:
            return False
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | (os.O_CREAT if create else 0)
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError:
            return False        # missing (a folder deleted), or not ours to write
        self._close()
        self._fd, self._ino = fd, os.fstat(fd).st_ino
        return True

    def read_new(self):
        """The records other writers (and this process) appended since the last call:
        [(uid, items)] of this folder's UIDVALIDITY; the whole file after a rewrite."""
        with self._lock:
            try:
                st = os.stat(self.path)
            except OSError:
                self._close()
                return []
            size = st.st_size
            if st.st_ino != self._ino:
                if not self._open(create=False):
                    return []
                size = os.fstat(self._fd).st_size
            if size < self._offset:         # cut short by someone: read it again
                self._offset = 0
            if size == self._offset:
                return []
            data = os.pread(self._fd, size - self._offset, self._offset)
            records, used, damaged = decode(data)
            if damaged and not self._damaged:
                log.warning("-: %s: damaged records skipped (rewritten at the next FETCH "
                            "that adds to it)", self.path)
                self._damaged = True
            self._offset += used
        uv = self.uidvalidity
        return [(uid, items) for v, uid, items in records if v == uv]

    def append(self, entries, live_uids):
        """Add {uid: {item: bytes}} in one write; rewrite the file when it has grown
        past the bound (or holds damage), keeping the records of `live_uids()` (a set,
        asked only then).
        OSError is the caller's to ignore (the file is only a speed-up)."""
        uv = self.uidvalidity
        blob = b"".join(encode(uv, uid, items) for uid, items in entries.items())
        with self._lock:
            if self._fd < 0 and not self._open(create=True):
                return
            os.write(self._fd, blob)
            # O_APPEND: the write went to the end of the file as it was then, and left
            # the descriptor's offset after it (whoever writes after us)
            end = os.lseek(self._fd, 0, os.SEEK_CUR)
            if end - len(blob) == self._offset:
                self._offset = end          # nobody else wrote between: nothing to read back
            if end > self.max_bytes or self._damaged:
                self._rewrite(live_uids)

    def _rewrite(self, live_uids):
        """The newest records of live messages, up to half the bound, in place of the
        file (lock held)."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return                  # another process is rewriting it
        try:
            if os.stat(self.path).st_ino != self._ino:
                return              # rewritten already: our descriptor is the old file
            size = os.fstat(self._fd).st_size
            records, _, _ = decode(os.pread(self._fd, size, 0))
            merged, live_uids = {}, live_uids()
            for uv, uid, items in records:
                if uv == self.uidvalidity and uid in live_uids:
                    merged.setdefault(uid, {}).update(items)
            kept, total = [], 0
            for uid in sorted(merged, reverse=True):
                rec = encode(self.uidvalidity, uid, merged[uid])
                if total + len(rec) > self.max_bytes // 2:
                    break
                kept.append(rec)
                total += len(rec)
            kept.reverse()
            tmp = "%s.%d.%d.tmp" % (self.path, os.getpid(), threading.get_ident())
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                try:
                    os.write(fd, b"".join(kept))
                finally:
                    os.close(fd)
                os.rename(tmp, self.path)
            except OSError:
                os.unlink(tmp)
                raise
        except OSError as exc:
            log.warning("-: %s not rewritten: %s", self.path, exc)
            return
        finally:
            self._close()           # lets the flock go; the next look opens the new file
        self._damaged = False
