"""A user's subscribed folder names (IMAP SUBSCRIBE/LSUB, RFC 3501 6.3.6-6.3.9):
`<root>/subscriptions`, one name a line, replaced whole with durable.atomic_write.

Every change is a read-modify-write under the user's lock (users.user_lock), so a
SUBSCRIBE and a RENAME rewriting the same file never lose each other's update, and
no store-wide lock waits on this disk I/O.
"""

import os

from ..durable import atomic_write
from . import paths
from .users import user_lock

FILENAME = "subscriptions"


class Subscriptions:
    @staticmethod
    def read(root):
        try:
            with open(os.path.join(root, FILENAME), encoding="utf-8") as f:
                return [line.rstrip("\n") for line in f if line.strip()]
        except FileNotFoundError:
            return []

    @staticmethod
    def _write(root, names):
        atomic_write(os.path.join(root, FILENAME), "".join(n + "\n" for n in names))

    def _change(self, root, change):
        """Apply change(names) -> new names or None (nothing to write) under the lock."""
        with user_lock(root):
            names = self.read(root)
            new = change(names)
            if new is not None and new != names:
                self._write(root, new)

    def add(self, root, names):
        """Subscribe `names` (a new user's special-use folders), kept sorted with the rest."""
        self._change(root, lambda subs: sorted(set(subs) | set(names)))

    def subscribe(self, root, name, on=True):
        """Subscribe (`on`) or unsubscribe one folder name."""
        paths.split_folder(name)

        def change(subs):
            if on and name not in subs:
                return subs + [name]
            if not on and name in subs:
                return [s for s in subs if s != name]
            return None
        self._change(root, change)

    def rename(self, root, old, new):
        """A renamed folder's subscription, and its children's, follow it."""
        prefix = old + paths.SEPARATOR
        self._change(root, lambda subs: [new + s[len(old):] if (s == old or s.startswith(prefix)) else s
                                         for s in subs])
