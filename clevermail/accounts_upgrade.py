"""SCRAM-SHA-256 keys for accounts written before SCRAM, made at a login, as
Dovecot-style servers move a password to a new scheme when the user next logs in.

SCRAM keys can only be derived from the password, which the server never stores;
but a login with a password mechanism (IMAP LOGIN and AUTHENTICATE PLAIN/LOGIN,
POP3 USER/PASS and AUTH, SMTP AUTH PLAIN/LOGIN, ManageSieve AUTHENTICATE PLAIN: all
through AccountStore.authenticate) has it in hand once scrypt has proved it right.
Then, if the account has no keys, `ScramUpgrades.request` queues (address, the
scrypt hash it proved, the password) and one thread of this AccountStore makes the
keys (scram.derive: the same random salt and iteration count as `user passwd`) and
writes them through AccountStore._store_keys: under users.ini's flock, only while
the account still has that hash (a password set meanwhile brought keys of its own)
and no usable keys (another worker process, or this one, came first), as one atomic
rewrite of the file (accounts_file.py); the password is never written or logged.
Every process notices the rewritten file by its stat, and SCRAM is offered once
every account has keys (accounts.has_scram).

Why a thread: the login's reply should not wait for work that is not its own.  The
key derivation is PBKDF2-HMAC-SHA-256 with 10,000 iterations (3.5 to 14 ms of CPU
measured on a shared 2-core machine) and the write reads, rewrites and fsyncs
users.ini and its directory under a lock every writer and reload takes (about 20 ms
for 100 accounts there); it is a one-time cost per account, but it would fall on the
first login of each one, all at once after an upgrade.  The password
waits in this queue only until its keys are made (milliseconds).  The thread starts
when a request comes, works the queue off and ends; it is a daemon: a process that
stops meanwhile writes nothing half (the rewrite is atomic) and the keys are made at
the next login instead.  A request settled in this process (written, found written
by another, refused by SASLprep, or not writable: the users file belongs to root and
the server runs as `[server] user`) is not made again for that hash, so a
read-only users.ini costs one warning per account, not one per login.
"""

import logging
import threading
from collections import deque

from . import scram

log = logging.getLogger("clevermail.accounts")


class ScramUpgrades:
    """The SCRAM keys one AccountStore still has to make and write.  `write(address,
    stored_hash, keys)` stores them (True when written)."""

    def __init__(self, write):
        self._write = write
        self._lock = threading.Lock()
        self._queue = deque()
        self._busy = set()          # addresses queued or being worked on
        self._settled = set()       # (address, hash) done with in this process
        self._thread = None
        self._idle = threading.Event()
        self._idle.set()

    def request(self, address, stored, password):
        """A login proved `password` against the hash `stored` of an account without
        keys: make and store them (soon, on the upgrade thread)."""
        with self._lock:
            if address in self._busy or (address, stored) in self._settled:
                return
            self._busy.add(address)
            self._queue.append((address, stored, password))
            self._idle.clear()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="scram-keys", daemon=True)
                self._thread.start()

    def wait(self, timeout=None):
        """True once nothing is queued or being written."""
        return self._idle.wait(timeout)

    def _run(self):
        while True:
            with self._lock:
                if not self._queue:
                    self._thread = None
                    self._idle.set()
                    return
                address, stored, password = self._queue.popleft()
            try:
                self._upgrade(address, stored, password)
            except Exception as exc:
                # a bug must not end the thread with `_thread` still set (no later
                # request would start one); its type only: a message (a codec's,
                # say) may quote the password
                log.error("SCRAM-SHA-256 keys of %s could not be made (%s)", address, type(exc).__name__)
            finally:
                with self._lock:
                    self._busy.discard(address)
                    self._settled.add((address, stored))

    def _upgrade(self, address, stored, password):
        keys = scram.derive(password)
        del password
        if keys is None:
            log.info("%s keeps PLAIN and LOGIN only: SASLprep refuses its password for SCRAM-SHA-256",
                     address)
            return
        try:
            written = self._write(address, stored, keys)
        except OSError as exc:
            # the path and the reason, never the file's content
            log.warning("SCRAM-SHA-256 keys of %s could not be stored (%s: %s); "
                        "`clevermail user passwd` writes them", address, exc.strerror or type(exc).__name__,
                        exc.filename or "users file")
            return
        except Exception as exc:    # a users.ini that does not parse now: its text stays out of the log
            log.warning("SCRAM-SHA-256 keys of %s could not be stored (%s)", address, type(exc).__name__)
            return
        if written:
            log.info("SCRAM-SHA-256 keys of %s made at login and stored", address)
