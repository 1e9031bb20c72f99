"""Graceful stop (MailService.stop with a drain time; netbase's drain): listeners close
first; a session waiting for a command gets its protocol's shutdown reply at once
(SMTP 421 4.3.2, IMAP BYE, POP3 -ERR [SYS/TEMP] with nothing deleted); a command in
progress (SMTP DATA, an IMAP APPEND literal) finishes within the drain time, its reply
comes only once the message is on disk, and the shutdown reply follows; past the drain
time what is left is cut, with the shutdown reply where the socket still carries one.

End to end: a real MailService on 127.0.0.1 port 0, raw sockets (the tests must send
half a command and look at exact lines), stop() in a second thread."""

import dataclasses
import os
import shutil
import socket
import ssl
import threading

import pytest
import trustme

from clevermail.service import MailService
from smtp_helpers import inbox, make_users_file
from waiting import wait_for

pytestmark = pytest.mark.e2e

ALICE = "alice@example.test"
HOST = "mail.example.test"


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def users_file(tmp_path_factory):
    return make_users_file(tmp_path_factory.mktemp("drain-users"))


@pytest.fixture
def service(tmp_path, ca, users_file, make_config, thread_guard):
    """A started MailService with TLS, alice and bob; stopped at the end if a test
    did not (stop() is what the tests run, in a Stopper)."""
    cert = ca.issue_cert(HOST, "127.0.0.1")
    cert.private_key_pem.write_to_path(tmp_path / "key.pem")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "cert.pem")
    shutil.copy(users_file, tmp_path / "users.ini")
    svc = MailService(make_config(tmp_path, tls={"certificate": str(tmp_path / "cert.pem"),
                                                 "key": str(tmp_path / "key.pem")}))
    svc.data_dir = str(tmp_path / "data")
    svc.start()
    yield svc
    if svc.started:
        svc.stop(drain=0)


@pytest.fixture
def client_ctx(ca):
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


class Stopper:
    """service.stop(drain=...) in a thread; `draining()` once every listener drains."""

    def __init__(self, service, drain):
        self.service = service
        self.servers = [srv for _, srv in service.servers]
        self.thread = threading.Thread(target=service.stop, kwargs={"drain": drain})
        self.thread.start()

    def draining(self):
        return all(srv.draining for srv in self.servers)

    def join(self):
        self.thread.join(30)
        assert not self.thread.is_alive()


class Conn:
    """A raw client: lines out, lines in (a socket timeout fails the test)."""

    def __init__(self, port, sock=None):
        self.sock = sock or socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(f"closed; pending {self.buf!r}")
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode().rstrip("\r")

    def reply(self):
        """An SMTP reply's last line (continuation lines skipped)."""
        while True:
            line = self.line()
            if line[3:4] != "-":
                return line

    def at_eof(self):
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def smtp_in_data(service):
    """An SMTP session that has had DATA's 354 for alice."""
    c = Conn(service.port("smtp"))
    assert c.reply().startswith("220 ")
    for cmd, code in (("EHLO client.test", "250"), ("MAIL FROM:<s@remote.test>", "250"),
                      (f"RCPT TO:<{ALICE}>", "250"), ("DATA", "354")):
        c.send(cmd + "\r\n")
        assert c.reply().startswith(code + " "), cmd
    return c


def test_smtp_data_in_flight_finishes_then_421(service):
    c = smtp_in_data(service)
    c.send("Subject: drained\r\n\r\nfirst half\r\n")
    stopper = Stopper(service, drain=30)
    try:
        assert wait_for(stopper.draining)
        # listeners are closed first: nobody new gets in
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", service.port("smtp")), timeout=10).close()
        c.send("second half\r\n.\r\n")
        assert c.reply().startswith("250 2.0.0 Ok: queued as ")
        # the 250 came after the file was committed to new/
        assert [m for m in inbox(service.data_dir, ALICE) if b"second half" in m]
        c.send("NOOP\r\n")
        assert c.reply() == f"421 4.3.2 {HOST} Service shutting down"
        assert c.at_eof()
    finally:
        c.close()
        stopper.join()


def test_smtp_bdat_chunks_go_on_during_the_drain(service):
    """A message sent in BDAT chunks is one message over several commands: a drain
    that starts between two chunks lets the client send the rest."""
    c = Conn(service.port("smtp"))
    assert c.reply().startswith("220 ")
    for cmd in ("EHLO client.test", "MAIL FROM:<s@remote.test>", f"RCPT TO:<{ALICE}>"):
        c.send(cmd + "\r\n")
        assert c.reply().startswith("250 "), cmd
    first, last = b"Subject: chunked\r\n\r\n", b"sent in two chunks\r\n"
    c.send(b"BDAT %d\r\n" % len(first) + first)
    assert c.reply().startswith("250 ")
    stopper = Stopper(service, drain=30)
    try:
        assert wait_for(stopper.draining)
        c.send(b"BDAT %d LAST\r\n" % len(last) + last)
        assert c.reply().startswith("250 2.0.0 Ok: queued as ")
        assert [m for m in inbox(service.data_dir, ALICE) if b"sent in two chunks" in m]
        assert c.reply() == f"421 4.3.2 {HOST} Service shutting down"
        assert c.at_eof()
    finally:
        c.close()
        stopper.join()


def test_idle_sessions_get_the_shutdown_reply_at_once(service, client_ctx):
    smtp = Conn(service.port("smtp"))
    assert smtp.reply().startswith("220 ")
    smtp.send("EHLO client.test\r\nMAIL FROM:<s@remote.test>\r\n")
    assert smtp.reply().startswith("250 ") and smtp.reply().startswith("250 ")
    # one over STARTTLS: the drain wakes it without touching its TLS state
    tls = Conn(service.port("smtp"))
    assert tls.reply().startswith("220 ")
    tls.send("STARTTLS\r\n")
    assert tls.reply().startswith("220 ")
    tls = Conn(None, client_ctx.wrap_socket(tls.sock, server_hostname=HOST))
    imap = Conn(service.port("imap"))
    assert imap.line().startswith("* OK ")
    pop3 = Conn(service.port("pop3"))
    assert pop3.line().startswith("+OK ")
    conns = (smtp, tls, imap, pop3)
    # drain time far beyond the test's bounds: the replies must not wait for it
    stopper = Stopper(service, drain=3600)
    try:
        assert smtp.reply() == f"421 4.3.2 {HOST} Service shutting down"
        assert tls.reply() == f"421 4.3.2 {HOST} Service shutting down"
        assert imap.line() == "* BYE Server shutting down"
        assert pop3.line() == "-ERR [SYS/TEMP] server shutting down"
        assert all(c.at_eof() for c in conns)
        stopper.join()
    finally:
        for c in conns:
            c.close()
        stopper.thread.join(30)


def test_imap_idle_gets_bye(service):
    deliver(service, b"Subject: one\r\n\r\nbody\r\n")
    c = Conn(service.port("imap"))
    assert c.line().startswith("* OK ")
    c.send(f"a LOGIN {ALICE} alice-pw\r\na SELECT INBOX\r\n")
    while not c.line().startswith("a OK [READ-WRITE]"):
        pass
    c.send("b IDLE\r\n")
    assert c.line() == "+ idling"
    stopper = Stopper(service, drain=3600)
    try:
        assert c.line() == "* BYE Server shutting down"
        assert c.at_eof()
        stopper.join()
    finally:
        c.close()
        stopper.thread.join(30)


def test_imap_append_literal_in_flight_completes(service):
    c = Conn(service.port("imap"))
    assert c.line().startswith("* OK ")
    c.send(f"a LOGIN {ALICE} alice-pw\r\n")
    assert c.line().startswith("a OK ")
    body = b"Subject: appended\r\n\r\nappended during the drain\r\n"
    c.send(b"b APPEND INBOX {%d}\r\n" % len(body))
    assert c.line().startswith("+ ")
    c.send(body[:20])
    stopper = Stopper(service, drain=30)
    try:
        assert wait_for(stopper.draining)
        c.send(body[20:] + b"\r\n")
        assert c.line().startswith("b OK [APPENDUID ")
        # on disk with LF line ends (Maildir), as IMAP FETCH converts back
        assert body.replace(b"\r\n", b"\n") in inbox_all(service.data_dir, ALICE)
        assert c.line() == "* BYE Server shutting down"
        assert c.at_eof()
    finally:
        c.close()
        stopper.join()


def test_pop3_drain_deletes_nothing(service):
    for n in range(2):
        deliver(service, b"Subject: %d\r\n\r\nbody\r\n" % n)
    c = Conn(service.port("pop3"))
    assert c.line().startswith("+OK")
    for cmd in (f"USER {ALICE}", "PASS alice-pw", "DELE 1", "DELE 2"):
        c.send(cmd + "\r\n")
        assert c.line().startswith("+OK"), cmd
    stopper = Stopper(service, drain=3600)
    try:
        assert c.line() == "-ERR [SYS/TEMP] server shutting down"
        assert c.at_eof()
        stopper.join()
    finally:
        c.close()
        stopper.thread.join(30)
    # RFC 1939 6: no UPDATE state without QUIT: both messages are still there
    assert len(inbox_all(service.data_dir, ALICE)) == 2


def test_sessions_past_the_drain_time_are_cut(service):
    c = smtp_in_data(service)
    c.send("Subject: never finished\r\n\r\nhalf a message\r\n")
    stopper = Stopper(service, drain=0.2)
    try:
        # the client never ends its DATA: cut after the drain time, with the 421
        assert c.reply() == f"421 4.3.2 {HOST} Service shutting down"
        assert c.at_eof()
        stopper.join()
    finally:
        c.close()
        stopper.thread.join(30)
    assert not [m for m in inbox(service.data_dir, ALICE) if b"never finished" in m]


def test_bdat_chunks_past_the_drain_time_are_cut(service):
    c = Conn(service.port("smtp"))
    assert c.reply().startswith("220 ")
    for cmd in ("EHLO client.test", "MAIL FROM:<s@remote.test>", f"RCPT TO:<{ALICE}>"):
        c.send(cmd + "\r\n")
        assert c.reply().startswith("250 "), cmd
    c.send(b"BDAT 9\r\nSubject: ")
    assert c.reply().startswith("250 ")
    stopper = Stopper(service, drain=0.2)
    try:
        # the LAST chunk never comes: cut after the drain time, with the 421
        assert c.reply() == f"421 4.3.2 {HOST} Service shutting down"
        assert c.at_eof()
        stopper.join()
    finally:
        c.close()
        stopper.thread.join(30)
    assert inbox(service.data_dir, ALICE) == []


def test_stop_waits_for_nobody_when_nobody_is_busy(service):
    """drain=None takes [server] drain_time; with no session in a command, stop
    returns without waiting for it (an hour here: Stopper.join's bound is 30 s)."""
    assert service.settings.server.drain_time == 10       # the default
    service.settings = dataclasses.replace(
        service.settings, server=dataclasses.replace(service.settings.server, drain_time=3600))
    c = Conn(service.port("smtp"))
    assert c.reply().startswith("220 ")
    stopper = Stopper(service, drain=None)
    try:
        assert c.reply() == f"421 4.3.2 {HOST} Service shutting down"
        stopper.join()
    finally:
        c.close()


# -- helpers ------------------------------------------------------------------------------------
def deliver(service, data):
    c = smtp_in_data(service)
    try:
        c.send(data + b".\r\n")
        assert c.reply().startswith("250 ")
        c.send("QUIT\r\n")
    finally:
        c.close()


def inbox_all(data_dir, address):
    """Every message file of an INBOX (new/ and cur/) as bytes."""
    local, domain = address.split("@")
    root = os.path.join(data_dir, "mail", domain, local)
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(root, sub)
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else ():
            with open(os.path.join(d, name), "rb") as f:
                out.append(f.read())
    return out
