"""SMTPSession over socket.socketpair(): STARTTLS (no injected commands after it), AUTH
and its throttle, the one login path (login.py: failures delayed, counted and logged
as in POP3 and IMAP), and what an authenticated sender may send (sender_identity.py,
send_quota.py)."""

import ipaddress
import logging

from clevermail.login import AuthThrottle
from clevermail.netbase import SessionPolicy

import fakes
from smtp_helpers import b64, plain
from smtp_session_helpers import (  # noqa: F401 (fixtures)
    MSG, env, hello, send_mail, start_mail, tls, users_file)


def start_tls(client, client_ctx):
    client.sock = client_ctx.wrap_socket(client.sock, server_hostname="mx.example.test")
    client.buf = b""


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
