"""SMTPSession over socket.socketpair(): every reply code, smuggling, STARTTLS
injection, limits, AUTH and throttling, all-or-nothing delivery."""

import ipaddress
import logging

import pytest

from clevermail.login import AuthThrottle
from clevermail.netbase import Limits, SessionPolicy
from clevermail.smtp import states
from clevermail.smtp.session import SMTPSession
import fakes
from fakes import tls_contexts
from smtp_helpers import Env, b64, make_users_file, plain

MSG = "Subject: hi\r\n\r\nhello\r\n"


@pytest.fixture(scope="module")
def users_file(tmp_path_factory):
    return make_users_file(tmp_path_factory.mktemp("smtp-users"))


@pytest.fixture
def env(tmp_path, users_file):
    e = Env(str(tmp_path / "data"), users_file)
    yield e
    e.connect.end(wait=False)


@pytest.fixture(scope="module")
def tls():
    return tls_contexts("mx.example.test")


def start_tls(client, client_ctx):
    client.sock = client_ctx.wrap_socket(client.sock, server_hostname="mx.example.test")
    client.buf = b""


def hello(env, server=None, **kw):
    """A greeted session (env.connect) that said EHLO client.test."""
    c = env.connect(server, **kw)
    c.expect(250, "EHLO client.test")
    return c


def start_mail(c, rcpts=("alice@example.test",), sender="a@b.test", data=True):
    """MAIL FROM, RCPT TO each of rcpts (all accepted) and, if data, DATA up to its 354."""
    c.expect(250, f"MAIL FROM:<{sender}>")
    for r in rcpts:
        c.expect(250, f"RCPT TO:<{r}>")
    if data:
        c.expect(354, "DATA")


def send_mail(c, rcpts=("alice@example.test",), body=MSG, sender="sender@remote.test"):
    start_mail(c, rcpts, sender)
    c.send(body + ".\r\n")
    return c.expect(250)


# -- greeting, basic commands ---------------------------------------------------------
def test_greeting_ehlo_and_basic_commands(env):
    c = env.connect()
    text = c.expect(250, "EHLO client.test")
    for ext in ("SIZE 26214400", "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8",
                "CHUNKING", "DSN", "AUTH SCRAM-SHA-256 PLAIN LOGIN"):
        assert ext in text.splitlines()
    assert "STARTTLS" not in text                  # no certificate configured
    c.expect(250, "HELO client.test")
    assert c.expect(250, "NOOP anything") == "2.0.0 Ok"
    assert c.expect(252, "VRFY alice").startswith("2.5.0")
    assert c.expect(252, "VRFY nobody@example.test").startswith("2.5.0")   # never reveals
    c.expect(501, "VRFY")
    assert "MAIL" in c.expect(214, "HELP")
    assert "MAIL FROM" in c.expect(214, "HELP mail")
    c.expect(502, "EXPN staff")
    c.expect(250, "RSET")
    c.expect(501, "RSET now")
    assert c.expect(221, "QUIT").startswith("2.0.0")
    assert c.closed()


def test_unknown_syntax_and_long_lines(env):
    c = env.connect()
    assert c.expect(500, "FROB").startswith("5.5.2")
    c.expect(500, "NOOP\x00")
    c.expect(501, "EHLO")
    c.expect(501, "HELO two words")
    c.expect(250, "EHLO client.test")
    c.expect(501, "MAIL FROM:alice@example.test")
    c.expect(501, "MAIL FROM:<alice@example.test> BODY=BINARYMIME")
    c.expect(555, "MAIL FROM:<alice@example.test> MT-PRIORITY=3")
    assert c.expect(500, "NOOP " + "x" * 600).startswith("5.5.2")     # over 512
    c.expect(250, "NOOP")                                              # still alive
    c.expect(500, "AUTH PLAIN " + "x" * 13000)                         # over 12288
    c.expect(535, "AUTH PLAIN " + plain("alice@example.test", "p" * 600))   # AUTH may be long
    c.expect(250, "MAIL FROM:<>")
    c.expect(501, "RCPT TO:<bob>")
    c.expect(555, "RCPT TO:<bob@example.test> FOO=1")
    assert "NOTIFY value BOGUS" in c.expect(501, "RCPT TO:<bob@example.test> NOTIFY=BOGUS")


def test_bad_sequence(env):
    c = env.connect()
    assert "HELO/EHLO" in c.expect(503, "MAIL FROM:<a@b.test>")
    c.expect(503, "RCPT TO:<alice@example.test>")
    c.expect(503, "DATA")
    c.expect(503, "AUTH PLAIN")
    c.expect(250, "EHLO client.test")
    c.expect(503, "RCPT TO:<alice@example.test>")
    c.expect(503, "DATA")
    c.expect(250, "MAIL FROM:<a@b.test>")
    c.expect(503, "MAIL FROM:<a@b.test>")
    assert "RCPT" in c.expect(503, "DATA")      # no RCPT tried yet
    c.expect(550, "RCPT TO:<nobody@example.test>")
    c.expect(503, "AUTH PLAIN " + plain("alice@example.test", "alice-pw"))


def test_data_after_only_refused_recipients_is_554(env):
    c = hello(env)
    c.expect(250, "MAIL FROM:<a@b.test>")
    assert c.expect(550, "RCPT TO:<nobody@example.test>").startswith("5.1.1")
    assert c.expect(554, "DATA").startswith("5.5.1")


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


# -- DATA: smuggling, stuffing, line endings, sizes ---------------------------------------
@pytest.mark.parametrize("sep", ["\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r.\r\n"])
def test_no_smuggling(env, sep):
    c = hello(env)
    start_mail(c)
    smuggled = ("MAIL FROM:<evil@b.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
                "Subject: smuggled\r\n\r\nevil\r\n")
    c.send("Subject: one\r\n\r\nfirst" + sep + smuggled + ".\r\n")
    c.expect(250)
    c.expect(250, "NOOP")                # exactly one reply came for the whole stream
    assert env.inbox("bob@example.test") == []
    [msg] = env.inbox("alice@example.test")
    assert b"Subject: smuggled" in msg and b"\r" not in msg


def test_bare_lf_message_is_normalized(env):
    c = hello(env)
    start_mail(c)
    c.send("Subject: lf\n\n..leading dot\nbody\r\n.\r\n")      # smtplib stuffs after LF
    c.expect(250)
    [msg] = env.inbox("alice@example.test")
    assert msg.endswith(b"Subject: lf\n\n.leading dot\nbody\n")


def test_empty_body_sent_after_354(env):
    c = hello(env)
    start_mail(c)
    c.send(".\r\n")
    c.expect(250)
    assert len(env.inbox("alice@example.test")) == 1


def test_long_data_line_refused(env):
    c = hello(env)
    ok = "Subject: x\r\n\r\n" + "y" * 998 + "\r\n"
    send_mail(c, body=ok)
    start_mail(c)
    c.send("Subject: x\r\n\r\n" + "y" * 999 + "\r\n.\r\n")
    assert c.expect(554).startswith("5.6.0")
    assert len(env.inbox("alice@example.test")) == 1
    c.expect(250, "NOOP")


def test_size_limit_at_mail_and_in_data(env):
    c = env.connect(env.server(limits=Limits(timeout=10.0, message_size=2000)))
    assert "SIZE 2000" in c.expect(250, "EHLO client.test")
    assert c.expect(552, "MAIL FROM:<a@b.test> SIZE=2001").startswith("5.3.4")
    c.expect(250, "MAIL FROM:<a@b.test> SIZE=1999")
    c.expect(250, "RCPT TO:<alice@example.test>")
    c.expect(354, "DATA")
    c.send("Subject: big\r\n\r\n" + ("z" * 70 + "\r\n") * 100 + ".\r\n")
    assert c.expect(552).startswith("5.3.4")
    assert env.inbox("alice@example.test") == []
    c.expect(250, "MAIL FROM:<a@b.test>")        # in sync, transaction reset


def test_too_many_recipients(env):
    c = hello(env, env.server(limits=Limits(timeout=10.0, recipients=2)))
    c.expect(250, "MAIL FROM:<a@b.test>")
    c.expect(250, "RCPT TO:<alice@example.test>")
    c.expect(250, "RCPT TO:<bob@example.test>")
    assert c.expect(452, "RCPT TO:<alice+2@example.test>").startswith("4.5.3")
    c.expect(354, "DATA")
    c.send(MSG + ".\r\n")
    c.expect(250)


def test_smtputf8_addresses(env):
    c = hello(env)
    assert c.expect(553, "MAIL FROM:<jörg@b.test>").startswith("5.6.7")
    c.expect(250, "MAIL FROM:<jörg@b.test> SMTPUTF8")
    c.expect(550, "RCPT TO:<jörg@example.test>")
    c.expect(250, "RCPT TO:<alice@example.test>")
    c.expect(354, "DATA")
    c.send("Subject: grüße\r\n\r\nü\r\n.\r\n")
    c.expect(250)
    assert "grüße".encode() in env.inbox("alice@example.test")[0]


def test_u_label_that_is_no_idn_is_bad_syntax_even_for_relaying(env):
    c = hello(env)
    c.expect(250, "MAIL FROM:<a@b.test> SMTPUTF8")
    assert c.expect(501, "RCPT TO:<alice@☃.example>") == "5.1.3 Bad recipient address syntax"
    c.expect(250, "RSET")
    c.expect(235, "AUTH PLAIN " + plain("alice@example.test", "alice-pw"))
    c.expect(250, "MAIL FROM:<alice@example.test> SMTPUTF8")
    c.expect(501, "RCPT TO:<bob@bü--cher.example>")          # not queued for relay either
    c.expect(250, "RCPT TO:<bob@bücher.example>")            # a valid IDN elsewhere: relayed
    c.expect(354, "DATA")
    c.expect(250, MSG + ".")
    [entry] = env.queued()
    assert [r.address for r in entry.recipients] == ["bob@bücher.example"]


def test_pipelined_commands(env):
    c = env.connect()
    c.send("EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\n"
           "RCPT TO:<nobody@example.test>\r\nDATA\r\n")
    for code in (250, 250, 250, 550, 354):
        c.expect(code)
    c.send(MSG + ".\r\nQUIT\r\n")
    c.expect(250)
    c.expect(221)


# -- BDAT (RFC 3030) ----------------------------------------------------------------------
def test_bdat_chunks(env):
    c = hello(env)
    start_mail(c, data=False)
    part1, part2 = b"Subject: chunked\r\n\r\n.no stuffing\r\n", b"QUIT\r\nend\r\n"
    c.send(b"BDAT %d\r\n" % len(part1) + part1)
    assert c.expect(250).startswith("2.0.0")
    c.expect(503, "DATA")                         # no mixing
    c.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
    c.expect(250)
    [msg] = env.inbox("alice@example.test")
    assert msg.endswith(b"Subject: chunked\n\n.no stuffing\nQUIT\nend\n")


def test_bdat_out_of_sequence_and_oversize_consume_the_chunk(env):
    c = hello(env, env.server(limits=Limits(timeout=10.0, message_size=1024)))
    c.send(b"BDAT 6 LAST\r\nRSET\r\n")             # chunk bytes must not run as a command
    c.expect(503)
    c.expect(250, "NOOP")
    start_mail(c, data=False)
    c.send(b"BDAT 2000 LAST\r\n" + b"x" * 2000)
    assert c.expect(552).startswith("5.3.4")
    c.expect(250, "NOOP")
    c.expect(501, "BDAT x")
    assert env.inbox("alice@example.test") == []


def test_ehlo_follows_a_reload_and_the_session(env, tls):
    """The extension lines are built once per combination of settings
    (replies.ehlo_extensions): a reload that changes the size limit or adds a
    certificate shows at the next EHLO, and what one client is offered (AUTH on
    loopback) never leaks into another's reply."""
    server_ctx, _ = tls
    server = env.server(limits=Limits(timeout=10.0, message_size=2000))
    local = env.connect(server)
    lines = local.expect(250, "EHLO client.test").splitlines()
    assert lines[0] == "mx.example.test greets client.test"
    assert "SIZE 2000" in lines and "AUTH SCRAM-SHA-256 PLAIN LOGIN" in lines and "STARTTLS" not in lines
    remote = env.connect(server, peer="192.0.2.5")
    lines = remote.expect(250, "EHLO other.test").splitlines()
    assert lines[0] == "mx.example.test greets other.test"
    assert "SIZE 2000" in lines and not any(line.startswith("AUTH") for line in lines)
    # what a reload does: new limits and a certificate on the running server
    server.limits = Limits(timeout=10.0, message_size=3000)
    server.ssl_context = server_ctx
    lines = local.expect(250, "EHLO client.test").splitlines()
    assert "SIZE 3000" in lines and "STARTTLS" in lines and "AUTH SCRAM-SHA-256 PLAIN LOGIN" in lines
    assert "SIZE 2000" not in lines
    lines = remote.expect(250, "EHLO other.test").splitlines()
    assert "SIZE 3000" in lines and "STARTTLS" in lines
    assert not any(line.startswith("AUTH") for line in lines)
    assert lines[-1] == "HELP"


# -- STARTTLS ---------------------------------------------------------------------------
def test_starttls_discards_pipelined_commands_and_resets(env, tls):
    server_ctx, client_ctx = tls
    c = env.connect(env.server(ssl_context=server_ctx), peer="192.0.2.5")
    text = c.expect(250, "EHLO client.test")
    assert "STARTTLS" in text and "AUTH" not in text    # no credentials in the clear
    c.expect(538, "AUTH PLAIN " + plain("alice@example.test", "alice-pw"))
    c.expect(250, "MAIL FROM:<a@b.test>")
    c.expect(503, "STARTTLS")
    c.expect(250, "RSET")
    # injection: commands pipelined after STARTTLS must be discarded, not answered
    c.send("STARTTLS\r\nMAIL FROM:<evil@b.test>\r\nRCPT TO:<alice@example.test>\r\n")
    assert c.expect(220).startswith("2.0.0")
    start_tls(c, client_ctx)
    assert "HELO/EHLO" in c.expect(503, "MAIL FROM:<a@b.test>")   # state forgotten
    text = c.expect(250, "EHLO client.test")
    assert "STARTTLS" not in text and "AUTH SCRAM-SHA-256 PLAIN LOGIN" in text
    c.expect(503, "STARTTLS")
    c.expect(235, "AUTH PLAIN " + plain("alice@example.test", "alice-pw"))
    send_mail(c, rcpts=["bob@example.test"], sender="alice@example.test")
    [msg] = env.inbox("bob@example.test")
    assert b"with ESMTPSA id" in msg and b"TLSv1." in msg


def test_starttls_not_available_without_certificate(env):
    c = hello(env)
    c.expect(502, "STARTTLS")
    c.expect(501, "STARTTLS now")


# -- AUTH ----------------------------------------------------------------------------------
def test_auth_mechanisms(env):
    for steps in (
        [(235, "AUTH PLAIN " + plain("alice@example.test", "alice-pw"))],
        [(334, "AUTH PLAIN"), (235, plain("alice", "alice-pw"))],          # bare name
        [(334, "AUTH LOGIN"), (334, b64("alice@example.test")), (235, b64("alice-pw"))],
        [(334, "AUTH LOGIN " + b64("ALICE@example.test")), (235, b64("alice-pw"))],
    ):
        c = hello(env)
        for code, line in steps:
            c.expect(code, line)
        c.expect(503, "AUTH PLAIN " + plain("alice@example.test", "alice-pw"))


def test_auth_failures_look_alike_and_errors(env):
    c = hello(env)
    wrong = c.expect(535, "AUTH PLAIN " + plain("alice@example.test", "nope"))
    unknown = c.expect(535, "AUTH PLAIN " + plain("carol@example.test", "nope"))
    assert wrong == unknown == "5.7.8 Authentication credentials invalid"
    c.expect(535, "AUTH PLAIN " + plain("alice@example.test", "alice-pw", authzid="bob@example.test"))
    c.expect(504, "AUTH CRAM-MD5")
    c.expect(501, "AUTH PLAIN !!!")
    c.expect(501, "AUTH PLAIN " + b64("no-nuls"))
    c.expect(334, "AUTH LOGIN")
    assert c.expect(501, "*") == "5.0.0 Authentication cancelled"
    c.expect(334, "AUTH PLAIN")
    c.expect(500, "x" * 13000)                         # over the RFC 4954 line limit
    c.expect(250, "NOOP")


def test_auth_throttled_after_failures(env):
    throttle = AuthThrottle(limit=3, window=60)
    server = env.server(throttle=throttle)
    c = hello(env, server)
    for _ in range(3):
        c.expect(535, "AUTH PLAIN " + plain("alice@example.test", "guess"))
    text = c.expect(421, "AUTH PLAIN " + plain("alice@example.test", "alice-pw"))
    assert text.startswith("4.7.0") and "failed authentications" in text
    assert c.closed()
    d = hello(env, server)                             # same address, new connection
    d.expect(421, "AUTH PLAIN " + plain("alice@example.test", "alice-pw"))
    e = hello(env, server, peer="127.0.0.2")           # other addresses are unaffected
    e.expect(235, "AUTH PLAIN " + plain("alice@example.test", "alice-pw"))


def test_auth_requires_tls_unless_loopback_or_allowed(env):
    c = env.connect(peer="192.0.2.5")
    assert "AUTH" not in c.expect(250, "EHLO client.test")
    assert c.expect(538, "AUTH PLAIN " + plain("alice@example.test", "alice-pw")).startswith("5.7.11")
    c = env.connect(env.server(policy=SessionPolicy(allow_plaintext_auth=True)), peer="192.0.2.5")
    assert "AUTH SCRAM-SHA-256 PLAIN LOGIN" in c.expect(250, "EHLO client.test")
    c.expect(235, "AUTH PLAIN " + plain("alice@example.test", "alice-pw"))


def test_auth_secrets_never_logged(env, caplog):
    caplog.set_level(logging.DEBUG, logger="clevermail")
    c = hello(env)
    c.expect(235, "AUTH PLAIN " + plain("alice@example.test", "alice-pw"))
    d = hello(env)
    d.expect(334, "AUTH LOGIN")
    d.expect(334, b64("bob@example.test"))
    d.expect(235, b64("bob-pw"))
    c.expect(221, "QUIT")
    d.expect(221, "QUIT")
    c.close()
    d.close()
    text = caplog.text
    for secret in (plain("alice@example.test", "alice-pw"), b64("bob-pw"), b64("bob@example.test"),
                   "alice-pw", "bob-pw"):
        assert secret not in text
    assert "auth ok user=alice@example.test" in text


# -- limits ------------------------------------------------------------------------------
def test_too_many_errors_disconnects(env):
    c = env.connect(env.server(limits=Limits(timeout=10.0, errors_per_session=3)))
    c.expect(500, "BAD1")
    c.expect(500, "BAD2")
    c.send("BAD3\r\n")
    c.expect(500)
    assert c.expect(421).startswith("4.7.0")
    assert c.closed()


def test_busy_and_idle_timeout(env):
    c = env.connect(env.server(admit=False), greet=False)
    assert c.expect(421).startswith("4.7.0")
    assert c.closed()
    c = env.connect(env.server(limits=Limits(timeout=0.2)))
    assert c.expect(421).startswith("4.4.2")
    assert c.closed()


# -- one login path (login.py): failures handled as in POP3 and IMAP ------------------------------
def test_auth_foreign_authzid_fails_like_wrong_password_cancel_and_long_line_do_not_count(
        env, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="clevermail")
    delays = fakes.failure_delays(monkeypatch)
    throttle = AuthThrottle(limit=3, window=60)
    c = hello(env, env.server(throttle=throttle, auth_failure_delay=0.5))
    wrong = c.expect(535, "AUTH PLAIN " + plain("alice@example.test", "wrong"))
    foreign = c.expect(535, "AUTH PLAIN " + plain("alice@example.test", "alice-pw", authzid="bob@example.test"))
    assert wrong == foreign == "5.7.8 Authentication credentials invalid"
    assert delays == [0.5, 0.5]
    assert fakes.auth_failure_lines(caplog) == ["auth failed user='alice@example.test' (PLAIN)"] * 2
    c.expect(334, "AUTH LOGIN")
    assert c.expect(501, "*") == "5.0.0 Authentication cancelled"
    c.expect(334, "AUTH PLAIN")
    assert c.expect(500, "x" * 13000) == "5.5.6 Authentication exchange line is too long"
    assert delays == [0.5, 0.5] and not throttle.blocked("127.0.0.1")    # neither counted
    c.expect(334, "AUTH LOGIN")
    c.expect(334, b64("alice@example.test"))
    c.expect(535, b64("wrong"))                     # the third counted failure
    assert throttle.blocked("127.0.0.1") and delays == [0.5] * 3
    assert fakes.auth_failure_lines(caplog)[-1] == "auth failed user='alice@example.test' (LOGIN)"
    c.expect(421, "AUTH PLAIN " + plain("alice@example.test", "alice-pw"))


def test_ipv4_mapped_peer_is_ipv4(env, caplog):
    caplog.set_level(logging.INFO, logger="clevermail")
    c = hello(env, peer="::ffff:127.0.0.1")          # loopback: AUTH offered in plaintext
    c.expect(235, "AUTH PLAIN " + plain("alice@example.test", "alice-pw"))
    assert "[smtp " in caplog.text and " 127.0.0.1] auth ok user=alice@example.test (PLAIN)" in caplog.text
    c = env.connect(peer="::ffff:192.0.2.5")
    assert "AUTH" not in c.expect(250, "EHLO client.test")
    # trusted networks and the Received header see the IPv4 address
    c = env.connect(env.server(policy=SessionPolicy(trusted_networks=(ipaddress.ip_network("192.0.2.0/24"),))),
                    peer="::ffff:192.0.2.5")
    c.expect(250, "EHLO client.test")
    c.expect(250, "MAIL FROM:<a@b.test>")
    c.expect(250, "RCPT TO:<someone@elsewhere.test>")      # relaying: trusted
    c.expect(354, "DATA")
    c.expect(250, MSG + ".")
    [entry] = env.queued()
    assert b"(192.0.2.5 [192.0.2.5])" in env.queue.read_body(entry.id)


# -- the command table ------------------------------------------------------------------
@pytest.mark.parametrize("verb", sorted(SMTPSession.COMMANDS))
def test_every_command_has_its_states_and_the_three_line_docstring(verb):
    method, allowed = SMTPSession.COMMANDS[verb]
    assert type(allowed) is frozenset and allowed and allowed <= states.ANY
    assert method.__name__ == f"cmd_{verb}"
    purpose, state_line, rfc_line = method.__doc__.strip().splitlines()
    assert purpose.startswith(verb) and state_line.strip().startswith("States: ")
    assert rfc_line.strip().startswith("RFC ")


# -- sender identity and sending limits (sender_identity.py, send_quota.py) -----------------
def authed(env, user="alice@example.test", password="alice-pw", server=None):
    c = hello(env, server)
    c.expect(235, "AUTH PLAIN " + plain(user, password))
    return c


def test_authenticated_user_sends_only_as_themselves(env):
    c = authed(env)
    assert c.expect(553, "MAIL FROM:<bob@example.test>") == \
        "5.7.1 Sender address not owned by user alice@example.test"
    c.expect(553, "MAIL FROM:<alice@far.test>")
    c.expect(250, "MAIL FROM:<Alice+Lists@Example.Test>")           # +detail, any case
    c.expect(250, "RSET")
    c.expect(250, "MAIL FROM:<>")                                  # bounces stay allowed
    c.expect(250, "RSET")
    start_mail(c, ["bob@example.test"], sender="alice@example.test")
    c.send("From: Bob <bob@example.test>\r\nSubject: forged\r\n\r\nhi\r\n.\r\n")
    assert c.expect(550) == "5.7.1 From: header address not owned by user alice@example.test"
    assert env.inbox("bob@example.test") == []                      # nothing stored
    start_mail(c, ["bob@example.test"], sender="alice@example.test")
    c.send("From: Alice <alice@example.test>\r\nSubject: fine\r\n\r\nhi\r\n.\r\n")
    c.expect(250)
    assert len(env.inbox("bob@example.test")) == 1


def test_header_rule_holds_for_bdat_too(env):
    c = authed(env)
    start_mail(c, ["bob@example.test"], sender="alice@example.test", data=False)
    body = b"From: bob@example.test\r\n\r\nhi\r\n"
    c.send(f"BDAT {len(body)} LAST\r\n".encode() + body)
    c.expect(550)
    assert env.inbox("bob@example.test") == []


def test_unauthenticated_local_sender_refused_on_mx_unless_trusted(env):
    c = hello(env)
    assert c.expect(550, "MAIL FROM:<alice@example.test>") == \
        "5.7.1 Sender address in a local domain: authenticate to send as it"
    c.expect(250, "MAIL FROM:<someone@far.test>")
    # the From header of unauthenticated mail is the receiving checks' business
    c.expect(250, "RCPT TO:<alice@example.test>")
    c.expect(354, "DATA")
    c.send("From: bob@example.test\r\n\r\nhi\r\n.\r\n")
    c.expect(250)
    trusted = env.server(policy=SessionPolicy(trusted_networks=(ipaddress.ip_network("192.0.2.0/24"),)))
    t = hello(env, trusted, peer="192.0.2.7")
    t.expect(250, "MAIL FROM:<bob@example.test>")


def test_sending_limits_answer_450_and_count_only_accepted_mail(env, caplog):
    from clevermail.smtp.send_quota import SendQuota

    env.handler.quota = SendQuota(None, messages_per_hour=2, recipients_per_hour=3)
    c = authed(env)
    start_mail(c, ["bob@example.test", "alice@example.test"], sender="alice@example.test", data=False)
    c.expect(250, "RSET")                                       # never sent: not counted
    send_mail(c, ["bob@example.test", "alice@example.test"], sender="alice@example.test")
    c.expect(250, "MAIL FROM:<alice@example.test>")
    c.expect(250, "RCPT TO:<bob@example.test>")
    with caplog.at_level(logging.WARNING, logger="clevermail.smtp"):
        assert c.expect(450, "RCPT TO:<alice@example.test>") == \
            "4.7.1 Sending limit reached (3 recipients per hour), try again later"
    assert "sending limit of alice@example.test reached" in caplog.text
    c.expect(354, "DATA")
    c.send(MSG.replace("Subject", "From: alice@example.test\r\nSubject") + ".\r\n")
    c.expect(250)
    assert c.expect(450, "MAIL FROM:<alice@example.test>") == \
        "4.7.1 Sending limit reached (2 messages per hour), try again later"
    # another user has their own counts; unauthenticated mail has none
    authed(env, "bob@example.test", "bob-pw").expect(250, "MAIL FROM:<bob@example.test>")
    c2 = hello(env)
    c2.expect(250, "MAIL FROM:<x@far.test>")
