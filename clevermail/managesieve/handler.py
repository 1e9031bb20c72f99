"""SieveFileHandler: the script side of ManageSieve, speaking storage only.

The session calls it for credentials and for every script operation; it is the one
place that calls the script store (sieve.scripts.SieveScripts) and the Sieve parser,
and it never builds a reply: it returns values or raises the sieve package's errors
(sieve.errors: NoSuchScript, ScriptExists, ActiveScript, BadScriptName,
QuotaExceeded with its RFC 5804 code, SieveSyntaxError with its line), which the
session turns into NO responses.  Users are the canonical addresses of accounts, as
login.py returns them.

What the handler needs of the store is declared here as ScriptStore (a
typing.Protocol), as store/api.py declares what the mail handlers need of MailStore.

A script is checked in full (sieve.parse: the grammar, require, every argument)
before it is stored: PUTSCRIPT never stores a script that delivery could not run
(RFC 5804 2.6: the server MUST check the syntax).
"""

from typing import Callable, Optional, Protocol, Sequence


class ScriptStore(Protocol):
    """The per-user Sieve script store (sieve.scripts.SieveScripts)."""

    max_scripts: int            # scripts per user (0: no limit)
    max_size: int               # octets of one script (0: no limit)

    def list(self, user: str) -> list: ...                    # [(name, active)]
    def get(self, user: str, name: str) -> str: ...
    def put(self, user: str, name: str, text: str) -> None: ...
    def delete(self, user: str, name: str) -> None: ...
    def rename(self, user: str, old: str, new: str) -> None: ...
    def activate(self, user: str, name: Optional[str]) -> None: ...
    def check_space(self, user: str, name: str, size: int) -> None: ...


class SieveFileHandler:
    """Credentials and scripts for ManageSieve sessions.

    `scripts` is the ScriptStore, `accounts` the AccountStore (login.py verifies
    through `authenticate` and compares identities with `accounts.canonical`),
    `parse` the Sieve parser (text -> script, or SieveSyntaxError), `extensions`
    the Sieve extensions delivery supports (CAPABILITY SIEVE), `max_redirects` the
    redirects one message may make (CAPABILITY MAXREDIRECTS; None: not announced)."""

    def __init__(self, scripts: ScriptStore, accounts, *, parse: Callable[[str], object],
                 extensions: Sequence[str], max_redirects: Optional[int] = None):
        self.scripts = scripts
        self.accounts = accounts
        self.parse = parse
        self.extensions = tuple(extensions)
        self.max_redirects = max_redirects

    def authenticate(self, username, password):
        """The Account for good credentials, else None (login.py applies the delay)."""
        return self.accounts.authenticate(username, password)

    @property
    def max_size(self):
        """The largest script in octets (0: no limit of the store's own)."""
        return self.scripts.max_size

    # -- reading ---------------------------------------------------------------------------
    def list(self, user):
        """[(name, active)] of the user's scripts."""
        return self.scripts.list(user)

    def get(self, user, name):
        return self.scripts.get(user, name)

    # -- checking ----------------------------------------------------------------------------
    def check(self, text):
        """Parse and check a script; SieveSyntaxError (with its line) if it is not valid."""
        self.parse(text)

    def have_space(self, user, name, size):
        """QuotaExceeded (with its code) or BadScriptName unless a script `name` of
        `size` octets could be stored now (RFC 5804 2.5)."""
        self.scripts.check_space(user, name, size)

    # -- changing ----------------------------------------------------------------------------
    def put(self, user, name, text):
        """Check, then store (or replace) a script: one that does not parse is never
        stored."""
        self.check(text)
        self.scripts.put(user, name, text)

    def delete(self, user, name):
        self.scripts.delete(user, name)

    def rename(self, user, old, new):
        self.scripts.rename(user, old, new)

    def activate(self, user, name):
        """Make `name` the active script; None (an empty name) deactivates."""
        self.scripts.activate(user, name)
