"""SMTPSession over socket.socketpair(): the greeting and the basic commands (EHLO,
unknown syntax, long lines, bad sequences, DATA after only refused recipients), too
many errors, busy and the idle timeout, and the command table.  Delivery is in test_smtp_delivery.py, DATA and BDAT in
test_smtp_data.py, STARTTLS, AUTH and the authenticated sender in test_smtp_auth.py."""

import pytest

from clevermail.netbase import Limits
from clevermail.smtp import states
from clevermail.smtp.session import SMTPSession

from smtp_helpers import plain
from smtp_session_helpers import env, hello, users_file  # noqa: F401 (fixtures)


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


# -- the command table ------------------------------------------------------------------
@pytest.mark.parametrize("verb", sorted(SMTPSession.COMMANDS))
def test_every_command_has_its_states_and_the_three_line_docstring(verb):
    method, allowed = SMTPSession.COMMANDS[verb]
    assert type(allowed) is frozenset and allowed and allowed <= states.ANY
    assert method.__name__ == f"cmd_{verb}"
    purpose, state_line, rfc_line = method.__doc__.strip().splitlines()
    assert purpose.startswith(verb) and state_line.strip().startswith("States: ")
    assert rfc_line.strip().startswith("RFC ")
