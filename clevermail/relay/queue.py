"""The relay queue: messages waiting for remote delivery, as plain files.

Owns the on-disk format, atomic enqueue, per-recipient state, the atomic claim that
keeps two workers (threads or processes) off the same entry, and the operator actions
(list, show, flush, delete, bounce) that the CLI runs from another process while the
server runs. It knows nothing of SMTP: delivery.py and worker.py do that.

On-disk layout of ``<queue_dir>`` (normally ``<data_dir>/queue``)::

    <id>.eml     the message as received: CRLF line endings, not dot-stuffed.
                 Written and fsynced by prepare(), never modified afterwards.
    <id>.json    the envelope (see Entry.to_json). Its presence IS the entry: it is
                 written in tmp/ and renamed into place (commit), then replaced by
                 rename on every change, so readers always see a whole file.
    tmp/         envelopes being written; leftovers are crash debris.
    .lock        flock()ed briefly around every read-modify-write of an envelope.

Claiming: a worker holds an exclusive, non-blocking flock() on the entry's ``.eml``
for the whole delivery attempt. The body is never replaced, so every process locks
the same inode; the kernel drops the lock when its holder dies, so an entry that was
in flight during a crash is simply due again at the next start (a duplicate delivery
is possible, a loss is not). flock() is per open file, so threads of one process
exclude each other too. Requires a local filesystem (flock over NFS is unreliable).

Removal unlinks the ``.json`` first: an ``.eml`` without ``.json`` is an orphan (an
uncommitted prepare, or the tail of a removal) and is dropped once it is older than
ORPHAN_AGE, so a prepare in progress in another process is never touched.

Recipient states: pending (never tried), deferred (4xx; retried at next_attempt),
delivered (2xx), failed (5xx, expired or cancelled; a bounce is owed unless the
sender is empty), bounced (failed and reported). An entry is removed when no
recipient is pending or deferred and no bounce is owed.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

log = logging.getLogger("clevermail.relay")

ACTIVE = frozenset({"pending", "deferred"})
STATES = ("pending", "delivered", "deferred", "failed", "bounced")
ORPHAN_AGE = 300.0        # seconds; longer than any prepare -> commit takes
HISTORY_LIMIT = 200       # events kept per entry (retries over days add up)
_ID_RE = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
FORMAT_VERSION = 1


@dataclass
class Recipient:
    address: str
    state: str = "pending"
    attempts: int = 0
    last_reply: str | None = None
    next_attempt: float = 0.0
    remote: str | None = None        # "mx.example.com [192.0.2.1]" that gave last_reply
    updated: float | None = None     # time of the last attempt or state change


@dataclass
class Entry:
    id: str
    queue_id: str
    sender: str
    arrival: float
    size: int = 0
    recipients: list[Recipient] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    warned: bool = False             # delay warning sent

    def to_json(self) -> dict:
        d = asdict(self)
        d["version"] = FORMAT_VERSION
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Entry":
        rcpts = [Recipient(**{k: v for k, v in r.items() if k in Recipient.__dataclass_fields__})
                 for r in d["recipients"]]
        return cls(id=d["id"], queue_id=d.get("queue_id", ""), sender=d.get("sender", ""),
                   arrival=float(d["arrival"]), size=int(d.get("size", 0)), recipients=rcpts,
                   history=list(d.get("history", [])), warned=bool(d.get("warned", False)))

    def add_history(self, now: float, event: str, detail: str = "") -> None:
        self.history.append({"time": now, "event": event, "detail": detail})
        del self.history[:-HISTORY_LIMIT]

    def active(self) -> list[Recipient]:
        return [r for r in self.recipients if r.state in ACTIVE]

    def needs_bounce(self) -> bool:
        # RFC 5321 6.1 / RFC 3464: never report on a report (empty reverse path).
        return bool(self.sender) and any(r.state == "failed" for r in self.recipients)

    def finished(self) -> bool:
        return not self.active() and not self.needs_bounce()

    def next_due(self, delay_warning: float | None = None) -> float:
        """Earliest time the worker has something to do here (0 = now, inf = never)."""
        if self.needs_bounce() or self.finished():
            return 0.0
        due = min(r.next_attempt for r in self.active())
        if (delay_warning is not None and self.sender and not self.warned
                and any(r.state == "deferred" for r in self.recipients)):
            due = min(due, self.arrival + delay_warning)
        return due

    def describe(self, now: float | None = None) -> str:
        """Human-readable lines for `clevermail queue list`."""
        now = time.time() if now is None else now
        lines = [f"{self.id}  queue-id {self.queue_id}  age {_span(now - self.arrival)}  "
                 f"size {self.size}  from <{self.sender}>"]
        for r in self.recipients:
            line = f"    <{r.address}>  {r.state}  attempts {r.attempts}"
            if r.state in ACTIVE:
                line += f"  next {'now' if r.next_attempt <= now else 'in ' + _span(r.next_attempt - now)}"
            if r.last_reply:
                line += f"  last: {r.last_reply}"
            lines.append(line)
        return "\n".join(lines)


def _span(seconds: float) -> str:
    s = max(0, int(seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{d}d{h}h" if d else f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def header_block(data: bytes) -> bytes:
    """The header section of a message (up to, not including, the empty line)."""
    end = data.find(b"\r\n\r\n")
    return data if end < 0 else data[:end + 2]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


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

    def __init__(self, queue: "RelayQueue", entry_id: str, tmp_json: Path):
        self.queue, self.id, self._tmp_json = queue, entry_id, tmp_json
        self.committed = False

    def commit(self) -> None:
        os.rename(self._tmp_json, self.queue._json(self.id))
        # One directory fsync makes both the body's and the envelope's names durable.
        _fsync_dir(self.queue.path)
        self.committed = True
        callback = self.queue.on_commit
        if callback is not None:
            try:
                callback()
            except Exception:    # the entry is queued; a failed wake-up only delays it
                log.exception("%s: on_commit callback failed", self.id)

    def abort(self) -> None:
        if self.committed:
            with contextlib.suppress(KeyError):
                self.queue.delete(self.id)
            return
        for p in (self._tmp_json, self.queue._body(self.id)):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


class RelayQueue:
    def __init__(self, queue_dir: str | os.PathLike):
        self.path = Path(queue_dir)
        self.tmp = self.path / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock_path = self.path / ".lock"
        self.on_commit: Callable[[], None] | None = None
        self.clock: Callable[[], float] = time.time    # seam for tests
        self.drop_orphans()

    # -- paths and names ------------------------------------------------------
    def _json(self, entry_id: str) -> Path:
        return self.path / f"{entry_id}.json"

    def _body(self, entry_id: str) -> Path:
        return self.path / f"{entry_id}.eml"

    @staticmethod
    def _check_id(entry_id: str) -> str:
        # Ids come from the command line too: never let one become a path.
        if not isinstance(entry_id, str) or not _ID_RE.match(entry_id):
            raise KeyError(entry_id)
        return entry_id

    def new_id(self) -> str:
        # Time first so that ids sort by arrival; random tail for uniqueness across
        # threads and processes (the O_EXCL create in prepare() is the final guard).
        return f"{time.time_ns() // 1000:013x}{secrets.token_hex(5)}"

    # -- enqueue ----------------------------------------------------------------
    def prepare(self, sender: str, recipients: list[str], data: bytes,
                queue_id: str) -> PendingEntry:
        if not recipients:
            raise ValueError("an entry needs at least one recipient")
        entry_id = self.new_id()
        now = self.clock()
        seen, rcpts = set(), []
        for address in recipients:
            if address.lower() not in seen:
                seen.add(address.lower())
                rcpts.append(Recipient(address=address, next_attempt=now))
        entry = Entry(id=entry_id, queue_id=queue_id, sender=sender, arrival=now,
                      size=len(data), recipients=rcpts)
        entry.add_history(now, "queued", f"from <{sender}> to {len(rcpts)} recipient(s)")
        # The body goes straight to its final name: without an envelope it is an
        # invisible orphan, so only the envelope needs the temp-then-rename dance.
        _write_file(self._body(entry_id), data)
        tmp_json = self.tmp / f"{entry_id}.json"
        try:
            _write_file(tmp_json, json.dumps(entry.to_json()).encode())
        except BaseException:
            self._body(entry_id).unlink(missing_ok=True)
            raise
        return PendingEntry(self, entry_id, tmp_json)

    def enqueue(self, sender: str, recipients: list[str], data: bytes, queue_id: str) -> str:
        pending = self.prepare(sender, recipients, data, queue_id)
        pending.commit()
        return pending.id

    # -- reading ----------------------------------------------------------------
    def scan(self) -> list[tuple[str, tuple]]:
        """(entry id, change key) for every committed entry; the key changes on every
        rewrite (new inode), so callers can cache parsed envelopes cheaply."""
        out = []
        with os.scandir(self.path) as it:
            for de in it:
                name = de.name
                if not name.endswith(".json") or not _ID_RE.match(name[:-5]):
                    continue
                try:
                    st = de.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                out.append((name[:-5], (st.st_ino, st.st_mtime_ns, st.st_size)))
        return out

    def get(self, entry_id: str) -> Entry:
        path = self._json(self._check_id(entry_id))
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise KeyError(entry_id) from None
        return Entry.from_json(json.loads(raw))

    def list(self) -> list[Entry]:
        entries = []
        for entry_id, _ in self.scan():
            try:
                entries.append(self.get(entry_id))
            except KeyError:
                continue                      # removed meanwhile
            except (ValueError, TypeError, AttributeError):
                log.error("%s: unreadable queue envelope, skipped", entry_id)
        return sorted(entries, key=lambda e: (e.arrival, e.id))

    def read_body(self, entry_id: str) -> bytes:
        try:
            return self._body(self._check_id(entry_id)).read_bytes()
        except FileNotFoundError:
            raise KeyError(entry_id) from None

    def read_headers(self, entry_id: str, limit: int = 1 << 20) -> bytes:
        """The message's header section, read without loading a large body."""
        try:
            with open(self._body(self._check_id(entry_id)), "rb") as f:
                data = b""
                while len(data) < limit:
                    chunk = f.read(65536)
                    data += chunk
                    if not chunk or b"\r\n\r\n" in data:
                        break
        except FileNotFoundError:
            raise KeyError(entry_id) from None
        return header_block(data)

    # -- changing ---------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The queue-wide lock for read-modify-write of envelopes (threads and
        processes alike); held for milliseconds, never across network I/O."""
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(self, entry: Entry) -> None:
        tmp = self.tmp / f"{entry.id}.{secrets.token_hex(4)}.json"
        _write_file(tmp, json.dumps(entry.to_json()).encode())
        os.replace(tmp, self._json(entry.id))
        _fsync_dir(self.path)

    def update(self, entry_id: str, change: Callable[[Entry], object]) -> Entry | None:
        """Apply `change` to the current envelope under the lock and write it back;
        None if the entry no longer exists (deleted by the operator, or finished)."""
        with self.locked():
            try:
                entry = self.get(entry_id)
            except KeyError:
                return None
            if change(entry) is not False:
                self._write(entry)
            return entry

    def remove(self, entry_id: str) -> None:
        """Drop an entry (envelope first: see the module doc). Missing is fine."""
        self._check_id(entry_id)
        with self.locked():
            self._json(entry_id).unlink(missing_ok=True)
            self._body(entry_id).unlink(missing_ok=True)

    def delete(self, entry_id: str) -> None:
        self._check_id(entry_id)
        with self.locked():
            try:
                self._json(entry_id).unlink()
            except FileNotFoundError:
                raise KeyError(entry_id) from None
            self._body(entry_id).unlink(missing_ok=True)
        log.info("%s: deleted from the queue by the operator", entry_id)

    def flush(self, entry_id: str | None = None) -> int:
        """Make entries due now; returns how many had something to retry."""
        ids = [self._check_id(entry_id)] if entry_id is not None else [i for i, _ in self.scan()]
        count = 0
        for eid in ids:
            now = self.clock()

            def change(e: Entry) -> bool:
                active = e.active()
                for r in active:
                    r.next_attempt = min(r.next_attempt, now)
                if active:
                    e.add_history(now, "flushed")
                return bool(active)

            entry = self.update(eid, change)
            if entry is None and entry_id is not None:
                raise KeyError(entry_id)
            if entry is not None and entry.active():
                count += 1
        return count

    def mark_bounce(self, entry_id: str) -> None:
        """Fail every undelivered recipient now; the worker then sends the bounce."""
        now = self.clock()

        def change(e: Entry) -> None:
            for r in e.active():
                r.state, r.updated = "failed", now
                r.last_reply = "550 5.0.0 delivery cancelled by the administrator" + (
                    f" (last reply: {r.last_reply})" if r.last_reply else "")
            e.add_history(now, "bounce", "failed by the administrator")

        if self.update(self._check_id(entry_id), change) is None:
            raise KeyError(entry_id)
        log.info("%s: marked for bounce by the operator", entry_id)

    # -- claiming and crash debris ----------------------------------------------
    def claim(self, entry_id: str) -> Claim | None:
        """Non-blocking exclusive claim, or None if someone else holds the entry or
        it is gone. Check the envelope again after claiming: it may have changed."""
        try:
            fd = os.open(self._body(entry_id), os.O_RDONLY)
        except FileNotFoundError:
            # Envelope without body (damaged queue): lock the envelope instead so
            # the worker can still fail the entry with a bounce.
            try:
                fd = os.open(self._json(entry_id), os.O_RDONLY)
            except FileNotFoundError:
                return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if not self._json(entry_id).exists():
            os.close(fd)
            return None
        return Claim(fd)

    def drop_orphans(self, age: float = ORPHAN_AGE) -> int:
        """Remove uncommitted debris older than `age`: bodies without an envelope and
        temp envelopes. Younger ones may be a prepare() in progress elsewhere."""
        limit, dropped = time.time() - age, 0
        committed = {i for i, _ in self.scan()}
        candidates = [p for p in self.path.glob("*.eml") if p.stem not in committed]
        candidates += list(self.tmp.iterdir())
        for p in candidates:
            try:
                if p.stat().st_mtime < limit and not self._json(p.stem).exists():
                    p.unlink()
                    dropped += 1
                    log.warning("%s: dropped orphan queue file %s", p.name.split(".")[0], p.name)
            except FileNotFoundError:
                continue
        return dropped
