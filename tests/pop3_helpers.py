"""Helpers for POP3 session tests: a fake server and a line client.

A POP3Session runs in a thread on one end of socket.socketpair() (fakes.run_session);
the test talks to the other end with Client.  FakeServer is fakes.FakeServer for POP3.
The accounts come from fakes.
"""

import fakes
from clevermail.pop3.handler import POP3FileHandler
from clevermail.pop3.session import POP3Session
from clevermail.store import MailStore
from fakes import ALICE, BOB, DOMAIN, PASSWORD, make_accounts, password_hash  # noqa: F401


def make_handler(tmp_path):
    store = MailStore(tmp_path / "data")
    accounts = make_accounts(tmp_path / "users.ini")
    return POP3FileHandler(store, accounts)


def message(n, body=None):
    """A small CRLF message numbered n."""
    body = body if body is not None else f"Body of message {n}.\r\n"
    return (f"From: sender@{DOMAIN}\r\nTo: {ALICE}\r\nSubject: message {n}\r\n\r\n{body}").encode()


class FakeServer(fakes.FakeServer):
    protocol = "pop3"


class Client(fakes.LineClient):
    """The test's end of the socketpair: send lines, read replies exactly."""

    def line(self):
        """One reply line without CRLF (b'' at EOF); asserts it ends in CRLF."""
        return self.raw_line()[:-2]

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

    def login(self, user=ALICE, password=PASSWORD):
        self.expect(f"USER {user}", "+OK*")
        return self.expect(f"PASS {password}", "+OK*")


def start_session(server, peer="127.0.0.1"):
    """A POP3Session for `server` in a thread; returns the Client (greeting unread)."""
    return fakes.run_session(POP3Session, server, Client, peer)
