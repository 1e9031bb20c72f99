"""SMTPSession over socket.socketpair(): the message data and its limits -- DATA's
smuggling defences, bare-LF messages, an empty body, long lines, SIZE at MAIL and in
DATA, too many recipients, SMTPUTF8 and U-label addresses, pipelining, BDAT chunks
(RFC 3030), and EHLO after a reload."""

import pytest

from clevermail.netbase import Limits

from smtp_helpers import plain
from smtp_session_helpers import (  # noqa: F401 (fixtures)
    MSG, env, hello, send_mail, start_mail, tls, users_file)


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
