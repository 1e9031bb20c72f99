"""Where a sandbox's mail goes and who may send it: every recipient is a local
mailbox named after its address (created on first use), nothing ever leaves, and any
sender is accepted.

SandboxRouter replaces routing.Router (no aliases, no role addresses, no SRS, no
external destination: the relay queue never gets an entry); AnySender replaces
smtp/sender_identity.SenderIdentity, because a capture server takes whatever the
application under test sends (an authenticated 'apikey' user sending as
noreply@app.example is the normal case there).
"""

from ..accounts import AccountError, domain_to_ascii
from ..routing import BadDomain, NoSuchAddress, Route, Router
from ..smtp.sender_identity import SenderIdentity


class SandboxRouter(Router):
    def __init__(self, accounts, separator="+"):
        super().__init__(accounts, separator=separator)

    def resolve(self, address):
        """Route(accounts=(the address's own mailbox,)); a domain that is no valid IDN
        is BadDomain, a local part no mailbox may have NoSuchAddress."""
        if "@" not in address:              # <postmaster>
            address = f"{address}@{self.accounts.domains[0]}"
        local, _, domain = address.rpartition("@")
        try:
            domain = domain_to_ascii(domain)
        except AccountError:
            raise BadDomain(address) from None
        if self.separator:
            local = local.split(self.separator, 1)[0]
        account = self.accounts.lookup_ascii(local, domain)
        if account is None:
            raise NoSuchAddress(address)
        return Route(accounts=(account.address,))

    def owners(self, address):
        return ()


class AnySender(SenderIdentity):
    """Every envelope and From: sender is allowed, authenticated or not."""

    def __init__(self):
        super().__init__(lambda domain: False)

    def envelope_refusal(self, sender, *, user, trusted):
        return None

    def header_refusal(self, message, *, user, header=None):
        return None
