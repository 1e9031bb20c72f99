"""SandboxAccounts: the accounts of `clevermail sandbox`, where every address of every
domain has a mailbox and any username/password logs in to the mailbox of that address.

An account written to the sandbox's users.ini (`Sandbox.add_account`, the pytest
plugin's `clevermail_account`) is a real one: its password is checked as the server
checks it (scrypt, AccountStore).  Every other address is accepted with any password
and its mailbox is made on first use (the store makes a user's tree when mail arrives
or the user logs in).  Names are validated as AccountStore validates them
(accounts.account_name), only the local-domain rule is gone: a sandbox has no foreign
domain.
"""

from ..accounts import Account, AccountError, AccountStore, account_name, domain_to_ascii


class SandboxAccounts(AccountStore):
    """AccountStore over the sandbox's users.ini, for every domain."""

    def canonical(self, name):
        local, domain = account_name(name, self.domains[0])
        return f"{local}@{domain}"

    def is_local_domain(self, domain):
        """Every domain is the sandbox's (a name that is no valid IDN is nobody's)."""
        try:
            domain_to_ascii(domain)
        except AccountError:
            return False
        return True

    def lookup_ascii(self, local, domain):
        """The Account of any valid address ('+detail' ignored, as AccountStore does)."""
        local = local.strip().lower().split("+", 1)[0]
        try:
            return Account(self.canonical(f"{local}@{domain}"))
        except AccountError:
            return None

    def has_scram(self):
        """No SCRAM-SHA-256 here: any address logs in with any password, which only a
        password mechanism can take (an application that picks SCRAM when offered
        would fail for every address without keys)."""
        return False

    def authenticate(self, username, password):
        """A users.ini account needs its password; any other valid name logs in with
        any password (the mailbox of that address)."""
        try:
            address = self.canonical(username)
        except AccountError:
            return None
        if address in self._accounts():
            return super().authenticate(username, password)
        return Account(address)
