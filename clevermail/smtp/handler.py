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
"""

import logging

from ..accounts import AccountError, domain_to_ascii
from ..store.api import LocalDelivery
from .send_quota import SendQuota
from .sender_identity import SenderIdentity

log = logging.getLogger("clevermail.smtp")


class RecipientError(Exception):
    """A recipient that cannot be accepted."""


class NoSuchUser(RecipientError, LookupError):
    """Local domain, but no such account (RFC 5321 550 5.1.1).  A LookupError too:
    the relay worker, which delivers queued local mail through this handler without
    importing it, reads a LookupError as "no such mailbox here", a permanent failure."""


class BadDomain(RecipientError):
    """A U-label domain that is no valid IDN (IDNA 2008): no such domain anywhere."""


class RelayDenied(RecipientError):
    """A foreign domain from a client that may not relay."""


class DeliveryFailed(Exception):
    """Nothing was stored; the client should try again later."""


class Recipient:
    """An accepted RCPT: the address as given and, when local, the account it maps to."""

    __slots__ = ("address", "account")

    def __init__(self, address, account=None):
        self.address = address
        self.account = account          # canonical local address, or None = relay

    @property
    def local(self):
        return self.account is not None

    def __repr__(self):
        return f"Recipient({self.address!r}, {self.account!r})"


class SMTPFileHandler:
    def __init__(self, store: LocalDelivery, accounts, queue, postmaster="", senders=None, quota=None):
        self.store = store
        self.accounts = accounts
        self.queue = queue
        self.postmaster = postmaster
        # who may send as whom (sender_identity.py) and how much (send_quota.py):
        # the session asks them; without settings, the identity rules with no grants
        # and no limit
        self.senders = senders or SenderIdentity(lambda domain: self.accounts.is_local_domain(domain))
        self.quota = quota or SendQuota(None, 0, 0)

    # -- recipients ------------------------------------------------------------
    def default_domain(self):
        return self.accounts.domains[0]

    def resolve_recipient(self, address, may_relay):
        """A Recipient for `address`, or BadDomain / NoSuchUser / RelayDenied.

        Local domains (in any spelling: the accounts compare A-labels): the account
        must exist (case-insensitive, '+detail' delivers to the base account).  Other
        domains: only when `may_relay` (authenticated or trusted client) - never an
        open relay."""
        if "@" not in address:          # <postmaster> (RFC 5321 4.1.1.3)
            address = f"{address}@{self.default_domain()}"
        local, _, domain = address.rpartition("@")
        try:
            domain = domain_to_ascii(domain)
        except AccountError:
            raise BadDomain(address) from None
        if domain in self.accounts.domains:     # A-labels on both sides
            account = self.accounts.lookup_ascii(local, domain)
            if account is None and local.lower() == "postmaster":
                # RFC 5321 4.5.1: every domain must accept postmaster
                target = self.postmaster or self.accounts.first()
                account = self.accounts.lookup(target) if target else None
            if account is None:
                raise NoSuchUser(address)
            return Recipient(address, account.address)
        if not may_relay:
            raise RelayDenied(address)
        return Recipient(address)

    def deliver_queued(self, sender, addresses, data):
        """Final delivery of queued mail for local recipients: a queued recipient
        whose domain is local (it became local after the message was queued) and a
        delivery report to a local sender (`sender` empty).  Each address is resolved
        as RCPT TO resolves it (case, +detail, U-labels, postmaster), so the copy
        lands in the account's INBOX and never in a mailbox made up from the raw
        address; then the store's one final-delivery path adds the Return-Path.
        Raises NoSuchUser (a LookupError) when an address has no account, before
        anything is stored."""
        accounts = []
        for address in addresses:
            account = self.resolve_recipient(address, may_relay=False).account
            if account not in accounts:
                accounts.append(account)
        self.store.deliver_local(sender, accounts, data)

    # -- authentication --------------------------------------------------------
    def authenticate(self, username, password):
        """The Account for good credentials, else None (login.py applies the delay)."""
        return self.accounts.authenticate(username, password)

    # -- delivery ----------------------------------------------------------------
    def deliver(self, sender, recipients, data, trace, queue_id):
        """Store `data` for every recipient: the message as smtp.message.prepare_body
        returns it (not dot-stuffed, every line ending in CRLF, no other CR or LF).

        `trace` is the Received header block to prepend; local copies also get
        Return-Path (RFC 5321 4.4: added at final delivery).  Returns when every
        copy and the queue entry are fsynced and committed; raises DeliveryFailed
        (with nothing stored) otherwise."""
        local, remote, seen = [], [], set()
        for rcpt in recipients:
            if rcpt.account is not None:
                if rcpt.account not in seen:      # alice and alice+x: one copy
                    seen.add(rcpt.account)
                    local.append(rcpt.account)
            elif rcpt.address.lower() not in seen:
                seen.add(rcpt.address.lower())
                remote.append(rcpt.address)
        pending = []
        try:
            if local:
                # every line ends in CRLF (the session checked the data, its headers
                # are ours): clean
                pending.append(self.store.prepare_local(sender, local, trace, data, clean=True))
            if remote:
                pending.append(self.queue.prepare(sender, remote, trace + data, queue_id))
            # Mailboxes first, the queue last: a committed queue entry wakes the relay
            # worker, which must never send what a later failure would take back.
            for p in pending:
                p.commit()
        except Exception as exc:
            for p in pending:
                try:
                    p.abort()
                except Exception:
                    log.exception("%s: abort after failed delivery failed", queue_id)
            raise DeliveryFailed(f"{exc.__class__.__name__}: {exc}") from exc
        return len(local), len(remote)
