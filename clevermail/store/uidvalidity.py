"""UIDVALIDITY values never given twice to a user's folders (RFC 3501 2.3.1.1: a
folder deleted and created again under the same name must get a new UIDVALIDITY,
so that clients throw away the UIDs they cached for the old one).

The current time alone is not enough: a folder deleted and created again within the
same second, or after a restart with a clock set back, would get the old value.  So
each user keeps a durable high-water mark, `<root>/clevermail-uidvalidity` (the last
value handed out, one decimal line), and a new folder gets max(now, last + 1), read
and written under the user's lock (users.user_lock) so that threads and processes
creating folders at once never share a value.
"""

import os
import time

from ..durable import atomic_write
from .users import user_lock, user_root_of

FILENAME = "clevermail-uidvalidity"


def _last(path):
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return 0
    return int(text) if text.isdigit() else 0


def next_value(folder_path):
    """A new UIDVALIDITY for a folder of the user owning `folder_path`; durable
    before it is returned."""
    root = user_root_of(folder_path)
    path = os.path.join(root, FILENAME)
    with user_lock(root):
        # a 32-bit value (RFC 3501 nz-number); the mark wraps in 2106
        value = max(int(time.time()), _last(path) + 1) & 0xFFFFFFFF or 1
        atomic_write(path, f"{value}\n")
    return value
