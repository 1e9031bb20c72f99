"""The threaded server and session base shared by SMTP, POP3 and IMAP.

MailServer is a socketserver.ThreadingTCPServer: one thread per connection.  It holds
the file handler bound to it (`server.handler`, the original's SmtpFileHandler etc.),
its Limits and SessionPolicy (typed settings built by config.py), the TLS context, and
counts connections in total and per client address.
`close_all()` ends every live session so that stopping never waits on idle clients.

Draining (MailService.stop): `start_drain()` sets `draining` and signals `drain_fd`,
which sessions poll beside their socket while they wait for a command: a waiting
session sends its shutdown reply at once, one inside a command after it.  Past the
drain time `cut_sessions()` shuts the read side of the rest (LineSession.cut).

The sessions it runs are line_session.LineSession subclasses.
"""

import ipaddress
import logging
import os
import select
import socket
import socketserver
import ssl
import threading
import time
import weakref
from dataclasses import dataclass

from .accept_share import NO_BOARD
from .idle_hub import IdleHub
from .metrics import NO_METRICS
from .session_threads import SessionThreads
from .sockopts import set_kernel_timeouts, set_nodelay
from .tls_context import StaticContext

# Connections taken per wake-up of the accept loop (see _handle_request_noblock).
ACCEPT_BATCH = 64
# Seconds between looks at the listener while another process may take its connection.
DEFER_STEP = 0.001
# After accept() failed other than for an empty backlog (no file descriptors left).
ACCEPT_ERROR_PAUSE = 0.05
ACCEPT_ERROR_LOG_INTERVAL = 10.0


@dataclass(frozen=True)
class Limits:
    """What the sessions of one listener may use: the [limits] section with that
    protocol's idle timeout (config.py builds one per protocol).  Frozen, and built by
    keyword, so a misspelt limit is a TypeError, never a silently ignored value."""

    message_size: int = 26214400        # bytes: SMTP SIZE, the IMAP literal limit
    recipients: int = 100               # per SMTP transaction
    connections: int = 1000             # sessions of this listener at once
    connections_per_client: int = 50    # of them from one client address
    timeout: float = 300.0              # idle seconds before the session is ended
    auth_failure_delay: float = 1.5     # seconds before a failed login is answered
    errors_per_session: int = 20        # protocol errors before the session is cut off


@dataclass(frozen=True)
class SessionPolicy:
    """What a listener's sessions allow (the policy keys of [server])."""

    # credentials over plaintext from non-loopback clients (behind a TLS proxy only)
    allow_plaintext_auth: bool = False
    # ipaddress networks whose clients may relay through SMTP without AUTH
    trusted_networks: tuple = ()
    # IMAP FETCH of message data and POP3 RETR logged at INFO (else DEBUG): log_retrieval
    log_retrievals: bool = False


class MailServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # The listen backlog (the kernel caps it at net.core.somaxconn).  Thousands of clients
    # connecting at once (IDLE clients coming back after a network cut) overflow a short
    # one; past it a handshake finished by a SYN cookie is dropped with no retry, and an
    # IMAP or SMTP client, waiting for the greeting, waits forever (issue 18: 101 of 2,000
    # at 256 with 512 connecting at once).
    request_queue_size = 1024
    # ipaddress networks of the load balancers whose PROXY header names the client
    # (proxy_protocol.py), for a listener of [server] proxy_protocol; None: no PROXY
    proxy_networks = None
    # the connections open in each process of [server] workers (accept_share.py), which
    # the accept loop consults; a single process has none
    board = NO_BOARD
    _stop_deferring = False

    def __init__(self, address, session_class, handler, *, protocol, hostname, limits, policy,
                 ssl_context=None, implicit_tls=False, throttle=None, sock=None,
                 metrics=NO_METRICS):
        # sock: a socket already bound and listening (listen_socket(), or inherited from
        # systemd); it is adopted instead of binding `address`.
        host = address[0]
        self.address_family = _family(host)
        self.handler = handler
        self.protocol = protocol
        self.hostname = hostname
        self.limits = limits            # Limits
        self.policy = policy            # SessionPolicy
        # a tls_context.ServerContext (or a plain SSLContext, held as it is)
        if isinstance(ssl_context, ssl.SSLContext):
            ssl_context = StaticContext(ssl_context)
        self.tls = ssl_context
        self.implicit_tls = implicit_tls
        self.throttle = throttle
        self.metrics = metrics          # metrics.Metrics: the no-op unless [metrics] is on
        self.log = logging.getLogger(f"clevermail.{protocol}")
        self._conn_lock = threading.Lock()
        self._per_client = {}
        self.sessions = set()
        self._ended = threading.Condition(self._conn_lock)     # a session was released
        self.closing = False
        self.draining = False
        # Readable once draining: sessions waiting for a command poll it with their socket.
        self.drain_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._close_drain_fd = weakref.finalize(self, os.close, self.drain_fd)
        self.threads = SessionThreads(self._session, f"clevermail-{protocol}")
        # where sessions that wait long (IDLE) sleep: woken a few at a time (idle_hub.py);
        # its thread starts with the first such wait, close_all() ends it
        self.hub = IdleHub(f"clevermail-{protocol}-idle")
        self._accept_warned = float("-inf")
        # the session timeout the accepted sockets get from the listener (prime_listener)
        self.primed_timeout = None
        if sock is None:
            super().__init__((host.strip("[]"), address[1]), session_class)
            return
        self.address_family = sock.family
        super().__init__(sock.getsockname(), session_class, bind_and_activate=False)
        self.socket.close()             # the unbound one socketserver made
        self.socket = sock
        self.server_address = sock.getsockname()
        sock.setblocking(False)         # as server_activate does for a socket bound here
        self.prime_listener()

    def prime_listener(self):
        """Set on the listening socket what every session sets on its own: the kernel
        read and write timeouts (the idle timeout, sockopts.set_blocking_timeout)
        and TCP_NODELAY; the listener stays non-blocking (the accept loop).  Linux
        copies a listener's options to each socket accept()
        returns, so a session makes none of these three system calls unless its
        timeout differs (a reload changed it: LineSession.setup compares)."""
        self.primed_timeout = None
        try:
            set_kernel_timeouts(self.socket, self.limits.timeout)
        except OSError:
            return
        set_nodelay(self.socket)
        self.primed_timeout = self.limits.timeout

    @property
    def port(self):
        return self.server_address[1]

    @property
    def ssl_context(self):
        """The SSLContext for a new handshake, or None (no certificate configured)."""
        tls = self.tls
        return tls.get() if tls is not None else None

    # -- accepting ---------------------------------------------------------------
    def server_activate(self):
        super().server_activate()
        self.socket.setblocking(False)      # accepted sockets are blocking all the same
        self.prime_listener()

    def _handle_request_noblock(self):
        # socketserver takes one connection per wake-up of its poll loop; under a burst
        # every accept then costs a poll and its GIL round trips.  The listener is
        # non-blocking, so take the whole backlog now (bounded, so that a flood still
        # lets serve_forever see a shutdown request).
        for taken in range(ACCEPT_BATCH):
            if self.board.ahead():
                # another process of [server] workers has fewer connections: let it take
                # this one (accept_share.py).  Later in a batch, back to the poll, which
                # says whether more are waiting.
                if taken or not self._still_waiting():
                    return
            try:
                request, client_address = self.get_request()
            except BlockingIOError:           # the backlog is empty
                return
            except OSError as exc:
                self._accept_failed(exc)
                return
            self.board.opened()
            if not self.verify_request(request, client_address):
                self._drop(request)
                continue
            try:
                self.process_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
                self._drop(request)
            except BaseException:
                self._drop(request)
                raise

    def _still_waiting(self):
        """Give the less loaded process up to the board's `defer` seconds to take the
        connection; whether one is still waiting after (taken by nobody, or this
        process stopped being ahead, or the server is shutting down)."""
        deadline = time.monotonic() + self.board.defer
        pending = select.poll()               # (select() fails on descriptors past 1023)
        pending.register(self.socket, select.POLLIN)
        while not self._stop_deferring and self.board.ahead() and time.monotonic() < deadline:
            time.sleep(DEFER_STEP)
            if not pending.poll(0):
                return False                  # another process took it
        return True

    def shutdown(self):
        self._stop_deferring = True           # an accept loop in _still_waiting ends at once
        super().shutdown()

    def _drop(self, request):
        """Close an accepted connection no session thread took."""
        try:
            self.shutdown_request(request)
        finally:
            self.board.closed()

    def _session(self, request, client_address):
        """A session thread's job: serve the connection, then count it closed."""
        try:
            self.process_request_thread(request, client_address)
        finally:
            self.board.closed()

    def _accept_failed(self, exc):
        # Out of file descriptors (EMFILE/ENFILE) or memory: the connection stays in the
        # backlog and poll() reports it again at once.  Pause instead of spinning, and
        # say so now and then rather than 20 times a second.
        now = time.monotonic()
        if now - self._accept_warned > ACCEPT_ERROR_LOG_INTERVAL:
            self._accept_warned = now
            self.log.warning("cannot accept connections: %s", exc)
        time.sleep(ACCEPT_ERROR_PAUSE)

    def process_request(self, request, client_address):
        """One thread per session, as ThreadingMixIn, from SessionThreads."""
        if not self.threads.submit(request, client_address):
            self._drop(request)               # the server is closing

    def shutdown_request(self, request):
        if request.fileno() < 0:
            return                            # the session has closed it already
        super().shutdown_request(request)

    def server_close(self):
        super().server_close()
        self.threads.stop()

    def admit(self, session):
        """Count a new session in; False when over the total or per-client limit."""
        with self._conn_lock:
            if self.closing or self.draining:
                return False
            count = self._per_client.get(session.peer, 0)
            if len(self.sessions) >= self.limits.connections or count >= self.limits.connections_per_client:
                return False
            self._per_client[session.peer] = count + 1
            self.sessions.add(session)
            return True

    def release(self, session):
        with self._conn_lock:
            if session in self.sessions:
                self.sessions.discard(session)
                left = self._per_client.get(session.peer, 1) - 1
                if left:
                    self._per_client[session.peer] = left
                else:
                    self._per_client.pop(session.peer, None)
                self._ended.notify_all()

    # -- draining (graceful stop) ---------------------------------------------------
    def start_drain(self):
        """Sessions waiting for a command get the shutdown reply now; those inside one
        get it when it is done.  New sessions are refused with it.  The listener
        itself is closed by the caller first."""
        with self._conn_lock:
            self.draining = True
        if self.drain_fd is not None:           # None: closed by a stop before this one
            os.eventfd_write(self.drain_fd, 1)  # stays readable: every poller wakes

    def wait_sessions(self, deadline):
        """Wait until every session has ended or time.monotonic() passes `deadline`;
        True when none is left."""
        with self._conn_lock:
            while self.sessions:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._ended.wait(remaining)
            return True

    def cut_sessions(self):
        """Past the drain time: end the commands still running (see LineSession.cut)."""
        with self._conn_lock:
            live = list(self.sessions)
        if live:
            self.log.warning("drain time over: cutting %d session(s)", len(live))
        for session in live:
            session.cut()

    def close_drain_fd(self):
        """Release the eventfd once the session threads have ended (MailService.stop;
        else when the server is collected).  A second stop must not write to the
        number, which the process may have given to another file meanwhile."""
        self.drain_fd = None
        self._close_drain_fd()

    def close_all(self):
        """Shut every live session's socket so its thread ends (server stop)."""
        with self._conn_lock:
            self.closing = True     # sessions accepted but not yet admitted go away at once
            live = list(self.sessions)
        for session in live:
            session.abort()
        self.threads.stop()
        # after the drain and the cut: a session still parked there polls for itself
        self.hub.stop()

    def handle_error(self, request, client_address):
        self.log.exception("unhandled error in session from %s", client_address[0])


def _family(host):
    try:
        if ipaddress.ip_address(host.strip("[]")).version == 6:
            return socket.AF_INET6
    except ValueError:
        pass
    return socket.AF_INET


def listen_socket(address):
    """A socket bound to (host, port) and listening, made as MailServer makes its own
    (so that it can be bound before privileges are dropped and adopted later)."""
    host = address[0].strip("[]")
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        if MailServer.allow_reuse_address:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, address[1]))
        sock.listen(MailServer.request_queue_size)
    except BaseException:
        sock.close()
        raise
    return sock
