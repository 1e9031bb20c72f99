"""users.ini written: the locked, atomic edit every writer goes through (the CLI's
`user` commands, and the server storing SCRAM keys at a login, accounts_upgrade.py),
and what a password puts in an account's section (the scrypt hash and the SCRAM keys,
never the password) with the file's secret for stand-in salts.

One writer at a time, in any process: an flock on `users.ini.lock` (and this
process's AccountStore lock) around read-modify-write; the file is replaced whole by
durable.atomic_write (temporary file, fsync, rename, fsync of the directory), so a
reader or a process killed mid-write sees the old file or the new, never half of one.
"""

import base64
import binascii
import fcntl
import io
import os
import secrets

from configobj import ConfigObj

from . import scram
from .durable import atomic_write
from .passwords import hash_password


class Unchanged(Exception):
    """Raised in a LockedEdit's body: nothing to write (the file stays as it is)."""


def set_password(cfg, section, password):
    """The scrypt hash and the SCRAM keys of `password` into `section` (no keys, and
    none left from an older password, when SASLprep refuses it); the file's secret
    for stand-in salts made with the first keys."""
    cfg[section]["password"] = hash_password(password)
    keys = scram.derive(password)
    if keys is None:
        cfg[section].pop("scram", None)
        return
    set_keys(cfg, section, keys)


def set_keys(cfg, section, keys):
    """SCRAM keys (scram.StoredKeys) into `section`, and the file's secret for
    stand-in salts if it has none yet (made with the first keys)."""
    cfg[section]["scram"] = keys.encode()
    if secret_of(cfg.get("scram_secret")) is None:
        cfg["scram_secret"] = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
        # a top-level key goes before the sections: ConfigObj writes scalars first
        cfg.scalars.remove("scram_secret")
        cfg.scalars.insert(0, "scram_secret")


def secret_of(text):
    """The stand-in secret of a users.ini `scram_secret` value, None when unusable."""
    try:
        secret = base64.b64decode(text or "", validate=True)
    except (binascii.Error, ValueError):
        return None
    return secret if len(secret) >= 16 else None



class LockedEdit:
    """Context manager: lock users.ini, hand out its ConfigObj, write it back atomically
    (not at all when the body raises, Unchanged included)."""

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
                                        "# Manage with `clevermail user add|passwd|del|list`; passwords are scrypt hashes (and SCRAM keys)."]
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
