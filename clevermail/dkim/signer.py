"""Signer: the local domains' DKIM keys in memory, and what gets signed for whom.

sign(message) returns the message with an rsa-sha256 and an ed25519-sha256
DKIM-Signature prepended for each local domain of its From: field (RFC 6376 5; the
rsa one first, since some verifiers look at the first signature only); a message
whose From: is not local (or cannot be parsed) comes back unchanged.  sign_report()
signs a report of the server's own for the postmaster's domain, whatever its From.

Keys are parsed once (keys.KeyStore.load_active) and swapped whole, so a signing
thread sees the old or the new set, never a mix.  At most once a second a signing
thread looks at a domain's files (keys.KeyStore.stamp: the manifest and its key
files); when they changed (`clevermail dkim keygen|delete`) it reloads that domain.
A reload that fails keeps the keys in use and logs an ERROR: mail goes on being
signed with keys that are published.  reload() reloads everything and raises, for a
service reload.  At construction every local domain's keys must load (DkimKeyError
otherwise): the service does not start with a key it cannot read.
"""

import email.utils
import logging
import threading
import time

import dkim

from ..accounts import AccountError, domain_to_ascii
from . import signature
from .keys import ALGORITHMS, DkimKeyError

CHECK_INTERVAL = 1.0


class Signer:
    def __init__(self, store, domains, report_domain=None, *, clock=time.time,
                 monotonic=time.monotonic, check_interval=CHECK_INTERVAL, log=None):
        self.store = store
        self.domains = tuple(domains)               # A-labels (AccountStore.domains)
        self.clock, self.monotonic = clock, monotonic
        self.check_interval = check_interval
        self.log = log or logging.getLogger("clevermail.dkim")
        try:                                        # [server] postmaster's domain
            self._wanted_report_domain = domain_to_ascii(report_domain) if report_domain else None
        except AccountError:
            self._wanted_report_domain = None
        self._lock = threading.Lock()               # one reloading thread at a time
        self._keys = {}                             # domain -> [Key, ...], rsa first
        self._seen = {}                             # domain -> its files' stamp at the last look
        self._next_check = 0.0
        self.reload()

    # -- keys ---------------------------------------------------------------------------
    def reload(self):
        """Load every local domain's keys again; DkimKeyError if one cannot be used
        (then nothing changes)."""
        with self._lock:
            seen = {domain: self.store.stamp(domain) for domain in self.domains}
            loaded = {domain: self.store.load_active(domain) for domain in self.domains}
            self._seen = seen
            self._keys = {d: _ordered(active) for d, active in loaded.items() if active}
            self.report_domain = next(
                (d for d in (self._wanted_report_domain, *self.domains) if d in self._keys), None)
            self._next_check = self.monotonic() + self.check_interval

    def _check(self):
        """Reload the domains whose files changed since the last look (called at most
        once a second; a failure is logged once per change of the files)."""
        if not self._lock.acquire(blocking=False):
            return                                  # another thread is at it
        try:
            self._next_check = self.monotonic() + self.check_interval
            keys = dict(self._keys)
            for domain in self.domains:
                stamp = self.store.stamp(domain)
                if stamp == self._seen.get(domain):
                    continue
                self._seen[domain] = stamp
                try:
                    active = self.store.load_active(domain)
                except DkimKeyError as exc:
                    self.log.error("dkim: %s: keys not reloaded, still signing with %s: %s",
                                   domain, _names(keys.get(domain)), exc)
                    continue
                if active:
                    keys[domain] = _ordered(active)
                    self.log.info("dkim: %s now signs with %s", domain, _names(keys[domain]))
                elif domain in keys:
                    self.log.warning("dkim: %s: the key manifest is gone; still signing with %s "
                                     "(new keys are made at the next start)", domain, _names(keys[domain]))
            self._keys = keys
        finally:
            self._lock.release()

    def active(self, domain):
        """The Keys that sign for `domain` now ([] for none)."""
        if self.monotonic() >= self._next_check:
            self._check()
        return self._keys.get(domain, [])

    # -- signing ------------------------------------------------------------------------
    def sign(self, data, groups=None):
        """`data` with the signatures of its local From: domains prepended.
        `groups`: its header section split by smtp.message.header_fields when `data`
        is in CRLF-only wire form (the SMTP session's), read instead of a second split."""
        try:
            message = signature.Message(data, groups)
        except dkim.DKIMException as exc:
            self.log.info("dkim: not signed: the header section cannot be parsed (%s)", exc)
            return data
        domains = self.from_domains(message)
        return self._sign(message, data, [d for d in domains if d in self.domains])

    def sign_report(self, data):
        """`data`, a report the server made, signed for the postmaster's domain (the
        first local domain with keys when that one has none)."""
        if self.report_domain is None:
            return data
        return self._sign(signature.Message(data), data, [self.report_domain])

    def _sign(self, message, data, domains):
        now = self.clock()
        fields = []
        for domain in domains:
            keys = self.active(domain)
            if not keys:
                self.log.debug("dkim: %s has no keys: not signed", domain)
            fields += [signature.sign(message, key, now) for key in keys]
        return b"".join(fields) + data if fields else data

    @staticmethod
    def from_domains(message):
        """The distinct domains (A-labels) of the From: addresses, in order; none when
        there is not exactly one From: field (RFC 5322 3.6)."""
        values = message.field_values(b"from")
        if len(values) != 1:
            return []
        return list(_domains_of(values[0]))


# From: value -> its domains.  A user sends with the same From: again and again, and
# the address parser (email.utils) costs more than the rest of the choice; dict reads
# and writes are atomic, so signing threads share it without a lock.
_FROM_DOMAINS = {}
MAX_FROM_VALUES = 4096


def _domains_of(value):
    """The distinct domains (A-labels) of the addresses in one raw From: value."""
    found = _FROM_DOMAINS.get(value)
    if found is not None:
        return found
    text = value.decode("utf-8", "replace").replace("\r\n", "")
    out = []
    for _, address in email.utils.getaddresses([text]):
        domain = address.rpartition("@")[2]
        if not domain:
            continue
        try:
            domain = domain_to_ascii(domain)
        except AccountError:
            continue
        if domain not in out:
            out.append(domain)
    if len(_FROM_DOMAINS) >= MAX_FROM_VALUES:
        _FROM_DOMAINS.clear()
    found = _FROM_DOMAINS[value] = tuple(out)
    return found


def _ordered(active):
    return [active[a] for a in ALGORITHMS if a in active]


def _names(keys):
    return ", ".join(k.selector.name for k in keys) if keys else "no keys"
