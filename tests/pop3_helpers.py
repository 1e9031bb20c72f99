"""Helpers for POP3 session tests: a small fake server and a line client.

A POP3Session runs in a thread on one end of socket.socketpair(); the test talks to
the other end with Client.  FakeServer has just what LineSession and POP3Session use
of a MailServer (handler, limits, TLS context, throttle, options, admit/release).
"""

import socket
import threading

from clevermail.accounts import AccountStore, hash_password
from clevermail.netbase import Limits
from clevermail.pop3.handler import POP3FileHandler
from clevermail.pop3.session import POP3Session
from clevermail.store import MailStore

DOMAIN = "example.test"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
PASSWORD = "s3cret pass"
_HASH = None


def password_hash():
    """One scrypt hash shared by every test account (hashing costs ~50 ms)."""
    global _HASH
    if _HASH is None:
        _HASH = hash_password(PASSWORD)
    return _HASH


def make_accounts(path, users=(ALICE, BOB)):
    with open(path, "w", encoding="utf-8") as f:
        for user in users:
            f.write(f"[{user}]\npassword = {password_hash()}\n")
    return AccountStore(path, [DOMAIN], failure_delay=0)


def make_handler(tmp_path):
    store = MailStore(tmp_path / "data")
    accounts = make_accounts(tmp_path / "users.ini")
    return POP3FileHandler(store, accounts)


def message(n, body=None):
    """A small CRLF message numbered n."""
    body = body if body is not None else f"Body of message {n}.\r\n"
    return (f"From: sender@{DOMAIN}\r\nTo: {ALICE}\r\nSubject: message {n}\r\n\r\n{body}").encode()


class FakeServer:
    def __init__(self, handler, *, ssl_context=None, options=None, throttle=None,
                 timeout=10.0, errors_per_session=20, hostname="mail.example.test", full=False):
        self.handler = handler
        self.protocol = "pop3"
        self.hostname = hostname
        self.limits = Limits(timeout=timeout, errors_per_session=errors_per_session, auth_failure_delay=0)
        self.ssl_context = ssl_context
        self.implicit_tls = False
        self.throttle = throttle
        self.options = dict(options or {})
        self.sessions = set()
        self.full = full

    def admit(self, session):
        if self.full:
            return False
        self.sessions.add(session)
        return True

    def release(self, session):
        self.sessions.discard(session)


class Client:
    """The test's end of the socketpair: send lines, read replies exactly."""

    def __init__(self, sock, thread):
        self.sock = sock
        self.thread = thread
        self.file = sock.makefile("rb")

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        """One reply line without CRLF (b'' at EOF); asserts it ends in CRLF."""
        raw = self.file.readline()
        assert raw == b"" or raw.endswith(b"\r\n"), raw
        return raw[:-2]

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.line()

    def expect(self, text, reply):
        """Send a command and assert the exact reply line (or its prefix, if reply ends
        with '*')."""
        got = self.cmd(text).decode("utf-8")
        if reply.endswith("*"):
            assert got.startswith(reply[:-1]), got
        else:
            assert got == reply, got
        return got

    def block(self):
        """The lines of a multi-line body up to the terminator, still byte-stuffed."""
        lines = []
        while True:
            raw = self.file.readline()
            assert raw.endswith(b"\r\n"), raw
            if raw == b".\r\n":
                return lines
            lines.append(raw[:-2])

    def raw_block(self):
        """A multi-line body exactly as sent, terminator included."""
        out = []
        while True:
            raw = self.file.readline()
            assert raw, "EOF inside a multi-line reply"
            out.append(raw)
            if raw == b".\r\n":
                return b"".join(out)

    def starttls(self, ctx, hostname):
        self.file.close()
        self.sock = ctx.wrap_socket(self.sock, server_hostname=hostname)
        self.file = self.sock.makefile("rb")

    def login(self, user=ALICE, password=PASSWORD):
        self.expect(f"USER {user}", "+OK*")
        return self.expect(f"PASS {password}", "+OK*")

    def close(self):
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass

    def wait_closed(self, timeout=10):
        """Wait for the session thread to end (it releases the maildrop as it ends)."""
        self.thread.join(timeout)
        assert not self.thread.is_alive()


def start_session(server, peer="127.0.0.1"):
    """A POP3Session for `server` in a thread; returns the Client after the greeting."""
    ours, theirs = socket.socketpair()
    ours.settimeout(10)   # a hung session fails the test instead of hanging it
    thread = threading.Thread(target=POP3Session, args=(theirs, (peer, 40000), server), daemon=True)
    thread.start()
    client = Client(ours, thread)
    return client
