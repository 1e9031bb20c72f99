"""SMTPSession over socket.socketpair(): delivery -- local delivery with its trace
headers, unknown users and relaying refused, authenticated and trusted clients
relaying, submission requiring AUTH, the accepted line logged before the commit, and
failures that store nothing (451, logged with their cause)."""

import ipaddress
import logging

from clevermail.netbase import SessionPolicy

from smtp_helpers import plain
from smtp_session_helpers import MSG, env, hello, send_mail, start_mail, users_file  # noqa: F401 (fixtures)


# -- delivery ------------------------------------------------------------------------
def test_local_delivery_with_trace_headers(env):
    c = hello(env)
    reply = send_mail(c, rcpts=["Alice@EXAMPLE.test", "bob+lists@example.test", "alice+x@example.test"],
                      body="Subject: hi\r\n\r\n..dot line\r\nhello\r\n")
    queue_id = reply.split()[-1]
    assert reply.startswith("2.0.0 Ok: queued as ")
    [alice] = env.inbox("alice@example.test")          # one copy for alice and alice+x
    [bob] = env.inbox("bob@example.test")
    assert alice == bob
    assert alice.startswith(b"Return-Path: <sender@remote.test>\nReceived: from client.test (127.0.0.1 [127.0.0.1])\n")
    assert f"with ESMTP id {queue_id}".encode() in alice
    assert b"for <" not in alice                       # several recipients: none named
    assert alice.endswith(b"Subject: hi\n\n.dot line\nhello\n")
    assert env.queued() == []
    c.expect(250, "MAIL FROM:<>")                      # session goes on


def test_single_recipient_named_and_helo_keyword(env):
    c = env.connect()
    c.expect(250, "HELO old.client")
    send_mail(c)
    [msg] = env.inbox("alice@example.test")
    assert b"with SMTP id" in msg and b"\tfor <alice@example.test>;" in msg


def test_unknown_user_and_relay_denied(env, caplog):
    caplog.set_level(logging.INFO, logger="clevermail")
    c = hello(env)
    c.expect(250, "MAIL FROM:<a@b.test>")
    assert c.expect(550, "RCPT TO:<carol@example.test>").startswith("5.1.1")
    assert c.expect(554, "RCPT TO:<someone@elsewhere.test>").startswith("5.7.1")
    # refusals are logged with the address and the sender, for the admin
    assert "recipient <carol@example.test> refused: no such user (from=<a@b.test>)" in caplog.text
    assert "relay denied for <someone@elsewhere.test> (from=<a@b.test>)" in caplog.text
    assert c.expect(554, "RCPT TO:<someone@[192.0.2.7]>").startswith("5.7.1")
    c.expect(250, "RCPT TO:<Postmaster>")              # always accepted (RFC 5321 4.5.1)
    c.expect(250, "RCPT TO:<bob@example.test>")
    c.expect(354, "DATA")
    c.send(MSG + ".\r\n")
    c.expect(250)
    assert env.queued() == []


def test_authenticated_and_trusted_clients_relay(env):
    c = hello(env)
    c.expect(235, "AUTH PLAIN " + plain("alice@example.test", "alice-pw"))
    reply = send_mail(c, rcpts=["x@far.test", "alice@example.test", "Y@far.test", "x@FAR.test"],
                      sender="alice@example.test")
    [entry] = env.queued()
    assert entry.queue_id == reply.split()[-1]
    assert entry.sender == "alice@example.test"
    assert [r.address for r in entry.recipients] == ["x@far.test", "Y@far.test"]
    [msg] = env.inbox("alice@example.test")
    assert b"with ESMTPA id" in msg

    t = env.connect(env.server(policy=SessionPolicy(trusted_networks=(ipaddress.ip_network("192.0.2.0/24"),))),
                    peer="192.0.2.9")
    t.expect(250, "EHLO inside.test")
    send_mail(t, rcpts=["z@far.test"])
    assert len(env.queued()) == 2


def test_accepted_is_logged_before_the_commit_wakes_the_relay(env, caplog):
    # The relay worker is woken by the queue entry's commit (queue.on_commit): its lines
    # must come after the session's accepted line (`clevermail trace` orders by them),
    # and the 250 still only after the commit.
    caplog.set_level(logging.INFO, logger="clevermail")
    seen = []

    def woken():
        seen.append([r.getMessage() for r in caplog.records if "accepted id=" in r.getMessage()])
        assert env.queued(), "the wake-up comes after the entry is committed"
    env.queue.on_commit = woken
    c = hello(env)
    c.expect(235, "AUTH PLAIN " + plain("alice@example.test", "alice-pw"))
    reply = send_mail(c, rcpts=["x@far.test", "bob@example.test"], sender="alice@example.test")
    qid = reply.split()[-1]
    [[line]] = seen
    assert f"accepted id={qid} from=<alice@example.test>" in line
    assert env.inbox("bob@example.test") and len(env.queued()) == 1


def test_a_commit_that_fails_after_the_accepted_line_is_a_451_with_nothing_kept(env, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="clevermail")
    from clevermail.relay import handles

    def broken(self):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(handles.PendingEntry, "commit", broken)
    c = hello(env)
    c.expect(235, "AUTH PLAIN " + plain("alice@example.test", "alice-pw"))
    start_mail(c, ["bob@example.test", "x@far.test"], sender="alice@example.test")
    c.send(MSG + ".\r\n")
    assert c.expect(451).startswith("4.3.0")
    assert env.inbox("bob@example.test") == [] and env.queued() == []
    messages = [r.getMessage() for r in caplog.records]
    accepted = [i for i, m in enumerate(messages) if "accepted id=" in m]
    failed = [i for i, m in enumerate(messages) if "delivery failed id=" in m]
    assert accepted and failed and accepted[0] < failed[0]


def test_submission_requires_auth(env):
    c = hello(env, env.server(mode="submission"))
    assert c.expect(530, "MAIL FROM:<alice@example.test>").startswith("5.7.0")
    c.expect(235, "AUTH PLAIN " + plain("bob@example.test", "bob-pw"))
    send_mail(c, rcpts=["x@far.test"], sender="bob@example.test")
    assert len(env.queued()) == 1


def test_delivery_failure_stores_nothing(env, monkeypatch):
    def broken(*a, **kw):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(env.queue, "prepare", broken)
    c = hello(env)
    c.expect(235, "AUTH PLAIN " + plain("alice@example.test", "alice-pw"))
    start_mail(c, ["bob@example.test", "x@far.test"], sender="alice@example.test")
    c.send(MSG + ".\r\n")
    assert c.expect(451).startswith("4.3.0")
    assert env.inbox("bob@example.test") == []
    assert env.queued() == []
    c.expect(250, "MAIL FROM:<alice@example.test>")    # transaction was reset


def test_delivery_failure_logs_its_cause_with_traceback(env, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="clevermail")

    def broken(*a, **kw):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(env.queue, "prepare", broken)
    c = hello(env)
    c.expect(235, "AUTH PLAIN " + plain("alice@example.test", "alice-pw"))
    start_mail(c, ["x@far.test"], sender="alice@example.test")
    c.send(MSG + ".\r\n")
    assert c.expect(451) == "4.3.0 Message not stored (local error), try again later"
    [record] = [r for r in caplog.records if "delivery failed" in r.getMessage()]
    assert isinstance(record.exc_info[1], OSError) and record.exc_info[2] is not None


def test_internal_error_is_451_and_session_lives(env, monkeypatch):
    def boom(*a):
        raise RuntimeError("bug")
    monkeypatch.setattr(env.handler, "resolve_recipient", boom)
    c = hello(env)
    c.expect(250, "MAIL FROM:<a@b.test>")
    assert c.expect(451, "RCPT TO:<alice@example.test>").startswith("4.3.0")
    c.expect(250, "NOOP")
