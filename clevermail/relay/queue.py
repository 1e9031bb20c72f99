"""The relay queue: messages waiting for remote delivery, as plain files.

Owns the on-disk format, atomic enqueue, per-recipient state, the atomic claim that
keeps two workers (threads or processes) off the same entry, and the operator actions
(list, select, summary, show, flush, delete, bounce, hold, release) that the CLI runs
from another process while the server runs. It knows nothing of SMTP: delivery.py and
worker.py do that.

Names: an entry is named by the queue id it was given (the id of the SMTP 250 reply
"queued as <qid>" and of every log line); a second entry of the same message (its
remote recipients and an alias's forwards are two entries) is QID_2, and so on. A
queue id that is no valid name gets new_id(), as every entry did before this rule (a
time stamp and a random tail). resolve() takes a name or a queue id, in any case.

On-disk layout of ``<queue_dir>`` (normally ``<data_dir>/queue``)::

    <id>.eml     the message as received: CRLF line endings, not dot-stuffed.
                 Written and fsynced by prepare(), never modified afterwards.
    <id>.json    the envelope (format: entry.py). Its presence IS the entry: it is
                 written in tmp/ and renamed into place (commit), then replaced
                 on every change by durable.atomic_write, so readers always see a
                 whole file.
    <id>.json.<...>.tmp  an envelope rewrite in progress; leftovers are crash debris.
    tmp/         envelopes being written; leftovers are crash debris.
    .lock        flock()ed briefly around every read-modify-write of an envelope.

Removal unlinks the ``.json`` first: an ``.eml`` without ``.json`` is an orphan (an
uncommitted prepare, or the tail of a removal) and is dropped once it is older than
ORPHAN_AGE, so a prepare in progress in another process is never touched.

The envelope's JSON format and the recipient states are entry.py's, the claim (an
flock on the ``.eml`` for a whole attempt) and the prepared entry handles.py's; all
are re-exported here for the callers that import them from this module.
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
from pathlib import Path
from typing import Callable, Iterator

from clevermail.durable import atomic_write, write_exclusive
from clevermail.relay.entry import ACTIVE, FORMAT_VERSION, HISTORY_LIMIT, STATES, Entry, Recipient
from clevermail.relay.handles import Claim, NoSuchEntry, PendingEntry, header_block
from clevermail.relay.select import QueueSummary, Selector, summarize

log = logging.getLogger("clevermail.relay")

ORPHAN_AGE = 300.0        # seconds; longer than any prepare -> commit takes
_SIBLINGS = 99            # entries one queue id may name (QID, QID_2, ...) before new_id()
_ID_RE = re.compile(r"^[0-9A-Za-z_-]{1,64}$")

__all__ = ["ACTIVE", "FORMAT_VERSION", "HISTORY_LIMIT", "ORPHAN_AGE", "STATES", "Claim", "Entry",
           "NoSuchEntry", "PendingEntry", "QueueSummary", "Recipient", "RelayQueue",
           "Selector", "header_block"]


class RelayQueue:
    def __init__(self, queue_dir: str | os.PathLike):
        self.path = Path(queue_dir)
        self.tmp = self.path / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock_path = self.path / ".lock"
        self.on_commit: Callable[[], None] | None = None
        self.clock: Callable[[], float] = time.time    # seam for tests
        self._summary_cache: dict[str, tuple] = {}      # id -> (change key, Entry or None)
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
            raise NoSuchEntry(entry_id)
        return entry_id

    def new_id(self) -> str:
        # Time first so that ids sort by arrival; random tail for uniqueness across
        # threads and processes (the O_EXCL create in prepare() is the final guard).
        return f"{time.time_ns() // 1000:013x}{secrets.token_hex(5)}"

    # -- enqueue ----------------------------------------------------------------
    def prepare(self, sender: str, recipients: list[str], data: bytes,
                queue_id: str, requiretls: bool = False, *, ret: str | None = None,
                envid: str | None = None, dsn: dict | None = None,
                places: dict | None = None) -> PendingEntry:
        """An entry written but not yet visible (commit or abort it).  `ret`, `envid`
        and `dsn` (address -> (notify, orcpt)) are the message's RFC 3461 request;
        `places` (local address -> (folder, flags)) where a local copy goes."""
        if not recipients:
            raise ValueError("an entry needs at least one recipient")
        now = self.clock()
        seen, rcpts = set(), []
        for address in recipients:
            if address.lower() not in seen:
                seen.add(address.lower())
                notify, orcpt = (dsn or {}).get(address, (None, None))
                folder, flags = (places or {}).get(address, (None, ()))
                rcpts.append(Recipient(address=address, next_attempt=now,
                                       notify=list(notify) if notify is not None else None,
                                       orcpt=orcpt, folder=folder, flags=list(flags) or None))
        # The body goes straight to its final name: without an envelope it is an
        # invisible orphan, so only the envelope needs the temp-then-rename dance.
        # Its O_EXCL create also claims the name: the queue id if free, else a new one.
        entry_id = self._create_body(queue_id, data)
        entry = Entry(id=entry_id, queue_id=queue_id, sender=sender, arrival=now,
                      size=len(data), recipients=rcpts, requiretls=requiretls, ret=ret, envid=envid)
        entry.add_history(now, "queued", f"from <{sender}> to {len(rcpts)} recipient(s)")
        tmp_json = self.tmp / f"{entry_id}.json"
        try:
            write_exclusive(tmp_json, json.dumps(entry.to_json()).encode())
        except BaseException:
            self._body(entry_id).unlink(missing_ok=True)
            raise
        return PendingEntry(self, entry_id, queue_id, tmp_json)

    def _create_body(self, queue_id: str, data: bytes) -> str:
        """Write the body under the entry's name and return that name: the queue id,
        or QID_2, QID_3, ... when one message makes several entries (remote recipients
        and an alias's forwards) or an id comes back; a name is free when no entry,
        body or temp envelope has it (O_EXCL on the body decides races). new_id() for
        a queue id that is no valid name."""
        if _ID_RE.match(queue_id or ""):
            for n in range(1, _SIBLINGS + 1):
                name = queue_id if n == 1 else f"{queue_id}_{n}"
                if not _ID_RE.match(name) or self._json(name).exists() \
                        or (self.tmp / f"{name}.json").exists():
                    continue
                try:
                    write_exclusive(self._body(name), data)
                    return name
                except FileExistsError:
                    continue
        entry_id = self.new_id()
        write_exclusive(self._body(entry_id), data)
        return entry_id

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
            raise NoSuchEntry(entry_id) from None
        try:
            return Entry.from_json(json.loads(raw))
        except (KeyError, ValueError, TypeError, AttributeError) as e:
            raise ValueError(f"{entry_id}: damaged queue envelope ({e!r})") from e

    def list(self) -> list[Entry]:
        entries = []
        for entry_id, _ in self.scan():
            try:
                entries.append(self.get(entry_id))
            except NoSuchEntry:
                continue                      # removed meanwhile
            except ValueError:
                log.error("-: queue entry %s has a damaged envelope, skipped", entry_id)
        return sorted(entries, key=lambda e: (e.arrival, e.id))

    def resolve(self, ident: str) -> list[str]:
        """The entry names an operator's id means: every entry whose name or queue id
        equals it (the entries of one message are QID, QID_2, ...: found by name; an
        id in another case, or an older entry's queue id, by a scan of the envelopes;
        an entry that got new_id() beside one named by its queue id answers to its own
        name). NoSuchEntry if none (an id that could be a path never gets this far)."""
        self._check_id(ident)
        for name in dict.fromkeys((ident, ident.upper())):
            if self._json(name).exists():
                return [name] + sorted(
                    p.name[:-5] for p in self.path.glob(f"{name}_*.json")
                    if _ID_RE.match(p.name[:-5]) and self._queue_id_of(p.name[:-5]) == name)
        want, found = ident.lower(), []
        for entry_id, _ in self.scan():
            if entry_id.lower() == want or (self._queue_id_of(entry_id) or "").lower() == want:
                found.append(entry_id)          # (a damaged envelope: by its name only)
        if not found:
            raise NoSuchEntry(ident)
        return sorted(found)

    def _queue_id_of(self, entry_id: str) -> str | None:
        try:
            return self.get(entry_id).queue_id
        except (NoSuchEntry, ValueError):       # gone meanwhile, or damaged
            return None

    def select(self, selector: "Selector", now: float | None = None) -> list[Entry]:
        """The readable entries the selector matches, oldest first."""
        now = self.clock() if now is None else now
        return [e for e in self.list() if selector.matches(e, now)]

    def summary(self, now: float | None = None) -> QueueSummary:
        """Counts by entry state and recipient state, the oldest entry's age and the
        total size (select.QueueSummary); one pass over the envelopes, no body read,
        no lock taken (an entry changing meanwhile is counted as it was or as it is).
        Parsed envelopes are kept by scan()'s change key, so a repeated call (a metrics
        scrape) costs a stat per unchanged entry."""
        now = self.clock() if now is None else now
        entries, damaged, cache = [], 0, {}
        for entry_id, key in self.scan():
            cached = self._summary_cache.get(entry_id)
            if cached is None or cached[0] != key:
                try:
                    cached = (key, self.get(entry_id))
                except NoSuchEntry:
                    continue
                except ValueError:
                    cached = (key, None)
            cache[entry_id] = cached
            if cached[1] is None:
                damaged += 1
            else:
                entries.append(cached[1])
        self._summary_cache = cache         # replaced whole: concurrent callers never see half
        return summarize(entries, now, damaged)

    def read_body(self, entry_id: str) -> bytes:
        try:
            return self._body(self._check_id(entry_id)).read_bytes()
        except FileNotFoundError:
            raise NoSuchEntry(entry_id) from None

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
            raise NoSuchEntry(entry_id) from None
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

    def update(self, entry_id: str, change: Callable[[Entry], object]) -> Entry | None:
        """Apply `change` to the current envelope under the lock and write it back;
        None if the entry no longer exists (deleted by the operator, or finished)."""
        with self.locked():
            try:
                entry = self.get(entry_id)
            except NoSuchEntry:
                return None
            if change(entry) is not False:
                atomic_write(self._json(entry_id), json.dumps(entry.to_json()).encode())
            return entry

    def delete(self, entry_id: str) -> str:
        """Drop an entry, envelope first (see the module doc), and return its queue id
        for the caller's log line ("-" when the envelope is damaged: the operator can
        still delete it). NoSuchEntry if it is not there (any more)."""
        self._check_id(entry_id)
        with self.locked():
            try:
                qid = self.get(entry_id).queue_id
            except ValueError:
                qid = "-"
            self._json(entry_id).unlink(missing_ok=True)
            self._body(entry_id).unlink(missing_ok=True)
        return qid

    def flush(self, entry_id: str | None = None) -> int:
        """Make entries due now; returns how many had something to retry (held entries
        are left held and not counted). NoSuchEntry: no such entry; ValueError: that
        entry's envelope is damaged (flushing all skips damaged ones)."""
        ids = [self._check_id(entry_id)] if entry_id is not None else [i for i, _ in self.scan()]
        now, count = self.clock(), 0
        change = lambda e: e.make_due(now)      # noqa: E731  (False: nothing to write)
        for eid in ids:
            try:
                entry = self.update(eid, change)
            except ValueError:
                if entry_id is not None:
                    raise
                # One damaged envelope must not stop the flush of all the others.
                log.error("-: queue entry %s has a damaged envelope, not flushed", eid)
                continue
            if entry is None and entry_id is not None:
                raise NoSuchEntry(entry_id)
            count += bool(entry is not None and entry.active() and not entry.held)
        return count

    def mark_bounce(self, entry_id: str, only: Callable[[str], bool] | None = None) -> int:
        """Fail every undelivered recipient now (or those `only(address)` accepts) and
        release a hold, so that the worker sends the bounce; returns how many
        recipients were failed."""
        now, failed = self.clock(), []
        change = lambda e: failed.append(e.fail_undelivered(now, only))     # noqa: E731
        entry = self.update(self._check_id(entry_id), change)
        if entry is None:
            raise NoSuchEntry(entry_id)
        log.info("%s: entry %s marked for bounce by the operator", entry.queue_id, entry_id)
        return failed[-1]

    def hold(self, entry_id: str) -> bool:
        """Put an entry on hold (durably: its envelope says so): the worker never
        attempts it, nor expires or reports it, until release(). An attempt already
        under way finishes first. False if it was held already."""
        return self._set_hold(entry_id, True)

    def release(self, entry_id: str) -> bool:
        """End a hold: its undelivered recipients are due now, and the time it spent
        held is added to its lifetime (entry.py). False if it was not held."""
        return self._set_hold(entry_id, False)

    def _set_hold(self, entry_id: str, held: bool) -> bool:
        now, changed = self.clock(), []
        change = lambda e: changed.append(e.set_hold(now, held)) or changed[-1]    # noqa: E731
        entry = self.update(self._check_id(entry_id), change)
        if entry is None:
            raise NoSuchEntry(entry_id)
        return changed[-1]

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
        # durable.atomic_write's temp files of envelope rewrites (<id>.json.<...>.tmp)
        candidates += list(self.path.glob("*.tmp"))
        for p in candidates:
            try:
                if p.stat().st_mtime < limit and not self._json(p.stem).exists():
                    p.unlink()
                    dropped += 1
                    log.warning("-: dropped orphan queue file %s (crash debris)", p.name)
            except FileNotFoundError:
                continue
        return dropped
