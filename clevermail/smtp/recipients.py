"""What the SMTP file handler (handler.py) hands the session about recipients and
deliveries: the accepted RCPT (`Recipient`) and the exceptions a recipient or a
delivery is refused with, which the session turns into replies (RFC 5321 4.2,
RFC 3463 codes in smtp/replies.py).  Plain values: no storage, no protocol.
"""


class RecipientError(Exception):
    """A recipient that cannot be accepted."""


class NoSuchUser(RecipientError, LookupError):
    """Local domain, but no account, alias or catch-all (RFC 5321 550 5.1.1).  A
    LookupError too: the relay worker, which delivers queued local mail through this
    handler without importing it, reads a LookupError as "no such mailbox here", a
    permanent failure."""


class BadDomain(RecipientError):
    """A U-label domain that is no valid IDN (IDNA 2008): no such domain anywhere."""


class RelayDenied(RecipientError):
    """A foreign domain from a client that may not relay."""


class BadSRS(RecipientError):
    """A bounce address of ours (SRS) that is forged or expired."""


class AliasTooBig(RecipientError):
    """An alias that expands deeper or wider than the bounds (routing.py)."""


class MailboxFull(RecipientError):
    """Every mailbox of the recipient(s) is over quota (store.quota.OverQuota):
    `permanent` when the message alone is larger than every such quota (552 5.2.2),
    else the mailbox is full for now (452 4.2.2)."""

    def __init__(self, address, refusals):
        self.refusals = list(refusals)
        self.permanent = all(r.permanent for r in self.refusals)
        super().__init__(f"{address}: " + "; ".join(str(r) for r in self.refusals))


class DeliveryFailed(Exception):
    """Nothing was stored; the client should try again later."""


class Recipient:
    """An accepted RCPT: the address as given, the local accounts its copy goes to,
    and the external addresses: the address itself when relayed, or an alias's
    forwarding targets (`forwarded`: they leave with an SRS sender); `notify` and
    `orcpt` are its RFC 3461 NOTIFY and ORCPT (dsn.py), None when not given."""

    __slots__ = ("address", "accounts", "external", "forwarded", "notify", "orcpt")

    def __init__(self, address, accounts=(), external=None, forwarded=False):
        self.address = address
        self.accounts = tuple(accounts)
        self.external = (address,) if external is None and not accounts else tuple(external or ())
        self.forwarded = forwarded
        self.notify = self.orcpt = None

    @classmethod
    def routed(cls, address, route):
        return cls(address, route.accounts, route.external, route.forwarded)

    def __repr__(self):
        return f"Recipient({self.address!r}, {self.accounts!r}, {self.external!r})"


class SieveRefused(Exception):
    """Every recipient's Sieve script erejected the message (RFC 5429 2.1): refused
    at the end of DATA, nothing stored; `reason` is the scripts' text, one
    printable line (the first script's when they differ)."""

    def __init__(self, reason):
        self.reason = reason
        super().__init__(reason)
