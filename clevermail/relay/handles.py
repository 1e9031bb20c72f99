"""The handles the relay queue (queue.py) gives out, and its error: `PendingEntry`
(an entry written but not yet visible: commit or abort it), `Claim` (one delivery
attempt's hold on an entry), `NoSuchEntry`, and `header_block` (a message's header
section, for reports).

Claiming: a worker holds an exclusive, non-blocking flock() on the entry's ``.eml``
for the whole delivery attempt. The body is never replaced, so every process locks
the same inode; the kernel drops the lock when its holder dies, so an entry that was
in flight during a crash is simply due again at the next start (a duplicate delivery
is possible, a loss is not). flock() is per open file, so threads of one process
exclude each other too. Requires a local filesystem (flock over NFS is unreliable).
"""
from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from clevermail.durable import fsync_dir

if TYPE_CHECKING:
    from clevermail.relay.queue import RelayQueue

log = logging.getLogger("clevermail.relay")


class NoSuchEntry(LookupError):
    """No queue entry has this id (never had one, or it was removed meanwhile).

    Its own class rather than KeyError, so that a KeyError from a bug is never
    reported to the operator as "no queue entry"."""


def header_block(data: bytes) -> bytes:
    """The header section of a message (up to, not including, the empty line)."""
    end = data.find(b"\r\n\r\n")
    return data if end < 0 else data[:end + 2]


class Claim:
    """An exclusive hold on one entry for one delivery attempt (see module doc)."""

    def __init__(self, fd: int):
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)       # closing drops the flock
            self._fd = -1

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class PendingEntry:
    """A prepared entry: written and fsynced, invisible until commit()."""

    def __init__(self, queue: "RelayQueue", entry_id: str, queue_id: str, tmp_json: Path):
        self.queue, self.id, self.queue_id, self._tmp_json = queue, entry_id, queue_id, tmp_json
        self.committed = False

    def commit(self) -> None:
        os.rename(self._tmp_json, self.queue._json(self.id))
        # One directory fsync makes both the body's and the envelope's names durable.
        fsync_dir(self.queue.path)
        self.committed = True
        callback = self.queue.on_commit
        if callback is not None:
            try:
                callback()
            except Exception:    # the entry is queued; a failed wake-up only delays it
                log.exception("%s: on_commit callback failed (entry %s)", self.queue_id, self.id)

    def abort(self) -> None:
        if self.committed:
            with contextlib.suppress(NoSuchEntry):
                self.queue.delete(self.id)
            return
        for p in (self._tmp_json, self.queue._body(self.id)):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
