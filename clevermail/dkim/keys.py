"""DKIM private keys on disk: one file per selector, one manifest per domain that
orders them, their generation, loading, deletion and checks.

    <data_dir>/dkim/                                  0700
    <data_dir>/dkim/<domain>/                         0700; the domain in A-labels
    <data_dir>/dkim/<domain>/selectors                the manifest, oldest first:
                                                      "<selector> <algorithm> <created> [pending]"
    <data_dir>/dkim/<domain>/<selector>.rsa.key       RSA 2048, PEM (PKCS#8), 0600
    <data_dir>/dkim/<domain>/<selector>.ed25519.key   the 32-byte Ed25519 seed in
                                                      base64 (dkimpy's format), 0600
    <data_dir>/dkim/<domain>/.lock                    flock around manifest changes

One selector per algorithm: a verifier takes the key type from the record it finds at
the selector (RFC 8463 4), so the rsa and the ed25519 key need a name each; by default
<yyyymm>r and <yyyymm>e (UTC month of creation).  The manifest, not the directory
listing, says which keys exist and which sign: the last of each algorithm that is not
pending.  Rotation is publish-then-switch (as dkim-rotate and Stalwart's separate
"signatures" and "sign" lists have it): a pair made beside keys that sign is pending,
listed but never used, until `activate` (after `clevermail dkim activate` saw its
records in DNS) moves it to the end of the manifest; the old pair stays listed, and
must stay published while mail signed with it may still be verified, until it is
deleted.  A domain's first pair signs at once: there is nothing to switch from.
A key the manifest lists but that is missing or unreadable is an error
(DkimKeyError): the service refuses to start and `config check` names it, so a lost
key never turns into mail signed less than the operator believes.

Writes go through durable.py: the key files are fsynced and renamed into place before
the manifest names them, and the manifest is replaced whole under the domain's flock,
so a `clevermail dkim` command and a running server never lose each other's changes.
RSA keys come from `cryptography` (OpenSSL), Ed25519 keys from PyNaCl (libsodium).
"""

import base64
import fcntl
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace

import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from ..durable import atomic_write, fsync_dir, unlink_quiet
from . import records

ALGORITHMS = ("rsa", "ed25519")
SUFFIX = {"rsa": "r", "ed25519": "e"}      # default selector = <yyyymm> + suffix
MANIFEST = "selectors"
PENDING = "pending"         # a manifest line's 4th word: made, not yet activated
RSA_BITS = 2048
MIN_RSA_BITS = 1024        # RFC 8301 3.2: verifiers must not accept less
# A selector is one DNS label here (RFC 6376 3.1 allows dotted ones; one label keeps
# it a plain file name); lower case, as DNS answers are compared case-insensitively.
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")


class DkimKeyError(Exception):
    """A key or manifest that cannot be used, or a request that cannot be done; the
    message names the file and says why, in one line."""


def key_dir(data_dir):
    """Where a server keeps its DKIM keys."""
    return os.path.join(data_dir, "dkim")


def publishable(domain):
    """Whether a domain can have public DNS records: 'localhost' and other one-label
    names cannot, so no key is made for them at start."""
    return "." in domain.strip(".")


@dataclass(frozen=True)
class Selector:
    """One manifest line: a selector of a domain, its algorithm, its file."""

    domain: str
    name: str
    algorithm: str
    created: str            # YYYY-MM-DD (UTC)
    path: str
    pending: bool = False   # made beside signing keys, not yet activated: never signs


class Key:
    """A loaded private key: `private` is a cryptography RSAPrivateKey or
    Ed25519PrivateKey; `public` the bytes the record carries."""

    __slots__ = ("selector", "private", "public")

    def __init__(self, selector, private, public):
        self.selector, self.private, self.public = selector, private, public

    @property
    def record(self):
        return records.key_record(self.selector.algorithm, self.public)

    @property
    def zone_line(self):
        return records.zone_line(self.selector.name, self.selector.domain, self.record)


def check_selector(name):
    """A selector name as stored, or DkimKeyError."""
    name = name.strip().lower()
    if not _LABEL.match(name):
        raise DkimKeyError(f"invalid selector {name!r}: one DNS label of letters, digits and hyphens")
    return name


class KeyStore:
    def __init__(self, root):
        self.root = root

    # -- names -------------------------------------------------------------------
    def domain_dir(self, domain):
        # domains come in A-labels (accounts.domain_to_ascii); anything else never
        # becomes a path
        if not _DOMAIN.match(domain):
            raise DkimKeyError(f"invalid domain {domain!r} (A-labels expected)")
        return os.path.join(self.root, domain)

    def manifest_path(self, domain):
        return os.path.join(self.domain_dir(domain), MANIFEST)

    def key_path(self, domain, name, algorithm):
        return os.path.join(self.domain_dir(domain), f"{name}.{algorithm}.key")

    def domains(self):
        """Every domain with a manifest, sorted."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if _DOMAIN.match(n)
                      and os.path.exists(os.path.join(self.root, n, MANIFEST)))

    # -- the manifest ------------------------------------------------------------------
    def selectors(self, domain):
        """The domain's selectors, oldest first ([] without a manifest)."""
        path = self.manifest_path(domain)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise DkimKeyError(f"{path}: cannot read: {exc.strerror}") from None
        out, seen = [], set()
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if (len(parts) not in (3, 4) or parts[1] not in ALGORITHMS or not _LABEL.match(parts[0])
                    or parts[0] in seen or parts[3:] not in ([], [PENDING])):
                raise DkimKeyError(f"{path} line {number}: expected '<selector> rsa|ed25519 "
                                   f"<date> [pending]' with a selector listed once: {line!r}")
            seen.add(parts[0])
            out.append(Selector(domain, parts[0], parts[1], parts[2],
                                self.key_path(domain, parts[0], parts[1]), pending=len(parts) == 4))
        return out

    @staticmethod
    def active(selectors):
        """algorithm -> the Selector that signs (the last listed of each, pending
        ones left out)."""
        return {s.algorithm: s for s in selectors if not s.pending}

    @staticmethod
    def state(selector, active):
        """'signs', 'pending' or 'old' (still listed: its record stays published)."""
        if selector.pending:
            return "pending"
        return "signs" if active.get(selector.algorithm) == selector else "old"

    def _write_manifest(self, domain, selectors):
        lines = [f"# DKIM selectors of {domain}, oldest first: the last of each algorithm "
                 "that is not pending signs.",
                 "# Managed by `clevermail dkim keygen|activate|delete`."]
        lines += [f"{s.name} {s.algorithm} {s.created}" + (f" {PENDING}" if s.pending else "")
                  for s in selectors]
        atomic_write(self.manifest_path(domain), "\n".join(lines) + "\n", mode=0o600)

    def stamp(self, domain):
        """What changes when the domain's keys change (manifest and listed files):
        compared by the Signer to reload."""
        paths = [self.manifest_path(domain)]
        try:
            paths += [s.path for s in self.selectors(domain)]
        except DkimKeyError:
            pass
        out = []
        for path in paths:
            try:
                st = os.stat(path)
                out.append((st.st_ino, st.st_mtime_ns, st.st_size))
            except OSError:
                out.append(None)
        return tuple(out)

    # -- keys ------------------------------------------------------------------------
    def load(self, selector):
        """The Key of one selector, or DkimKeyError (missing, unreadable, not a key)."""
        path = selector.path
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise DkimKeyError(f"{path}: missing (listed in {self.manifest_path(selector.domain)})") from None
        except OSError as exc:
            raise DkimKeyError(f"{path}: cannot read: {exc.strerror}") from None
        if selector.algorithm == "rsa":
            try:
                private = serialization.load_pem_private_key(data, password=None)
            except (ValueError, TypeError) as exc:
                raise DkimKeyError(f"{path}: not an unencrypted PEM private key ({exc})") from None
            if not isinstance(private, rsa.RSAPrivateKey):
                raise DkimKeyError(f"{path}: not an RSA key")
            if private.key_size < MIN_RSA_BITS:
                raise DkimKeyError(f"{path}: RSA key of {private.key_size} bits (at least {MIN_RSA_BITS})")
            public = private.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        else:
            try:
                seed = base64.b64decode(data.strip(), validate=True)
            except ValueError:
                seed = b""
            if len(seed) != 32:
                raise DkimKeyError(f"{path}: not an Ed25519 key (the base64 of a 32-byte seed)")
            # signed by OpenSSL through `cryptography`, which keeps the GIL for the
            # 25 us (PyNaCl's cffi call gives it away, and taking it back from busy
            # sessions costs more); the same seed gives the same signatures
            private = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
            public = bytes(nacl.signing.SigningKey(seed).verify_key)
        return Key(selector, private, public)

    def load_active(self, domain):
        """algorithm -> Key of the keys that sign for `domain` ({} without a manifest);
        DkimKeyError if one cannot be loaded or an algorithm has no key."""
        selectors = self.selectors(domain)
        if not selectors:
            return {}
        active = self.active(selectors)
        missing = [a for a in ALGORITHMS if a not in active]
        if missing:
            raise DkimKeyError(f"{self.manifest_path(domain)}: no {' or '.join(missing)} key listed "
                               f"(make a pair with `clevermail dkim keygen {domain}`)")
        return {a: self.load(s) for a, s in active.items()}

    def problems(self, domains):
        """Every listed key of `domains` (and every manifest) that cannot be used,
        one line each: what `config check` reports."""
        out = []
        for domain in domains:
            try:
                selectors = self.selectors(domain)
                self.load_active(domain)
            except DkimKeyError as exc:
                out.append(str(exc))
                continue
            for s in selectors:                     # the older ones are still published
                try:
                    self.load(s)
                except DkimKeyError as exc:
                    out.append(str(exc))
        return out

    # -- changes -------------------------------------------------------------------------
    @contextmanager
    def _locked(self, domain):
        directory = self.domain_dir(domain)
        os.makedirs(os.path.dirname(self.root) or ".", exist_ok=True)     # the data dir
        for path in (self.root, directory):
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                continue
            os.chmod(path, 0o700)               # whatever the umask: keys are secret
            fsync_dir(os.path.dirname(path) or ".")
        fd = os.open(os.path.join(directory, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield directory
        finally:
            os.close(fd)

    def generate(self, domain, base=None, now=None):
        """Make a new rsa and ed25519 key for `domain`, selectors <base>r and <base>e
        (base: the UTC month, YYYYMM).  They sign from now on when the domain has no
        key that signs; beside keys that sign they are pending until activate().
        Returns the two Keys."""
        now = time.time() if now is None else now
        base = check_selector(base) if base else time.strftime("%Y%m", time.gmtime(now))
        names = {a: check_selector(base + SUFFIX[a]) for a in ALGORITHMS}
        created = time.strftime("%Y-%m-%d", time.gmtime(now))
        with self._locked(domain):
            selectors = self.selectors(domain)
            pending = bool(self.active(selectors))
            taken = {s.name for s in selectors}
            for algorithm, name in names.items():
                if name in taken or os.path.exists(self.key_path(domain, name, algorithm)):
                    raise DkimKeyError(f"{domain}: selector {name} exists; choose another "
                                       "with --selector")
            keys = []
            for algorithm, name in names.items():
                selector = Selector(domain, name, algorithm, created, self.key_path(domain, name, algorithm),
                                    pending=pending)
                data = _new_key(algorithm)
                atomic_write(selector.path, data, mode=0o600)
                keys.append(self.load(selector))    # what the server will read back
            # the key files are on disk before the manifest names them
            self._write_manifest(domain, selectors + [k.selector for k in keys])
        return keys

    def selectors_named(self, domain, name):
        """The selectors `name` means: one selector, or a keygen base (its <base>r and
        <base>e); DkimKeyError when there is none."""
        name = check_selector(name)
        selectors = self.selectors(domain)
        found = [s for s in selectors if s.name == name] or [
            s for s in selectors if s.name in {name + suffix for suffix in SUFFIX.values()}]
        if not found:
            raise DkimKeyError(f"{domain} has no selector {name} (nor {name}r/{name}e)")
        return found

    def activate(self, domain, names):
        """Let the selectors `names` sign (switch): pending no more, moved to the end
        of the manifest, so each is the last of its algorithm; the ones that signed
        before stay listed as old.  Returns the Selectors as now listed."""
        names = {check_selector(n) for n in names}
        with self._locked(domain):
            selectors = self.selectors(domain)
            chosen = [s for s in selectors if s.name in names]
            if {s.name for s in chosen} != names:
                missing = ", ".join(sorted(names - {s.name for s in chosen}))
                raise DkimKeyError(f"{domain} has no selector {missing}")
            for s in chosen:
                self.load(s)                    # never switch to a key that cannot be read
            switched = [replace(s, pending=False) for s in chosen]
            self._write_manifest(domain, [s for s in selectors if s.name not in names] + switched)
        return switched

    def delete(self, domain, name):
        """Forget a selector that does not sign (an old one, or a pending one given up):
        out of the manifest, then its file.  The key of an algorithm that signs cannot
        be deleted: make and activate a new pair first."""
        name = check_selector(name)
        with self._locked(domain):
            selectors = self.selectors(domain)
            match = [s for s in selectors if s.name == name]
            if not match:
                raise DkimKeyError(f"{domain} has no selector {name}")
            selector = match[0]
            if self.active(selectors)[selector.algorithm] == selector:
                raise DkimKeyError(f"{domain}: {name} is the {selector.algorithm} key that signs; "
                                   f"make and activate a new pair first (`clevermail dkim keygen "
                                   f"{domain}`, then `clevermail dkim activate`)")
            self._write_manifest(domain, [s for s in selectors if s is not selector])
            unlink_quiet(selector.path)
            fsync_dir(os.path.dirname(selector.path))
        return selector


def _new_key(algorithm):
    """The file bytes of a fresh key."""
    if algorithm == "rsa":
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    return base64.b64encode(bytes(nacl.signing.SigningKey.generate())) + b"\n"


def ensure_keys(store, domains, log):
    """Give each publishable local domain without a manifest its first pair of keys and
    log the records to publish (service start).  Returns {domain: [Key, Key]} made."""
    made = {}
    for domain in domains:
        if not publishable(domain) or store.selectors(domain):
            continue
        keys = store.generate(domain)
        made[domain] = keys
        log.info("dkim: new keys for %s (selectors %s); publish in DNS (also shown by "
                 "`clevermail dkim list`):", domain, ", ".join(k.selector.name for k in keys))
        for key in keys:
            log.info("dkim: %s", key.zone_line)
    return made
