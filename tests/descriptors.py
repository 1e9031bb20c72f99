"""This test process's open descriptors, for tests that check a component leaves none
behind (test_idle_hub.py, test_store_waiters.py)."""

import os


def fds():
    """This process's descriptors as (number, inode) pairs: a number that an earlier
    test's object, collected meanwhile (a Folder's lock file), gave back and that is
    now reused counts as new."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            found.add((name, os.stat(f"/proc/self/fd/{name}").st_ino))
        except OSError:         # closed since the listing (the listing's own among them)
            pass
    return found
