"""Which queue entries an operator means, and the queue at a glance.

Owns Selector (the filters of `clevermail queue list|flush|delete|bounce|hold|
release`: entry state, recipient domain, sender, age) and QueueSummary (counts by
entry and recipient state, oldest age, size: the summary line of `queue list` and
the metrics endpoint). Pure: queue.py reads the envelopes and hands them in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from clevermail.accounts import AccountError, domain_to_ascii
from clevermail.relay.entry import STATES, Entry, span


@dataclass(frozen=True)
class QueueSummary:
    """The queue at a glance (RelayQueue.summary): for `clevermail queue list` and
    the metrics endpoint. `entries` counts readable envelopes; `by_state` has every
    entry state of entry.STATES (zeros included), `recipients_by_state` the
    recipients of those entries by their state (pending, deferred, delivered, failed,
    bounced; only states that occur); `oldest_age` is seconds since the oldest
    arrival (None when empty); `size` the bytes of the queued messages; `damaged`
    the envelopes that could not be read (left out of the other counts)."""
    entries: int
    recipients: int
    by_state: dict
    recipients_by_state: dict
    oldest_age: float | None
    size: int
    damaged: int

    def line(self) -> str:
        """One line: "3 entries, 5 recipients: 1 active, 1 deferred, 1 held, 0 bounce;
        oldest 3h12m"."""
        if not self.entries and not self.damaged:
            return "queue is empty"
        counts = ", ".join(f"{self.by_state[s]} {s}" for s in STATES)
        text = (f"{self.entries} entr{'y' if self.entries == 1 else 'ies'}, "
                f"{self.recipients} recipient{'' if self.recipients == 1 else 's'}: {counts}")
        if self.oldest_age is not None:
            text += f"; oldest {span(self.oldest_age)}"
        if self.damaged:
            text += f"; {self.damaged} damaged"
        return text


@dataclass(frozen=True)
class Selector:
    """Which entries a bulk operator action applies to (all given conditions hold):
    `state` one of entry.STATES, `to_domain` a recipient's domain (case-insensitive;
    an IDNA U-label matches its A-label), `sender` the envelope sender (a whole
    address, a domain, "@domain", or "<>" for reports), `older_than` seconds since
    arrival. An empty Selector matches everything: the CLI asks for --all then."""
    state: str | None = None
    to_domain: str | None = None
    sender: str | None = None
    older_than: float | None = None

    def empty(self) -> bool:
        return (self.state, self.to_domain, self.sender, self.older_than) == (None,) * 4

    def wants_recipient(self, address: str) -> bool:
        """Does the to_domain condition hold for this recipient (always, without one)?"""
        if self.to_domain is None:
            return True
        return _ascii_domain(address.rpartition("@")[2]) == _ascii_domain(self.to_domain)

    def matches(self, e: Entry, now: float) -> bool:
        if self.state is not None and e.state(now) != self.state:
            return False
        if self.older_than is not None and now - e.arrival < self.older_than:
            return False
        if self.to_domain is not None and not any(self.wants_recipient(r.address)
                                                  for r in e.recipients):
            return False
        if self.sender is not None:
            want, have = self.sender.strip().lower(), e.sender.lower()
            if want == "<>":
                return have == ""
            if "@" in want.lstrip("@"):
                return have == want.strip("<>")
            return bool(have) and _ascii_domain(have.rpartition("@")[2]) == _ascii_domain(want.lstrip("@"))
        return True


def _ascii_domain(domain: str) -> str:
    """A domain as users.ini and the filters compare it: lower-case A-labels (IDNA
    2008, accounts.domain_to_ascii), no final dot; one that is no valid IDN as typed."""
    try:
        return domain_to_ascii(domain)
    except AccountError:
        return domain.strip().rstrip(".").lower()


def summarize(entries: Iterable[Entry], now: float, damaged: int = 0) -> QueueSummary:
    by_state = dict.fromkeys(STATES, 0)
    by_rcpt: dict[str, int] = {}
    count = recipients = size = 0
    oldest = None
    for e in entries:
        count += 1
        size += e.size
        by_state[e.state(now)] += 1
        for r in e.recipients:
            recipients += 1
            by_rcpt[r.state] = by_rcpt.get(r.state, 0) + 1
        oldest = e.arrival if oldest is None else min(oldest, e.arrival)
    return QueueSummary(entries=count, recipients=recipients, by_state=by_state,
                        recipients_by_state=by_rcpt, size=size, damaged=damaged,
                        oldest_age=None if oldest is None else max(0.0, now - oldest))
