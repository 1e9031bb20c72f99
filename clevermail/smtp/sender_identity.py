"""Sender identity: which envelope and header senders an SMTP client may use.

RFC 6409 6.1 lets a submission server check that the sender is the authenticated
user; a server that does not turns one stolen password into a spam source for every
identity on the internet, and lets any client on the MX port speak for our own
domains.  The rules (as Postfix's reject_sender_login_mismatch and mox do):

- An authenticated user may use, in MAIL FROM (553 5.7.1) and in every address of
  the From: header (550 5.7.1 after DATA), only addresses of theirs: their own
  address, its +detail forms (RFC 5233), the aliases that deliver to them
  (aliases.py: `sales@` with targets alice and bob is theirs to send as), and the
  patterns granted to them in `[senders] send_as` (`noreply@example.org=*@example.org`
  for a service account).
  MAIL FROM:<> (a bounce, RFC 5321 4.5.5) stays allowed.
- An unauthenticated client outside trusted_networks may not use a local domain in
  MAIL FROM (550 5.7.1): only this server sends for it.  Loopback is not trusted
  implicitly; trusted_networks is the one trust.

Pure rules, no I/O: the session asks, a named Reply (or None) comes back.
"""

import email.utils
import fnmatch
import re

from ..accounts import AccountError, domain_to_ascii
from . import replies as R
from .message import Header


def canonical_sender(address):
    """'User+Tag@Bücher.Example' -> ('user+tag', 'xn--bcher-kva.example'), or None
    for an address without a domain or with a domain that is no valid IDN."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain:
        return None
    try:
        return local.lower(), domain_to_ascii(domain)
    except AccountError:
        return None


class SenderIdentity:
    """The rules above for one configuration: `is_local_domain(domain)` (the
    accounts' check), `send_as`, (account, pattern) pairs, both canonical, and
    `owners(address)`, the accounts an alias delivers to (routing.Router.owners)."""

    def __init__(self, is_local_domain, send_as=(), owners=None):
        self.is_local_domain = is_local_domain
        self.owners = owners
        self.grants = {}
        for account, pattern in send_as:
            self.grants.setdefault(account, []).append(pattern)

    def owns(self, user, address):
        """True when `address` is one `user` (a canonical account address) may send as."""
        parts = canonical_sender(address)
        if parts is None:
            return False
        local, domain = parts
        base = f"{local.partition('+')[0]}@{domain}"
        if base == user:
            return True
        address = f"{local}@{domain}"
        if self.owners is not None and (user in self.owners(address) or user in self.owners(base)):
            return True
        return any(fnmatch.fnmatchcase(address, pattern) for pattern in self.grants.get(user, ()))

    def envelope_refusal(self, sender, *, user, trusted):
        """The reply refusing MAIL FROM:<sender>, or None when it may be used."""
        if not sender:
            return None                         # the null reverse-path: bounces
        if user is not None:
            return None if self.owns(user, sender) else R.R553_SENDER_NOT_OWNED.format(user)
        if trusted:
            return None
        parts = canonical_sender(sender)
        if parts is not None and self.is_local_domain(parts[1]):
            return R.R550_LOCAL_SENDER_NEEDS_AUTH
        return None

    def header_refusal(self, message, *, user, header=None):
        """The reply refusing a message from authenticated `user` whose From: names
        someone else (every From field, every address in it), or None.  `message` is
        the received message in CRLF form; a message without From passes (there is
        nothing to forge)."""
        if user is None:
            return None
        for address in from_addresses(message, header):
            if not self.owns(user, address):
                return R.R550_FROM_NOT_OWNED.format(user)
        return None


# The From: value of most mail: one address, bare or in <> after a plain display name.
# email.utils reads it as this pattern does (the tests compare them); anything else
# (comments, groups, quoting, several addresses, non-ASCII) goes to email.utils.
_ATOMS = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_ADDRESS = rf"{_ATOMS}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_SIMPLE_FROM = re.compile(rf'[ \t]*(?:(?:[A-Za-z0-9 \t]*|"[A-Za-z0-9 \t]*")[ \t]*<({_ADDRESS})>|({_ADDRESS}))[ \t]*')


def from_addresses(message, header=None):
    """Every address of every From: field in the header of `message` (CRLF bytes;
    `header`: its smtp.message.Header when split already): group names and display
    names dropped, comments ignored.  An address that email.utils cannot read comes
    back as '' (and so belongs to nobody)."""
    texts = [value.decode("utf-8", "replace") for value in Header.of(message, header).values(b"from")]
    if len(texts) == 1:
        simple = _SIMPLE_FROM.fullmatch(texts[0])
        if simple is not None:
            return [simple.group(1) or simple.group(2)]
    return [address for _, address in email.utils.getaddresses(texts)]
