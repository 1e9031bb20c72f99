"""Password hashes: salted scrypt (hashlib, RFC 7914) whose parameters travel inside the
stored string (`scrypt$N$r$p$salt$hash`), so they can be raised later without
breaking old entries; verification is constant-time, and dummy_hash() lets an unknown
user cost the same scrypt work as a known one."""

import base64
import hashlib
import hmac
import os
import secrets
import threading

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1


def hash_password(password):
    """A new salted scrypt hash string for `password`."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R,
                            p=SCRYPT_P, maxmem=2 ** 26, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(digest)}"


def verify_password(password, stored):
    """True when `password` matches the hash string `stored` (constant-time compare)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        salt, digest = base64.b64decode(salt), base64.b64decode(digest)
        computed = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=int(n), r=int(r),
                                  p=int(p), maxmem=2 ** 27, dklen=len(digest))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, digest)


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
