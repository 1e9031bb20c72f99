"""Mailbox quotas: per-user limits on storage (bytes) and messages, the usage
counted from the Maildir file names, and the one check every writer asks
(`Quotas.refusal` / `Quotas.check`, raising or returning `OverQuota`).

Limits come from outside the store: a callable address -> QuotaLimits that the
service builds from the accounts' per-user values (users.ini, read live) over the
configured default ([quota]); None in a field means no limit.

Usage is the sum of the S= sizes (disk bytes) and the number of message files in
new/ and cur/ of every folder of the user (INBOX, Trash and all), read from the
directory listings, never by opening a message (a name without S=, written by
another program, is stat()ed once).  It is kept per directory in memory with the
directory's mtime, and a check first stat()s the user's root and each folder's new/
and cur/: only a directory whose mtime moved is listed again.

Why this and not a Dovecot/Courier `maildirsize` file (a limit line and appended
delta lines, recalculated when it grows or looks stale):
- every writer is seen, in every process, with no hook: a delivery, IMAP APPEND,
  COPY, EXPUNGE, a POP3 DELE at QUIT, `clevermail import`, a second instance, and
  also mutt, procmail or a script writing into new/ change a directory's mtime.  A
  maildirsize file sees only the writers that append to it and drifts until the
  next recalculation, and it needs its own lock and rewrite rules;
- nothing to get wrong on disk: no file to corrupt, lose or recalculate;
- the cost is small and bounded: a check is 1 + 2 x folders stat() calls (about
  20 for a usual account, well under a millisecond), and a listing happens only for
  a directory that changed since (its cost grows with its size: see
  scripts/bench_quota.py for the figures).
A directory's mtime has the file system's coarse clock (a few ms): a listing taken
while its mtime is less than RACY_NS old is not trusted for the next check (as git
treats "racily clean" files), so a change in the same clock tick is never missed.

A check is advisory, as in every Maildir server: two deliveries checked at the
same moment may together go past the limit by one message each (Dovecot's and
Courier's quotas behave the same); the next check refuses.

The store never speaks protocol: OverQuota says which resource and whether the
refusal is permanent (the message alone is larger than the limit: no clean-up
will ever make it fit) or temporary (RFC 3463 X.2.2, "mailbox full", a persistent
transient failure: the user can make room); the SMTP, IMAP and relay code turn it
into their replies.
"""

import os
import re
import threading
import time
from typing import Callable, NamedTuple

from . import paths
from .errors import StoreError

RACY_NS = 1_000_000_000        # a listing younger than this after its mtime is re-done
CACHE_LIMIT = 100_000          # directories remembered (cleared whole when reached)
_SIZE_IN_NAME = re.compile(r"^[^:\n]*?,S=(\d+)", re.MULTILINE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE_TEXT = re.compile(r"(\d+)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)
NO_LIMIT_WORDS = ("", "none", "unlimited")


class QuotaLimits(NamedTuple):
    """A user's limits: storage in bytes, messages in files; None = no limit."""

    storage: int | None = None
    messages: int | None = None

    @property
    def unlimited(self):
        return self.storage is None and self.messages is None


NO_LIMITS = QuotaLimits()


def user_limits(own, default):
    """A user's QuotaLimits: `own` (storage, messages) from the accounts, where a
    value is an int, None (no limit) or a str (not set: `default`'s value applies)."""
    storage, messages = (d if isinstance(v, str) else v for v, d in zip(own, default))
    return QuotaLimits(storage, messages)


class Usage(NamedTuple):
    """What a user (or one folder) holds: bytes on disk (the S= sizes) and messages."""

    storage: int = 0
    messages: int = 0

    def __add__(self, other):
        return Usage(self.storage + other.storage, self.messages + other.messages)


class FolderSizes(NamedTuple):
    """A folder's STATUS sizes, from its index (wire octets, as RFC822.SIZE counts):
    SIZE (RFC 8438), DELETED and DELETED-STORAGE (RFC 9208 4.2)."""

    size: int
    deleted: int
    deleted_size: int


def folder_sizes(store, address, name):
    """FolderSizes of folder `name` of a store (FolderSource), from its index: no
    message file is opened.  \\Deleted is the Maildir flag letter T."""
    folder = store.open_folder(address, name)
    try:
        with folder.lock:
            entries = list(folder.by_uid.values())
        deleted = [e.wsize for e in entries if "T" in e.flags]
        return FolderSizes(sum(e.wsize for e in entries), len(deleted), sum(deleted))
    finally:
        store.release_folder(folder)


class OverQuota(StoreError):
    """Storing would take `address` over a limit.  `resource` is "storage" or
    "messages"; `permanent`: the message(s) alone exceed the limit."""

    def __init__(self, address, resource, permanent, limit):
        self.address, self.resource, self.permanent, self.limit = address, resource, permanent, limit
        unit = "bytes" if resource == "storage" else "messages"
        why = "larger than the quota" if permanent else "mailbox full"
        super().__init__(f"{address}: {why} ({resource} limit {limit} {unit})")


# -- quota values as people write them ---------------------------------------------------
def parse_storage(text):
    """'1G', '500M', '10k', '1048576', '2GiB' (binary units: 1K = 1024 bytes) ->
    bytes; 'none', 'unlimited' or '' -> None.  ValueError with a message otherwise."""
    value = str(text).strip()
    if value.lower() in NO_LIMIT_WORDS:
        return None
    m = _SIZE_TEXT.fullmatch(value)
    if not m:
        raise ValueError(f"{value!r} is not a size (bytes, or a number with K, M, G or T; or none)")
    return int(m.group(1)) * _UNITS[m.group(2).upper()]


def parse_messages(text):
    """'1000' -> 1000; 'none', 'unlimited' or '' -> None.  ValueError otherwise."""
    value = str(text).strip()
    if value.lower() in NO_LIMIT_WORDS:
        return None
    if not value.isdigit():
        raise ValueError(f"{value!r} is not a number of messages (or none)")
    return int(value)


def format_storage(size):
    """Bytes as the shortest exact text parse_storage reads back ('1G', '1536K',
    '1000'); None -> 'none'."""
    if size is None:
        return "none"
    for unit in "TGMK":
        if size and size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}"
    return str(size)


def format_messages(count):
    return "none" if count is None else str(count)


# -- the usage of directories -------------------------------------------------------------
def count_names(dir_path, names):
    """Usage of the message files `names` of one directory (dot files skipped):
    sizes from S= in the names, a stat() only for a name without one."""
    names = [n for n in names if n[:1] != "."]
    sizes = _SIZE_IN_NAME.findall("\n".join(names))
    total = sum(map(int, sizes))
    if len(sizes) != len(names):             # some names carry no S=: measure those
        total = 0
        for name in names:
            m = _SIZE_IN_NAME.match(name)
            if m and "\n" not in name:
                total += int(m.group(1))
                continue
            try:
                total += os.stat(os.path.join(dir_path, name)).st_size
            except FileNotFoundError:
                continue                     # gone since the listing
    return Usage(total, len(names))


class Quotas:
    """The usage cache of this process and the checks.  `users` (users.UserDirs)
    maps an address to its root; `limits(address)` gives its QuotaLimits."""

    def __init__(self, users, limits: Callable[[str], QuotaLimits] = lambda address: NO_LIMITS,
                 clock=time.time_ns):
        self.users = users
        self.limits = limits
        self._clock = clock
        self._dirs = {}       # directory path -> (mtime_ns, Usage)
        self._roots = {}      # user root -> (mtime_ns, [folder paths])
        self._lock = threading.Lock()      # guards the trimming of the maps only

    # -- usage -----------------------------------------------------------------------
    def usage(self, address):
        """The user's Usage over all folders, current with the disk."""
        root = self.users.root(address)
        total = Usage()
        for folder in self._folders(root):
            total += self.folder_usage(folder)
        return total

    def folder_usage(self, folder_path):
        """One folder's Usage (new/ and cur/): STATUS SIZE, and the user's sum."""
        total = Usage()
        for sub in ("new", "cur"):
            total += self._dir_usage(os.path.join(folder_path, sub))
        return total

    def _dir_usage(self, path):
        try:
            mtime = os.stat(path).st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            return Usage()                  # a folder deleted meanwhile holds nothing
        known = self._dirs.get(path)
        if known is not None and known[0] == mtime:
            return known[1]
        try:
            names = os.listdir(path)
        except (FileNotFoundError, NotADirectoryError):
            return Usage()
        usage = count_names(path, names)
        self._remember(self._dirs, path, mtime, usage)
        return usage

    def _folders(self, root):
        """The user's folder paths: the root (INBOX) and each Maildir++ folder."""
        try:
            mtime = os.stat(root).st_mtime_ns
        except FileNotFoundError:
            return []                       # no mailbox yet: nothing used
        known = self._roots.get(root)
        if known is not None and known[0] == mtime:
            return known[1]
        folders = [root]
        for dirname in sorted(os.listdir(root)):
            # a folder being deleted ("..deleted-") or anything else not a folder name
            # is skipped, as the folder list skips it
            if paths.folder_from_dirname(dirname) and os.path.isdir(os.path.join(root, dirname, "cur")):
                folders.append(os.path.join(root, dirname))
        self._remember(self._roots, root, mtime, folders)
        return folders

    def _remember(self, cache, key, mtime, value):
        # a listing made while the mtime was this young may have missed a change in
        # the same clock tick: use it now, do not trust it next time
        if self._clock() - mtime < RACY_NS:
            cache.pop(key, None)
            return
        if len(cache) >= CACHE_LIMIT:
            with self._lock:
                if len(cache) >= CACHE_LIMIT:
                    cache.clear()
        cache[key] = (mtime, value)

    # -- checks ------------------------------------------------------------------------
    def refusal(self, address, size, count=1, usage=None):
        """The OverQuota that storing `count` messages of `size` bytes in all for
        `address` would meet, or None.  A size of 0 asks whether the mailbox has
        room at all (SMTP RCPT without a declared SIZE): a message is at least a
        byte.  `usage`: the Usage already read (saves a second look)."""
        limits = self.limits(address)
        if limits.unlimited:
            return None
        if usage is None:
            usage = self.usage(address)
        need = max(size, 1)
        if limits.storage is not None and usage.storage + need > limits.storage:
            return OverQuota(address, "storage", need > limits.storage, limits.storage)
        if limits.messages is not None and usage.messages + count > limits.messages:
            return OverQuota(address, "messages", count > limits.messages, limits.messages)
        return None

    def check(self, address, size, count=1):
        """Raise OverQuota when `refusal` finds one."""
        refused = self.refusal(address, size, count)
        if refused is not None:
            raise refused
