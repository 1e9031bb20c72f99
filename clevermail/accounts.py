"""Accounts: users.ini, shared by SMTP, POP3 and IMAP.

users.ini is a configobj file with one section per account, named by its address:

    [alice@example.test]
    password = scrypt$16384$8$1$<salt b64>$<hash b64>
    quota_storage = 1073741824      # optional: bytes, or "none" (no limit)
    quota_messages = none           # optional: messages, or "none"

The quota keys are the user's own mailbox limits (store/quota.py); a key that is
absent means the configured default ([quota]), and "none" no limit whatever the
default says.  `clevermail user quota` writes them.

Passwords are stored only as salted scrypt hashes (passwords.py); unknown users cost
the same as wrong passwords (the failure delay and the throttle are login.py's).  Writes (CLI or server) rewrite the file atomically
under a file lock; readers notice a changed file by its stat and reload, so a running
server sees `user add` without restart.

Domains are compared in one spelling, lower-case A-labels (IDNA 2008, RFC 5891): an
SMTPUTF8 client's U-label domain finds the same account as its A-label form.
"""

import fcntl
import hashlib
import hmac
import io
import logging
import os
import re
import secrets
import threading

import idna
from configobj import ConfigObj, ConfigObjError

from .durable import atomic_write
from .passwords import dummy_hash, hash_password, verify_password

_LOCAL_RE = re.compile(r"^[a-z0-9!#$%&'*=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*=?^_`{|}~-]+)*$")
_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")


QUOTA_KEYS = ("quota_storage", "quota_messages")
UNSET = "default"           # a per-user quota value that is not set: the default applies


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
        # Successful verifications, keyed by an HMAC of address+password under a key
        # that lives only in this process: a client that logs in often (IDLE
        # reconnects, POP3 polling) costs one scrypt per process, not one per login.
        self._cache_key = secrets.token_bytes(32)
        self._verified = {}

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
        hashes, quotas = {}, {}
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
                values = tuple(_quota_value(cfg[section].get(key)) for key in QUOTA_KEYS)
                if values != (UNSET, UNSET):
                    quotas[address] = values
        self._quotas = quotas           # before _loaded: a reader that sees the new
        self._loaded = (stamp, hashes)  # accounts sees their quotas

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
        if verified_meanwhile():
            return Account(address)
        # asked again when this login's turn for scrypt comes (passwords.py runs one a
        # core at once): the same credentials arriving together are hashed once
        return Account(address) if verify_password(password, stored, verified_meanwhile, remember) else None

    # -- writing -----------------------------------------------------------------
    def add(self, name, password):
        address = self.canonical(name)
        if not password:
            raise AccountError("empty password")
        with self._edit() as cfg:
            if address in {self._canon_or_none(s) for s in cfg.sections}:
                raise AccountError(f"{address} already exists")
            cfg[address] = {"password": hash_password(password)}
        return Account(address)

    def set_password(self, name, password):
        address = self.canonical(name)
        if not password:
            raise AccountError("empty password")
        with self._edit() as cfg:
            section = self._find(cfg, address)
            cfg[section]["password"] = hash_password(password)

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
        return _LockedEdit(self)


def _quota_value(text):
    """A users.ini quota value: digits -> int, "none" -> None, absent or anything
    else (a hand edit gone wrong) -> UNSET, so the configured default applies."""
    if text is None:
        return UNSET
    text = str(text).strip().lower()
    if text == "none":
        return None
    return int(text) if text.isdigit() else UNSET


class _LockedEdit:
    """Context manager: lock users.ini, hand out its ConfigObj, write it back atomically."""

    def __init__(self, store):
        self.store = store

    def __enter__(self):
        path = self.store.path
        os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
        self.store._lock.acquire()
        self.lockfile = None
        try:
            self.lockfile = open(path + ".lock", "a")
            fcntl.flock(self.lockfile, fcntl.LOCK_EX)
            self.cfg = ConfigObj(path if os.path.exists(path) else None, encoding="utf-8", list_values=False)
        except BaseException:
            # __exit__ does not run when __enter__ fails: release here, or an unparsable
            # users.ini would leave this store locked for good
            if self.lockfile is not None:
                self.lockfile.close()
            self.store._lock.release()
            raise
        if not os.path.exists(path):
            self.cfg.initial_comment = ["# CleverMail accounts: one [address] section each.",
                                        "# Manage with `clevermail user add|passwd|del|list`; passwords are scrypt hashes."]
        return self.cfg

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                path = self.store.path
                out = io.BytesIO()
                self.cfg.write(out)
                # a rewrite keeps the permissions the administrator gave the file
                mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o600
                atomic_write(os.path.abspath(path), out.getvalue(), mode)
                self.store._loaded = (None, {})  # force a reload on next read
        finally:
            fcntl.flock(self.lockfile, fcntl.LOCK_UN)
            self.lockfile.close()
            self.store._lock.release()
        return False
