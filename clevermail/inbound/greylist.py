"""Greylisting (RFC 6647): a first delivery attempt from an unknown (client network,
sender, recipient) triplet gets 451 4.7.1; a retry after `delay` seconds (and within
`window`) passes, and the client network is then known: its mail passes at once for
`allow_days`, as postgrey's auto-allow does.  Real mail servers retry; most spam
software does not.

The client network is the /24 of an IPv4 address and the /64 of an IPv6 one (a
sending farm retries from another address of the same network).  The sender is
lower-cased; the null sender's bounces are greylisted like any other triplet.

State lives in `<data_dir>/greylist.sqlite3` (stdlib sqlite3 in WAL mode: durable,
and shared safely by several processes on one data dir); rows older than their
use are purged now and then.
"""

import ipaddress
import sqlite3
import threading
import time

FILE_NAME = "greylist.sqlite3"
PURGE_EVERY = 1000          # checks between purges of expired rows


def client_network(ip):
    ip = ipaddress.ip_address(ip)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


class Greylist:
    def __init__(self, data_dir, delay=300.0, window=86400.0, allow_days=36, clock=time.time):
        self.path = f"{data_dir}/{FILE_NAME}"
        self.delay, self.window = delay, window
        self.allow_seconds = allow_days * 86400.0
        self.clock = clock
        self._local = threading.local()     # one connection per thread (sqlite3's rule)
        self._all = []                      # every thread's connection, for close()
        self._all_lock = threading.Lock()
        self._checks = 0
        with self._db() as db:
            db.execute("CREATE TABLE IF NOT EXISTS triplet (network TEXT, sender TEXT, rcpt TEXT, "
                       "first REAL, PRIMARY KEY (network, sender, rcpt))")
            db.execute("CREATE TABLE IF NOT EXISTS known (network TEXT PRIMARY KEY, until REAL)")

    def _db(self):
        db = getattr(self._local, "db", None)
        if db is None:
            # used by its own thread only; close() at stop may come from another
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            self._local.db = db
            with self._all_lock:
                self._all.append(db)
        return db

    def check(self, ip, sender, rcpt):
        """None when the mail may pass now, else the seconds the client must still wait."""
        now = self.clock()
        network, sender, rcpt = client_network(ip), sender.lower(), rcpt.lower()
        db = self._db()
        self._checks += 1
        if self._checks % PURGE_EVERY == 0:
            self.purge(now)
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT until FROM known WHERE network = ?", (network,)).fetchone()
            if row is not None and row[0] > now:
                db.execute("COMMIT")
                return None
            row = db.execute("SELECT first FROM triplet WHERE network = ? AND sender = ? AND rcpt = ?",
                             (network, sender, rcpt)).fetchone()
            if row is None or now - row[0] > self.window:
                db.execute("INSERT OR REPLACE INTO triplet VALUES (?, ?, ?, ?)", (network, sender, rcpt, now))
                db.execute("COMMIT")
                return self.delay
            if now - row[0] < self.delay:
                db.execute("COMMIT")
                return self.delay - (now - row[0])
            # a retry in time: the network is known from now on
            db.execute("INSERT OR REPLACE INTO known VALUES (?, ?)", (network, now + self.allow_seconds))
            db.execute("DELETE FROM triplet WHERE network = ?", (network,))
            db.execute("COMMIT")
            return None
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def purge(self, now=None):
        now = self.clock() if now is None else now
        db = self._db()
        db.execute("DELETE FROM triplet WHERE first < ?", (now - self.window,))
        db.execute("DELETE FROM known WHERE until < ?", (now,))

    def close(self):
        """Close every thread's connection (at service stop: no session runs)."""
        with self._all_lock:
            for db in self._all:
                db.close()
            self._all.clear()
        self._local = threading.local()
