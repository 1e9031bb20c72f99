"""Retry, expiry and report decisions for one queue entry: what an attempt's results
do to the recipients' states, when a deferred recipient is tried again, and when a
bounce or a delay warning is owed.

Pure functions of an Entry, the results, the time and the worker's settings: no I/O,
no threads, no locks (worker.py calls them inside queue.update, under the queue lock,
and does the sending). The rules (RFC 5321 4.5.4.1, 6.1; RFC 3464):

- 2xx -> delivered; 5xx -> failed (a bounce is owed unless the sender is empty).
- 4xx -> deferred until now + retry_schedule[attempts - 1] (the last delay repeats)
  +-JITTER, but never past the entry's expiry (arrival + queue_lifetime, plus any
  time it spent on hold: entry.py); a 4xx at or after that time -> failed ("expired").
- A recipient the operator failed meanwhile keeps that state, unless the attempt
  delivered it: a delivery that happened wins over a bounce not yet sent.
- A held entry is never attempted (its next_due is inf and the worker skips it
  after claiming); see entry.py for hold and the lifetime.
- A delay warning is owed once, after delay_warning seconds, while a recipient is
  deferred and the sender is not empty.
- DSN (RFC 3461, the rule in clevermail/dsn.py): a report covers only recipients
  whose NOTIFY asks for it (no NOTIFY: failure and delay).  A recipient delivered
  with NOTIFY=SUCCESS owes a success report: "delivered" when we delivered it to a
  local mailbox, "expanded" when it was a local alias or list of several targets,
  "relayed" when the next hop does not offer DSN; when it does, the
  parameters went on with the message and the report is the next hop's (RFC 3461
  6.2.2, 6.2.3).
"""
from __future__ import annotations

import logging
import random
from typing import Callable, Sequence

from clevermail.dsn import DELAY, FAILURE, SUCCESS
from clevermail.relay.smtp_client import Result
from clevermail.relay.entry import ACTIVE, Entry, Recipient

JITTER = 0.1


def backoff(schedule: Sequence[float], attempts: int, rng: random.Random) -> float:
    """The delay before the next try after `attempts` tries (jittered: a queue of
    greylisted mail must not come back to one host all at once)."""
    base = schedule[min(max(attempts, 1), len(schedule)) - 1]
    return base * rng.uniform(1 - JITTER, 1 + JITTER)


def record_results(e: Entry, results: dict[str, Result], now: float, *,
                   queue_lifetime: float, backoff: Callable[[int], float],
                   log: logging.Logger) -> bool:
    """Record one attempt's results in the fresh envelope `e`. Returns False (do not
    write) when the entry is finished: it is removed next, and a crash before that
    only means a duplicate delivery."""
    expires = e.expires(queue_lifetime)
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
                r.next_attempt = min(now + backoff(r.attempts), expires)
        r.state = state
        if state == "delivered" and e.sender and r.wants(SUCCESS):
            r.report = success_action(res)
        note = "expired: still deferred after the queue lifetime" if (
            state == "failed" and res.state == "deferred") else ""
        if state == "failed" and not e.sender:
            note = (note + "; " if note else "") + "no bounce: empty sender"
        elif state == "failed" and not r.wants(FAILURE):
            note = (note + "; " if note else "") + "no bounce: NOTIFY=" + ",".join(r.notify or ())
        tls = str(res.tls) if res.tls is not None else None
        e.add_history(now, state, f"<{r.address}> via {res.remote or '-'}: {res.reply}"
                      + (f" ({note})" if note else ""), tls=tls)
        log.info("%s: to=<%s> relay=%s tls=%s attempt=%d status=%s%s: %s", e.queue_id,
                 r.address, res.remote or "none", tls or "-", r.attempts, state,
                 f" ({note})" if note else "", res.reply)
    return not e.finished()


def success_action(res: Result) -> str | None:
    """The success report a delivery owes its NOTIFY=SUCCESS recipient: "delivered"
    (a local mailbox), "expanded" (here, an alias or list of several targets: RFC
    3461 6.2.7.3), "relayed" (a next hop without DSN), None (the next hop took the
    DSN parameters: the report is its business)."""
    if res.remote == "local":
        return "expanded" if res.expanded else "delivered"
    return None if res.dsn else "relayed"


def warning_due(entry: Entry, now: float, delay_warning: float | None) -> bool:
    return (delay_warning is not None and bool(entry.sender) and not entry.warned and not entry.held
            and now >= entry.clock_start() + delay_warning
            and any(r.state == "deferred" and r.wants(DELAY) for r in entry.recipients))


def report_recipients(entry: Entry, action: str) -> list[Recipient]:
    """The recipients a report covers: failed ones for a bounce ("failed"), deferred
    ones for a delay warning ("delayed"), delivered ones owing a success report
    ("success"); each only when its NOTIFY asks for that report."""
    if action == "success":
        return [r for r in entry.recipients if r.report]
    wanted, kind = ("failed", FAILURE) if action == "failed" else ("deferred", DELAY)
    return [r for r in entry.recipients if r.state == wanted and r.wants(kind)]


def mark_reported(e: Entry, action: str, addresses: set[str], now: float, detail: str) -> None:
    """Record a sent report in the fresh envelope: the bounced recipients become
    'bounced' (no second bounce), a success report is no longer owed, a delay
    warning sets `warned` (sent once)."""
    if action == "failed":
        for r in e.recipients:
            if r.address in addresses and r.state == "failed":
                r.state, r.updated = "bounced", now
    elif action == "success":
        for r in e.recipients:
            if r.address in addresses:
                r.report = None
    else:
        e.warned = True
    e.add_history(now, {"failed": "bounce", "success": "success-report"}.get(action, "delay-warning"),
                  detail)
