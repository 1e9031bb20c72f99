"""What the SMTP file handler owes under RFC 3461 for the recipients of a message it
stores: the NOTIFY and ORCPT each queued target carries, and the success reports of
the recipients it delivered itself (local mailboxes).

An alias that expands to one target passes the request on unchanged: the target's
delivery ("delivered" here, "relayed" or the next hop's own report) answers for it.
"""

import logging
import time

from ..dsn import SUCCESS, wants

log = logging.getLogger("clevermail.smtp")


def dsn_requests(recipients):
    """address -> (notify, orcpt) for the queue entries: an alias's targets keep
    the NOTIFY given for the alias, and its address as ORCPT when none was given
    (RFC 3461 6.2.2)."""
    out = {}
    for rcpt in recipients:
        for address in rcpt.external:
            orcpt = rcpt.orcpt
            if orcpt is None and address != rcpt.address and rcpt.address.isascii():
                orcpt = f"rfc822;{rcpt.address}"
            out.setdefault(address, (rcpt.notify, orcpt))
    return out


def report_success(reports, sender, recipients, data, queue_id, envid):
    """Queue the "delivered" report of local recipients with NOTIFY=SUCCESS (RFC
    3461 6.2.2) through `reports` (relay/reports.py Reports, or None: none sent);
    the mail is stored already, so a failure here is only logged."""
    wanted = [rcpt for rcpt in recipients if rcpt.accounts and wants(rcpt.notify, SUCCESS)]
    if not wanted or not sender or reports is None:
        return
    try:
        reports.delivered(sender, [(r.address, r.orcpt) for r in wanted], data,
                          queue_id=queue_id, arrival=time.time(), envid=envid)
    except Exception:
        log.exception("%s: the success report to <%s> could not be queued", queue_id, sender)
