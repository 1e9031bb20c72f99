"""The server's TLS context: building it from a certificate/key pair, and holding the
current one so that a renewed certificate is used without a restart or a signal.

make_server_context builds an ssl.SSLContext (TLS 1.2 and up, RFC 8996 / RFC 7525
3.1.1) from a PEM chain and its key.  ServerContext holds the context every listener
hands out: `get()` returns it, and at most every `check_interval` seconds (lazily,
on the way to a TLS handshake or a STARTTLS offer) it stats the certificate and the
key (following symlinks, as certbot's live/ directory is a set of symlinks swapped at
renewal) and loads the pair again when mtime, size or inode changed.  A pair that
does not load (a half-written file, a certificate whose key has not arrived yet)
never replaces a good context: the old one stays, a WARNING says why, and the next
check tries again.  `replace()` is the reload path (new file names from the config).

Swapping is one attribute assignment: new connections and new STARTTLS handshakes use
the new context; a session already in TLS keeps the SSLSocket (and context) it has.

The files are read again by the process as it runs: with [server] user, by that user.
certbot makes private keys readable by root only, so the key (and the live/ and
archive/ directories) must be readable by that user, e.g. through its group set by a
certbot deploy hook; otherwise every check logs the WARNING and the old pair stays.
"""

import logging
import os
import ssl
import threading
import time

# Seconds between two looks at the certificate files: a renewal shows within this.
CHECK_INTERVAL = 30.0

log = logging.getLogger("clevermail.tls")


def make_server_context(certificate, key):
    """Server-side TLS context (TLS 1.2+), or None when no certificate is configured."""
    if not certificate:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certificate, key)
    return ctx


def _stamp(path):
    """What says a file was replaced or rewritten: (mtime, size, inode) of the file a
    path resolves to, or None when it cannot be stat'ed (missing during a swap)."""
    try:
        st = os.stat(path)          # follows symlinks: the renewed archive file
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev)


class ServerContext:
    """The current server SSLContext of a certificate/key pair, reloaded when the
    files change on disk.  Thread-safe: any session thread may call get()."""

    def __init__(self, certificate, key, *, check_interval=CHECK_INTERVAL, clock=time.monotonic):
        self.check_interval = check_interval
        self._clock = clock
        self._lock = threading.Lock()           # one reloader at a time
        # (certificate, key, context, stamps): replaced whole, read without the lock
        self._current = self._load(certificate, key)
        self._next_check = clock() + check_interval

    @staticmethod
    def _load(certificate, key):
        stamps = (_stamp(certificate), _stamp(key)) if certificate else None
        return (certificate, key, make_server_context(certificate, key), stamps)

    @property
    def certificate(self):
        return self._current[0]

    def get(self):
        """The context for a new handshake (None when no certificate is configured)."""
        if self._clock() >= self._next_check:
            self.check()
        return self._current[2]

    def check(self):
        """Load the pair again if its files changed since the last good load; True when
        a new context was installed.  Never raises for a bad pair: it keeps the old."""
        if not self._lock.acquire(blocking=False):
            return False                        # another thread is checking right now
        try:
            self._next_check = self._clock() + self.check_interval
            certificate, key, _, stamps = self._current
            if not certificate:
                return False
            now = (_stamp(certificate), _stamp(key))
            if now == stamps:
                return False
            try:
                fresh = self._load(certificate, key)
            except (OSError, ValueError) as exc:    # ssl.SSLError is an OSError
                # Keep serving with the pair loaded before; the stamp is not taken, so
                # the next check tries again (certbot writes cert and key one by one).
                log.warning("TLS certificate %s or key %s changed but cannot be loaded "
                            "(%s); keeping the certificate loaded before", certificate, key, exc)
                return False
            if (_stamp(certificate), _stamp(key)) != fresh[3]:
                # changed again while we read it: take what we read, look again soon
                self._next_check = self._clock()
            self._current = fresh
            log.info("TLS certificate %s reloaded", certificate)
            return True
        finally:
            self._lock.release()

    def replace(self, certificate, key):
        """Use another pair now (configuration reload).  Raises OSError/ValueError
        (ssl.SSLError included) when it does not load; the old context then stays."""
        fresh = self._load(certificate, key)
        with self._lock:
            self._current = fresh
            self._next_check = self._clock() + self.check_interval


class StaticContext:
    """A fixed SSLContext with ServerContext's get(): what a MailServer given a plain
    SSLContext (tests, embedding) holds."""

    def __init__(self, context):
        self._context = context

    def get(self):
        return self._context
