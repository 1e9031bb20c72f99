"""SMTPFileHandler: what the SMTP session asks of storage (the original's
SmtpFileHandler).  It speaks store, never protocol: it resolves recipients against
the accounts, checks credentials, and delivers a received message; problems are
raised as the exceptions below and the session turns them into replies.

Delivery is all or nothing (RFC 5321 6.1: a 250 takes responsibility for the
message): every local copy (store.prepare_local, the store's one final-delivery path:
one fsynced file hard-linked into each INBOX's tmp/, with Return-Path) and the relay
queue entry (RelayQueue.prepare) are written
first; only when all are prepared is anything committed, and any failure aborts
everything, including parts already committed.

Mailbox quotas (store/quota.py) are asked twice.  At RCPT, with the size declared
in MAIL FROM (or 0: "is there room at all"), a recipient all of whose mailboxes are
over quota is refused: MailboxFull, 452 4.2.2, or 552 5.2.2 when the message alone
is larger than the quota.  After DATA the size is known: when every copy would be
refused the whole message is (one reply for all), and otherwise the message is
accepted, and the copies of the mailboxes it would take over quota go into the
relay queue instead of the mailbox, each with the folder and flags it was to be
filed with (the inbound policy's Junk; a Sieve script, run now, chose its own).  The relay worker delivers them through
deliver_queued as soon as there is room (a full mailbox is a temporary failure,
RFC 3463 X.2.2, retried on the queue's schedule) and bounces them through the
queue's report path, for good when the message can never fit or when
queue_lifetime has passed.  This is what Postfix in front of Dovecot does with an
over-quota LMTP recipient (deferred, then bounced), without a second reply code
after DATA that SMTP does not have.
"""

import logging

from .. import routing
from ..metrics import NO_METRICS
from ..routing import Router
from ..store.api import LocalDelivery
from .delivered import log_delivered
from .dsn_owed import dsn_requests, report_success
from .message import Header, new_queue_id, submission_fixups
from .recipients import (AliasTooBig, BadDomain, BadSRS, DeliveryFailed, MailboxFull,  # noqa: F401
                         NoSuchUser, Recipient, RecipientError, RelayDenied, SieveRefused)
# (re-exported: the session, the relay and the tests name them through this module)
from .send_quota import SendQuota
from .sender_identity import SenderIdentity

log = logging.getLogger("clevermail.smtp")


class SMTPFileHandler:
    def __init__(self, store: LocalDelivery, accounts, queue, postmaster="", senders=None, quota=None,
                 router=None, srs=None, inbound=None, defence=None, metrics=NO_METRICS,
                 signer=None, sieve=None):
        self.store = store
        self.accounts = accounts
        self.queue = queue
        self.postmaster = postmaster
        # where each address goes (routing.py) and the SRS of forwarded mail (srs.py);
        # without them: accounts and postmaster only, forwards keep their sender
        self.router = router or Router(accounts, postmaster=postmaster)
        # the authentication checks of mail from outside (inbound/checks.py), or None
        self.inbound = inbound
        # the MX defences: block lists, greylisting, rates, harvesting (inbound/defence.py)
        self.defence = defence
        self.srs = srs
        # who may send as whom (sender_identity.py) and how much (send_quota.py):
        # the session asks them; without settings, the identity rules with no grants
        # and no limit
        self.senders = senders or SenderIdentity(lambda domain: self.accounts.is_local_domain(domain))
        self.quota = quota or SendQuota(None, 0, 0)
        self.metrics = metrics          # counts the relay's local deliveries (deliver_queued)
        self.signer = signer            # dkim.signer.Signer, or None: [dkim] sign = no
        # users' Sieve filters at final delivery (sieve/deliver.py SieveFilter), or None
        self.sieve = sieve
        # relay.reports.Reports: success reports of local deliveries (NOTIFY=SUCCESS);
        # set by the service once the relay worker exists, None: none sent
        self.reports = None

    # -- recipients ------------------------------------------------------------
    def default_domain(self):
        return self.accounts.domains[0]

    def resolve_recipient(self, address, may_relay, size=None):
        """A Recipient for `address` (routing.py: accounts, aliases, role addresses,
        catch-all, SRS bounces), or BadDomain / NoSuchUser / BadSRS / AliasTooBig /
        RelayDenied.  Other domains only when `may_relay` (an authenticated or
        trusted client): never an open relay.  An alias's external targets and an SRS
        bounce are forwarded whoever the client is: the address is ours.
        With a `size` (RCPT: the declared SIZE, or 0), MailboxFull when no mailbox
        of the recipient has room for it."""
        try:
            route = self.router.resolve(address)
        except routing.NoSuchAddress:
            raise NoSuchUser(address) from None
        except routing.BadDomain:
            raise BadDomain(address) from None
        except routing.BadSRS as exc:
            raise BadSRS(str(exc)) from None
        except routing.TooManyDestinations as exc:
            raise AliasTooBig(str(exc)) from None
        if route.external and not route.forwarded and not may_relay:
            raise RelayDenied(address)
        if size is not None and route.accounts and not route.external:
            over = self._over_quota(route.accounts, size)
            if len(over) == len(route.accounts):
                raise MailboxFull(address, over.values())
        return Recipient.routed(address, route)

    def _over_quota(self, accounts, size):
        """{account: OverQuota} of the `accounts` a message of `size` disk bytes
        would take over their quota; `size` may be a function, asked only for an
        account that has a limit."""
        quota = self.store.quota
        over = {}
        for account in accounts:
            if callable(size):
                if quota.limits(account).unlimited:
                    continue
                size = size()
            refused = quota.refusal(account, size)
            if refused is not None:
                over[account] = refused
        return over

    def _room(self, sender, local, others, parts, clean=False):
        """(accounts with room, accounts over quota) for a message made of `parts`
        as stored (Return-Path first, LF line ends); MailboxFull when no copy at all
        (`others`: the relayed and forwarded copies) would be stored.  `clean`: every
        line of the parts ends in CRLF and no other CR or LF is in them."""
        if not local:
            return local, []

        def size():
            # as the store writes it: "Return-Path: <sender>\n" and the parts with CRLF ->
            # LF (maildir.to_disk); the sender's own checks are the store's, at
            # prepare_local.  Counted only for a mailbox with a quota (a 100 KiB
            # message's CRLF count was a tenth of its CPU); in clean parts every LF
            # ends a CRLF, and one byte is counted twice as fast as two.
            crlf = sum(p.count(b"\n") if clean else p.count(b"\r\n") for p in parts)
            return len(sender.encode("utf-8", "surrogateescape")) + 16 + sum(map(len, parts)) - crlf
        over = self._over_quota(local, size)
        if over and len(over) == len(local) and not others:
            raise MailboxFull(", ".join(over), over.values())
        return [a for a in local if a not in over], list(over)

    def deliver_queued(self, sender, addresses, data, queue_id, folder=None, flags=()):
        """Final delivery of queued mail for local recipients: a queued recipient
        whose domain is local (it became local after the message was queued) and a
        delivery report to a local sender (`sender` empty).  Each address is resolved
        as RCPT TO resolves it (case, +detail, U-labels, aliases, postmaster), so the
        copy lands in the account's INBOX and never in a mailbox made up from the raw
        address; then the store's one final-delivery path adds the Return-Path.  An
        alias's external targets are queued again with an SRS sender.  Each copy
        logs its delivered line under `queue_id` (delivered.py).
        Raises NoSuchUser (a LookupError) when an address has no destination, before
        anything is stored.  With a `folder` (and `flags`): a copy that waited for
        room in a full mailbox, filed where its Sieve script or the inbound policy
        put it when it arrived (deliver()), without running the script again."""
        recipients = [self.resolve_recipient(address, may_relay=False) for address in addresses]
        accounts, _, forwards = self._split(recipients)
        if folder is not None or flags:
            pending = self.store.prepare_local(sender, accounts, data, folder=folder, flags=tuple(flags))
            try:
                pending.commit()
            except BaseException:
                pending.abort()
                raise
            self.metrics.local_delivered(len(accounts))
            log_delivered(queue_id, data, [pending])
            return
        try:
            accounts, deferred = self._room(sender, accounts, forwards, (data,))
        except MailboxFull as exc:
            # the worker's answer: 452 4.2.2 (retried) or 552 5.2.2 (bounced)
            raise min(exc.refusals, key=lambda r: r.permanent) from None
        pending = []
        try:
            plain, filtered = self._filtered(accounts)
            copies = [self.store.prepare_local(sender, plain, data)] if plain else []
            pending += copies
            boxes, queued, _, later = self._run_filters(filtered, recipients, sender, (data,), queue_id)
            pending += boxes
            if forwards:
                pending.append(self.queue.prepare(self._forward_sender(sender), forwards, data,
                                                  new_queue_id()))
            pending += queued
            for account, where, marks in later:     # a copy with no room after all: waits
                pending.append(self.queue.prepare(sender, [account], data, new_queue_id(),
                                                  places={account: (where, marks)}))
            if deferred:
                # an alias whose other mailboxes got their copy: the full ones wait in
                # a queue entry of their own
                pending.append(self.queue.prepare(sender, deferred, data, new_queue_id()))
            for p in pending:
                p.commit()
            self.metrics.local_delivered(len(accounts))
        except BaseException:
            for p in pending:
                p.abort()
            raise
        log_delivered(queue_id, data, copies + [p for group in boxes for p in group.parts])

    # -- authentication --------------------------------------------------------
    def authenticate(self, username, password):
        """The Account for good credentials, else None (login.py applies the delay)."""
        return self.accounts.authenticate(username, password)

    # -- delivery ----------------------------------------------------------------
    def finish_authenticated(self, data, hostname, header=None):
        """What a message from an authenticated client becomes before it is stored:
        the RFC 6409 8 fix-ups (Date, Message-ID when missing), then the DKIM
        signatures of a local From: domain (dkim/signer.py).  Once, before the 250:
        every copy and every delivery attempt carries the same signature.  `data` is
        the session's wire form (CRLF only); `header`, its message.Header, is what
        the signer reads when the fix-ups left the message as it was."""
        fixed = submission_fixups(data, hostname)
        if self.signer is None:
            return fixed
        return self.signer.sign(fixed, Header.of(fixed, header).fields)

    def deliver(self, sender, recipients, data, trace, queue_id, folder=None, requiretls=False,
                ret=None, envid=None, prepared=None):
        """Store `data` for every recipient: the message as smtp.message.prepare_body
        returns it (not dot-stuffed, every line ending in CRLF, no other CR or LF).

        `trace` is the Received header block to prepend; local copies also get
        Return-Path (RFC 5321 4.4: added at final delivery) and go to `folder`
        ("Junk" for quarantined mail) instead of INBOX; `requiretls` (RFC 8689) and
        the DSN request (RFC 3461: `ret`, `envid`, each recipient's notify and orcpt)
        are kept in the queue entries for the relay; a local recipient with
        NOTIFY=SUCCESS gets its success report queued.  Returns when every
        copy and the queue entry are fsynced and committed; raises DeliveryFailed
        (with nothing stored) otherwise, or MailboxFull when every copy is over
        quota (module docstring: copies over quota beside others are queued), or
        SieveRefused when every recipient's Sieve script erejects it.

        `prepared()`, if given, is called once every part is written and fsynced,
        before the first commit makes any of it visible: the session logs its
        accepted line there, so that nothing a commit sets off (the relay worker a
        queue entry wakes, an IDLE session told of new mail) logs about the message
        before it.  A commit that fails after it still raises DeliveryFailed."""
        local, remote, forwards = self._split(recipients)
        dsn = {"ret": ret, "envid": envid, "dsn": dsn_requests(recipients)}
        pending = []
        try:
            local, deferred = self._room(sender, local, remote or forwards, (trace, data), clean=True)
            plain, filtered = self._filtered(local)
            plain_later, filtered_later = self._filtered(deferred)
            # every line ends in CRLF (the session checked the data, its headers are
            # ours): clean
            copies = [self.store.prepare_local(sender, plain, trace, data, clean=True,
                                               folder=folder)] if plain else []
            pending += copies
            # users with an active Sieve script: their copies as the script says, before
            # the 250 like every other copy (its queue entries commit with the others)
            boxes, queued, erejects, later = self._run_filters(
                filtered + filtered_later, recipients, sender, (trace, data), queue_id,
                keep_folder=folder, clean=True, requiretls=requiretls, defer=set(filtered_later))
            if erejects and all(r is not None for r in erejects) and not (plain or remote or forwards
                                                                          or plain_later):
                # every recipient's script erejects it: said at the protocol level
                # (RFC 5429 2.1), no MDN
                for part in boxes + queued:
                    part.abort()
                raise SieveRefused(erejects[0])
            pending += boxes
            if remote:
                pending.append(self.queue.prepare(sender, remote, trace + data, queue_id,
                                                  requiretls=requiretls, **dsn))
            if forwards:
                # an alias's external targets: the envelope sender rewritten (SRS) so
                # that SPF passes at the next hop; REQUIRETLS goes with every copy
                # (RFC 8689 4.1)
                pending.append(self.queue.prepare(self._forward_sender(sender), forwards,
                                                  trace + data, queue_id,
                                                  requiretls=requiretls, **dsn))
            pending += queued
            # copies for mailboxes over quota: delivered by the relay worker when there
            # is room, bounced when there never is (module docstring), into the folder
            # (and with the flags) Sieve or the inbound policy chose now
            later += [(account, folder or "INBOX", ()) for account in plain_later]
            places = {}
            for account, where, flags in later:
                places.setdefault((where, flags), []).append(account)
            for (where, flags), accounts in places.items():
                log.info("%s: over quota, queued for later delivery into %s: %s", queue_id, where,
                         ", ".join(accounts))
                pending.append(self.queue.prepare(sender, accounts, trace + data, queue_id,
                                                  requiretls=requiretls, **dsn,
                                                  places={a: (where, flags) for a in accounts}))
            if prepared is not None:
                prepared()
            # Mailboxes first, the queue last: a committed queue entry wakes the relay
            # worker, which must never send what a later failure would take back.
            for p in pending:
                p.commit()
        except (MailboxFull, SieveRefused):
            raise                   # nothing is prepared: the session's 452/552, 550
        except Exception as exc:
            for p in pending:
                try:
                    p.abort()
                except Exception:
                    log.exception("%s: abort after failed delivery failed", queue_id)
            raise DeliveryFailed(f"{exc.__class__.__name__}: {exc}") from exc
        # each copy's file (Sieve's too): `clevermail trace` finds its UID and retrievals by it
        log_delivered(queue_id, data, copies + [p for group in boxes for p in group.parts])
        report_success(self.reports, sender, recipients, trace + data, queue_id, envid, deferred)
        return len(local), len(remote) + len(forwards) + len(deferred)

    def _filtered(self, accounts):
        """(accounts delivered as they are, accounts with an active Sieve script)."""
        if self.sieve is None or not accounts:
            return accounts, []
        return self.sieve.split(accounts)

    def _run_filters(self, accounts, recipients, sender, parts, queue_id, defer=(), **options):
        """The prepared writes of each filtered account's script (sieve/deliver.py):
        (mailbox parts, queue parts, each run's ereject reason or None, the copies
        deferred by a full mailbox as (account, folder, flags)), the parts committed
        in that order with the rest (the mailboxes first, the queue last); the
        address a copy came for is the first RCPT that reached the account.  The
        accounts in `defer` (a set) have no room: all their copies are deferred."""
        if not accounts:
            return [], [], [], []
        came_for = {}
        for rcpt in recipients:
            for account in rcpt.accounts:
                came_for.setdefault(account, rcpt.address)
        out = []
        try:
            for account in accounts:
                out.append(self.sieve.prepare(account, sender, came_for.get(account, account),
                                              parts, queue_id, defer=account in defer, **options))
        except BaseException:
            for prepared in out:
                prepared.abort()
            raise
        return ([_Group(p.mailbox, p.abort) for p in out],
                [_Group(p.queued, p.abort, after=p.after) for p in out],
                [p.ereject for p in out],
                [(a, where, flags) for a, p in zip(accounts, out) for where, flags in p.deferred])

    @staticmethod
    def _split(recipients):
        """(local accounts, relayed addresses, forwarded addresses), each once:
        alice and alice+x make one copy, as do two aliases naming the same target."""
        local, remote, forwards, seen = [], [], [], set()
        for rcpt in recipients:
            for account in rcpt.accounts:
                if account not in seen:
                    seen.add(account)
                    local.append(account)
            into = forwards if rcpt.forwarded else remote
            for address in rcpt.external:
                if address.lower() not in seen:
                    seen.add(address.lower())
                    into.append(address)
        return local, remote, forwards

    def _forward_sender(self, sender):
        return self.srs.forward(sender) if self.srs is not None else sender


class _Group:
    """Part of one Sieve run's prepared writes as one pending part of the
    transaction; its abort takes back the whole run (each abort is idempotent).
    `after`: records made once its parts are committed (the vacation reply's)."""

    def __init__(self, parts, abort, after=()):
        self.parts = parts
        self.abort = abort
        self.after = after

    def commit(self):
        for p in self.parts:
            p.commit()
        for call in self.after:
            try:
                call()
            except Exception:
                log.exception("sieve: recording a vacation reply failed")
