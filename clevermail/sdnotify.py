"""sd_notify(3) without libsystemd: tell the service manager how the server is doing.

systemd (Type=notify) passes the path of a datagram socket in NOTIFY_SOCKET; the
server sends newline-separated VARIABLE=value assignments to it, one datagram per
notification: READY=1 once every listener is bound and privileges are dropped,
STATUS=<one line> for `systemctl status`, RELOADING=1 with MONOTONIC_USEC while a
reload runs, then READY=1 again, STOPPING=1 when it begins to stop.  A path that starts
with '@' is in the Linux abstract namespace (the '@' stands for a leading NUL byte).

Without NOTIFY_SOCKET (started by hand, by a test, by another supervisor) every call
is a no-op.  A send that fails is logged once and never stops the server: the service
manager's view of it is not worth a mail server that refuses to run.
"""

import logging
import os
import socket
import time

log = logging.getLogger("clevermail.sdnotify")

NOTIFY_ENV = "NOTIFY_SOCKET"


def socket_address(value):
    """NOTIFY_SOCKET's value -> the address for sendto(); None when unset or unusable
    (systemd only ever sets an absolute path or an abstract name)."""
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


def monotonic_usec():
    """CLOCK_MONOTONIC in microseconds, as MONOTONIC_USEC= wants it with RELOADING=1."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Notifier:
    """The NOTIFY_SOCKET of this process (read once, at construction)."""

    def __init__(self, environ=None):
        environ = os.environ if environ is None else environ
        self.address = socket_address(environ.get(NOTIFY_ENV, ""))
        self._sock = None
        self._warned = False

    @property
    def enabled(self):
        return self.address is not None

    def notify(self, **fields):
        """Send one notification: notify(READY=1, STATUS="...").  Returns True when it
        was sent (False: no NOTIFY_SOCKET, or the send failed)."""
        if self.address is None:
            return False
        # A STATUS value is one line: a newline would start a new assignment.
        text = "\n".join(f"{key}={' '.join(str(value).split())}" for key, value in fields.items())
        try:
            if self._sock is None:
                self.open()
            self._sock.send(text.encode("utf-8"))
            return True
        except OSError as exc:
            self.close()                # the next notification connects again
            if not self._warned:
                self._warned = True
                log.warning("cannot notify the service manager at %s: %s", self.address.replace("\0", "@"),
                            exc.strerror or exc)
            return False

    def open(self):
        """Connect to the socket now.  `clevermail start` does this before it drops
        privileges: the permission to write to the socket is checked at connect time,
        so a NOTIFY_SOCKET only root may reach still hears READY=1 from the server
        running as [server] user.  Raises OSError."""
        if self.address is None or self._sock is not None:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            sock.connect(self.address)
        except OSError:
            sock.close()
            raise
        self._sock = sock

    def ready(self, status=None):
        return self.notify(READY=1, **({"STATUS": status} if status else {}))

    def status(self, status):
        return self.notify(STATUS=status)

    def reloading(self):
        return self.notify(RELOADING=1, MONOTONIC_USEC=monotonic_usec())

    def stopping(self, status=None):
        return self.notify(STOPPING=1, **({"STATUS": status} if status else {}))

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None
