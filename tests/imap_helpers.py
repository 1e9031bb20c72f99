"""Helpers for IMAP tests: accounts, a fake server for socketpair sessions, a raw client.

An IMAPSession runs in a thread on one end of socket.socketpair() (fakes.run_session);
the test talks to the other end with Client, whose `expect` sends one tagged command
and checks the exact tagged status and response code.  FakeServer is fakes.FakeServer
for IMAP (1 MiB message_size); its handler is a real IMAPFileHandler over a real
MailStore and AccountStore in the test's tmp_path.  The accounts come from fakes.

The session fixtures shared by the test modules of the IMAP commands (import the ones a
module uses): handler, store, open_session (fakes.session_fixtures), client (Alice
logged in) and selected (Alice with INBOX selected, messages 1..3).
"""

import itertools
import re

import pytest

import fakes
from clevermail.imap.handler import IMAPFileHandler
from clevermail.imap.session import IMAPSession
from clevermail.store import MailStore
from fakes import ALICE, BOB, DOMAIN, HOSTNAME, PASSWORD, make_accounts, password_hash  # noqa: F401
from waiting import wait_for

_LITERAL_END = re.compile(rb"\{(\d+)\+?\}\r\n\Z")
SYSTEM_FLAGS = "\\Answered \\Flagged \\Deleted \\Seen \\Draft"


def make_handler(tmp_path):
    store = MailStore(tmp_path / "data")
    accounts = make_accounts(tmp_path / "users.ini")
    return IMAPFileHandler(store, accounts)


def message(n, subject=None, body=None, sender=f"sender@{DOMAIN}", to=ALICE):
    """A small CRLF message numbered n."""
    subject = subject if subject is not None else f"message {n}"
    body = body if body is not None else f"Body of message {n}.\r\n"
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\n{body}").encode()


def deliver(store, n, address=ALICE, start=1):
    for i in range(start, start + n):
        store.deliver_local("", [address], message(i))


class FakeServer(fakes.FakeServer):
    protocol = "imap"
    limit_defaults = {**fakes.FakeServer.limit_defaults, "message_size": 1 << 20}


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


class Client(fakes.LineClient):
    """The test's end of the socketpair: tagged commands, exact replies."""

    def __init__(self, sock, thread):
        super().__init__(sock, thread)
        self.tags = (f"a{i}" for i in itertools.count(1))

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

    def login(self, user=ALICE, password=PASSWORD):
        return self.expect(f'LOGIN "{user}" "{password}"', "OK")

    def select(self, name="INBOX"):
        return self.expect(f'SELECT "{name}"', "OK", "READ-WRITE")


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
    return fakes.run_session(IMAPSession, server, Client, peer)


def uidvalidity(store, name="INBOX", address=ALICE):
    folder = store.open_folder(address, name)
    store.release_folder(folder)
    return folder.uidvalidity


def wait_idling(store, name="INBOX", address=ALICE):
    """Wait (bounded) until an IDLE session registered as a waiter of the folder: the
    waiter is added just after "+ idling" is sent."""
    folder = store._open[store.folder_path(address, name)]
    assert wait_for(lambda: folder.waiters, timeout=5)
    return folder


def two_logged_in(open_session, select=False, **first_kw):
    """Two sessions logged in as Alice (first_kw: the first one's server), with INBOX
    selected in both if `select`."""
    a, b = open_session(**first_kw), open_session()
    for c in (a, b):
        c.login()
    if select:
        for c in (a, b):
            c.select()
    return a, b


def start_idle(client):
    """Send IDLE (tag i1) and check the continuation."""
    client.send("i1 IDLE\r\n")
    assert client.line() == "+ idling"


def append(client, mailbox, data, extra=""):
    """APPEND `data` as a non-synchronizing literal (`extra`: " (flags) date"); the Reply."""
    tag = next(client.tags)
    client.send(f"{tag} APPEND {mailbox}{extra} {{{len(data)}+}}\r\n".encode() + data + b"\r\n")
    return client.read_reply(tag)


def read_greeting(client):
    """open_session's greeting check; the line is kept as client.greeting."""
    client.greeting = client.line()
    assert client.greeting.startswith("* OK [CAPABILITY "), client.greeting


def close_handler(handler):
    """What a handler opened, closed at the fixture's teardown (not left to garbage
    collection; the suite once came near 1,024 descriptors): the FETCH cache's journal
    files and the store's Folders."""
    handler.fetch_cache.close()
    fakes.close_store(handler.store)


handler, store, open_session = fakes.session_fixtures(make_handler, FakeServer, start_session,
                                                      read_greeting, close_handler)


@pytest.fixture
def client(open_session):
    c = open_session()
    c.login()
    return c


@pytest.fixture
def selected(client, store):
    """Alice logged in with INBOX selected, holding messages 1..3 (UIDs 1..3)."""
    deliver(store, 3)
    client.select()
    return client
