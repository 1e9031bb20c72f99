"""Special-use attributes of folders (RFC 6154): which of a user's folders is the Sent,
Drafts, Trash, Junk or Archive folder.  Protocol-neutral.

- The folders every user gets (users.SPECIAL_USE: Sent, Drafts, Trash, Junk, Archive)
  have theirs by name.
- A folder created with attributes (IMAP CREATE-SPECIAL-USE, RFC 6154 section 3)
  keeps them in its own directory (`clevermail-specialuse`, one name a line), written
  before the folder appears: they move with a RENAME, go with a DELETE, and are that
  folder's attributes whatever its name.

SUPPORTED are the attributes of real folders; \\All and \\Flagged name virtual folders
(every message, the flagged ones) this store does not have, and any other is unknown:
`check()` refuses them.  UNIQUE are those one folder at most may carry: clients file
into them on their own (sent mail, drafts, deleted mail, junk) and delivery puts junk
into "Junk", so two candidates would split the mail; \\Archive may be on several (an
archive per year).  `check()` refuses an attribute of UNIQUE that another folder has.
"""

import os

from ..durable import atomic_write
from .errors import SpecialUseError

FILENAME = "clevermail-specialuse"
SUPPORTED = ("\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash")
UNIQUE = frozenset({"\\Drafts", "\\Junk", "\\Sent", "\\Trash"})
_CANONICAL = {name.lower(): name for name in SUPPORTED}


def canonical(attributes):
    """Attribute names as written by a client -> their canonical spelling, each once, in
    the order given; SpecialUseError for one not SUPPORTED."""
    out = []
    for attr in attributes:
        name = _CANONICAL.get(attr.lower())
        if name is None:
            raise SpecialUseError(attr)
        if name not in out:
            out.append(name)
    return tuple(out)


def read(folder_path):
    """The attributes stored with a folder, or None when it has none stored."""
    try:
        with open(os.path.join(folder_path, FILENAME), encoding="utf-8") as f:
            return tuple(line.strip() for line in f if line.strip() in SUPPORTED)
    except FileNotFoundError:
        return None


def write(folder_path, attributes):
    """Store the attributes with a folder (durably; the directory must exist)."""
    atomic_write(os.path.join(folder_path, FILENAME), "".join(a + "\n" for a in attributes))


def check(existing, wanted):
    """Refuse `wanted` (canonical names) when one of UNIQUE is already on a folder of
    `existing` ({folder name: attributes})."""
    for attr in wanted:
        if attr in UNIQUE:
            for name, attrs in existing.items():
                if attr in attrs:
                    raise SpecialUseError(attr, name)
