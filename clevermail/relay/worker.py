"""The relay worker: one thread that delivers due queue entries (the original's timer).

Owns scheduling, retries, expiry and reports; delivery.py does one attempt, queue.py
keeps the state, bounce.py formats the reports.

When it runs: every `interval` seconds, at once when kicked (queue.on_commit = kick,
so every enqueue in this process wakes it), when the earliest due entry comes due,
and within a second of any change to the queue directory by another process (the
CLI's flush/bounce/delete, a second instance's enqueue): it stats the directory's
mtime once a second, which costs one syscall.

A pass: scan the envelopes (parsed ones are cached by inode/mtime, so a pass over
thousands of waiting entries costs a stat each), then for each due entry in due
order: claim it (queue.claim, a non-blocking flock: an entry claimed by another
process is skipped), re-read it, deliver its due recipients grouped by domain (one
connection per domain; all to the smarthost if one is set), record per-recipient
results (2xx delivered, 4xx deferred with the next attempt from retry_schedule plus
+-10% jitter, 5xx failed; a deferral at or past arrival + queue_lifetime fails),
send the owed bounce (one per message and pass, RFC 3464; never for an empty
sender), optionally a delay warning, and remove the entry once nothing is left.

Robustness: every exception of an entry is logged with its queue id and the entry is
left alone for at least MIN_GAP seconds; a crash of the whole pass is logged and the
loop goes on; waits are never shorter than needed and never spin. Bounces to local
senders go through local_deliver; to remote senders they are queued (empty sender).

TLS to MX hosts (see delivery.py): opportunistic like Postfix's "may": STARTTLS when
offered, verified with tls_context (None = ssl.create_default_context()); when the
handshake fails, e.g. on a certificate that does not verify, the message goes in
plaintext over a new connection. The smarthost's TLS is never optional.
"""
from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
from typing import Callable

from clevermail.relay.bounce import make_dsn
from clevermail.relay.delivery import Result, Transport, deliver_mx, deliver_smarthost
from clevermail.relay.queue import ACTIVE, Entry, RelayQueue

MIN_GAP = 1.0               # seconds between two looks at one entry: no busy loop
REPORT_RETRY = 300.0        # after a report could not be delivered
JITTER = 0.1


class RelayWorker:
    def __init__(self, queue: RelayQueue, *, hostname: str, resolver,
                 local_deliver: Callable[[str, bytes], None],
                 is_local: Callable[[str], bool], interval: float = 60.0, mx_port: int = 25,
                 retry_schedule=(300, 600, 1200, 2400, 4800, 9600, 14400),
                 queue_lifetime: float = 5 * 86400, delay_warning: float | None = None,
                 smarthost: str | None = None, smarthost_port: int = 587,
                 smarthost_user: str | None = None, smarthost_password: str | None = None,
                 smarthost_tls: str = "starttls", tls_context=None,
                 connect_timeout: float = 30.0, logger: logging.Logger | None = None):
        if smarthost_tls not in ("starttls", "implicit", "none"):
            raise ValueError(f"smarthost_tls must be starttls, implicit or none: {smarthost_tls!r}")
        if not retry_schedule:
            raise ValueError("retry_schedule needs at least one delay")
        self.queue = queue
        self.hostname = hostname
        self.local_deliver, self.is_local = local_deliver, is_local
        self.interval = float(interval)
        self.retry_schedule = tuple(float(x) for x in retry_schedule)
        self.queue_lifetime = float(queue_lifetime)
        self.delay_warning = delay_warning
        self.smarthost, self.smarthost_port = smarthost, smarthost_port
        self.smarthost_user, self.smarthost_tls = smarthost_user, smarthost_tls
        self._smarthost_password = smarthost_password     # never logged
        self.log = logger or logging.getLogger("clevermail.relay")
        self.rng = random.Random()
        self.transport = Transport(hostname=hostname, resolver=resolver, port=mx_port,
                                   tls_context=tls_context, timeout=connect_timeout,
                                   rng=self.rng, log=self.log)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cache: dict[str, tuple] = {}          # id -> (stat key, queue id, due)
        self._not_before: dict[str, float] = {}
        self._next_due = 0.0
        self._dir_sig: int | None = None

    # -- seams --------------------------------------------------------------------
    @property
    def connect(self):
        """connect(address, port, timeout) -> socket; tests map addresses to sinks."""
        return self.transport.connect

    @connect.setter
    def connect(self, fn) -> None:
        self.transport.connect = fn

    def _now(self) -> float:
        return self.queue.clock()                   # one clock seam for queue and worker

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self.queue.on_commit = self.kick
        self._thread = threading.Thread(target=self._run, name="relay-worker", daemon=True)
        self._thread.start()
        self.log.info("relay worker started (queue %s, interval %ss)", self.queue.path, self.interval)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self.queue.on_commit == self.kick:
            self.queue.on_commit = None
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self.log.warning("relay worker still busy with a delivery after %ss", timeout)
            self._thread = None

    def kick(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                self.log.exception("-: relay queue pass failed")
                self._next_due = self._now() + MIN_GAP
            self._sleep()

    def _sleep(self) -> None:
        interval_end = time.monotonic() + self.interval
        while not self._stop.is_set():
            wait = min(1.0, interval_end - time.monotonic(), self._next_due - self._now())
            if wait <= 0:
                return
            if self._wake.wait(wait):
                self._wake.clear()
                return
            if self._dir_changed():
                return

    def _dir_changed(self) -> bool:
        try:
            mtime = os.stat(self.queue.path).st_mtime_ns
        except OSError:
            return False
        # Directory timestamps are coarse (a clock tick): a change in the same tick as
        # our last look would hide, so a recently changed directory is looked at again.
        return mtime != self._dir_sig or time.time() - mtime / 1e9 < 1.0

    # -- a pass ---------------------------------------------------------------------
    def run_once(self) -> int:
        """Process every due entry once, in the calling thread; returns how many
        entries had something done to them."""
        try:
            self._dir_sig = os.stat(self.queue.path).st_mtime_ns
        except OSError:
            self._dir_sig = None
        due, _ = self._scan(self._now())
        processed = 0
        for eid in due:
            if self._stop.is_set():
                break
            try:
                if self._process(eid):
                    processed += 1
            except Exception:
                qid = self._cache.get(eid, (None, "-"))[1]
                self.log.exception("%s: processing queue entry %s failed", qid, eid)
            self._not_before[eid] = max(self._not_before.get(eid, 0.0), self._now() + MIN_GAP)
        _, self._next_due = self._scan(self._now())
        return processed

    def _scan(self, now: float) -> tuple[list[str], float]:
        cache, due, next_due = {}, [], math.inf
        for eid, key in self.queue.scan():
            cached = self._cache.get(eid)
            if cached is None or cached[0] != key:
                try:
                    e = self.queue.get(eid)
                    cached = (key, e.queue_id, e.next_due(self.delay_warning))
                except KeyError:
                    continue
                except Exception:   # damaged envelope: report once per version of it
                    self.log.error("-: queue entry %s has an unreadable envelope", eid)
                    cached = (key, "-", math.inf)
            cache[eid] = cached
            when = max(cached[2], self._not_before.get(eid, 0.0))
            if when <= now:
                due.append((when, eid))
            else:
                next_due = min(next_due, when)
        self._cache = cache
        self._not_before = {k: v for k, v in self._not_before.items() if k in cache}
        return [eid for _, eid in sorted(due)], next_due

    def _process(self, eid: str) -> bool:
        claim = self.queue.claim(eid)
        if claim is None:           # another worker has it, or it is gone
            return False
        with claim:
            try:
                entry = self.queue.get(eid)
            except KeyError:
                return False
            now, did, body = self._now(), False, None
            due = [r for r in entry.active() if r.next_attempt <= now]
            if due:
                try:
                    body = self.queue.read_body(eid)
                except KeyError:
                    body = None
                results = self._deliver(entry, due, body)
                updated = self.queue.update(eid, lambda e: self._apply(e, results))
                if updated is None:
                    self.log.warning("%s: entry %s was deleted during delivery", entry.queue_id, eid)
                    return True
                entry, did = updated, True
            if entry.needs_bounce():
                entry = self._report(eid, entry, "failed", body) or entry
                did = True
            if self._warning_due(entry, self._now()):
                entry = self._report(eid, entry, "delayed", body) or entry
                did = True
            if entry.finished():
                self.queue.remove(eid)
                counts = {}
                for r in entry.recipients:
                    counts[r.state] = counts.get(r.state, 0) + 1
                self.log.info("%s: removed from the queue (%s)", entry.queue_id,
                              ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
                did = True
            return did

    def _warning_due(self, entry: Entry, now: float) -> bool:
        return (self.delay_warning is not None and bool(entry.sender) and not entry.warned
                and now >= entry.arrival + self.delay_warning
                and any(r.state == "deferred" for r in entry.recipients))

    # -- delivery -------------------------------------------------------------------
    def _deliver(self, entry: Entry, due, body: bytes | None) -> dict[str, Result]:
        qid = entry.queue_id
        if body is None:
            self.log.error("%s: the message body of queue entry %s is missing", qid, entry.id)
            return {r.address: Result(554, "5.3.0 the queued message body was lost") for r in due}
        results: dict[str, Result] = {}
        groups: dict[str, list[str]] = {}
        for r in due:
            local, _, domain = r.address.rpartition("@")
            if not local or not domain:
                results[r.address] = Result(553, "5.1.3 the recipient address has no domain")
            elif self._is_local(r.address, qid):
                results[r.address] = self._deliver_local(r.address, body, qid)
            else:
                key = self.smarthost if self.smarthost else domain.lower()
                groups.setdefault(key, []).append(r.address)
        for domain, rcpts in groups.items():
            try:
                if self.smarthost:
                    res = deliver_smarthost(
                        self.transport, entry.sender, rcpts, body, host=self.smarthost,
                        port=self.smarthost_port, tls=self.smarthost_tls,
                        user=self.smarthost_user, password=self._smarthost_password, qid=qid)
                else:
                    res = deliver_mx(self.transport, domain, entry.sender, rcpts, body, qid)
            except Exception:
                self.log.exception("%s: delivery to %s failed unexpectedly", qid, domain)
                res = {a: Result(451, "4.3.0 internal error during delivery") for a in rcpts}
            results.update(res)
        return results

    def _is_local(self, address: str, qid: str) -> bool:
        try:
            return bool(self.is_local(address))
        except Exception:
            self.log.exception("%s: is_local(%r) failed", qid, address)
            return False

    def _deliver_local(self, address: str, data: bytes, qid: str) -> Result:
        try:
            self.local_deliver(address, data)
            return Result(250, "2.0.0 delivered to the local mailbox", "local")
        except Exception as e:
            self.log.exception("%s: local delivery to <%s> failed", qid, address)
            return Result(451, f"4.3.0 local delivery failed: {e}", "local")

    def _backoff(self, attempts: int) -> float:
        base = self.retry_schedule[min(max(attempts, 1), len(self.retry_schedule)) - 1]
        return base * self.rng.uniform(1 - JITTER, 1 + JITTER)

    def _apply(self, e: Entry, results: dict[str, Result]) -> None:
        """Record one attempt's results in the fresh envelope (under the queue lock)."""
        now = self._now()
        expires = e.arrival + self.queue_lifetime
        for r in e.recipients:
            res = results.get(r.address)
            if res is None:
                continue
            if r.state not in ACTIVE:
                # The operator failed it meanwhile; a delivery that happened still wins
                # over a bounce not yet sent, anything else keeps the operator's word.
                if res.state == "delivered" and r.state == "failed":
                    r.state, r.last_reply, r.remote, r.updated = "delivered", res.reply, res.remote, now
                continue
            r.attempts += 1
            r.last_reply, r.remote, r.updated = res.reply, res.remote, now
            state = res.state
            if state == "deferred":
                if now >= expires:
                    state = "failed"
                else:
                    r.next_attempt = min(now + self._backoff(r.attempts), expires)
            r.state = state
            note = "expired: still deferred after the queue lifetime" if (
                state == "failed" and res.state == "deferred") else ""
            if state == "failed" and not e.sender:
                note = (note + "; " if note else "") + "no bounce: empty sender"
            e.add_history(now, state, f"<{r.address}> via {res.remote or '-'}: {res.reply}"
                          + (f" ({note})" if note else ""))
            self.log.info("%s: to=<%s> relay=%s attempt=%d status=%s%s: %s", e.queue_id,
                          r.address, res.remote or "none", r.attempts, state,
                          f" ({note})" if note else "", res.reply)

    # -- reports ----------------------------------------------------------------------
    def _report(self, eid: str, entry: Entry, action: str, body: bytes | None) -> Entry | None:
        """Send the bounce or delay warning for `entry`; the updated entry, or None if
        it could not be sent (retried later)."""
        now = self._now()
        wanted = "failed" if action == "failed" else "deferred"
        rcpts = [r for r in entry.recipients if r.state == wanted]
        if body is None:
            try:
                body = self.queue.read_headers(eid)
            except KeyError:
                body = b""
        dsn = make_dsn(reporting_mta=self.hostname, sender=entry.sender,
                       queue_id=entry.queue_id, arrival=entry.arrival, recipients=rcpts,
                       original=body, action=action, now=now,
                       retry_until=entry.arrival + self.queue_lifetime)
        try:
            if self._is_local(entry.sender, entry.queue_id):
                self.local_deliver(entry.sender, dsn)
                where = "delivered to the local mailbox"
            else:
                # An empty envelope sender: a report is never bounced (RFC 3464 2).
                where = "queued as " + self.queue.enqueue("", [entry.sender], dsn,
                                                          f"{entry.queue_id}-dsn")
        except Exception:
            self.log.exception("%s: the %s report to <%s> could not be sent; retrying later",
                               entry.queue_id, action, entry.sender)
            self._not_before[eid] = now + min(self.interval, REPORT_RETRY)
            return None
        addresses = {r.address for r in rcpts}

        def change(e: Entry) -> None:
            if action == "failed":
                for r in e.recipients:
                    if r.address in addresses and r.state == "failed":
                        r.state, r.updated = "bounced", now
            else:
                e.warned = True
            e.add_history(now, "bounce" if action == "failed" else "delay-warning",
                          f"report for {len(rcpts)} recipient(s) to <{entry.sender}> {where}")

        self.log.info("%s: %s report for %d recipient(s) to <%s> %s", entry.queue_id,
                      "bounce" if action == "failed" else "delay", len(rcpts), entry.sender, where)
        return self.queue.update(eid, change)
