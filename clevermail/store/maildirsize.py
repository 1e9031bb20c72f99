"""The usage ledger of a user's mailbox quota: a Maildir++ `maildirsize` file in the
user's root (the format of Courier's and Dovecot's Maildir++ quota), so that a
quota check reads one small file whatever the number of messages, a flag change
(a rename) costs nothing, and every writer in every process is counted.

Format: the first line holds the limits in Maildir++ form ("<bytes>S,<count>C",
only those set; written at each recalculation for other Maildir++ readers: the
limits in force are users.ini's and [quota]'s, read live by quota.py); then one
line "<bytes> <messages>" per change, negative for removals.  The usage is the sum
of the lines after the first.

Writers: every store write that adds or removes message files (delivery, APPEND,
COPY, MOVE, EXPUNGE, a POP3 DELE at QUIT, folder DELETE, import) appends its line
with one write(2) on an O_APPEND descriptor, which the kernel keeps whole against
other appenders.  A missing file is never created by a writer: the next look
recalculates it.  The writers' descriptors of the ledger and of its lock file are
kept open per user (ledger_files.py), and this process's writers of a user share
one shared flock.

Locks (flock: per open file description, so threads and processes alike):
- `clevermail-quota.lock`: held shared by a writer from before its file change
  until its line is written (a delivery: from its reservation to its commit or
  abort), exclusive by a recalculation, which therefore never sees a file whose
  line is not yet written, or a line whose file is not yet there.  A
  recalculation only tries (LOCK_NB): the thread asking may be such a writer
  itself, and waiting would deadlock it; skipped, the file's sum serves (or, with
  no file at all, a listing that is not kept).
- `maildirsize` itself, exclusive: a check and the line it allows (quota.py's
  reservations), so two deliveries checked at the same moment cannot both pass.

Recalculation (the S= sizes of every folder's new/ and cur/ names, as quota.py
always counted them; never a message opened) happens when the file is missing or
unreadable, past MAX_BYTES, sums to less than nothing, or shows the user over a
limit and has not changed for STALE_SECONDS (Maildir++'s 15 minutes: a crash
between a change and its line, or a program writing the Maildir without the ledger,
mutt or procmail, made it drift).  It is written under a temporary name and
renamed over the old one.  The lines are not fsynced (neither are Maildir++'s): a
power loss may cost a few, until the next recalculation.
"""

import fcntl
import os
import re
import time
from contextlib import contextmanager
from typing import NamedTuple

from ..durable import atomic_write
from . import ledger_files, paths
from .ledger_files import FILE_NAME, LOCK_NAME

MAX_BYTES = 5120                 # Maildir++'s bound: past it the file is recalculated
READ_LIMIT = 1 << 20             # a file larger than this is not read: recalculated
STALE_SECONDS = 15 * 60
_SIZE_IN_NAME = re.compile(r"^[^:\n]*?,S=(\d+)", re.MULTILINE)


class Usage(NamedTuple):
    """What a user (or one folder) holds: bytes on disk (the S= sizes) and messages."""

    storage: int = 0
    messages: int = 0

    def __add__(self, other):               # another Usage or a (bytes, messages) pair
        return Usage(self[0] + other[0], self[1] + other[1])

    def __neg__(self):
        return Usage(-self.storage, -self.messages)


class Ledger(NamedTuple):
    """A maildirsize file as read: its sum, its length and its mtime."""

    usage: Usage
    size: int
    mtime: float

    def due(self, over_limit, now=None):
        """Whether it must be recalculated (module doc), `over_limit`: its sum is."""
        if self.size > MAX_BYTES:
            return True
        return over_limit and (now or time.time()) - self.mtime >= STALE_SECONDS


# -- counting from file names ------------------------------------------------------
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


def count_folder(folder_path):
    """One folder's Usage from its new/ and cur/ listings."""
    total = Usage()
    for sub in ("new", "cur"):
        path = os.path.join(folder_path, sub)
        try:
            total += count_names(path, os.listdir(path))
        except (FileNotFoundError, NotADirectoryError):
            pass                            # deleted meanwhile: holds nothing
    return total


def folders(root):
    """The user's folder paths: the root (INBOX) and each Maildir++ folder (a folder
    being deleted, "..deleted-", or anything else not a folder name is skipped)."""
    found = [root]
    for dirname in sorted(os.listdir(root)):
        if paths.folder_from_dirname(dirname) and os.path.isdir(os.path.join(root, dirname, "cur")):
            found.append(os.path.join(root, dirname))
    return found


def count_user(root):
    """The user's Usage from the listings of every folder (the recalculation)."""
    total = Usage()
    try:
        for folder in folders(root):
            total += count_folder(folder)
    except FileNotFoundError:
        return Usage()                      # no mailbox (any more)
    return total


# -- the file ----------------------------------------------------------------------------
def parse(data):
    """The sum of a maildirsize file's lines after the first, or None when it is no
    such file (no complete first line, a line that is not two integers, a partial
    last line) or sums below zero."""
    head, sep, body = data.partition(b"\n")
    if not sep or (body and not body.endswith(b"\n")):
        return None
    storage = messages = 0
    try:
        for line in body.splitlines():
            size, count = line.split()
            storage += int(size)
            messages += int(count)
    except ValueError:
        return None
    if storage < 0 or messages < 0:
        return None
    return Usage(storage, messages)


def read(root, fd=None):
    """The Ledger of the user's maildirsize (through `fd` when given), or None when
    it is missing or must be recalculated whatever the limits."""
    try:
        if fd is None:
            with open(os.path.join(root, FILE_NAME), "rb") as f:
                return _read(f.fileno())
        return _read(fd)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _read(fd):
    st = os.fstat(fd)
    if st.st_size > READ_LIMIT:
        return None
    usage = parse(os.pread(fd, st.st_size, 0))
    return None if usage is None else Ledger(usage, st.st_size, st.st_mtime)


def append(root, delta):
    """Write one change line (a Usage delta); nothing when the file is missing.
    Under the shared lock (`changing`), as every writer's line is."""
    if delta == (0, 0):
        return
    ledger_files.append(root, f"{delta[0]} {delta[1]}\n".encode())


def header(limits):
    """The Maildir++ limits line of QuotaLimits (only the set ones)."""
    parts = []
    if limits.storage is not None:
        parts.append(f"{limits.storage}S")
    if limits.messages is not None:
        parts.append(f"{limits.messages}C")
    return ",".join(parts)


def recalculate(root, limits):
    """Count the user's usage from the listings and write a new maildirsize with it;
    returns the Usage, or None when a writer is between a change and its line (the
    module doc) or the user has no mailbox."""
    try:
        fd = os.open(os.path.join(root, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        usage = count_user(root)
        atomic_write(os.path.join(root, FILE_NAME),
                     f"{header(limits)}\n{usage.storage} {usage.messages}\n", durable=False)
        return usage
    finally:
        os.close(fd)


class changing:
    """Context manager: the shared lock held around a change of the user's files and
    its line (joined with this process's other writers of the user: ledger_files.py).
    OSError on entry when the user has no root."""

    __slots__ = ("root", "_kept")

    def __init__(self, root):
        self.root = root
        self._kept = None

    def __enter__(self):
        self._kept = ledger_files.share(self.root)
        return self

    def __exit__(self, *exc):
        kept, self._kept = self._kept, None
        kept.unshare()
        return False


class Hold:
    """The shared lock held by hand (a delivery's reservation until its commit)."""

    def __init__(self, root):
        self._cm = changing(root)
        self._cm.__enter__()

    def release(self):
        if self._cm is not None:
            cm, self._cm = self._cm, None
            cm.__exit__(None, None, None)


@contextmanager
def locked(root):
    """The maildirsize file held exclusively: yields its descriptor (to read() and
    write through), or None when there is none."""
    try:
        fd = os.open(os.path.join(root, FILE_NAME), os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        yield None
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)
