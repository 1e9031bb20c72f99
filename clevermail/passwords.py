"""Password hashes: salted scrypt (hashlib, RFC 7914) whose parameters travel inside the
stored string (`scrypt$N$r$p$salt$hash`), so they can be raised later without
breaking old entries; verification is constant-time, and dummy_hash() lets an unknown
user cost the same scrypt work as a known one.

At most one scrypt per core runs at once (the rest wait their turn, asleep): each
takes 16 MiB (128 * r * N bytes) and a core's worth of CPU for its ~50 ms, so 10,000
logins arriving together (issue 18) would otherwise ask for gigabytes at once and
share two cores among hundreds of hashes, every login finishing late.  Measured with
200 logins at once: peak resident memory 947 MB without the cap, 55 MB with it (and
glibc's mmap threshold fixed, process.py; without that, 3.2 GB stayed resident).
"""

import base64
import hashlib
import hmac
import os
import secrets
import threading

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1


def _cores():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# scrypt computations running at once in this process (see the module docstring)
_running = threading.BoundedSemaphore(_cores())


def _scrypt(password, salt, n, r, p, maxmem, dklen):
    with _running:
        return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=dklen)


def hash_password(password):
    """A new salted scrypt hash string for `password`."""
    salt = os.urandom(16)
    digest = _scrypt(password.encode("utf-8"), salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, 2 ** 26, 32)
    b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(digest)}"


def verify_password(password, stored, verified_meanwhile=None, remember=None):
    """True when `password` matches the hash string `stored` (constant-time compare).

    For the same credentials arriving together (accounts.py keeps those verified):
    `verified_meanwhile()`, asked when this check's turn for scrypt comes, True means
    they were verified while it waited, and no scrypt is run; `remember()` is called
    on a match before the turn ends, so a check waiting behind this one sees it."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        salt, digest = base64.b64decode(salt), base64.b64decode(digest)
        n, r, p = int(n), int(r), int(p)
        with _running:
            if verified_meanwhile is not None and verified_meanwhile():
                return True
            computed = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                                      maxmem=2 ** 27, dklen=len(digest))
            ok = hmac.compare_digest(computed, digest)
            if ok and remember is not None:
                remember()
            return ok
    except (ValueError, TypeError):
        return False


# Verifying against this when the user does not exist makes unknown users cost the
# same scrypt work as known ones.  Made on first use, not at import: importing the
# package (the CLI, every test process) must not pay for an scrypt.
_dummy_hash = None
_dummy_lock = threading.Lock()


def dummy_hash():
    """The hash an unknown user is verified against (one per process, made once)."""
    global _dummy_hash
    if _dummy_hash is None:
        with _dummy_lock:
            if _dummy_hash is None:
                _dummy_hash = hash_password(secrets.token_hex(8))
    return _dummy_hash
