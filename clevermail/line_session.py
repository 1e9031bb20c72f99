"""The line session every protocol session derives from (SMTP, POP3, IMAP): the socket,
the bounded LineReader (wire.py), the session id and logger, implicit TLS and STARTTLS
(RFC 3207, RFC 2595), compression (deflate.py), the idle timeout, error counting, the read-dispatch-reply loop
and the wait for a command that a server's drain wakes (netbase.MailServer).

Output is gathered (session_output.py): a command's replies, and a pipelined group's,
go out in one write, before anything that waits for the client.

A protocol subclass supplies greet(), handle_line(), and the replies for busy,
timeout, internal error, too many errors and shutdown.
"""

import functools
import ipaddress
import itertools
import logging
import secrets
import select
import socket
import socketserver
import ssl

from .deflate import DeflateSocket
from .idle_hub import wait_readable
from .login import in_networks, normalize_peer
from .proxy_protocol import HEADER_TIMEOUT, ProxyError, read_header
from .logs import SessionLogger, redact_command
from .session_output import GatheredOutput
from .sockopts import set_blocking_timeout, set_nodelay
from .wire import LineReader, LineTooLong


_SESSION_PREFIX = secrets.token_hex(2)
_loggers = {}
_session_counter = itertools.count(1)


def next_session_id():
    """Short unique session id: a per-process random prefix and a counter (no syscall
    per connection, and ids from two runs do not collide in a shared log)."""
    return f"{_SESSION_PREFIX}{next(_session_counter):x}"


@functools.lru_cache(maxsize=1024)
def _is_loopback(peer):
    # Asked at every EHLO/CAPABILITY (may AUTH be offered?): parsing the address each
    # time was a visible share of a short session's CPU.  Keyed on the address itself,
    # so nothing can go stale.
    try:
        return ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return False


class SessionClosed(Exception):
    """Raised inside a session to end it after its last reply was sent."""


class LineSession(GatheredOutput, socketserver.BaseRequestHandler):
    protocol = "line"
    line_limit = 512          # longest command line including CRLF

    # -- lifecycle -----------------------------------------------------------
    def setup(self):
        self.session_id = next_session_id()
        self.via = self.proxy_refused = None
        if self.server.proxy_networks is not None:
            self._read_proxy_header()
        # Once, before anything keys on it (connection counts, throttle, loopback,
        # trusted networks, logs): an IPv4 client of a dual-stack listener is IPv4.
        self.peer = normalize_peer(self.client_address[0])
        logger = _loggers.get(self.protocol) or _loggers.setdefault(
            self.protocol, logging.getLogger(f"clevermail.{self.protocol}"))  # no module lock per session
        self.log = SessionLogger(logger, self.protocol, self.session_id, self.peer)
        # the dialogue is logged when the session starts at DEBUG (checked once, not
        # twice per command)
        self.debug = self.log.isEnabledFor(logging.DEBUG)
        self.connection = self.request
        self.timeout = self.server.limits.timeout     # the session's, whatever a reload sets
        # timeouts and TCP_NODELAY come from the listener (MailServer.prime_listener) unless
        # a reload changed the timeout or a PROXY header was read with its own
        if self.via is not None or getattr(self.server, "primed_timeout", None) != self.timeout:
            set_blocking_timeout(self.connection, self.timeout)
            set_nodelay(self.connection)
        self.tls = False
        self.tls_info = None
        self.compressed = False
        self.errors = 0
        self.closing = False
        self.cut_off = False        # cut() was called: the server stops, drain time over
        self._said_shutdown = False
        self.reader = None
        self.gather_output()
        # let go by the server's IdleHub (IMAP IDLE): counted among the few sessions
        # woken at once until this one waits again or ends (see idle_hub.py)
        self.activation = None
        # The wait for a command: the socket and the server's drain signal in one poll
        # (a server without one, as the session tests' fake, leaves the wait to recv).
        self._poller = None
        drain_fd = self.server.drain_fd
        if drain_fd is not None:
            self._poller = select.poll()
            self._poller.register(self.connection.fileno(), select.POLLIN)
            self._poller.register(drain_fd, select.POLLIN)
            # a session quiet for a while waits in the server's IdleHub (idle_hub.py):
            # 10,000 of them closed at once then wake a few at a time
            self._hub_wait = (getattr(self.server, "hub", None), self.connection.fileno(),
                              [("drain", drain_fd)])

    def _read_proxy_header(self):
        """A listener behind a load balancer (proxy_protocol.py): only the proxies of
        [server] proxy_networks may connect, each connection opened by a PROXY header
        naming the client, who then is the peer; a refusal is said by handle()."""
        proxy = normalize_peer(self.client_address[0])
        if not in_networks(proxy, self.server.proxy_networks):
            self.proxy_refused = f"{proxy} is not in [server] proxy_networks"
            return
        try:
            set_blocking_timeout(self.request, HEADER_TIMEOUT)
            source = read_header(self.request)
        except (ProxyError, OSError) as exc:
            self.proxy_refused = f"from proxy {proxy}: {exc or 'no PROXY header in time'}"
            return
        self.via = proxy
        if source is not None:
            self.client_address = source

    def handle(self):
        if self.proxy_refused is not None:
            self.log.warning("connection refused: PROXY protocol: %s", self.proxy_refused)
            self.server.metrics.session_refused(self.protocol)
            return
        if not self.server.admit(self):
            draining = self.server.draining
            self.log.warning("connection refused: %s", "server shutting down" if draining
                             else "too many connections")
            self.server.metrics.session_refused(self.protocol)
            if not self.server.implicit_tls:   # a plaintext line would only garble a TLS client
                try:
                    self.send(self.shutdown_reply() if draining else self.busy_reply())
                    self.flush()
                except OSError:
                    pass
            return
        self.server.metrics.session_opened(self.protocol)
        try:
            if self.via:
                self.log.info("connect via proxy %s", self.via)
            else:
                self.log.info("connect")
            if self.server.implicit_tls:
                self._wrap_tls()
            self.reader = LineReader(self.connection, self.flush)
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
            self._flush_last()
            self.closed()
            self.server.release(self)
            self.log.info("disconnect")
            self.end_activation()   # the end of a mass close is paced too

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
        if self.activation is not None:
            self.end_activation()
        if not self.server.draining:
            if self._poller is None or self.reader.has_buffered():
                return True     # (the reader flushes before it has to recv)
            self.flush()        # every reply out before the wait for the next command
            hub, fd, shared = self._hub_wait
            ready, self.activation = wait_readable(hub, self._poller, fd, shared, self.timeout)
            if not self.server.draining:
                if not ready:
                    raise socket.timeout("timed out")
                return True
        if self.in_message():
            return True                     # the rest of the message: read it (a cut ends the wait)
        return self._drained()

    def end_activation(self):
        activation, self.activation = self.activation, None
        if activation is not None:
            activation.done()

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
            self.flush()
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
            socket.socket.shutdown(getattr(self.connection, "raw_socket", self.connection), socket.SHUT_RD)
        except OSError:
            pass

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
        self.flush()                # the go-ahead in plaintext, before the handshake
        self.reader.discard_buffer()
        self._wrap_tls()
        self.reader = LineReader(self.connection, self.flush)

    def start_deflate(self):
        """After the protocol's OK to COMPRESS DEFLATE (RFC 4978): both directions are
        deflated from here; what the client sent behind the command is compressed
        data already."""
        self.flush()                # the OK uncompressed
        self.connection = DeflateSocket(self.connection, self.reader.take_buffer())
        self.reader = LineReader(self.connection, self.flush)
        self.compressed = True

    @property
    def tls_available(self):
        return self.server.ssl_context is not None and not self.tls

    @property
    def is_loopback(self):
        return _is_loopback(self.peer)

    @property
    def plaintext_auth_ok(self):
        """Credentials may be sent on this connection (TLS, loopback, or config says so)."""
        return self.tls or self.is_loopback or self.server.policy.allow_plaintext_auth

    def log_retrieval(self, user, folder, uids):
        """'retrieved uid=N user=U folder=F' for each message whose content this session
        sent (IMAP FETCH of message data, POP3 RETR): INFO with [server] log_retrievals,
        else DEBUG.  `clevermail trace` joins them to the delivery by folder and UID."""
        level = logging.INFO if self.server.policy.log_retrievals else logging.DEBUG
        if self.log.isEnabledFor(level):
            for uid in uids:
                self.log.log(level, "retrieved uid=%d user=%s folder=%s", uid, user, folder)

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
