"""Tests for the gathered output of line_session.LineSession (send, flush): a command's
replies go out in one write, pipelined commands are answered together and in order,
a large reply goes out before its command ends, and nothing the client waits for is
held back while the server waits for the client (a literal's `+`, an AUTHENTICATE
challenge, IDLE's `+ idling`, SMTP's 354).  IMAP and SMTP sessions over
socket.socketpair(); every write the session makes is recorded."""

import base64

import pytest

import fakes
import smtp_helpers
from clevermail.imap.session import IMAPSession
from clevermail.session_output import OUTPUT_BOUND
from clevermail.smtp.session import SMTPSession
from imap_helpers import (  # noqa: F401 (handler, store: fixtures)
    ALICE, PASSWORD, Client, FakeServer, deliver, handler, message, store, wait_idling)


class Recorder:
    """A session's connection whose every sendall is kept in `writes`."""

    def __init__(self, sock, writes):
        self._sock = sock
        self.writes = writes

    def sendall(self, data):
        self.writes.append(bytes(data))
        self._sock.sendall(data)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def recording(session_class):
    class Recording(session_class):
        def setup(self):
            super().setup()
            self.connection = Recorder(self.connection, self.server.writes)
    return Recording


@pytest.fixture
def imap(handler):
    """A logged-in IMAP client on a session whose writes are in client.writes."""
    server = FakeServer(handler)
    server.writes = []
    c = fakes.run_session(recording(IMAPSession), server, Client)
    assert c.line().startswith("* OK [CAPABILITY ")
    c.login()
    c.writes = server.writes
    yield c
    c.close()
    c.wait_closed()


def writes_since(client, mark):
    return client.writes[mark:]


def test_a_commands_replies_go_out_in_one_write(imap, store):
    deliver(store, 3)
    imap.select()
    mark = len(imap.writes)
    r = imap.command("FETCH 1:3 (UID FLAGS)")
    assert r.tagged.endswith("OK FETCH completed")
    assert len(r.untagged) == 3
    assert len(writes_since(imap, mark)) == 1


def test_pipelined_commands_answered_in_order_in_one_write(imap, store):
    deliver(store, 2)
    imap.select()
    mark = len(imap.writes)
    imap.send("p1 NOOP\r\np2 CAPABILITY\r\np3 FETCH 2 (UID)\r\np4 NOOP\r\n")
    lines = [imap.line() for _ in range(6)]
    assert lines[0] == "p1 OK NOOP completed"
    assert lines[1].startswith("* CAPABILITY ")
    assert lines[2] == "p2 OK CAPABILITY completed"
    assert lines[3] == "* 2 FETCH (UID 2)"
    assert lines[4] == "p3 OK FETCH completed"
    assert lines[5] == "p4 OK NOOP completed"
    # the four arrived in one recv: their replies in one write
    assert len(writes_since(imap, mark)) == 1


def test_replies_before_a_literal_invitation_are_sent_before_the_wait(imap, store):
    data = message(1)
    # the client sends nothing more until it has read both lines: a reply held back
    # while the server reads the literal would hang the test (socket timeout)
    imap.send(f"p1 NOOP\r\np2 APPEND INBOX {{{len(data)}}}\r\n")
    assert imap.line() == "p1 OK NOOP completed"
    assert imap.line() == "+ Ready for literal data"
    imap.send(data + b"\r\n")
    assert imap.read_reply("p2").tagged.startswith("p2 OK [APPENDUID ")


def test_authenticate_challenge_sent_before_the_answer_is_read(handler):
    server = FakeServer(handler)
    server.writes = []
    c = fakes.run_session(recording(IMAPSession), server, Client)
    try:
        c.line()
        c.send("p1 NOOP\r\np2 AUTHENTICATE PLAIN\r\n")
        assert c.line() == "p1 OK NOOP completed"
        assert c.line() == "+ "
        c.send(base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()) + b"\r\n")
        assert c.read_reply("p2").tagged.startswith("p2 OK ")
    finally:
        c.close()
        c.wait_closed()


def test_idle_continuation_and_updates_sent_while_idling(imap, store):
    deliver(store, 1)
    imap.select()
    imap.send("p1 NOOP\r\ni1 IDLE\r\n")
    assert imap.line() == "p1 OK NOOP completed"
    assert imap.line() == "+ idling"          # nothing more sent: IDLE waits
    wait_idling(store)
    deliver(store, 1, start=2)
    assert imap.line() == "* 2 EXISTS"
    assert imap.line() == "* 2 RECENT"
    imap.send("DONE\r\n")
    assert imap.read_reply("i1").tagged == "i1 OK IDLE terminated"


def test_a_reply_past_the_bound_goes_out_before_the_command_ends(imap, store):
    body = ("x" * 76 + "\r\n") * (2 * OUTPUT_BOUND // 78)
    store.deliver_local("", [ALICE], message(1, body=body))
    imap.select()
    mark = len(imap.writes)
    r = imap.command("FETCH 1 (BODY.PEEK[])")
    assert r.tagged.endswith("OK FETCH completed")
    writes = writes_since(imap, mark)
    assert len(writes) == 2
    assert len(writes[0]) >= OUTPUT_BOUND and b"OK FETCH completed" not in writes[0]
    assert writes[1].endswith(b" OK FETCH completed\r\n")


def test_logout_replies_reach_the_client_before_the_close(imap):
    imap.send("p1 NOOP\r\np2 LOGOUT\r\n")
    assert imap.line() == "p1 OK NOOP completed"
    assert imap.line().startswith("* BYE ")
    assert imap.line() == "p2 OK LOGOUT completed"
    assert imap.at_eof()


# -- SMTP (RFC 2920: a pipelined group answered in one write) --------------------------
@pytest.fixture
def smtp(tmp_path):
    env = smtp_helpers.Env(str(tmp_path / "data"), smtp_helpers.make_users_file(tmp_path))
    server = env.server()
    server.writes = []
    c = fakes.run_session(recording(SMTPSession), server, smtp_helpers.Client)
    c.writes = server.writes
    c.env = env
    yield c
    c.close()


def test_smtp_pipelined_group_answered_in_one_write_and_354_before_data(smtp):
    smtp.expect(220)
    smtp.expect(250, "EHLO client.example")
    mark = len(smtp.writes)
    rcpt = "alice@example.test"
    smtp.send(f"MAIL FROM:<sender@example.org>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n")
    smtp.expect(250)
    smtp.expect(250)
    smtp.expect(354)                # before the data is sent
    assert len(writes_since(smtp, mark)) == 1
    smtp.send("Subject: hi\r\n\r\nhello\r\n.\r\nQUIT\r\n")
    smtp.expect(250)
    smtp.expect(221)
    assert len(smtp.env.inbox(rcpt)) == 1
