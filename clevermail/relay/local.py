"""The relay worker's local deliveries: a queued recipient whose domain is local (it
became local after the message was queued, or a copy waited for room in a full
mailbox) and a report to a local sender, handed to `local_deliver`
(SMTPFileHandler.deliver_queued: accounts resolved as RCPT TO resolves them, the
store's one final-delivery path, Sieve, the delivered log line under the queue id;
a copy deferred by a full mailbox goes with the folder and flags it was given when
it arrived),
and what each outcome means as a per-recipient Result (schedule.py reads it like an
MX's reply):

- delivered: 250 2.0.0; an address that is an alias or list of several targets
  (`targets`, as RCPT TO resolves it) is "expanded" (RFC 3461 6.2.7.3), as the SMTP
  handler reports it when it delivers at once (smtp/dsn_owed.py): a NOTIFY=SUCCESS
  recipient gets an "expanded" success report, not "delivered";
- a LookupError (no such account): 550 5.1.1, as RCPT TO would answer, for good;
- store.quota.OverQuota: 452 4.2.2 (a full mailbox, RFC 3463 X.2.2: retried on the
  schedule, bounced after queue_lifetime) or 552 5.2.2 (the message alone is larger
  than the quota: bounced now);
- anything else: 451 4.3.0, logged with its traceback and counted as a store error.
"""
from __future__ import annotations

import logging
from typing import Callable

from clevermail.metrics import NO_METRICS
from clevermail.relay.smtp_client import Result
from clevermail.store.quota import OverQuota


class LocalDelivery:
    def __init__(self, local_deliver: Callable[[str, list[str], bytes, str], None],
                 is_local: Callable[[str], bool], log: logging.Logger, metrics=NO_METRICS,
                 targets: Callable[[str], int] | None = None):
        self.local_deliver, self.is_local_domain = local_deliver, is_local
        self.log, self.metrics = log, metrics
        # address -> how many destinations it has (None: one each, no aliases)
        self.targets = targets

    def is_local(self, address: str, qid: str) -> bool:
        """Whether `address` is delivered here; never raises (a failure: not local)."""
        try:
            return bool(self.is_local_domain(address))
        except Exception:
            self.log.exception("%s: is_local(%r) failed", qid, address)
            return False

    def deliver(self, sender: str, address: str, data: bytes, qid: str, folder: str | None = None,
                flags=None) -> Result:
        """One local recipient of queue entry `qid` (with the `folder` and `flags` of
        its queue recipient, when it has them): its Result."""
        placed = {"folder": folder, "flags": tuple(flags or ())} if folder is not None or flags else {}
        try:
            # final delivery: the store adds Return-Path: <sender> (RFC 5321 4.4)
            self.local_deliver(sender, [address], data, qid, **placed)
        except LookupError:
            self.log.info("%s: no local mailbox for <%s>", qid, address)
            return Result(550, "5.1.1 no such user here", "local")
        except OverQuota as e:
            self.log.info("%s: <%s> over quota: %s", qid, address, e)
            if e.permanent:
                return Result(552, "5.2.2 mailbox full: the message is larger than the quota", "local")
            return Result(452, "4.2.2 mailbox full", "local")
        except Exception as e:
            self.log.exception("%s: local delivery to <%s> failed", qid, address)
            self.metrics.store_error("relay_local_delivery")
            return Result(451, f"4.3.0 local delivery failed: {e}", "local")
        n = self._targets(address, qid)
        if n > 1:
            return Result(250, f"2.0.0 expanded to {n} recipients", "local", expanded=True)
        return Result(250, "2.0.0 delivered to the local mailbox", "local")

    def _targets(self, address: str, qid: str) -> int:
        """How many destinations `address` has (it was delivered: it resolves); 1 when
        that cannot be told, so the report says "delivered" rather than nothing."""
        if self.targets is None:
            return 1
        try:
            return self.targets(address)
        except Exception:
            self.log.exception("%s: counting the destinations of <%s> failed", qid, address)
            return 1
