"""Account names: the syntax of an address as users.ini and the protocols spell it,
and one spelling of domains, lower-case A-labels (IDNA 2008, RFC 5891), so that an
SMTPUTF8 client's U-label domain finds the same account as its A-label form.
Pure; accounts.py re-exports every name here (AccountStore.canonical uses them).
"""

import re

import idna

_LOCAL_RE = re.compile(r"^[a-z0-9!#$%&'*=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*=?^_`{|}~-]+)*$")
_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")


class AccountError(ValueError):
    """An invalid account name or an operation that cannot be done."""


def split_address(address):
    """'Local@Domain' -> ('local', 'domain'), lower-cased; no validation."""
    local, _, domain = address.strip().rpartition("@")
    return local.lower(), domain.lower()


def domain_to_ascii(domain):
    """A domain as local domains and users.ini spell it: lower-case A-labels, no final
    dot.  A U-label domain ('Bücher.example', as SMTPUTF8 clients send it) is converted
    by IDNA 2008 with the UTS 46 mapping (RFC 5891, 6531 3.2); one that is not a valid
    IDN raises AccountError.  ASCII domains are only lower-cased."""
    domain = domain.strip().rstrip(".")
    if domain.isascii():
        return domain.lower()
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except UnicodeError as exc:          # idna.IDNAError and its kinds
        raise AccountError(f"invalid international domain name {domain!r}: {exc}") from None


def check_domain(domain):
    """The A-label form of a domain name that is valid for mail (LDH labels of at most
    63 octets, 253 in all, IDNs by IDNA 2008 as domain_to_ascii converts them); raises
    AccountError naming the domain otherwise. `config check` uses it for [server]
    domains and hostname; canonical() for account names."""
    ascii_domain = domain_to_ascii(domain)
    if not _DOMAIN_RE.match(ascii_domain):
        raise AccountError(f"invalid domain {domain.strip()!r}: letters, digits and hyphens in "
                           "dot-separated labels (no spaces, no leading or trailing hyphen)")
    if "xn--" in ascii_domain:
        try:        # an A-label written by hand must decode to a valid U-label
            idna.decode(ascii_domain)
        except UnicodeError as exc:
            raise AccountError(f"invalid domain {domain.strip()!r}: {exc}") from None
    return ascii_domain


def _config_domain(domain):
    # A configured domain that is no valid IDN stays as written (lower-cased), as it
    # always did: it then simply matches nothing instead of stopping the server.
    try:
        return domain_to_ascii(domain)
    except AccountError:
        return domain.strip().lower()


def account_name(name, default_domain):
    """(local, domain) of a valid account name, lower-case with an A-label domain (a
    bare name gets `default_domain`); AccountError with a message fit for the user.
    The syntax only: whether the domain is local is AccountStore.canonical's."""
    name = name.strip()
    if not name:
        raise AccountError("empty account name")
    if any(ord(c) < 0x21 or ord(c) == 0x7F or c in "/\\" for c in name):
        raise AccountError(f"invalid account name {name!r}: no spaces, control characters or slashes")
    local, at, domain = name.rpartition("@")
    if not at:
        local, domain = name, default_domain
    local = local.lower()
    domain = domain_to_ascii(domain)
    if len(local) > 64 or not _LOCAL_RE.match(local) or "+" in local:
        raise AccountError(f"invalid local part {local!r} (letters, digits and .-_ ; no '+', no leading or double dots)")
    if not _DOMAIN_RE.match(domain):
        raise AccountError(f"invalid domain {domain!r}")
    return local, domain
