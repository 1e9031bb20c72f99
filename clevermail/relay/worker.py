"""The relay worker: a scheduler thread (the original's timer) and a few delivery
threads that deliver due queue entries. Owns the thread, the passes and the sending
of reports; schedule.py decides retries, expiry and which reports are owed,
delivery.py makes one attempt (local.py one local delivery), queue.py keeps state,
bounce.py formats.

Wake-ups: every `interval` seconds; at once when kicked (queue.on_commit = kick, so
an enqueue in this process wakes it); when the earliest entry comes due; and within
a second of a change to the queue directory by another process (CLI flush, bounce,
delete; a second instance), noticed by one stat of the directory's mtime a second.

A pass scans the envelopes (parsed ones cached by inode/mtime: a waiting entry
costs one stat) and hands each due entry, once, to a delivery thread, which claims
it (queue.claim: a non-blocking flock, so an entry held by another process is
skipped), re-reads it, delivers its due recipients grouped by domain (one
connection per domain, or all to the smarthost), records per-recipient results
(schedule.py: 2xx delivered; 4xx deferred until now + retry_schedule[attempt] +-10%
jitter, or failed at arrival + queue_lifetime; 5xx failed), sends the owed bounce
(one per message and pass, RFC 3464; reports.py), optionally a delay warning, and
removes the entry once nothing is left. Several threads keep one
slow or dead domain (30 s connect timeouts) from holding up the rest of the queue.

Robustness: an entry's exception is logged with its queue id, the entry left alone
for MIN_GAP seconds at least; a failed pass is logged; nothing spins.

TLS (see tls_policy.py, delivery.py): opportunistic to MX hosts like Postfix's
"may" (encrypted even when the certificate does not verify; "ca" when it verifies
against tls_context, None = the system CAs), stricter where DANE ([relay] dnssec),
a recipient domain's MTA-STS policy (mta_sts.PolicyCache, cached under
settings.mta_sts_cache) or the entry's REQUIRETLS flag say so. The smarthost's TLS
is never optional; its CA file and fingerprint come from the settings.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import queue as queue_mod
import random
import ssl
import threading
import time
from collections import Counter
from typing import Callable

from clevermail.metrics import NO_METRICS
from clevermail.dsn import PassOn
from clevermail.relay.delivery import deliver_mx, deliver_smarthost, smarthost_context
from clevermail.relay.local import LocalDelivery
from clevermail.relay.mta_sts import PolicyCache
from clevermail.relay.smtp_client import Result, Transport
from clevermail.relay.queue import Entry, NoSuchEntry, RelayQueue
from clevermail.relay.reports import Reports
from clevermail.relay.schedule import (JITTER, backoff, mark_reported, record_results,
                                       report_recipients, warning_due)
from clevermail.relay.settings import RelaySettings

__all__ = ["JITTER", "MIN_GAP", "REPORT_RETRY", "RelayWorker"]

MIN_GAP = 1.0               # seconds between two looks at one entry: no busy loop
REPORT_RETRY = 300.0        # after a report could not be delivered


class RelayWorker:
    def __init__(self, queue: RelayQueue, settings: RelaySettings, resolver,
                 local_deliver: Callable[[str, list[str], bytes, str], None],
                 is_local: Callable[[str], bool], *, tls_context=None, logger: logging.Logger | None = None,
                 metrics=NO_METRICS, mta_sts_fetcher=None,
                 sign_report: Callable[[bytes], bytes] | None = None, targets=None):
        self.queue = queue
        self.metrics = metrics          # metrics.Metrics: outcomes and latency per recipient
        # our reports, DKIM-signed (bounce.make_dsn's sign); the SMTP handler sends
        # its local success reports through them too
        self.log = logger or logging.getLogger("clevermail.relay")
        self.local = LocalDelivery(local_deliver, is_local, self.log, metrics, targets)  # targets: local.py
        self.reports = Reports(queue, settings.hostname, local_deliver, self.local.is_local,
                               sign=sign_report, log=self.log)
        self.settings = settings
        self.rng = random.Random()
        self.transport = Transport(hostname=settings.hostname, resolver=resolver,
                                   port=settings.mx_port,
                                   # one context for all connections: loading the
                                   # CA store for each would cost milliseconds
                                   tls_context=tls_context or ssl.create_default_context(),
                                   timeout=settings.connect_timeout,
                                   rng=self.rng, log=self.log, dnssec=settings.dnssec,
                                   mta_sts=PolicyCache(resolver, settings.mta_sts_cache,
                                                       mta_sts_fetcher, log=self.log)
                                   if settings.mta_sts else None)
        # raises OSError/SSLError for a bad CA file: at start
        self.smarthost_context = smarthost_context(settings.smarthost_ca_file)
        self._lock = threading.Lock()               # _inflight and _not_before
        self._inflight: set[str] = set()
        self._tasks: queue_mod.SimpleQueue | None = None
        self._pool: list[threading.Thread] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cache: dict[str, tuple] = {}          # id -> (stat key, queue id, due)
        self._not_before: dict[str, float] = {}
        self._next_due = 0.0
        self._dir_sig: int | None = None

    # Seams: self.transport.connect(address, port, timeout) -> socket (tests map addresses
    # to sinks), self.rng (jitter, MX order), queue.clock (the one clock of queue and worker).
    def _now(self) -> float:
        return self.queue.clock()

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._tasks = queue_mod.SimpleQueue()
        # Daemon threads (not concurrent.futures): a delivery stuck in a long timeout
        # must not hold up the process's exit; its claim dies with the process.
        self._pool = [threading.Thread(target=self._pool_loop, args=(self._tasks,),
                                       name=f"relay-delivery-{i}", daemon=True)
                      for i in range(self.settings.concurrency)]
        for t in self._pool:
            t.start()
        self.queue.on_commit = self.kick
        self._thread = threading.Thread(target=self._run, name="relay-worker", daemon=True)
        self._thread.start()
        # Entries left by a crash (in flight included: their claims died with the
        # process) are simply due: the first pass, right now, takes them up.
        try:
            waiting = str(len(self.queue.scan()))
        except OSError as e:
            waiting = f"? ({e})"
        self.log.info("relay worker started (queue %s: %s entries, interval %ss, "
                      "%d delivery threads)", self.queue.path, waiting, self.settings.interval,
                      self.settings.concurrency)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self.queue.on_commit == self.kick:
            self.queue.on_commit = None
        end = time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(max(0.0, end - time.monotonic()))
            self._thread = None
        for _ in self._pool:
            self._tasks.put(None)
        for t in self._pool:
            t.join(max(0.0, end - time.monotonic()))
        if any(t.is_alive() for t in self._pool):
            self.log.warning("relay worker: a delivery was still running after %ss", timeout)
        self._pool = []

    def kick(self) -> None:
        self._wake.set()

    def update_settings(self, settings: RelaySettings) -> None:
        """Reload: later deliveries use `settings` (concurrency, nameservers: at start)."""
        try:
            self.smarthost_context = smarthost_context(settings.smarthost_ca_file)
        except (OSError, ssl.SSLError) as e:    # keep the old trust rather than none
            self.log.error("-: reload: [relay] smarthost_ca_file not loaded (%s)", e)
        mta_sts = (self.transport.mta_sts or PolicyCache(self.transport.resolver, settings.mta_sts_cache,
                                                         log=self.log)) if settings.mta_sts else None
        self.transport = dataclasses.replace(self.transport, hostname=settings.hostname, mta_sts=mta_sts,
                                             port=settings.mx_port, timeout=settings.connect_timeout)
        self.settings = settings
        self.reports.hostname = settings.hostname
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._dispatch(inline=False)
            except Exception:
                self.log.exception("-: relay queue pass failed")
                self._next_due = self._now() + MIN_GAP
            self._sleep()

    def _sleep(self) -> None:
        interval_end = time.monotonic() + self.settings.interval
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

    def _pool_loop(self, tasks) -> None:
        while True:
            eid = tasks.get()
            if eid is None:
                return
            if self._stop.is_set():
                with self._lock:
                    self._inflight.discard(eid)
                continue
            self._guarded(eid)

    # -- a pass ---------------------------------------------------------------------
    def run_once(self) -> int:
        """Process every due entry once, in the calling thread; returns how many
        entries had something done to them."""
        return self._dispatch(inline=True)

    def _dispatch(self, inline: bool) -> int:
        """Scan, then process due entries here (inline) or hand them to the delivery
        threads (each entry once: in-flight entries are skipped until done)."""
        try:
            self._dir_sig = os.stat(self.queue.path).st_mtime_ns
        except OSError:
            self._dir_sig = None
        due, _ = self._scan(self._now())
        processed = 0
        for eid in due:
            if self._stop.is_set():
                break
            with self._lock:
                self._inflight.add(eid)
            if inline:
                processed += self._guarded(eid)
            else:
                self._tasks.put(eid)
        _, self._next_due = self._scan(self._now())
        return processed

    def _guarded(self, eid: str) -> int:
        try:
            return 1 if self._process(eid) else 0
        except Exception:
            qid = self._cache.get(eid, (None, "-"))[1]
            self.log.exception("%s: processing queue entry %s failed", qid, eid)
            # A bug or a full disk would fail again at once: wait, do not flood the log.
            self._hold(eid, self._now() + max(MIN_GAP, min(self.settings.interval, REPORT_RETRY)))
            return 0
        finally:
            self._hold(eid, self._now() + MIN_GAP)
            with self._lock:
                self._inflight.discard(eid)

    def _hold(self, eid: str, until: float) -> None:
        with self._lock:
            self._not_before[eid] = max(self._not_before.get(eid, 0.0), until)

    def _scan(self, now: float) -> tuple[list[str], float]:
        """Due entries (in due order) and the earliest future due time; entries in
        flight count as neither (their thread will leave them with a new due time)."""
        cache, due, next_due = {}, [], math.inf
        with self._lock:
            inflight, not_before = set(self._inflight), dict(self._not_before)
        for eid, key in self.queue.scan():
            cached = self._cache.get(eid)
            if cached is None or cached[0] != key:
                try:
                    e = self.queue.get(eid)
                    cached = (key, e.queue_id, e.next_due(self.settings.delay_warning))
                except NoSuchEntry:
                    continue
                except Exception:   # damaged envelope: report once per version of it
                    self.log.error("-: queue entry %s has an unreadable envelope", eid)
                    cached = (key, "-", math.inf)
            cache[eid] = cached
            if eid in inflight:
                continue
            when = max(cached[2], not_before.get(eid, 0.0))
            if when <= now:
                due.append((when, eid))
            else:
                next_due = min(next_due, when)
        self._cache = cache
        with self._lock:
            for eid in [k for k in self._not_before if k not in cache]:
                del self._not_before[eid]
        return [eid for _, eid in sorted(due)], next_due

    def _process(self, eid: str) -> bool:
        claim = self.queue.claim(eid)
        if claim is None:           # another worker has it, or it is gone
            return False
        with claim:
            try:
                entry = self.queue.get(eid)
            except NoSuchEntry:
                return False
            if entry.held:          # put on hold since the scan: left alone until released
                return False
            now, did, body = self._now(), False, None
            due = [r for r in entry.active() if r.next_attempt <= now]
            if due:
                try:
                    body = self.queue.read_body(eid)
                except NoSuchEntry:
                    body = None
                results = self._deliver(entry, due, body)
                updated = self.queue.update(eid, lambda e: record_results(
                    e, results, self._now(), queue_lifetime=self.settings.queue_lifetime,
                    backoff=self._backoff, log=self.log))
                if updated is None:
                    self.log.warning("%s: entry %s was deleted during delivery", entry.queue_id, eid)
                    return True
                entry, did = updated, True
                self.metrics.relay_results(entry, results, self._now())
            if entry.needs_bounce():
                entry = self._report(eid, entry, "failed", body) or entry
                did = True
            if entry.needs_success_report():
                entry = self._report(eid, entry, "success", body) or entry
                did = True
            if warning_due(entry, self._now(), self.settings.delay_warning):
                entry = self._report(eid, entry, "delayed", body) or entry
                did = True
            if entry.finished():
                try:
                    self.queue.delete(eid)
                except NoSuchEntry:
                    pass            # the operator deleted it meanwhile: gone either way
                counts = sorted(Counter(r.state for r in entry.recipients).items())
                self.log.info("%s: removed from the queue (%s)", entry.queue_id,
                              ", ".join(f"{n} {s}" for s, n in counts))
                did = True
            return did

    # -- delivery -------------------------------------------------------------------
    def _deliver(self, entry: Entry, due, body: bytes | None) -> dict[str, Result]:
        qid = entry.queue_id
        if body is None:
            self.log.error("%s: the message body of queue entry %s is missing", qid, entry.id)
            return {r.address: Result(554, "5.3.0 the queued message body was lost") for r in due}
        results: dict[str, Result] = {}
        groups: dict[str, list[str]] = {}
        # read once: reload swaps them
        settings, transport, smarthost_context = self.settings, self.transport, self.smarthost_context
        smarthost = settings.smarthost
        # RFC 3461 6.2.1: the DSN request goes on to a next hop that offers DSN
        dsn = PassOn.of(entry.ret, entry.envid, [(r.address, r.notify, r.orcpt) for r in due])
        for r in due:
            local, _, domain = r.address.rpartition("@")
            if not local or not domain:
                results[r.address] = Result(553, "5.1.3 the recipient address has no domain")
            elif self.local.is_local(r.address, qid):
                results[r.address] = self.local.deliver(entry.sender, r.address, body, qid, r.folder, r.flags)
            else:
                key = smarthost[0] if smarthost else domain.lower()
                groups.setdefault(key, []).append(r.address)
        for domain, rcpts in groups.items():
            try:
                if smarthost:
                    res = deliver_smarthost(
                        transport, entry.sender, rcpts, body, host=smarthost[0], port=smarthost[1],
                        tls=settings.smarthost_tls, user=settings.smarthost_user,
                        password=settings.smarthost_password, qid=qid, context=smarthost_context,
                        fingerprint=settings.smarthost_fingerprint, requiretls=entry.requiretls, dsn=dsn)
                else:
                    res = deliver_mx(transport, domain, entry.sender, rcpts, body, qid,
                                     requiretls=entry.requiretls, dsn=dsn)
            except Exception:
                self.log.exception("%s: delivery to %s failed unexpectedly", qid, domain)
                res = {a: Result(451, "4.3.0 internal error during delivery") for a in rcpts}
            results.update(res)
        return results

    def _backoff(self, attempts: int) -> float:
        return backoff(self.settings.retry_schedule, attempts, self.rng)

    # -- reports ----------------------------------------------------------------------
    def _report(self, eid: str, entry: Entry, action: str, body: bytes | None) -> Entry | None:
        """Send the bounce, delay warning or success report for `entry` (reports.py);
        the updated entry, or None if it could not be sent (retried later)."""
        now = self._now()
        rcpts = report_recipients(entry, action)
        full = action == "failed" and entry.ret == "FULL"       # RFC 3461 4.3
        if body is None:
            try:
                body = self.queue.read_body(eid) if full else self.queue.read_headers(eid)
            except NoSuchEntry:
                body = b""
        where = self.reports.send(sender=entry.sender, queue_id=entry.queue_id, arrival=entry.arrival,
                                  recipients=rcpts, original=body, action=action, now=now,
                                  retry_until=entry.expires(self.settings.queue_lifetime),
                                  envid=entry.envid, ret=entry.ret)
        if where is None:
            self._hold(eid, now + min(self.settings.interval, REPORT_RETRY))
            return None
        addresses = {r.address for r in rcpts}
        detail = f"report for {len(rcpts)} recipient(s) to <{entry.sender}> {where}"
        self.log.info("%s: %s report for %d recipient(s) to <%s> %s", entry.queue_id,
                      {"failed": "bounce", "delayed": "delay"}.get(action, action), len(rcpts),
                      entry.sender, where)
        return self.queue.update(eid, lambda e: mark_reported(e, action, addresses, now, detail))
