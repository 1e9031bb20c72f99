"""Mailbox quotas: per-user limits on storage (bytes) and messages, the usage kept
in each user's Maildir++ `maildirsize` ledger (maildirsize.py), and the checks every
writer asks (`Quotas.refusal` / `check`, `reserve` / `reserving`, raising or
returning `OverQuota`).

Limits come from outside the store: a callable address -> QuotaLimits that the
service builds from the accounts' per-user values (users.ini, read live) over the
configured default ([quota]); None in a field means no limit.

Usage is the sum of the S= sizes (disk bytes) and the number of message files in
new/ and cur/ of every folder of the user (INBOX, Trash and all), never read from a
message.  The ledger keeps it: every store write appends its change, in any
process, so a check reads one small file (its cost does not grow with the
mailbox) and a flag change (a rename in cur/) costs nothing; the ledger is
recalculated from the file names when it is missing, too long, or stale
(maildirsize.py says when and how it stays exact across processes).  This is what
Courier's and Dovecot's Maildir++ quotas do; the cost before and after, at 100,000
messages: scripts/bench_quota.py.

Checks are binding, not advisory: a delivery `reserve()`s its copy under the
user's ledger lock (the check and the line that counts it are one step, so two
deliveries at the same moment cannot both pass on the same room) and its
Reservation is released at commit or taken back at abort; IMAP APPEND and COPY
hold the same lock around the write (`reserving`).  Other store writes (an import,
a MOVE's copy, an EXPUNGE) only record their change.

The store never speaks protocol: OverQuota says which resource and whether the
refusal is permanent (the message alone is larger than the limit: no clean-up
will ever make it fit) or temporary (RFC 3463 X.2.2, "mailbox full", a persistent
transient failure: the user can make room); the SMTP, IMAP and relay code turn it
into their replies.
"""

import os
import re
from contextlib import contextmanager
from typing import Callable, NamedTuple

from . import maildirsize
from .errors import StoreError
from .maildirsize import Usage, count_names  # noqa: F401  (the usage values are the ledger's)

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


# -- the usage and the checks ---------------------------------------------------------------
def _over(limits, usage):
    """Whether `usage` is already past a limit (not only at it)."""
    return ((limits.storage is not None and usage.storage > limits.storage)
            or (limits.messages is not None and usage.messages > limits.messages))


class Reservation:
    """Room taken for a delivery's copy: counted in the ledger from the moment it was
    granted, with the shared lock held until done() (its file is in place: commit)
    or cancel() (its file is gone: abort; the line taken back).  Both idempotent."""

    def __init__(self, root, hold, delta):
        self.root, self._hold, self.delta = root, hold, delta
        self._cancelled = False

    def changing(self):
        """The shared lock again, to hold around unlinking the copy before cancel()."""
        return maildirsize.changing(self.root)

    def done(self):
        self._hold.release()

    def cancel(self):
        if not self._cancelled:
            self._cancelled = True
            maildirsize.append(self.root, -self.delta)
        self._hold.release()


class Quotas:
    """The usage and the checks.  `users` (users.UserDirs) maps an address to its
    root; `limits(address)` gives its QuotaLimits."""

    def __init__(self, users, limits: Callable[[str], QuotaLimits] = lambda address: NO_LIMITS):
        self.users = users
        self.limits = limits

    def usage(self, address):
        """The user's Usage over all folders (the ledger's sum, recalculated first when
        due: maildirsize.py)."""
        return self._usage(self.users.root(address), self.limits(address))

    def _usage(self, root, limits):
        ledger = maildirsize.read(root)
        if ledger is None or ledger.due(_over(limits, ledger.usage)):
            fresh = maildirsize.recalculate(root, limits)
            if fresh is not None:
                return fresh
            if ledger is None:              # a writer is busy: count, keep nothing
                return maildirsize.count_user(root)
        return ledger.usage

    @staticmethod
    def _locked_usage(root, fd):
        """The usage with the ledger held (`fd`, None: there is no ledger)."""
        ledger = maildirsize.read(root, fd) if fd is not None else None
        return ledger.usage if ledger is not None else maildirsize.count_user(root)

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
        return _refusal(address, limits, usage, size, count)

    def check(self, address, size, count=1):
        """Raise OverQuota when `refusal` finds one."""
        refused = self.refusal(address, size, count)
        if refused is not None:
            raise refused

    def over(self, address):
        """The OverQuota of a user already past a limit (a lowered quota), else None:
        what refuses a MOVE, which adds nothing (IMAP's handler)."""
        limits = self.limits(address)
        if limits.unlimited:
            return None
        usage = self.usage(address)
        for resource, limit, used in (("storage", limits.storage, usage.storage),
                                      ("messages", limits.messages, usage.messages)):
            if limit is not None and used > limit:
                return OverQuota(address, resource, False, limit)
        return None

    def reserve(self, address, size, count=1):
        """Take room for `count` messages of `size` disk bytes about to be written for
        `address` (its mailbox exists): a Reservation, or OverQuota.  The check and
        the ledger line are one step under the user's ledger lock."""
        root = self.users.root(address)
        limits = self.limits(address)
        self._usage(root, limits)           # a recalculation due happens now, unlocked
        hold = maildirsize.Hold(root)
        try:
            with maildirsize.locked(root) as fd:
                if not limits.unlimited:
                    refused = _refusal(address, limits, self._locked_usage(root, fd), size, count)
                    if refused is not None:
                        raise refused
                if fd is not None:
                    os.write(fd, f"{size} {count}\n".encode())
        except BaseException:
            hold.release()
            raise
        return Reservation(root, hold, Usage(size, count))

    @contextmanager
    def reserving(self, address, size, count=1):
        """The check of `count` messages of `size` bytes for `address`, with the user's
        ledger lock held for the block, in which the store's write records them
        (IMAP APPEND, COPY): OverQuota before the block, else nobody else's check
        passes on the same room.  `size` may be a callable giving it, asked only when
        the user has a limit (counting a large message's line ends costs time)."""
        root = self.users.root(address)
        limits = self.limits(address)
        if limits.unlimited or not os.path.isdir(root):
            yield
            return
        if callable(size):
            size = size()
        self._usage(root, limits)
        with maildirsize.changing(root), maildirsize.locked(root) as fd:
            refused = _refusal(address, limits, self._locked_usage(root, fd), size, count)
            if refused is not None:
                raise refused
            yield


def _refusal(address, limits, usage, size, count):
    need = max(size, 1)
    if limits.storage is not None and usage.storage + need > limits.storage:
        return OverQuota(address, "storage", need > limits.storage, limits.storage)
    if limits.messages is not None and usage.messages + count > limits.messages:
        return OverQuota(address, "messages", count > limits.messages, limits.messages)
    return None
