"""What the SMTP file handler owes under RFC 3461 for the recipients of a message it
stores: the NOTIFY and ORCPT each queued target carries, and the success reports of
the recipients it delivered itself (local mailboxes).

An alias that expands to one target passes the request on unchanged: the target's
delivery ("delivered" here, "relayed" or the next hop's own report) answers for it.
An alias or list that expands to several targets is confirmed by itself (RFC 3461
6.2.7.3, as Postfix does): a recipient with NOTIFY=SUCCESS gets an "expanded" success
report (RFC 3464 2.3.3: delivered to the address as given, and sent on to several
others), and its targets carry its NOTIFY without SUCCESS (NEVER when nothing is
left), so that the sender is told of the expansion once, and of failures and delays
of single targets as asked, but not of each target's success.
"""

import logging
import time

from ..dsn import NEVER, SUCCESS, wants

log = logging.getLogger("clevermail.smtp")


def dsn_requests(recipients):
    """address -> (notify, orcpt) for the queue entries: an alias's targets keep
    the NOTIFY given for the alias, and its address as ORCPT when none was given
    (RFC 3461 6.2.2).  Local accounts are in it too: a copy that waits in the queue
    for room in a full mailbox is reported on when the relay worker delivers it."""
    out = {}
    for rcpt in recipients:
        notify = _targets_notify(rcpt)
        for address in rcpt.external + rcpt.accounts:
            orcpt = rcpt.orcpt
            if orcpt is None and address != rcpt.address and rcpt.address.isascii():
                orcpt = f"rfc822;{rcpt.address}"
            out.setdefault(address, (notify, orcpt))
    return out


def targets(rcpt):
    """How many destinations a recipient has (local accounts and external addresses)."""
    return len(rcpt.accounts) + len(rcpt.external)


def _targets_notify(rcpt):
    """The NOTIFY an expanded recipient's targets carry: SUCCESS is answered by the
    "expanded" report (module docstring)."""
    notify = rcpt.notify
    if notify is None or SUCCESS not in notify or targets(rcpt) < 2:
        return notify
    return tuple(n for n in notify if n != SUCCESS) or (NEVER,)


def report_success(reports, sender, recipients, data, queue_id, envid, deferred=()):
    """Queue the success report of the recipients with NOTIFY=SUCCESS that are done
    here (RFC 3461 6.2.2) through `reports` (relay/reports.py Reports, or None: none
    sent): "delivered" for a local mailbox, "expanded" for an alias or list with
    several targets; the mail is stored already, so a failure here is only logged.
    A mailbox whose copy is `deferred` (over quota, queued) is not delivered yet:
    the relay worker reports on it when it is."""
    wanted = [rcpt for rcpt in recipients if wants(rcpt.notify, SUCCESS)
              and (targets(rcpt) > 1 or (rcpt.accounts and rcpt.accounts[0] not in deferred))]
    if not wanted or not sender or reports is None:
        return
    try:
        reports.delivered(sender, [(r.address, r.orcpt, targets(r)) for r in wanted], data,
                          queue_id=queue_id, arrival=time.time(), envid=envid)
    except Exception:
        log.exception("%s: the success report to <%s> could not be queued", queue_id, sender)
