"""Locks shared with other processes, and waiting for a folder to change.

FileLock is an flock on the folder's `clevermail-lock` file: it serialises UID
assignment, renames and unlinks between CleverMail processes working on one tree.
Inside a process the folder's RLock is always taken first, so one depth counter per
folder makes the file lock re-entrant without a lock of its own.
"""

import fcntl
import os
import time

LOCK_NAME = "clevermail-lock"


class FileLock:
    """flock on the folder's lock file; re-entrant within one Folder via a depth count."""

    def __init__(self, folder):
        self.folder = folder

    def __enter__(self):
        f = self.folder
        if f._lockfd is None:
            f._lockfd = [os.open(os.path.join(f.path, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600), 0]
        if f._lockfd[1] == 0:
            fcntl.flock(f._lockfd[0], fcntl.LOCK_EX)
        f._lockfd[1] += 1
        return self

    def __exit__(self, *exc):
        f = self.folder
        f._lockfd[1] -= 1
        if f._lockfd[1] == 0:
            fcntl.flock(f._lockfd[0], fcntl.LOCK_UN)
        return False


def wait_for_change(folder, timeout):
    """Block until the folder is notified or `timeout` passes (IDLE)."""
    deadline = time.monotonic() + timeout
    with folder.cond:
        folder.cond.wait(max(0.0, deadline - time.monotonic()))
