"""Hostile input against the running service: every protocol answers garbage with
an error reply of its own kind, never dies, and serves a normal client afterwards.

Bounded: a fixed seed, a fixed number of lines per connection, socket timeouts."""

import imaplib
import poplib
import random
import smtplib
import socket

import pytest

from clevermail.accounts import AccountStore
from clevermail.service import MailService
from managesieve_helpers import Client

pytestmark = pytest.mark.e2e

LINES = 150

# what an error reply starts with, per protocol (after any untagged noise)
ERROR_PREFIXES = {
    "smtp": (b"5", b"4"),
    "pop3": (b"-ERR",),
    "imap": (b"* BAD", b"* NO", b"* BYE", b"x BAD", b"x NO"),
    "managesieve": (b"NO", b"BYE"),
}


@pytest.fixture
def service(tmp_path, make_config, thread_guard):
    conf = make_config(tmp_path, limits={"errors_per_session": 1000, "message_size": 100000},
                       managesieve={"listen": ["127.0.0.1:0"]})
    AccountStore(conf.server.users_file, conf.server.domains).add(
        "alice@example.test", "secret")
    svc = MailService(conf).start()
    yield svc
    svc.stop()


def garbage_lines(rng, protocol):
    """Random bytes, overlong lines, NULs, bare CR/LF, and near-valid commands."""
    verbs = {"smtp": [b"MAIL FROM:", b"RCPT TO:", b"EHLO", b"AUTH PLAIN", b"BDAT", b"DATA x"],
             "pop3": [b"RETR", b"TOP 1", b"USER", b"AUTH PLAIN", b"LIST 99999999999"],
             "imap": [b"x FETCH", b"x SELECT", b"x LOGIN", b"x UID FETCH 1:* (BODY[", b"x APPEND INBOX {"],
             "managesieve": [b"PUTSCRIPT \"a\"", b"GETSCRIPT", b"AUTHENTICATE \"PLAIN\"",
                             b"HAVESPACE \"a\" 99999999999", b"NOOP {"]}
    for _ in range(LINES):
        kind = rng.randrange(5)
        if kind == 0:
            line = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80)))
        elif kind == 1:
            line = rng.choice(verbs[protocol]) + b" " + bytes(rng.randrange(32, 127) for _ in range(rng.randrange(0, 40)))
        elif kind == 2:
            line = b"A" * rng.choice((600, 5000, 70000))
        elif kind == 3:
            line = rng.choice(verbs[protocol]) + b"\x00\r\x00" + b"(" * rng.randrange(1, 300)
        else:
            line = rng.choice(verbs[protocol]) + b" {99999999999}"
        yield line.replace(b"\n", b" ").replace(b"\r", b" ") + b"\r\n"


def read_some(sock):
    try:
        return sock.recv(65536)
    except socket.timeout:
        return b""


@pytest.mark.parametrize("protocol", ["smtp", "pop3", "imap", "managesieve"])
def test_garbage_then_a_normal_client(service, protocol):
    rng = random.Random(4242)
    port = service.port(protocol)
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    greeting = sock.recv(1024)
    assert greeting[:1] in (b"2", b"+", b"*", b'"')       # ManageSieve greets with its capabilities
    replies = b""
    answered = 0
    for line in garbage_lines(rng, protocol):
        try:
            sock.sendall(line)
        except OSError:
            break                       # the server may close after a BYE / 421: allowed
        data = read_some(sock)
        if not data:
            break
        answered += 1
        replies += data
    sock.close()
    assert answered >= 20               # it kept answering, not one reply and a hang-up
    # every reply that came back is an error or a continuation the client provoked
    lines = [ln for ln in replies.split(b"\r\n") if ln]
    assert lines, "the server never answered"
    assert any(ln.startswith(ERROR_PREFIXES[protocol]) for ln in lines)
    assert not any(b"Traceback" in ln for ln in lines)

    # the service is unharmed: a normal client works
    if protocol == "smtp":
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
            assert s.noop()[0] == 250
            s.sendmail("x@remote.test", ["alice@example.test"], b"Subject: ok\r\n\r\nfine\r\n")
    elif protocol == "pop3":
        p = poplib.POP3("127.0.0.1", port, timeout=10)
        p.user("alice@example.test")
        p.pass_("secret")
        assert p.stat()[0] >= 0
        p.quit()
    elif protocol == "managesieve":
        c = Client(socket.create_connection(("127.0.0.1", port), timeout=10), None)
        assert c.response()[1].startswith("OK")
        c.login("alice@example.test", "secret")
        assert c.cmd("LISTSCRIPTS") == ([], 'OK "LISTSCRIPTS completed"')
        c.close()
    else:
        m = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        m.login("alice@example.test", "secret")
        assert m.select("INBOX")[0] == "OK"
        m.logout()
