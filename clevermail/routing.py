"""Routing: where mail for one recipient address goes.

A local-domain address resolves, in this order (as Postfix's virtual maps do):
  1. an SRS address of ours (SRS0=/SRS1=, srs.py): a bounce to forwarded mail, sent
     on to the original sender; forged or expired ones are refused;
  2. the account of that name (the subaddress separator, '+' by default, and what
     follows it ignored: RFC 5233);
  3. an alias, first of the full local part, then without the detail (aliases.py);
  4. the role addresses of RFC 2142 and RFC 5321 4.5.1, postmaster@ and abuse@ of
     every local domain, which always resolve (to the configured account);
  5. the domain's catch-all alias `@domain`;
and otherwise there is no such user.  Alias targets in local domains resolve the
same way (an alias may name another alias or a list), bounded in depth and in the
number of destinations, so a loop in aliases.ini ends in a refusal, not a hang.
Targets in other domains are forwarded: the caller queues them with an SRS sender.

Pure lookups over AccountStore and AliasStore; no I/O of its own, no protocol.
"""

from dataclasses import dataclass

from .accounts import AccountError, domain_to_ascii
from .srs import SRSError, is_srs

MAX_DEPTH = 10              # alias -> alias -> ... levels
MAX_DESTINATIONS = 1000     # accounts + forwards one address may expand to
ROLE_ADDRESSES = ("postmaster", "abuse")


class RoutingError(Exception):
    """The address has no destination here."""


class NoSuchAddress(RoutingError, LookupError):
    """A local domain, but no account, alias or catch-all for the address (or an
    alias that expands to nothing)."""


class BadDomain(RoutingError):
    """A U-label domain that is no valid IDN (IDNA 2008)."""


class BadSRS(RoutingError):
    """An SRS address of ours that is forged, malformed or expired."""


class TooManyDestinations(RoutingError):
    """An alias deeper or wider than the bounds allow (a loop, most likely)."""


@dataclass(frozen=True)
class Route:
    """Where one recipient's copy goes: local accounts (canonical addresses) and
    external addresses.  `forwarded` says the external ones are an alias's or an SRS
    bounce's, not the client's own relay recipients."""

    accounts: tuple = ()
    external: tuple = ()
    forwarded: bool = False


class Router:
    def __init__(self, accounts, aliases=None, postmaster="", abuse="", srs=None, separator="+"):
        self.accounts = accounts
        self.aliases = aliases
        self.postmaster = postmaster            # account for postmaster@ ("" = the first account)
        self.abuse = abuse                      # account for abuse@ ("" = the postmaster's)
        self.srs = srs
        self.separator = separator

    def is_local_domain(self, domain):
        return domain in self.accounts.domains

    def resolve(self, address):
        """The Route of `address`, or a RoutingError.  An address in another domain
        routes to itself (relaying is the caller's decision)."""
        if "@" not in address:              # <postmaster> (RFC 5321 4.1.1.3)
            address = f"{address}@{self.accounts.domains[0]}"
        local, _, domain = address.rpartition("@")
        try:
            domain = domain_to_ascii(domain)
        except AccountError:
            raise BadDomain(address) from None
        if not self.is_local_domain(domain):
            return Route(external=(address,))
        if self.srs is not None and is_srs(local):
            try:
                return Route(external=(self.srs.reverse(f"{local}@{domain}"),), forwarded=True)
            except SRSError as exc:
                raise BadSRS(f"{address}: {exc}") from None
        accounts, external = [], []
        self._expand(local, domain, accounts, external, depth=0)
        if not accounts and not external:
            raise NoSuchAddress(address)
        return Route(tuple(accounts), tuple(external), forwarded=bool(external))

    def owners(self, address):
        """The accounts an alias address delivers to directly (its local targets):
        the senders that may use it (sender_identity.py)."""
        if self.aliases is None:
            return ()
        try:
            local, _, domain = address.rpartition("@")
            alias = f"{local.lower()}@{domain_to_ascii(domain)}"
        except AccountError:
            return ()
        return tuple(t for t in self.aliases.targets(alias) if self.accounts.lookup(t) is not None)

    # -- expansion --------------------------------------------------------------------
    def _expand(self, local, domain, accounts, external, depth):
        if depth > MAX_DEPTH:
            raise TooManyDestinations(f"aliases nested deeper than {MAX_DEPTH} levels at {local}@{domain}")
        local = local.lower()
        base = local.split(self.separator, 1)[0] if self.separator else local
        # (no account name has a '+': one left in `base` is no separator here, and
        # the accounts' own lookup, which drops a '+detail', must not see it)
        account = self.accounts.lookup_ascii(base, domain) if base and "+" not in base else None
        if account is not None:
            self._add(accounts, account.address, accounts, external)
            return
        targets = self._alias_targets(local, base, domain)
        if targets is None and base in ROLE_ADDRESSES:
            target = self._role_account(base)
            if target is not None:
                self._add(accounts, target, accounts, external)
            return
        if targets is None:
            targets = self._alias(f"@{domain}")
        for target in targets or ():
            t_local, _, t_domain = target.rpartition("@")
            if self.is_local_domain(t_domain):
                self._expand(t_local, t_domain, accounts, external, depth + 1)
            else:
                self._add(external, target, accounts, external)

    def _alias_targets(self, local, base, domain):
        targets = self._alias(f"{local}@{domain}")
        if targets is None and base != local:
            targets = self._alias(f"{base}@{domain}")
        return targets

    def _alias(self, key):
        if self.aliases is None:
            return None
        return self.aliases.targets(key) or None

    def _role_account(self, role):
        name = (self.abuse if role == "abuse" else "") or self.postmaster or self.accounts.first()
        account = self.accounts.lookup(name) if name else None
        return account.address if account is not None else None

    @staticmethod
    def _add(into, value, accounts, external):
        if value not in into:
            if len(accounts) + len(external) >= MAX_DESTINATIONS:
                raise TooManyDestinations(f"more than {MAX_DESTINATIONS} destinations")
            into.append(value)
