"""A relay queue entry: the envelope of one queued message and its recipients.

Owns the in-memory form of ``<queue_dir>/<id>.json`` (Entry, Recipient), its JSON
encoding, the per-recipient state rules and the text `clevermail queue list/show`
prints. It does no I/O: queue.py reads, writes, locks and claims the files.

The JSON envelope (one object, UTF-8, written whole and renamed into place)::

    {"version": 1,                       FORMAT_VERSION of the writer
     "id": "05f9a1b2c3d4ea1b2c3d4e5",    the entry id (the file name stem)
     "queue_id": "...",                  the SMTP session's message id, for the logs
     "sender": "alice@example.org",      envelope sender; "" for a report (no bounce)
     "arrival": 1700000000.0,            time queued (Unix seconds, float)
     "size": 1234,                       bytes of <id>.eml
     "warned": false,                    delay warning already sent
     "held": false,                      on hold: the worker leaves it alone
     "held_since": null,                 when the current hold began (Unix seconds)
     "held_total": 0.0,                  seconds spent on hold before, not counted
                                         in the queue lifetime
     "requiretls": false,                RFC 8689: relay only over verified TLS
     "ret": null, "envid": null,         RFC 3461 RET (FULL|HDRS) and ENVID (decoded)
     "recipients": [{"address": "bob@example.net", "state": "deferred",
                     "attempts": 2, "last_reply": "451 4.3.0 try later",
                     "next_attempt": 1700000600.0, "remote": "mx.example.net [192.0.2.1]",
                     "updated": 1700000300.0,
                     "notify": ["SUCCESS", "FAILURE"],   RFC 3461 NOTIFY; null: not given
                     "orcpt": "rfc822;bob@example.net",  ORCPT, decoded; null: not given
                     "report": null,                     success report owed: "delivered",
                                                         "expanded" or "relayed" (RFC 3464 2.3.3)
                     "folder": "Lists", "flags": ["\\Seen"]}, ...]
                                         a local copy queued by a full mailbox:
                                         where its Sieve script or the inbound
                                         policy filed it (absent: the usual way)
     "history": [{"time": 1700000000.0, "event": "queued", "detail": "..."},
                 {..., "event": "delivered", "tls": "TLSv1.3/ca"}, ...]}

An attempt's history event says what TLS its session had ("tls": version/verified,
verified none, ca, mta-sts, dane or fingerprint; "no-tls"), as relay/tls_policy.py
TLSInfo prints it.

Readers ignore unknown recipient keys and default missing optional ones, so a
field may be added without a version bump; the newest HISTORY_LIMIT events are kept.

Recipient states: pending (never tried), deferred (4xx; retried at next_attempt),
delivered (2xx), failed (5xx, expired or cancelled; a bounce is owed unless the
sender is empty or the recipient's NOTIFY leaves FAILURE out), bounced (failed and
reported). A delivered recipient whose NOTIFY asks for SUCCESS owes a success
report (`report`) until it is sent. An entry is finished, and removed from the
queue, when no recipient is pending or deferred and no report is owed.  Entries
written before DSN have no ret/envid/notify/orcpt/report: they load with the
defaults (no NOTIFY: failure and delay reports, as before).

Entry states (what `clevermail queue list --state` filters on and RelayQueue.summary
counts; one per entry, first match wins): held (the operator put it on hold: never
attempted, never expired, no report sent, until released), bounce (a bounce is owed
and about to be sent), active (a recipient is new or due now), deferred (every
remaining recipient waits for its next retry).

Hold and the lifetime (our rule, close to Postfix's "held mail does not expire"):
time on hold does not count. An entry expires at arrival + held_total +
queue_lifetime, so a message held for a day and released gets the rest of its
lifetime back, and a delay warning is owed by the same shifted clock.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

from clevermail.dsn import DELAY, FAILURE, wants

ACTIVE = frozenset({"pending", "deferred"})
HISTORY_LIMIT = 200       # events kept per entry (retries over days add up)
FORMAT_VERSION = 1
STATES = ("active", "deferred", "held", "bounce")     # entry states, see the module doc


@dataclass
class Recipient:
    address: str
    state: str = "pending"
    attempts: int = 0
    last_reply: str | None = None
    next_attempt: float = 0.0
    remote: str | None = None        # "mx.example.com [192.0.2.1]" that gave last_reply
    updated: float | None = None     # time of the last attempt or state change
    notify: list[str] | None = None  # RFC 3461 NOTIFY (None: not given, see dsn.wants)
    orcpt: str | None = None         # RFC 3461 ORCPT, "addr-type;address" decoded
    report: str | None = None        # success report owed: "delivered", "expanded" or "relayed"
    # a local copy deferred by a full mailbox: the folder and IMAP flags Sieve or the
    # inbound policy chose for it at reception (None: INBOX, as a local delivery does)
    folder: str | None = None
    flags: list[str] | None = None

    def wants(self, kind: str) -> bool:
        """Whether this recipient's NOTIFY asks for a report of `kind` (dsn.py)."""
        return wants(self.notify, kind)


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
    held: bool = False               # on hold by the operator (see the module doc)
    held_since: float | None = None  # start of the current hold
    held_total: float = 0.0          # seconds on hold before the current hold
    requiretls: bool = False         # RFC 8689 REQUIRETLS: verified TLS or a bounce
    ret: str | None = None           # RFC 3461 RET: FULL or HDRS (None: headers)
    envid: str | None = None         # RFC 3461 ENVID, decoded

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
                   history=list(d.get("history", [])), warned=bool(d.get("warned", False)),
                   held=bool(d.get("held", False)), held_since=_opt_float(d.get("held_since")),
                   held_total=float(d.get("held_total", 0.0)),
                   requiretls=bool(d.get("requiretls", False)),
                   ret=d.get("ret"), envid=d.get("envid"))

    def add_history(self, now: float, event: str, detail: str = "", tls: str | None = None) -> None:
        self.history.append({"time": now, "event": event, "detail": detail,
                             **({"tls": tls} if tls else {})})
        del self.history[:-HISTORY_LIMIT]

    def active(self) -> list[Recipient]:
        return [r for r in self.recipients if r.state in ACTIVE]

    def needs_bounce(self) -> bool:
        # RFC 5321 6.1 / RFC 3464: never report on a report (empty reverse path);
        # RFC 3461 4.1: only to recipients whose NOTIFY asks for failures.
        return bool(self.sender) and any(r.state == "failed" and r.wants(FAILURE)
                                         for r in self.recipients)

    def needs_success_report(self) -> bool:
        return bool(self.sender) and any(r.report for r in self.recipients)

    def needs_report(self) -> bool:
        return self.needs_bounce() or self.needs_success_report()

    def finished(self) -> bool:
        return not self.active() and not self.needs_report()

    def clock_start(self) -> float:
        """Arrival shifted by the time spent on hold: the origin of the lifetime and of
        the delay warning (time on hold does not count, see the module doc)."""
        return self.arrival + self.held_total

    def expires(self, queue_lifetime: float) -> float:
        return self.clock_start() + queue_lifetime

    def hold(self, now: float) -> bool:
        """Put on hold; False if it already was (nothing to write)."""
        if self.held:
            return False
        self.held, self.held_since = True, now
        return True

    def release(self, now: float) -> bool:
        """End a hold, adding its length to held_total; False if it was not held."""
        if not self.held:
            return False
        if self.held_since is not None:
            self.held_total += max(0.0, now - self.held_since)
        self.held, self.held_since = False, None
        return True

    # -- the operator's actions (queue.py flush, mark_bounce, hold, release) ----------
    def make_due(self, now: float) -> bool:
        """Flush: undelivered recipients due now; False when there is nothing to
        retry (or it is held: a flush never releases a hold), so nothing to write."""
        if self.held:
            return False
        for r in self.active():
            r.next_attempt = min(r.next_attempt, now)
        if self.active():
            self.add_history(now, "flushed")
        return bool(self.active())

    def fail_undelivered(self, now: float, only=None) -> int:
        """Fail every undelivered recipient (those `only(address)` accepts) and end a
        hold, so that the bounce goes out; how many were failed."""
        failed = 0
        for r in self.active():
            if only is not None and not only(r.address):
                continue
            r.state, r.updated = "failed", now
            r.last_reply = "550 5.0.0 delivery cancelled by the administrator" + (
                f" (last reply: {r.last_reply})" if r.last_reply else "")
            failed += 1
        if self.release(now):
            self.add_history(now, "released", "to send the bounce")
        self.add_history(now, "bounce", f"{failed} recipient(s) failed by the administrator")
        return failed

    def set_hold(self, now: float, held: bool) -> bool:
        """hold() or release() by the administrator (a release makes the undelivered
        recipients due now); False when nothing changed."""
        if not (self.hold(now) if held else self.release(now)):
            return False
        if not held:
            for r in self.active():
                r.next_attempt = min(r.next_attempt, now)
        self.add_history(now, "held" if held else "released", "by the administrator")
        return True

    def state(self, now: float) -> str:
        """The entry's state (one of STATES, see the module doc)."""
        if self.held:
            return "held"
        if self.needs_report():
            return "bounce"
        active = self.active()
        if not active or any(r.state == "pending" or r.next_attempt <= now for r in active):
            return "active"          # (finished: the worker removes it right now)
        return "deferred"

    def next_due(self, delay_warning: float | None = None) -> float:
        """Earliest time the worker has something to do here (0 = now, inf = never:
        a held entry waits for its release)."""
        if self.held:
            return math.inf
        if self.needs_report() or self.finished():
            return 0.0
        due = min(r.next_attempt for r in self.active())
        if (delay_warning is not None and self.sender and not self.warned
                and any(r.state == "deferred" and r.wants(DELAY) for r in self.recipients)):
            due = min(due, self.clock_start() + delay_warning)
        return due

    def describe(self, now: float | None = None, history: bool = False) -> str:
        """Human-readable lines for `clevermail queue list` (and, with the history,
        for `queue show`, which adds the headers from RelayQueue.read_headers)."""
        now = time.time() if now is None else now
        # New entries are named by their queue id; older ones show both names.
        name = self.id if self.id == self.queue_id else f"{self.id}  queue-id {self.queue_id}"
        lines = [f"{name}  age {span(now - self.arrival)}  "
                 f"size {self.size}  from <{self.sender}>" + ("  HELD" if self.held else "")
                 + ("  REQUIRETLS" if self.requiretls else "")
                 + (f"  RET={self.ret}" if self.ret else "")
                 + (f"  ENVID={self.envid}" if self.envid else "")]
        for r in self.recipients:
            line = f"    <{r.address}>  {r.state}  attempts {r.attempts}"
            if r.notify is not None:
                line += "  NOTIFY=" + ",".join(r.notify)
            if r.report:
                line += f"  report owed: {r.report}"
            if r.state in ACTIVE and not self.held:
                line += f"  next {'now' if r.next_attempt <= now else 'in ' + span(r.next_attempt - now)}"
            if r.last_reply:
                line += f"  last: {r.last_reply}"
            lines.append(line)
        if history:
            lines += [f"    {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(h['time']))}  "
                      f"{h['event']}  {h.get('detail', '')}".rstrip()
                      + (f"  tls={h['tls']}" if h.get("tls") else "") for h in self.history]
        return "\n".join(lines)


def _opt_float(value) -> float | None:
    return None if value is None else float(value)


def span(seconds: float) -> str:
    """A duration as an operator reads it: 2m05s, 3h12m, 1d4h."""
    s = max(0, int(seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{d}d{h}h" if d else f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"
