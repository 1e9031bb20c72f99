"""Helpers of the tests of IMAP's authenticated-state commands (test_imap_cmd_mailboxes.py,
test_imap_cmd_tree.py)."""

import os


def tree(root):
    """Every path under root (to prove that nothing was created)."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        out.update(os.path.join(dirpath, n) for n in dirnames + filenames)
    return out
