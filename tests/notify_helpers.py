"""Helpers of the NOTIFY (RFC 5465) end-to-end tests: a raw IMAP connection that reads
exact lines, and a real MailService on 127.0.0.1 port 0 (fixtures `svc`, `connect`).

Session `a` sets NOTIFY and then waits, between commands or in IDLE; session `b` (or
smtplib, or the store as another process would write) changes things.  What `a` is
told unasked is read line by line as it comes (a bounded socket timeout, never a
sleep); what it must not be told is checked after a NOOP, whose tagged OK comes after
anything the change had caused.
"""

import re
import smtplib
import socket

import pytest

from clevermail.service import MailService
from conftest import make_config
from imap_helpers import ALICE, PASSWORD, make_accounts, message

class Raw:
    """One IMAP connection: commands with their untagged lines, unsolicited lines."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.n = 0
        assert self.line().startswith("* OK")
        self.cmd(f'LOGIN "{ALICE}" "{PASSWORD}"')

    def line(self):
        raw = self.file.readline()
        if not raw:
            raise EOFError("connection closed")
        m = re.search(rb"\{(\d+)\}\r\n$", raw)
        if m:       # a literal: inline it with the rest of the line
            raw = raw + self.file.read(int(m.group(1))) + self.file.readline()
        return raw.decode("utf-8", "replace").rstrip("\r\n")

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def cmd(self, text, status="OK"):
        """Untagged lines of a command; its tagged status must be `status`."""
        self.n += 1
        tag = f"t{self.n}"
        self.send(f"{tag} {text}")
        out = []
        while True:
            line = self.line()
            if line.startswith(tag + " "):
                assert line.split()[1] == status, (text, line, out)
                self.tagged = line
                return out
            out.append(line)

    def expect(self, *wanted):
        """Read unsolicited lines until each of `wanted` came (in any order); the
        lines read."""
        seen, missing = [], list(wanted)
        while missing:
            try:
                line = self.line()
            except TimeoutError:
                raise AssertionError(("timed out", seen, missing)) from None
            seen.append(line)
            if line in missing:
                missing.remove(line)
        return seen

    def close(self):
        try:
            self.send("z LOGOUT")
        except OSError:
            pass
        self.sock.close()


@pytest.fixture
def svc(thread_guard, tmp_path):
    conf = make_config(tmp_path, imap={"listen": ["127.0.0.1:0"]},
                       limits={"auth_failure_delay": 0, "imap_timeout": 60})
    make_accounts(conf.server.users_file)
    service = MailService(conf).start()
    yield service
    if service.started:
        service.stop()


@pytest.fixture
def connect(svc):
    conns = []

    def make():
        c = Raw(svc.port("imap"))
        conns.append(c)
        return c
    yield make
    for c in conns:
        c.close()


def deliver(svc, n, folder_address=ALICE):
    svc.store.deliver_local("", [folder_address], message(n))


def smtp_deliver(svc, n):
    with smtplib.SMTP("127.0.0.1", svc.port("smtp"), timeout=10) as smtp:
        smtp.sendmail("carol@remote.test", [ALICE], message(n, sender="carol@remote.test"))


def uidvalidity(c, name):
    line = c.cmd(f"STATUS {name} (UIDVALIDITY)")[0]
    return int(re.search(r"UIDVALIDITY (\d+)", line).group(1))
