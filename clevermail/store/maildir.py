"""Maildir file names and the Maildir delivery discipline (the durable writes
themselves are clevermail/durable.py's).

A message file is named

    <epoch>.M<usec>P<pid>Q<counter>R<random>.<host>,S=<bytes>,W=<crlf bytes>[:2,<flags>]

The part before ':2,' is the message's permanent "base" name (the key of the UID map);
<epoch> is the internal date, S= the size on disk (LF line endings) and W= the size in
the CRLF form that POP3 and IMAP send, so STAT, LIST and RFC822.SIZE never open a file.
Flags are Maildir letters (D F P R S T, sorted) plus lowercase keyword letters.

Delivery: write under tmp/, fsync the file, link into new/ (or cur/, under the
folder's file lock: locks.held), unlink tmp, then fsync the directory; only then is a
message delivered.  The tmp/ unlink need not be durable: a crash leaves either nothing
visible or the whole message, and a tmp/ name that comes back is debris `clean_tmp`
removes.

Expunge: the file is renamed into tmp/ as `<base>.expunged` under the folder's locks
(a rename costs a few microseconds where an unlink frees blocks, milliseconds on a
busy disk) and unlinked after the locks are released, on a background thread
(fsync_group.later).  A crash in between leaves an
`.expunged` name in tmp/, which clean_tmp removes whatever its age (deleted mail does
not linger).  Neither step is fsynced: a machine crash can bring an expunged message
back, never lose one (store/changes.py).
"""

import contextlib
import itertools
import os
import random
import re
import socket
import threading
import time

from .. import fsync_group
from ..durable import unlink_quiet, write_exclusive
from . import locks

_counter = itertools.count(1)
_counter_lock = threading.Lock()
_HOST = socket.gethostname().replace("/", "\\057").replace(":", "\\072").replace(",", "\\054") or "localhost"
STALE_TMP_SECONDS = 36 * 3600
EXPUNGED_SUFFIX = ".expunged"
# this process's id in every name: os.getpid() is a system call (and a GIL hand-off)
# per message; a forked worker takes its own at the fork
_pid = os.getpid()


def _new_pid():
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_new_pid)
SUBDIRS = ("new", "cur")         # where messages live; tmp/ only holds writes in progress


# a CR that does not start a CRLF (one at the very end: endswith)
_LONE_CR = re.compile(rb"\r[^\n]").search


def to_disk(wire, clean=False):
    """Wire form (CRLF line ends) -> disk form (LF line ends); see README "On disk".
    Every CRLF loses its CR; a lone CR or LF stays as it is.  When every CR starts a
    CRLF (`clean`: the caller knows it, SMTP's checked message; else one regex scan
    finds no other), deleting every CR is the same thing, and CPython deletes one byte
    value with memchr and block copies: per 33 KB message (imaptest's mbox) 11 us,
    where bytes.replace of two bytes by one takes 65 and translate's byte-by-byte
    table 23 (the scan: 17)."""
    if clean or (_LONE_CR(wire) is None and not wire.endswith(b"\r")):
        return wire.replace(b"\r", b"")
    return wire.replace(b"\r\n", b"\n")


def to_wire(disk):
    """Disk form -> wire form: every LF becomes CRLF (exact inverse of to_disk for
    data whose lines all ended in CRLF)."""
    return disk.replace(b"\n", b"\r\n")


def new_base(size, wsize, date=None):
    """A unique base name for a message of `size` disk bytes and `wsize` wire bytes."""
    now = time.time()
    with _counter_lock:
        n = next(_counter)
    stamp = int(date if date is not None else now)
    usec = int((now % 1) * 1_000_000)
    # usec zero-padded: names of one second then sort in arrival order, which is the
    # order UIDs are given in (M50000 would sort after M500000)
    # R: uniqueness against a reused pid, not a secret; random (reseeded after fork)
    # instead of os.urandom, which is a syscall that gives up the GIL
    return (f"{stamp}.M{usec:06d}P{_pid}Q{n}R{random.getrandbits(32):08x}.{_HOST}"
            f",S={size},W={wsize}")


# Our own names (and Dovecot's) in one regex match; anything else takes the slow path.
FAST_NAME = re.compile(r"(\d+)\.[^,:]*,S=(\d+),W=(\d+)(?::2,(.*))?\Z", re.DOTALL)


# The same over many names joined by newlines (Folder's bulk scan): groups are
# base, date, size, wsize, flags.
FAST_LINES = re.compile(r"^((\d+)\.[^,:\n]*,S=(\d+),W=(\d+))(?::2,([^\n]*))?$", re.MULTILINE)


def parse_name(name):
    """file name -> (base, flags, size, wsize, date); size/wsize/date None when absent."""
    m = FAST_NAME.match(name)
    if m:
        date, size, wsize, flags = m.groups()
        base = name if flags is None else name[:m.start(4) - 3]
        return base, flags or "", int(size), int(wsize), int(date)
    base, sep, flags = name.partition(":2,")
    if not sep:
        flags = ""
    size = wsize = date = None
    for field in base.split(",")[1:]:
        if field.startswith("S=") and field[2:].isdigit():
            size = int(field[2:])
        elif field.startswith("W=") and field[2:].isdigit():
            wsize = int(field[2:])
    head = base.split(".", 1)[0]
    if head.isdigit():
        date = int(head)
    return base, flags, size, wsize, date


def write_tmp(folder_path, data, base):
    """Write `data` to tmp/<base> and fsync it; returns the tmp path.  No directory
    fsync: the name that must survive a crash is the one commit_tmp makes."""
    tmp = f"{folder_path}/tmp/{base}"      # folder paths are absolute, without a trailing /
    write_exclusive(tmp, data)
    return tmp


def link_tmp(folder_path, source, base):
    """Hard-link an already written and fsynced file as tmp/<base>; returns the path
    (the other recipients' copies: one data write for all)."""
    tmp = f"{folder_path}/tmp/{base}"
    os.link(source, tmp)
    return tmp


def link_into(folder_path, tmp, name, sub="new"):
    """Link a written tmp file into new/ or cur/ under `name` (link, not rename: an
    existing name is never overwritten); the caller unlinks `tmp` (the store's
    writers do it after the folder's locks: one system call less under them) and
    makes the directory durable."""
    target = f"{folder_path}/{sub}/{name}"
    os.link(tmp, target)
    return target


def commit_tmp(folder_path, tmp, name, sub="new", sync=True):
    """Move a written tmp file into new/ or cur/ under `name` and make it durable
    (unless `sync` is False: the caller then makes the directory durable itself).
    The directory fsync is shared with concurrent commits (fsync_group.py)."""
    # into cur/ under the folder's file lock, as every change there (locks.held)
    with locks.held(folder_path) if sub == "cur" else contextlib.nullcontext():
        target = link_into(folder_path, tmp, name, sub)
    unlink_quiet(tmp)
    if sync:
        fsync_group.directory(f"{folder_path}/{sub}").sync()
    return target


def expunged_name(folder_path, base):
    """Where an expunged message waits in tmp/ for its unlink (see the docstring)."""
    return f"{folder_path}/tmp/{base}{EXPUNGED_SUFFIX}"


def clean_tmp(folder_path, max_age=STALE_TMP_SECONDS):
    """Remove tmp/ files older than `max_age` (left by crashes) and expunged files
    of any age; returns the count."""
    tmpdir = os.path.join(folder_path, "tmp")
    cutoff = time.time() - max_age
    removed = 0
    try:
        entries = list(os.scandir(tmpdir))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            if entry.is_file() and (entry.name.endswith(EXPUNGED_SUFFIX)
                                    or entry.stat().st_mtime < cutoff):
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def make_maildir(path, parents=True):
    """Create path/{tmp,new,cur} (idempotent).  parents=False: `path` itself must
    exist (FileNotFoundError otherwise), only its missing sub-directories are made."""
    for sub in ("tmp", "new", "cur"):
        if parents:
            os.makedirs(os.path.join(path, sub), mode=0o700, exist_ok=True)
        else:
            try:
                os.mkdir(os.path.join(path, sub), mode=0o700)
            except FileExistsError:
                pass
