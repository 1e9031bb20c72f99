"""Sending our delivery status notifications (RFC 3464 reports made by bounce.py):
the relay worker's bounces, delay warnings and success reports of queued mail, and
the success reports of mail the SMTP handler delivered to local mailboxes at once
or expanded (an alias or list with several targets) (RFC 3461 NOTIFY=SUCCESS,
Action: delivered or expanded).

A report goes out with the null sender, so that it is never reported on (RFC 3464 2,
RFC 3461 6.2); to a local sender straight into the mailbox (local_deliver: the SMTP
handler's deliver_queued, which adds Return-Path: <>), else, or when that fails, as
a queue entry of its own.  Reports are DKIM-signed for the postmaster's domain
(`sign`, dkim.signer.Signer.sign_report, handed in by the service).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from clevermail.relay.bounce import make_dsn
from clevermail.relay.queue import RelayQueue


@dataclass
class Delivered:
    """A recipient delivered to a local mailbox, as a success report names it."""
    address: str
    orcpt: str | None = None
    last_reply: str | None = "250 2.0.0 delivered to the local mailbox"
    remote: str | None = None
    report: str = "delivered"


class Reports:
    """Makes and sends reports; `hostname` (the Reporting-MTA) is swapped by the
    worker's update_settings."""

    def __init__(self, queue: RelayQueue, hostname: str,
                 local_deliver: Callable[[str, list[str], bytes, str], None],
                 is_local: Callable[[str, str], bool], *,
                 sign: Callable[[bytes], bytes] | None = None,
                 log: logging.Logger | None = None):
        self.queue = queue
        self.hostname = hostname
        self.local_deliver = local_deliver
        self.is_local = is_local        # (address, queue id) -> bool, never raises
        self.sign = sign
        self.log = log or logging.getLogger("clevermail.relay")

    def send(self, *, sender: str, queue_id: str, arrival: float, recipients: list,
             original: bytes, action: str, now: float, retry_until: float | None = None,
             envid: str | None = None, ret: str | None = None) -> str | None:
        """Make the report and deliver or queue it: where it went (for the log and
        the entry's history), or None when it could not be sent (retry later)."""
        dsn = make_dsn(reporting_mta=self.hostname, sender=sender, queue_id=queue_id,
                       arrival=arrival, recipients=recipients, original=original, action=action,
                       now=now, retry_until=retry_until, sign=self.sign, envid=envid, ret=ret)
        if self.is_local(sender, queue_id):
            try:
                # a null sender (Return-Path: <>), as a queued report has; logged
                # delivered under the id a queued report gets
                self.local_deliver("", [sender], dsn, f"{queue_id}-dsn")
                return "delivered to the local mailbox"
            except LookupError:
                # no such account (deleted, or forged): queued it would meet the same 550,
                # and a report is never reported on (RFC 3464 2): it ends in the log
                self.log.warning("%s: the %s report is dropped: no local mailbox for <%s>",
                                 queue_id, action, sender)
                return "dropped (no such local mailbox)"
            except Exception:
                # Queued instead, it is retried with backoff and, at worst, expires.
                self.log.exception("%s: local delivery of the %s report to <%s> failed; "
                                   "queueing it", queue_id, action, sender)
        try:
            # An empty envelope sender: a report is never bounced (RFC 3464 2).
            return "queued as " + self.queue.enqueue("", [sender], dsn, f"{queue_id}-dsn")
        except Exception:
            self.log.exception("%s: the %s report to <%s> could not be queued", queue_id,
                               action, sender)
            return None

    def delivered(self, sender: str, recipients: list[tuple[str, str | None, int]], original: bytes,
                  *, queue_id: str, arrival: float, envid: str | None = None) -> None:
        """The success report of a message the SMTP handler just stored, for (address,
        orcpt, targets) triples: one target is a local mailbox ("delivered"), several
        an alias or list expanded ("expanded", RFC 3461 6.2.7.3); queued (never
        delivered inline: the client waits for its 250).  Never for the null sender."""
        if not sender or not recipients:
            return
        recipients = [Delivered(address, orcpt) if n < 2 else
                      Delivered(address, orcpt, f"250 2.0.0 expanded to {n} recipients", report="expanded")
                      for address, orcpt, n in recipients]
        dsn = make_dsn(reporting_mta=self.hostname, sender=sender, queue_id=queue_id,
                       arrival=arrival, recipients=recipients, original=original,
                       action="success", now=arrival, sign=self.sign, envid=envid)
        where = self.queue.enqueue("", [sender], dsn, f"{queue_id}-dsn")
        self.log.info("%s: success report for %d recipient(s) to <%s> queued as %s",
                      queue_id, len(recipients), sender, where)
