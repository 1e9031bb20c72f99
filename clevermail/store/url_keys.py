"""The mailbox access keys of URLAUTH (RFC 4467 sections 3 and 7): one random 256-bit
key per user and mailbox, made on first use, with which IMAP signs the URLs it
authorizes (imap/urlauth.py); RESETKEY replaces a mailbox's key or all of a user's,
so every URL signed with the old ones stops working.

Kept in `<user root>/clevermail-urlauth-keys` (mode 0600: a key is a secret), one
"<hex key> <mailbox name>" a line, rewritten whole with durable.atomic_write under the
user's lock, like subscriptions.  The keys never leave the store: callers get the
HMAC of a text (`sign`), never a key.
"""

import hashlib
import hmac
import os
import secrets

from ..durable import atomic_write
from .errors import StoreError
from .users import user_lock

FILENAME = "clevermail-urlauth-keys"


class UrlAuthKeys:
    def __init__(self, store):
        self.store = store

    def sign(self, address, mailbox, text):
        """HMAC-SHA1 of `text` with the key of `address`'s `mailbox` (made if missing),
        as 40 hex digits (RFC 4467 7: INTERNAL's token)."""
        key = self._key(address, mailbox, create=True)
        return hmac.new(key, text.encode("utf-8"), hashlib.sha1).hexdigest()

    def verify(self, address, mailbox, text, token):
        """True when `token` is the signature of `text` with the mailbox's current key
        (a mailbox without a key has signed nothing)."""
        key = self._key(address, mailbox, create=False)
        if key is None:
            return False
        expected = hmac.new(key, text.encode("utf-8"), hashlib.sha1).hexdigest()
        return hmac.compare_digest(expected, token.lower())

    def reset(self, address, mailbox=None):
        """A new key for `mailbox`, or for every mailbox of the user (None)."""
        root = self.store.ensure_user(address)
        with user_lock(root):
            keys = _read(root)
            if mailbox is None:
                keys = {}
            else:
                keys[mailbox] = secrets.token_bytes(32)
            _write(root, keys)

    def _key(self, address, mailbox, create):
        if not create:
            # verifying a URL: its owner is whatever the URL says, maybe no user at all,
            # for whom nothing may be created
            try:
                return _read(self.store.user_root(address)).get(mailbox)
            except (StoreError, OSError):
                return None
        root = self.store.ensure_user(address)
        key = _read(root).get(mailbox)
        if key is not None:
            return key
        with user_lock(root):
            keys = _read(root)
            if mailbox not in keys:
                keys[mailbox] = secrets.token_bytes(32)
                _write(root, keys)
            return keys[mailbox]


def _read(root):
    keys = {}
    try:
        with open(os.path.join(root, FILENAME), encoding="utf-8") as f:
            for line in f:
                key, _, name = line.rstrip("\n").partition(" ")
                try:
                    keys[name] = bytes.fromhex(key)
                except ValueError:
                    continue        # a damaged line signs nothing
    except FileNotFoundError:
        pass
    return keys


def _write(root, keys):
    atomic_write(os.path.join(root, FILENAME),
                 "".join(f"{key.hex()} {name}\n" for name, key in sorted(keys.items())))
