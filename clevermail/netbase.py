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

LineSession is the request handler every protocol session derives from: it owns the
socket, the LineReader, the session id and logger, implicit TLS and STARTTLS, the idle
timeout, error counting, and the read-dispatch-reply loop.  A protocol subclass
supplies greet(), handle_line(), and the replies for busy/timeout/internal error.
"""

import ipaddress
import itertools
import logging
import os
import secrets
import select
import socket
import socketserver
import ssl
import struct
import threading
import time
import weakref
from dataclasses import dataclass

from .login import normalize_peer
from .logs import SessionLogger, redact_command
from .metrics import NO_METRICS
from .session_threads import SessionThreads
from .tls_context import StaticContext
from .wire import LineReader, LineTooLong

# Connections taken per wake-up of the accept loop (see _handle_request_noblock).
ACCEPT_BATCH = 64
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


class MailServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256

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
        self.threads = SessionThreads(self.process_request_thread, f"clevermail-{protocol}")
        self._accept_warned = float("-inf")
        if sock is None:
            super().__init__((host.strip("[]"), address[1]), session_class)
            return
        self.address_family = sock.family
        super().__init__(sock.getsockname(), session_class, bind_and_activate=False)
        self.socket.close()             # the unbound one socketserver made
        self.socket = sock
        self.server_address = sock.getsockname()
        sock.setblocking(False)         # as server_activate does for a socket bound here

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

    def _handle_request_noblock(self):
        # socketserver takes one connection per wake-up of its poll loop; under a burst
        # every accept then costs a poll and its GIL round trips.  The listener is
        # non-blocking, so take the whole backlog now (bounded, so that a flood still
        # lets serve_forever see a shutdown request).
        for _ in range(ACCEPT_BATCH):
            try:
                request, client_address = self.get_request()
            except BlockingIOError:           # the backlog is empty
                return
            except OSError as exc:
                self._accept_failed(exc)
                return
            if not self.verify_request(request, client_address):
                self.shutdown_request(request)
                continue
            try:
                self.process_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
                self.shutdown_request(request)
            except BaseException:
                self.shutdown_request(request)
                raise

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
            self.shutdown_request(request)    # the server is closing

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
        os.eventfd_write(self.drain_fd, 1)      # stays readable: every poller wakes

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
        else when the server is collected)."""
        self._close_drain_fd()

    def close_all(self):
        """Shut every live session's socket so its thread ends (server stop)."""
        with self._conn_lock:
            self.closing = True     # sessions accepted but not yet admitted go away at once
            live = list(self.sessions)
        for session in live:
            session.abort()
        self.threads.stop()

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


_SESSION_PREFIX = secrets.token_hex(2)
_session_counter = itertools.count(1)


def next_session_id():
    """Short unique session id: a per-process random prefix and a counter (no syscall
    per connection, and ids from two runs do not collide in a shared log)."""
    return f"{_SESSION_PREFIX}{next(_session_counter):x}"


def set_blocking_timeout(sock, seconds):
    """Make `sock` a blocking socket whose reads and writes time out in the kernel
    (SO_RCVTIMEO/SO_SNDTIMEO).  Python's settimeout() instead polls before every recv
    and send: twice the syscalls and GIL hand-offs on the hot path of every session.
    A timed-out call raises BlockingIOError, which LineReader turns into a timeout."""
    if sock.gettimeout() is not None:
        sock.settimeout(None)
    whole = int(seconds)
    timeval = struct.pack("ll", whole, int((seconds - whole) * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)


class SessionClosed(Exception):
    """Raised inside a session to end it after its last reply was sent."""


class LineSession(socketserver.BaseRequestHandler):
    protocol = "line"
    line_limit = 512          # longest command line including CRLF

    # -- lifecycle -----------------------------------------------------------
    def setup(self):
        self.session_id = next_session_id()
        # Once, before anything keys on it (connection counts, throttle, loopback,
        # trusted networks, logs): an IPv4 client of a dual-stack listener is IPv4.
        self.peer = normalize_peer(self.client_address[0])
        self.log = SessionLogger(logging.getLogger(f"clevermail.{self.protocol}"),
                                 self.protocol, self.session_id, self.peer)
        # the dialogue is logged when the session starts at DEBUG (checked once, not
        # twice per command)
        self.debug = self.log.isEnabledFor(logging.DEBUG)
        self.connection = self.request
        self.timeout = self.server.limits.timeout     # the session's, whatever a reload sets
        set_blocking_timeout(self.connection, self.timeout)
        # Replies often go out as two writes (untagged data, then the status line):
        # with Nagle on, the second waits for the client's delayed ACK (~40 ms).
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not TCP (socketpair in tests)
        self.tls = False
        self.tls_info = None
        self.errors = 0
        self.closing = False
        self.cut_off = False        # cut() was called: the server stops, drain time over
        self._said_shutdown = False
        self.reader = None
        # The wait for a command: the socket and the server's drain signal in one poll
        # (a server without one, as the session tests' fake, leaves the wait to recv).
        self._poller = None
        drain_fd = self.server.drain_fd
        if drain_fd is not None:
            self._poller = select.poll()
            self._poller.register(self.connection.fileno(), select.POLLIN)
            self._poller.register(drain_fd, select.POLLIN)

    def handle(self):
        if not self.server.admit(self):
            draining = self.server.draining
            self.log.warning("connection refused: %s", "server shutting down" if draining
                             else "too many connections")
            self.server.metrics.session_refused(self.protocol)
            if not self.server.implicit_tls:   # a plaintext line would only garble a TLS client
                try:
                    self.send(self.shutdown_reply() if draining else self.busy_reply())
                except OSError:
                    pass
            return
        self.server.metrics.session_opened(self.protocol)
        try:
            self.log.info("connect")
            if self.server.implicit_tls:
                self._wrap_tls()
            self.reader = LineReader(self.connection)
            self.greet()
            while not self.closing:
                if not self.wait_for_command():
                    break
                try:
                    line = self.reader.readline(self.line_limit)
                except LineTooLong:
                    self.line_too_long()
                    self.count_error()
                    continue
                if not line:
                    break
                if self.debug:
                    self.log.debug("C: %s", self.redact(line))
                try:
                    self.handle_line(line)
                except SessionClosed:
                    break
                except (OSError, EOFError, ssl.SSLError):
                    raise
                except Exception:
                    self.log.exception("internal error")
                    self.server.metrics.internal_error(self.protocol)
                    self.send(self.internal_error_reply())
                    self.count_error()  # a client that keeps hitting a bug is cut off
            if self.cut_off:    # cut between two commands, or waiting for the next chunk
                self._send_shutdown_reply()
        except socket.timeout:
            self.log.info("idle timeout")
            try:
                self.send(self.timeout_reply())
            except OSError:
                pass
        except SessionClosed:
            pass
        except (OSError, EOFError, ssl.SSLError) as exc:
            if self.cut_off:
                self.log.info("cut off: the server is stopping")
                self._send_shutdown_reply()
            else:
                self.log.info("connection lost: %s", exc.__class__.__name__)
        finally:
            self.closed()
            self.server.release(self)
            self.log.info("disconnect")

    def finish(self):
        try:
            self.connection.close()
        except OSError:
            pass

    def abort(self):
        """Called from another thread (server stop): end this session now."""
        self.closing = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- draining ------------------------------------------------------------------
    def wait_for_command(self):
        """Wait until the next command can be read (a buffered one at once; the poll
        times out as the socket would); False when draining: shutdown reply sent."""
        if not self.server.draining:
            if self._poller is None or self.reader.has_buffered():
                return True
            ready = self._poller.poll(self.timeout * 1000)
            if not self.server.draining:
                if not ready:
                    raise socket.timeout("timed out")
                return True
        if self.in_message():
            return True                     # the rest of the message: read it (a cut ends the wait)
        return self._drained()

    def _drained(self):
        self.log.info("server shutting down: session closed")
        self._send_shutdown_reply()
        return False

    def _send_shutdown_reply(self):
        if self._said_shutdown:         # once: a cut may follow the drain's own reply
            return
        self._said_shutdown = True
        try:
            self.send(self.shutdown_reply())
        except (OSError, ValueError):       # gone, or a TLS state a cut broke
            pass

    def cut(self):
        """From another thread, past the drain time: a read in progress returns EOF
        (SHUT_RD on the descriptor, below any SSLSocket), and the session thread sends
        the shutdown reply where it still can (not over TLS: a half-shut socket breaks
        its state) and closes."""
        self.cut_off = True
        self.closing = True
        try:
            socket.socket.shutdown(self.connection, socket.SHUT_RD)
        except OSError:
            pass

    # -- output ------------------------------------------------------------------
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        if self.debug:
            self.log.debug("S: %s", data[:200].decode("utf-8", "replace").rstrip())
        self.connection.sendall(data)

    # -- TLS ------------------------------------------------------------------------
    def _wrap_tls(self):
        # The ssl module retries a blocking read that the kernel timed out, forever;
        # a TLS session therefore uses Python's own timeout (poll before each call).
        self.connection.settimeout(self.timeout)
        self.connection = self.server.ssl_context.wrap_socket(self.connection, server_side=True)
        self.tls = True
        self.tls_info = (self.connection.version(), (self.connection.cipher() or ("",))[0])
        self.log.info("TLS %s %s", *self.tls_info)

    def start_tls(self):
        """Upgrade after the protocol's go-ahead reply was sent.  Anything the client
        pipelined after the STARTTLS command is discarded, never read as commands."""
        self.reader.discard_buffer()
        self._wrap_tls()
        self.reader = LineReader(self.connection)

    @property
    def tls_available(self):
        return self.server.ssl_context is not None and not self.tls

    @property
    def is_loopback(self):
        try:
            return ipaddress.ip_address(self.peer).is_loopback
        except ValueError:
            return False

    @property
    def plaintext_auth_ok(self):
        """Credentials may be sent on this connection (TLS, loopback, or config says so)."""
        return self.tls or self.is_loopback or self.server.policy.allow_plaintext_auth

    # -- errors ----------------------------------------------------------------------
    def count_error(self):
        """Count a protocol error; too many end the session with the protocol's reply."""
        self.errors += 1
        if self.errors >= self.server.limits.errors_per_session:
            self.log.warning("too many errors, disconnecting")
            self.send(self.too_many_errors_reply())
            raise SessionClosed()

    def redact(self, line):
        return redact_command(line)

    # -- protocol hooks -----------------------------------------------------------
    def greet(self):
        raise NotImplementedError

    def handle_line(self, line):
        raise NotImplementedError

    def closed(self):
        """The connection is gone (any reason): release what the session holds."""

    def line_too_long(self):
        raise NotImplementedError

    def busy_reply(self):
        raise NotImplementedError

    def timeout_reply(self):
        raise NotImplementedError

    def internal_error_reply(self):
        raise NotImplementedError

    def too_many_errors_reply(self):
        raise NotImplementedError

    def shutdown_reply(self):
        """The reply that ends a session because the server stops (SMTP 421, IMAP BYE,
        POP3 -ERR [SYS/TEMP])."""
        raise NotImplementedError

    def in_message(self):
        """True while the client sends one message over several commands (SMTP BDAT
        chunks): a drain lets it send the rest instead of cutting it short."""
        return False
