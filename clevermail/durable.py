"""Durable file writes: the one home of "write, fsync, rename, fsync the directory".

Every file CleverMail must find again after a crash goes through here: the accounts
file, relay queue envelopes and bodies, Maildir deliveries, the uidlist, the keyword
map and the subscriptions.  The rules (POSIX, and what ext4/XFS need in practice):

* data reaches the disk only after fsync() of the file;
* a name created or replaced by rename()/link()/unlink() is durable only after
  fsync() of the directory that holds it: without it the old file (or no file) can
  reappear after a crash although the call returned;
* a temporary file gets a name no other writer uses (pid, thread, random part), so
  two writers never truncate each other's half-written file.
"""

import os
import secrets
import threading

__all__ = ["fsync_dir", "fsync_file", "write_all", "write_exclusive", "atomic_write", "temp_name", "unlink_quiet"]


def fsync_dir(path):
    """Make the directory entries of `path` (creates, renames, unlinks) durable."""
    _fsync_path(path, os.O_RDONLY | os.O_DIRECTORY)


def fsync_file(path):
    """Make the data of file `path` written so far durable (its appended lines)."""
    _fsync_path(path, os.O_RDONLY | os.O_CLOEXEC)


def _fsync_path(path, flags):
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd, data):
    """os.write until all of `data` is written: a write may stop short (a signal, a
    disk filling up) and report fewer bytes without raising."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_exclusive(path, data, mode=0o600, sync=True):
    """Create `path` (it must not exist), write `data`, fsync it (unless `sync` is
    False).  The directory is not fsynced: the caller links or renames the file into
    its final place and fsyncs that directory.  A failure leaves no file behind."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        write_all(fd, data)
        if sync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        unlink_quiet(path)
        raise
    os.close(fd)


def temp_name(path):
    """A name beside `path` that no other writer (process or thread) will use."""
    return f"{path}.{os.getpid()}.{threading.get_ident()}.{secrets.token_hex(3)}.tmp"


def atomic_write(path, data, mode=0o600, durable=True):
    """Replace `path` with `data` all at once: readers see the old or the new file,
    never a part.  With `durable` (the default) the new content and the new name are
    both on disk when this returns; without it (caches that are only a speed-up) no
    fsync is made and a crash may leave the old file."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = temp_name(path)
    write_exclusive(tmp, data, mode, sync=durable)
    try:
        os.replace(tmp, path)
    except BaseException:
        unlink_quiet(tmp)
        raise
    if durable:
        fsync_dir(os.path.dirname(path) or ".")


def unlink_quiet(path):
    """Unlink `path`; a file that is already gone is fine."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
