"""Helpers for IMAP tests: accounts, a fake server for socketpair sessions, a raw client.

An IMAPSession runs in a thread on one end of socket.socketpair(); the test talks to
the other end with Client, whose `expect` sends one tagged command and checks the
exact tagged status and response code.  FakeServer has just what LineSession and
IMAPSession use of a MailServer (handler, limits, options, TLS context, hostname,
throttle, admit/release); its handler is a real IMAPFileHandler over a real MailStore
and AccountStore in the test's tmp_path.
"""

import base64
import hashlib
import itertools
import re
import socket
import threading

from clevermail.accounts import AccountStore, verify_password
from clevermail.imap.handler import IMAPFileHandler
from clevermail.imap.session import IMAPSession
from clevermail.netbase import Limits
from clevermail.store import MailStore

DOMAIN = "example.test"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
PASSWORD = "s3cret pass"
HOSTNAME = "mail.example.test"
_HASH = None
_LITERAL_END = re.compile(rb"\{(\d+)\+?\}\r\n\Z")


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


def make_accounts(path, users=(ALICE, BOB), failure_delay=0):
    with open(path, "w", encoding="utf-8") as f:
        for user in users:
            f.write(f"[{user}]\npassword = {password_hash()}\n")
    return AccountStore(path, [DOMAIN], failure_delay=failure_delay)


def make_handler(tmp_path, failure_delay=0):
    store = MailStore(tmp_path / "data")
    accounts = make_accounts(tmp_path / "users.ini", failure_delay=failure_delay)
    return IMAPFileHandler(store, accounts)


def message(n, subject=None, body=None, sender=f"sender@{DOMAIN}", to=ALICE):
    """A small CRLF message numbered n."""
    subject = subject if subject is not None else f"message {n}"
    body = body if body is not None else f"Body of message {n}.\r\n"
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\n{body}").encode()


def deliver(store, n, address=ALICE, start=1):
    for i in range(start, start + n):
        store.deliver(address, message(i))


class FakeServer:
    def __init__(self, handler, *, ssl_context=None, options=None, throttle=None,
                 timeout=10.0, errors_per_session=20, message_size=1 << 20,
                 hostname=HOSTNAME):
        self.handler = handler
        self.protocol = "imap"
        self.hostname = hostname
        self.limits = Limits(timeout=timeout, errors_per_session=errors_per_session,
                             auth_failure_delay=0, message_size=message_size)
        self.ssl_context = ssl_context
        self.implicit_tls = False
        self.throttle = throttle
        self.options = dict(options or {})
        self.sessions = set()

    def admit(self, session):
        self.sessions.add(session)
        return True

    def release(self, session):
        self.sessions.discard(session)


class Reply:
    """The answer to one command: untagged lines (literals inline) and the tagged line."""

    def __init__(self, untagged, tagged):
        self.untagged = untagged
        self.tagged = tagged

    def lines(self, prefix):
        """Untagged lines starting with `prefix` (e.g. '* LIST')."""
        return [u for u in self.untagged if u.startswith(prefix)]

    def __repr__(self):
        return f"Reply({self.untagged!r}, {self.tagged!r})"


class Client:
    """The test's end of the socketpair: tagged commands, exact replies."""

    def __init__(self, sock, thread):
        self.sock = sock
        self.thread = thread
        self.file = sock.makefile("rb")
        self.tags = (f"a{i}" for i in itertools.count(1))

    # -- raw ------------------------------------------------------------------------
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def raw_line(self):
        """One line as bytes with CRLF (b'' at EOF)."""
        raw = self.file.readline()
        assert raw == b"" or raw.endswith(b"\r\n"), raw
        return raw

    def line(self):
        """One response line, literals read and inlined, without the final CRLF; '' at EOF."""
        out = b""
        while True:
            raw = self.raw_line()
            if not raw:
                return out.decode("utf-8", "surrogateescape")
            out += raw
            m = _LITERAL_END.search(raw)
            if not m:
                return out[:-2].decode("utf-8", "surrogateescape")
            out += self.file.read(int(m.group(1)))

    # -- commands -----------------------------------------------------------------
    def read_reply(self, tag):
        untagged = []
        while True:
            line = self.line()
            assert line, f"EOF before the tagged reply; got {untagged!r}"
            if line.startswith(tag + " "):
                return Reply(untagged, line)
            untagged.append(line)

    def command(self, text):
        """Send `tag text` and read up to the tagged reply."""
        tag = next(self.tags)
        self.send(f"{tag} {text}\r\n")
        return self.read_reply(tag)

    def expect(self, text, status="OK", code=None, reply_text=None):
        """Send a command; assert the tagged status, the response code (None: any,
        '': none, else exactly '[code]') and, if given, the exact text after them."""
        reply = self.command(text)
        check(reply, status, code, reply_text)
        return reply

    def starttls(self, ctx, hostname=HOSTNAME):
        self.file.close()
        self.sock = ctx.wrap_socket(self.sock, server_hostname=hostname)
        self.file = self.sock.makefile("rb")

    def login(self, user=ALICE, password=PASSWORD):
        return self.expect(f'LOGIN "{user}" "{password}"', "OK")

    def select(self, name="INBOX"):
        return self.expect(f'SELECT "{name}"', "OK", "READ-WRITE")

    def close(self):
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass

    def wait_closed(self, timeout=10):
        self.thread.join(timeout)
        assert not self.thread.is_alive()

    def at_eof(self):
        """True when the server closed the connection (nothing more to read)."""
        return self.file.readline() == b""


def check(reply, status, code=None, reply_text=None):
    tag, _, rest = reply.tagged.partition(" ")
    got_status, _, rest = rest.partition(" ")
    assert got_status == status, reply
    if code is not None:
        if code == "":
            assert not rest.startswith("["), reply
        else:
            assert rest.startswith(f"[{code}]"), reply
    if reply_text is not None:
        text = rest.split("] ", 1)[1] if rest.startswith("[") else rest
        assert text == reply_text, reply


def start_session(server, peer="127.0.0.1"):
    """An IMAPSession for `server` in a thread; returns the Client (greeting unread)."""
    ours, theirs = socket.socketpair()
    ours.settimeout(10)   # a hung session fails the test instead of hanging it
    thread = threading.Thread(target=IMAPSession, args=(theirs, (peer, 40000), server),
                              daemon=True)
    thread.start()
    return Client(ours, thread)
