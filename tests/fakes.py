"""What the IMAP, POP3 and SMTP session tests share: a fake server, a socketpair
session runner, the test's end of the connection, test accounts and TLS contexts.

- FakeServer: what LineSession and the protocol sessions use of a MailServer
  (handler, protocol, hostname, limits, policy, ssl_context, implicit_tls, throttle,
  sessions, admit/release), without a listening socket.  Keywords that are not
  FakeServer's own are Limits values over the test defaults (timeout 10 s, 20 errors,
  no auth failure delay); admit=False makes it refuse every session (busy).  Each
  *_helpers module subclasses it with its protocol and defaults.
- run_session(session_class, server, client_class, peer): one session in a thread on
  one end of socket.socketpair(); returns client_class(sock, thread) for the other
  end, whose socket times out after 10 s (a hung session fails the test, never hangs).
- SocketClient (send, wait_closed) and LineClient (CRLF lines through a file,
  starttls, close, at_eof): bases of each protocol's raw client.
- Sessions: starts greeted sessions on fake servers and closes them all at the end;
  session_fixtures(...) makes a test module's handler, store and open_session
  fixtures around it, the handler closed at teardown by the helper's close_handler;
  close_store(store) closes the descriptors of the Folders a store keeps in memory.
- tls_contexts(hostname): (server, client) SSLContexts from a trustme CA.
- DOMAIN, ALICE, BOB, PASSWORD, password_hash(), make_accounts(): test accounts.
- failure_delays(monkeypatch): the login failure delays asked for from now on (a list;
  nothing sleeps); auth_failure_lines(caplog): the "auth failed" log lines.
"""

import base64
import contextlib
import fcntl
import functools
import hashlib
import os
import socket
import ssl
import threading
import types

import pytest

from clevermail import login
from clevermail.accounts import AccountStore
from clevermail.passwords import verify_password
from clevermail.metrics import NO_METRICS
from clevermail.netbase import Limits, SessionPolicy

DOMAIN = "example.test"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
PASSWORD = "s3cret pass"
HOSTNAME = "mail.example.test"
_HASH = None


def password_hash():
    """One scrypt hash shared by every test account.  The parameters travel inside the
    hash string, so a cheap N keeps each login (one verification) fast in tests."""
    global _HASH
    if _HASH is None:
        salt = b"imap-test-salt!!"
        digest = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=16, r=8, p=1, dklen=32)
        _HASH = f"scrypt$16$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
        assert verify_password(PASSWORD, _HASH)
    return _HASH


def make_accounts(path, users=(ALICE, BOB)):
    """users.ini at `path` with `users` (all with PASSWORD) and its AccountStore."""
    with open(path, "w", encoding="utf-8") as f:
        for user in users:
            f.write(f"[{user}]\npassword = {password_hash()}\n")
    return AccountStore(path, [DOMAIN])


class FakeServer:
    """What a session needs of its MailServer; see the module docstring."""

    protocol = None
    hostname = HOSTNAME
    implicit_tls = False
    draining = False            # MailServer's drain flag and signal (none here)
    drain_fd = None
    proxy_networks = None       # no PROXY header (proxy_protocol.py)
    limit_defaults = {"timeout": 10.0, "errors_per_session": 20, "auth_failure_delay": 0}

    def __init__(self, handler, *, limits=None, policy=SessionPolicy(), ssl_context=None,
                 throttle=None, hostname=None, admit=True, metrics=NO_METRICS, **limit_values):
        if limits is not None and limit_values:
            raise TypeError("give limits or Limits values, not both")
        self.handler = handler
        if hostname is not None:
            self.hostname = hostname
        self.limits = limits or Limits(**{**self.limit_defaults, **limit_values})
        self.policy = policy
        self.ssl_context = ssl_context
        self.throttle = throttle if throttle is not None else self.default_throttle()
        self.accepting = admit
        self.sessions = set()
        self.metrics = metrics          # clevermail.metrics: the no-op unless a test counts

    def default_throttle(self):
        return None

    def admit(self, session):
        if self.accepting:
            self.sessions.add(session)
        return self.accepting

    def release(self, session):
        self.sessions.discard(session)


class SocketClient:
    """The test's end of a socketpair and the thread running the session."""

    def __init__(self, sock, thread):
        self.sock = sock
        self.thread = thread

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def wait_closed(self, timeout=10):
        """Wait for the session thread to end (it releases what it held as it ends)."""
        self.thread.join(timeout)
        assert not self.thread.is_alive()


class LineClient(SocketClient):
    """A SocketClient reading CRLF lines through a buffered file."""

    def __init__(self, sock, thread):
        super().__init__(sock, thread)
        self.file = sock.makefile("rb")

    def raw_line(self):
        """One line as bytes with CRLF (b'' at EOF); asserts it ends in CRLF."""
        raw = self.file.readline()
        assert raw == b"" or raw.endswith(b"\r\n"), raw
        return raw

    def starttls(self, ctx, hostname=HOSTNAME):
        self.file.close()
        self.sock = ctx.wrap_socket(self.sock, server_hostname=hostname)
        self.file = self.sock.makefile("rb")

    def close(self):
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass

    def at_eof(self):
        """True when the server closed the connection (nothing more to read)."""
        return self.file.readline() == b""


def run_session(session_class, server, client_class, peer="127.0.0.1"):
    """A `session_class` session for `server` in a thread; returns its client."""
    ours, theirs = socket.socketpair()
    ours.settimeout(10)   # a hung session fails the test instead of hanging it
    thread = threading.Thread(target=session_class, args=(theirs, (peer, 40000), server),
                              daemon=True)
    thread.start()
    return client_class(ours, thread)


class Sessions:
    """Sessions of one test.  sessions(server=None, peer=..., greet=True, **server_kw)
    starts one on `server` (else on new_server(**server_kw)) with start(server, peer)
    and, if greet, checks its greeting with greet(client); end() closes them all."""

    def __init__(self, new_server, start, greet):
        self.new_server, self.start, self.greet = new_server, start, greet
        self.clients = []

    def __call__(self, server=None, *, peer="127.0.0.1", greet=True, **server_kw):
        client = self.start(server or self.new_server(**server_kw), peer)
        self.clients.append(client)
        if greet:
            self.greet(client)
        return client

    def end(self, wait=True):
        """Close every client; with wait, also assert that every session thread ended."""
        for client in self.clients:
            client.close()
        if wait:
            for client in self.clients:
                client.wait_closed()


def session_fixtures(make_handler, server_class, start, greet, close_handler=None):
    """The handler (make_handler(tmp_path); close_handler(handler) at teardown, after
    the sessions ended), store (handler.store) and open_session (a Sessions on
    server_class(handler, ...), ended at teardown) fixtures of a session test module:
    `handler, store, open_session = session_fixtures(...)`."""

    @pytest.fixture
    def handler(tmp_path):
        made = make_handler(tmp_path)
        yield made
        if close_handler is not None:
            close_handler(made)

    @pytest.fixture
    def store(handler):
        return handler.store

    @pytest.fixture
    def open_session(handler):
        sessions = Sessions(functools.partial(server_class, handler), start, greet)
        yield sessions
        sessions.end()

    return handler, store, open_session


def tls_contexts(hostname):
    """(server_ctx, client_ctx): a certificate for `hostname` from a new trustme CA,
    and a client context trusting that CA."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert(hostname)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


def failure_delays(monkeypatch):
    """The failure delays login.py asks for from now on, recorded instead of slept."""
    delays = []
    monkeypatch.setattr(login, "time", types.SimpleNamespace(sleep=delays.append))
    return delays


def auth_failure_lines(caplog):
    """Every "auth failed" log line so far (the one line login.py writes), without the
    session prefix "[protocol id peer] "."""
    lines = (r.getMessage().partition("] ")[2] for r in caplog.records)
    return [line for line in lines if line.startswith("auth failed")]


def flock_is_held(path):
    """Whether someone holds an flock on `path` (a lock file or a directory) now,
    tried on a descriptor of our own; a file not there is held by nobody."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def close_store(store):
    """Close the descriptors of every Folder `store` keeps in memory (a lock file, the
    UID list and the modseq log each), held by a session or kept for reuse: a test's
    store would otherwise leave them open until garbage collection.  Through the
    folder cache's detach() and Folder.close(), MailStore having no close() of its own."""
    folders = store.folders
    for path in list(folders.in_use) + folders.kept():
        folder = folders.detach(path)
        if folder is not None:
            folder.close()      # a folder still held: detach() leaves that to release()


@contextlib.contextmanager
def open_inbox(store, address, messages):
    """`address`'s INBOX Folder, open, after delivering `messages` into it (the
    store-level tests of views and their IMAP rendering share this set-up)."""
    store.ensure_user(address)
    for data in messages:
        store.deliver_local("", [address], data)
    folder = store.open_folder(address, "INBOX")
    try:
        yield folder
    finally:
        store.release_folder(folder)


# What the one local-delivery path (store/delivery.py deliver_local) puts in front of a
# message for a null sender: tests deliver with "" and find it in the stored message.
RETURN_PATH = b"Return-Path: <>\r\n"
