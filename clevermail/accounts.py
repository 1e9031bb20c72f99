"""Accounts: users.ini, shared by SMTP, POP3, IMAP and ManageSieve.

users.ini is a configobj file with one section per account, named by its address:

    scram_secret = <b64>            # the stand-in salts of names without SCRAM keys
    [alice@example.test]
    password = scrypt$16384$8$1$<salt b64>$<hash b64>
    scram = SCRAM-SHA-256$10000:<salt b64>$<StoredKey b64>:<ServerKey b64>
    quota_storage = 1073741824      # optional: bytes, or "none" (no limit)
    quota_messages = none           # optional: messages, or "none"

The quota keys are the user's own mailbox limits (store/quota.py); a key that is
absent means the configured default ([quota]), and "none" no limit whatever the
default says.  `clevermail user quota` writes them.

Passwords are stored only as salted scrypt hashes (passwords.py), and, for
AUTHENTICATE SCRAM-SHA-256, as the SCRAM keys derived from them (scram.py: never
the password); setting a password (add, set_password) writes both.  An account
without `scram` (written before SCRAM) gets its keys at its first login that carries
the password (LOGIN, USER/PASS, AUTH PLAIN or LOGIN of any protocol: `authenticate`),
made and written off the login's thread (accounts_upgrade.py); one whose password
SASLprep refuses never has keys and logs in with PLAIN and LOGIN only.  SCRAM is
offered only once every account has keys (`has_scram`).  Unknown users cost the same
as wrong passwords (the failure delay and the throttle are login.py's).  Writes (CLI
or server) rewrite the file atomically under a file lock (accounts_file.py); readers
notice a changed file by its stat and reload, so a running server sees `user add`
without restart.

Names and domains (one spelling, lower-case A-labels) are account_names.py's, whose
names this module re-exports.
"""

import hashlib
import hmac
import logging
import os
import secrets
import threading

from configobj import ConfigObj, ConfigObjError

from . import scram
from .account_names import (AccountError, _config_domain, account_name,  # noqa: F401 (re-exported)
                            check_domain, domain_to_ascii, split_address)
from .accounts_file import LockedEdit, Unchanged, secret_of, set_keys, set_password
from .accounts_upgrade import ScramUpgrades
from .passwords import dummy_hash, verify_password

QUOTA_KEYS = ("quota_storage", "quota_messages")
UNSET = "default"           # a per-user quota value that is not set: the default applies


class Account:
    """One mailbox owner; `address` is canonical (lower-case local@domain)."""

    __slots__ = ("address", "local", "domain")

    def __init__(self, address):
        self.address = address
        self.local, self.domain = split_address(address)

    def __repr__(self):
        return f"Account({self.address!r})"


class AccountStore:
    """The accounts of users.ini, reloaded whenever the file changes on disk."""

    def __init__(self, path, domains):
        self.path = os.fspath(path)
        self.domains = [_config_domain(d) for d in domains]
        self._lock = threading.Lock()
        self._loaded = (None, {})       # (file stamp, {address: hash}), replaced whole
        self._quotas = {}               # address -> (storage, messages), set with _loaded
        # ({address: scram.StoredKeys}, the stand-in secret: the file's, else this process's)
        self._scram = ({}, secrets.token_bytes(32), False)
        # Successful verifications, keyed by an HMAC of address+password under a key
        # that lives only in this process: a client that logs in often (IDLE
        # reconnects, POP3 polling) costs one scrypt per process, not one per login.
        self._cache_key = secrets.token_bytes(32)
        self._verified = {}
        self._upgrades = ScramUpgrades(self._store_keys)

    # -- names -----------------------------------------------------------------
    def canonical(self, name):
        """Validate an account name and return 'local@domain' (a bare name gets the first
        local domain).  Raises AccountError with a message fit for the user."""
        local, domain = account_name(name, self.domains[0])
        if domain not in self.domains:
            raise AccountError(f"{domain!r} is not a local domain (local domains: {', '.join(self.domains)})")
        return f"{local}@{domain}"

    def is_local_domain(self, domain):
        """True for a local domain in any spelling (case, final dot, U- or A-labels)."""
        try:
            return domain_to_ascii(domain) in self.domains
        except AccountError:
            return False

    def reload(self, domains=None):
        """Read users.ini now, whatever its stat says (a configuration reload), with
        new local domains if given; a file that cannot be read keeps the accounts."""
        with self._lock:
            if domains is not None:
                self.domains = [_config_domain(d) for d in domains]
            self._load(self._file_stamp())

    # -- reading -----------------------------------------------------------------
    def _file_stamp(self):
        try:
            st = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):     # no file (yet): no accounts
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _accounts(self):
        """The current {address: password hash}, reloaded when the file's stat changed.

        The stat (a syscall on every RCPT and login) is taken outside the lock, so that
        sessions never queue behind each other's; the lock only guards a reload."""
        stamp = self._file_stamp()
        loaded, hashes = self._loaded          # one attribute: read together
        if stamp == loaded and (hashes or stamp is None):
            return hashes
        with self._lock:
            if self._loaded[0] != stamp or not self._loaded[1]:
                self._load(stamp)
            return self._loaded[1]

    def _load(self, stamp):
        """Read the file seen with `stamp`; called under self._lock."""
        hashes, quotas, keys, secret = {}, {}, {}, None
        if stamp is not None:
            try:
                cfg = ConfigObj(self.path, encoding="utf-8", list_values=False)
            except (ConfigObjError, OSError, UnicodeDecodeError) as exc:
                # a hand edit gone wrong must not lock every user out of a running server
                logging.getLogger("clevermail.accounts").error(
                    "%s cannot be read, keeping the accounts loaded before: %s", self.path, exc)
                self._loaded = (stamp, self._loaded[1])
                return
            for section in cfg.sections:
                pw = cfg[section].get("password", "")
                try:
                    address = self.canonical(section)
                except AccountError:
                    continue  # a hand-edited bad entry must not take the others down
                hashes[address] = pw
                if cfg[section].get("scram"):
                    try:
                        keys[address] = scram.StoredKeys.parse(cfg[section]["scram"])
                    except ValueError:      # a hand edit: that user has PLAIN and LOGIN
                        logging.getLogger("clevermail.accounts").warning(
                            "%s: the scram value of %s is not usable; set the password again",
                            self.path, address)
                values = tuple(_quota_value(cfg[section].get(key)) for key in QUOTA_KEYS)
                if values != (UNSET, UNSET):
                    quotas[address] = values
            secret = secret_of(cfg.get("scram_secret"))
        self._quotas = quotas           # before _loaded: a reader that sees the new
        every = bool(hashes) and all(a in keys for a in hashes)
        self._scram = (keys, secret or self._scram[1], every)  # accounts sees their quotas
        self._loaded = (stamp, hashes)  # and keys

    def lookup(self, address):
        """The Account for an address (case-insensitive, U- or A-label domain; '+detail'
        ignored), or None."""
        local, _, domain = address.strip().rpartition("@")
        try:
            domain = domain_to_ascii(domain)
        except AccountError:
            return None
        return self.lookup_ascii(local, domain)

    def lookup_ascii(self, local, domain):
        """lookup() for a local part and a domain already in domain_to_ascii's form:
        RCPT TO has normalised its domain to decide local or relay, and IDNA work is
        not repeated for the same address."""
        local = local.lstrip().lower().split("+", 1)[0]
        if not local or domain not in self.domains:
            return None
        key = f"{local}@{domain}"
        return Account(key) if key in self._accounts() else None

    def list(self):
        return sorted(self._accounts())

    def quota_of(self, address):
        """The per-user quota values of a canonical address as (storage bytes,
        messages): an int, None for no limit, or UNSET where the default applies."""
        self._accounts()                # reloaded if users.ini changed
        return self._quotas.get(address, (UNSET, UNSET))

    def has_scram(self):
        """Whether every account has SCRAM keys: only then is SCRAM-SHA-256 offered.
        Clients pick the strongest mechanism offered (mbsync through Cyrus SASL does)
        and an account without keys cannot finish a SCRAM exchange: offered while one
        account lacks them (written before SCRAM, or a password SASLprep refuses),
        SCRAM would lock that user out.  `user show` says who lacks them."""
        self._accounts()
        return self._scram[2]

    def scram_credentials(self, username):
        """(canonical address, scram.StoredKeys) of a name, either None when there is
        no such account or it has no usable keys."""
        try:
            address = self.canonical(username)
        except AccountError:
            return None, None
        if address not in self._accounts():
            return None, None
        return address, self._scram[0].get(address)

    def scram_secret(self):
        """The key of the stand-in salts of names without SCRAM keys (scram.stand_in)."""
        self._accounts()
        return self._scram[1]

    def first(self):
        """The first account in users.ini order (the default postmaster), or None."""
        return next(iter(self._accounts()), None)

    def authenticate(self, username, password):
        """The Account when the credentials are right, else None.

        Unknown users, bad names and wrong passwords all take the same path and scrypt
        work; the failure delay, the throttle and the authzid policy are login.py's."""
        try:
            address = self.canonical(username)
        except AccountError:
            address = None
        stored = self._accounts().get(address) if address else None
        token = hmac.new(self._cache_key, f"{address}\0{password}".encode("utf-8", "surrogateescape"),
                         hashlib.sha256).digest()

        def verified_meanwhile():
            cached = self._verified.get(address)
            return bool(stored and cached and cached[0] == stored and hmac.compare_digest(cached[1], token))

        def remember():
            self._verified[address] = (stored, token)

        if not stored:
            verify_password(password, dummy_hash())         # the same work, never a match
            return None
        # asked again when this login's turn for scrypt comes (passwords.py runs one a
        # core at once): the same credentials arriving together are hashed once
        if not (verified_meanwhile() or verify_password(password, stored, verified_meanwhile, remember)):
            return None
        if address not in self._scram[0]:
            # the password proved right and the account has no SCRAM keys (written
            # before SCRAM): they are made and stored off this thread
            self._upgrades.request(address, stored, password)
        return Account(address)

    # -- writing -----------------------------------------------------------------
    def add(self, name, password):
        address = self.canonical(name)
        if not password:
            raise AccountError("empty password")
        with self._edit() as cfg:
            if address in {self._canon_or_none(s) for s in cfg.sections}:
                raise AccountError(f"{address} already exists")
            cfg[address] = {}
            set_password(cfg, address, password)
        return Account(address)

    def set_password(self, name, password):
        address = self.canonical(name)
        if not password:
            raise AccountError("empty password")
        with self._edit() as cfg:
            set_password(cfg, self._find(cfg, address), password)

    def set_quota(self, name, **values):
        """Write the per-user quota of an account: `storage=` (bytes) and/or
        `messages=`, each an int, None (no limit) or UNSET (the key removed: the
        default applies); a resource not given stays as it is."""
        address = self.canonical(name)
        keys = dict(zip(("storage", "messages"), QUOTA_KEYS))
        for resource, value in values.items():
            if resource not in keys:
                raise AccountError(f"no quota resource {resource!r}")
            if not (value is None or value == UNSET or (type(value) is int and value >= 0)):
                raise AccountError(f"invalid {resource} quota {value!r}")
        with self._edit() as cfg:
            section = cfg[self._find(cfg, address)]
            for resource, value in values.items():
                if value == UNSET:
                    section.pop(keys[resource], None)
                else:
                    section[keys[resource]] = "none" if value is None else str(value)

    def _store_keys(self, address, stored, keys):
        """Write SCRAM `keys` made from the password a login proved against the hash
        `stored` (accounts_upgrade.py); under the file lock, only while the account
        still has that hash (a password set meanwhile brought its own keys) and no
        usable keys (another process's login may have written them first).  True
        when written."""
        try:
            with self._edit() as cfg:
                try:
                    section = self._find(cfg, address)
                except AccountError:
                    raise Unchanged() from None         # deleted meanwhile
                entry = cfg[section]
                if entry.get("password") != stored or _usable(entry.get("scram")):
                    raise Unchanged()
                set_keys(cfg, section, keys)
        except Unchanged:
            return False
        return True

    def wait_upgrades(self, timeout=None):
        """True once no SCRAM keys are waiting to be made or written (tests)."""
        return self._upgrades.wait(timeout)

    def remove(self, name):
        address = self.canonical(name)
        with self._edit() as cfg:
            del cfg[self._find(cfg, address)]
        self._verified.pop(address, None)

    def _canon_or_none(self, section):
        try:
            return self.canonical(section)
        except AccountError:
            return None

    def _find(self, cfg, address):
        for section in cfg.sections:
            if self._canon_or_none(section) == address:
                return section
        raise AccountError(f"no such account: {address}")

    def _edit(self):
        return LockedEdit(self)


def _usable(text):
    try:
        scram.StoredKeys.parse(text or "")
    except ValueError:
        return False
    return True


def _quota_value(text):
    """A users.ini quota value: digits -> int, "none" -> None, absent or anything
    else (a hand edit gone wrong) -> UNSET, so the configured default applies."""
    if text is None:
        return UNSET
    text = str(text).strip().lower()
    if text == "none":
        return None
    return int(text) if text.isdigit() else UNSET
