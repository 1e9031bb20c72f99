"""Helpers for the ManageSieve tests: a fake server, the session runner and a raw
ManageSieve client that reads responses exactly (strings, literals, OK/NO/BYE).

The session tests run a ManageSieveSession on one end of socket.socketpair()
(fakes.run_session) with a SieveFileHandler over a real SieveScripts in tmp_path and
the real Sieve parser; the end-to-end tests use the same Client over TCP.
"""

import base64
import re

import fakes
from clevermail.managesieve.handler import SieveFileHandler
from clevermail.managesieve.session import ManageSieveSession
from clevermail.sieve import EXTENSIONS, parse
from clevermail.sieve.scripts import SieveScripts
from fakes import ALICE, BOB, DOMAIN, PASSWORD, make_accounts  # noqa: F401

MAX_SCRIPTS = 3
MAX_SIZE = 2048
_LITERAL = re.compile(rb"\{([0-9]+)\}\r\n\Z")


def make_handler(tmp_path, max_scripts=MAX_SCRIPTS, max_size=MAX_SIZE):
    scripts = SieveScripts(str(tmp_path / "mail"), max_scripts=max_scripts, max_size=max_size)
    accounts = make_accounts(tmp_path / "users.ini")
    return SieveFileHandler(scripts, accounts, parse=parse, extensions=EXTENSIONS, max_redirects=5)


def plain(user=ALICE, password=PASSWORD, authzid=""):
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()


class FakeServer(fakes.FakeServer):
    protocol = "managesieve"


class Client(fakes.LineClient):
    """The test's end of a ManageSieve connection."""

    def item(self):
        """One server line, a literal's marker followed by its octets (the whole
        literal as str, with anything after it on the line); None at EOF."""
        raw = self.raw_line()
        if not raw:
            return None
        m = _LITERAL.search(raw)
        if m is None:
            return raw[:-2].decode("utf-8")
        octets = self.file.read(int(m.group(1)))
        rest = self.raw_line()
        return (raw[:m.start()] + b"{" + m.group(1) + b"}\r\n" + octets + rest[:-2]).decode("utf-8")

    def response(self):
        """(lines before the status line, the status line)."""
        lines = []
        while True:
            line = self.item()
            assert line is not None, f"EOF before a status line (after {lines})"
            if line.split(" ", 1)[0] in ("OK", "NO", "BYE") or line in ("OK", "NO", "BYE"):
                return lines, line
            lines.append(line)

    def cmd(self, text):
        """Send a command line (CRLF added); its response as response() gives it."""
        self.send(text + "\r\n")
        return self.response()

    def expect(self, text, status):
        """Send a command, assert the exact status line and no lines before it."""
        lines, got = self.cmd(text)
        assert (lines, got) == ([], status)

    def capabilities(self):
        """The capability lines of a response to CAPABILITY (or the greeting)."""
        lines, status = self.response()
        assert status.startswith("OK"), status
        return lines

    def login(self, user=ALICE, password=PASSWORD):
        self.expect(f'AUTHENTICATE "PLAIN" "{plain(user, password)}"', f'OK "logged in as {user}"')

    def put(self, name, script, status='OK "PUTSCRIPT completed"'):
        data = script.encode()
        self.send(f'PUTSCRIPT "{name}" {{{len(data)}+}}\r\n'.encode() + data + b"\r\n")
        assert self.response() == ([], status)


def start_session(server, peer="127.0.0.1"):
    """A ManageSieveSession for `server` in a thread; returns the Client (greeting unread)."""
    return fakes.run_session(ManageSieveSession, server, Client, peer)
