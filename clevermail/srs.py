"""SRS, the Sender Rewriting Scheme (Shevek's scheme as libsrs2 and postsrsd write it):
the envelope sender of mail this server forwards to another domain.

Forwarded unchanged, `MAIL FROM:<alice@origin.example>` from our IP fails SPF at the
next hop (origin.example never authorised us).  So a forwarded message leaves as

    SRS0=HHHHHH=TT=origin.example=alice@<srs domain>

where TT is the day (base32, modulo 1024) and HHHHHH an HMAC-SHA256 over the rest
under a secret only this server holds.  A bounce to that address comes back to us;
reverse() checks the hash and the age and gives back alice@origin.example, so the
original sender gets it and nobody else can use our domain as a reflector.  An address
that is already SRS0 (forwarded twice) becomes SRS1=HHHHHH=<first forwarder>==<rest>,
which reverses to the first forwarder's SRS0 address.  The null sender is never
rewritten (a bounce is never bounced).

Hash and time stamp are base32, so an MTA that lower-cases the local part does not
break them.  The secret is 32 random bytes in `<data_dir>/srs.key` (mode 0600),
created at first use.
"""

import base64
import hashlib
import hmac
import os
import time

from . import durable

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
HASH_LENGTH = 6             # base32 characters: 30 bits
MAX_AGE_DAYS = 21           # as libsrs2 and postsrsd
KEY_FILE = "srs.key"


class SRSError(ValueError):
    """An SRS address that is malformed, forged or too old."""


def is_srs(local_part):
    return local_part[:5].upper() in ("SRS0=", "SRS1=")


def load_secret(data_dir):
    """The server's SRS secret, created (0600, fsynced) if there is none yet."""
    path = os.path.join(data_dir, KEY_FILE)
    try:
        durable.write_exclusive(path, base64.b64encode(os.urandom(32)) + b"\n", mode=0o600)
    except FileExistsError:
        pass
    with open(path, "rb") as f:
        secret = base64.b64decode(f.read().strip())
    if len(secret) < 16:
        raise SRSError(f"{path}: the SRS secret is too short")
    return secret


class SRS:
    def __init__(self, secret, domain, clock=time.time, max_age_days=MAX_AGE_DAYS):
        self.secret = secret
        self.domain = domain            # an A-label local domain: bounces come back here
        self.clock = clock
        self.max_age_days = max_age_days

    # -- forward ----------------------------------------------------------------------
    def forward(self, sender):
        """The envelope sender for forwarding mail of `sender`."""
        if not sender:
            return sender
        local, at, domain = sender.rpartition("@")
        if not at:
            return sender               # no domain: nothing SPF could check
        if domain.lower() == self.domain:
            return sender               # ours already: SPF passes as it is
        if local[:5].upper() == "SRS0=":
            # forwarded before: SRS1=hash=first-forwarder==rest-of-the-SRS0
            rest = local[4:]            # "=HHHHHH=TT=domain=local"
            return f"SRS1={self._hash(domain.lower(), rest)}={domain}={rest}@{self.domain}"
        if local[:5].upper() == "SRS1=":
            # SRS1 keeps pointing at the first forwarder: only the hash is ours
            try:
                _, _, first, rest = local.split("=", 3)
            except ValueError:
                raise SRSError(f"malformed SRS1 address {sender!r}") from None
            return f"SRS1={self._hash(first.lower(), rest)}={first}={rest}@{self.domain}"
        stamp = self._stamp(self._today())
        return f"SRS0={self._hash(stamp, domain.lower(), local)}={stamp}={domain}={local}@{self.domain}"

    # -- reverse ----------------------------------------------------------------------
    def reverse(self, address):
        """The address a bounce to SRS `address` goes to; SRSError when it is not one
        of ours, its hash is wrong (forged) or it is too old."""
        local, _, _ = address.rpartition("@")
        kind = local[:5].upper()
        if kind == "SRS0=":
            try:
                digest, stamp, domain, orig_local = local[5:].split("=", 3)
            except ValueError:
                raise SRSError("malformed SRS0 address") from None
            self._check(digest, stamp, domain.lower(), orig_local)
            self._check_age(stamp)
            if not domain or not orig_local:
                raise SRSError("malformed SRS0 address")
            return f"{orig_local}@{domain}"
        if kind == "SRS1=":
            try:
                digest, first, rest = local[5:].split("=", 2)
            except ValueError:
                raise SRSError("malformed SRS1 address") from None
            if not rest.startswith("="):
                raise SRSError("malformed SRS1 address")
            self._check(digest, first.lower(), rest)
            return f"SRS0{rest}@{first}"
        raise SRSError("not an SRS address")

    # -- inside -------------------------------------------------------------------------
    def _hash(self, *parts):
        # lower-cased: what comes back may have been lower-cased on its way
        data = "\0".join(p.lower() for p in parts).encode("utf-8", "surrogateescape")
        mac = hmac.new(self.secret, data, hashlib.sha256).digest()
        return base64.b32encode(mac).decode("ascii")[:HASH_LENGTH]

    def _check(self, digest, *parts):
        if not hmac.compare_digest(digest.upper().encode(), self._hash(*parts).encode()):
            raise SRSError("bad SRS hash (forged, or not ours)")

    def _today(self):
        return int(self.clock() // 86400)

    @staticmethod
    def _stamp(day):
        day %= 1024
        return ALPHABET[day >> 5] + ALPHABET[day & 31]

    def _check_age(self, stamp):
        stamp = stamp.upper()
        if len(stamp) != 2 or any(c not in ALPHABET for c in stamp):
            raise SRSError("bad SRS time stamp")
        then = ALPHABET.index(stamp[0]) << 5 | ALPHABET.index(stamp[1])
        age = (self._today() - then) % 1024
        if age > self.max_age_days:
            raise SRSError(f"SRS address expired ({age} days old)")
