"""Helpers for the SMTP tests: fakes.FakeServer for SMTP, a tiny line client with
`expect` for fakes.run_session, and an Env (store, accounts, queue, handler in
tmp_path; env.connect starts greeted sessions, env.connect.end() closes them)."""

import base64
import os

import fakes
from clevermail.accounts import AccountStore
from clevermail.login import AuthThrottle
from clevermail.relay.queue import RelayQueue
from clevermail.smtp.handler import SMTPFileHandler
from clevermail.smtp.session import SMTPSession
from clevermail.store import MailStore

DOMAIN = "example.test"
USERS = {"alice@example.test": "alice-pw", "bob@example.test": "bob-pw"}


class FakeServer(fakes.FakeServer):
    """fakes.FakeServer for SMTP: mode 'mx' or 'submission', an AuthThrottle by default."""

    protocol = "smtp"
    hostname = "mx.example.test"

    def __init__(self, handler, *, mode="mx", **kw):
        super().__init__(handler, **kw)
        self.mode = mode

    def default_throttle(self):
        return AuthThrottle(limit=5, window=60)


class Client(fakes.SocketClient):
    """The client end of a socketpair: raw bytes out, whole replies in."""

    def __init__(self, sock, thread):
        super().__init__(sock, thread)
        self.buf = b""

    def _line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(f"connection closed; pending {self.buf!r}")
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode("utf-8", "replace").rstrip("\r")

    def reply(self):
        """(code, [text lines]) of one possibly multi-line reply."""
        lines = []
        while True:
            line = self._line()
            lines.append(line[4:])
            if line[3:4] != "-":
                return int(line[:3]), lines

    def expect(self, code, command=None):
        """Send `command` (CRLF added) if given; assert the reply code; return the text."""
        if command is not None:
            self.send(command + "\r\n")
        got, lines = self.reply()
        assert got == code, f"expected {code}, got {got} {lines!r} for {command!r}"
        return "\n".join(lines)

    def closed(self):
        """True when the server has closed its end (EOF after any pending bytes)."""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except (ConnectionResetError, BrokenPipeError):
            return True

    def close(self):
        self.sock.close()
        self.thread.join(5)


def start_session(server, peer="127.0.0.1"):
    """An SMTPSession for `server` in a thread; returns the Client (greeting unread)."""
    return fakes.run_session(SMTPSession, server, Client, peer)


def b64(text):
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def plain(user, password, authzid=""):
    return b64(f"{authzid}\0{user}\0{password}")


def inbox(data_dir, address):
    """The messages (bytes, disk form) in an account's INBOX new/."""
    local, domain = address.split("@")
    new = os.path.join(data_dir, "mail", domain, local, "new")
    if not os.path.isdir(new):
        return []
    return [open(os.path.join(new, n), "rb").read() for n in sorted(os.listdir(new))]


def queued(data_dir):
    """The committed relay queue envelopes as RelayQueue entries."""
    return RelayQueue(os.path.join(data_dir, "queue")).list()


def make_users_file(folder):
    """users.ini with alice and bob in `folder` (hashing is slow: make it once per module)."""
    path = os.path.join(str(folder), "users.ini")
    accounts = AccountStore(path, [DOMAIN])
    for user, password in USERS.items():
        accounts.add(user, password)
    return path


class Env:
    def __init__(self, data_dir, users_file):
        self.data_dir = data_dir
        self.store = MailStore(data_dir)
        self.accounts = AccountStore(users_file, [DOMAIN, "other.test"])
        self.queue = RelayQueue(os.path.join(data_dir, "queue"))
        self.handler = SMTPFileHandler(self.store, self.accounts, self.queue)
        self.connect = fakes.Sessions(self.server, start_session, lambda client: client.expect(220))

    def server(self, **kw):
        return FakeServer(self.handler, **kw)

    def inbox(self, address):
        return inbox(self.data_dir, address)

    def queued(self):
        return queued(self.data_dir)
