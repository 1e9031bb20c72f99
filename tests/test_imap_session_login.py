"""Tests for logging in to clevermail.imap.session: LOGIN and AUTHENTICATE (PLAIN, SASL-IR,
cancel, bad input), STARTTLS, and the one login path (login.py): failures delayed,
counted and logged as in SMTP and POP3.  Over socket.socketpair() with raw command lines
and exact tagged replies."""

import base64
import logging
import types

import pytest

from clevermail import login as login_module
from clevermail.login import AuthThrottle
from clevermail.netbase import SessionPolicy

import fakes
from fakes import tls_contexts
from imap_helpers import (  # noqa: F401 (fixtures)
    ALICE, BOB, DOMAIN, HOSTNAME, PASSWORD, FakeServer, check, client, handler, open_session, store)
from imap_session_helpers import AUTH_CAPS, BASE_CAPS


def b64(text):
    return base64.b64encode(text.encode()).decode()


def authenticate_plain_continued(client, response):
    """AUTHENTICATE PLAIN (tag a1) with `response` sent after the empty continuation;
    returns the tagged reply."""
    client.send("a1 AUTHENTICATE PLAIN\r\n")
    assert client.line() == "+ "
    client.send(response + "\r\n")
    return client.read_reply("a1")


# -- LOGIN / AUTHENTICATE ------------------------------------------------------------------
def test_login_wrong_password_and_unknown_user_identical(open_session, handler, monkeypatch):
    slept = []
    monkeypatch.setattr(login_module, "time", types.SimpleNamespace(sleep=slept.append))
    c = open_session(auth_failure_delay=0.01)
    r1 = c.expect(f'LOGIN "{ALICE}" "wrong"', "NO", "AUTHENTICATIONFAILED")
    r2 = c.expect(f'LOGIN "nobody@{DOMAIN}" "wrong"', "NO", "AUTHENTICATIONFAILED")
    r3 = c.expect('LOGIN "bad name/x" "wrong"', "NO", "AUTHENTICATIONFAILED")
    texts = {r.tagged.split(" ", 1)[1] for r in (r1, r2, r3)}
    assert texts == {"NO [AUTHENTICATIONFAILED] Authentication failed"}
    assert slept == [0.01, 0.01, 0.01]          # every failure is delayed alike
    c.login()
    assert slept == [0.01, 0.01, 0.01]          # success is not


def test_login_case_insensitive_address(open_session):
    c = open_session()
    c.expect(f'LOGIN "ALICE@Example.Test" "{PASSWORD}"', "OK")


def test_login_wrong_arguments(open_session):
    c = open_session()
    c.expect(f'LOGIN "{ALICE}"', "BAD")
    c.expect("LOGIN", "BAD")


def test_failed_logins_are_throttled_per_address(open_session, handler):
    throttle = AuthThrottle(limit=2, window=300)
    server = FakeServer(handler, throttle=throttle)
    c = open_session(server=server, peer="127.0.0.5")
    c.expect(f'LOGIN "{ALICE}" "wrong"', "NO", "AUTHENTICATIONFAILED")
    c.expect(f'LOGIN "{ALICE}" "wrong"', "NO", "AUTHENTICATIONFAILED")
    c.expect(f'LOGIN "{ALICE}" "{PASSWORD}"', "NO", "UNAVAILABLE", "Too many failed logins, try later")
    c.expect(f"AUTHENTICATE PLAIN {b64(chr(0) + ALICE + chr(0) + PASSWORD)}", "NO", "UNAVAILABLE")
    other = open_session(server=server, peer="127.0.0.6")
    other.login()


def test_logindisabled_without_tls_on_non_loopback(open_session):
    c = open_session(peer="192.0.2.7")
    assert c.greeting == (f"* OK [CAPABILITY {BASE_CAPS} LOGINDISABLED] {HOSTNAME} "
                          "CleverMail IMAP4rev1 ready")
    c.expect(f'LOGIN "{ALICE}" "{PASSWORD}"', "NO", "PRIVACYREQUIRED")
    c.expect(f"AUTHENTICATE PLAIN {b64(chr(0) + ALICE + chr(0) + PASSWORD)}", "NO", "PRIVACYREQUIRED")
    c.expect("AUTHENTICATE PLAIN", "NO", "PRIVACYREQUIRED")   # no continuation offered
    c.expect("NOOP", "OK")


def test_plaintext_allowed_by_option(open_session):
    c = open_session(peer="192.0.2.7", policy=SessionPolicy(allow_plaintext_auth=True))
    assert "AUTH=PLAIN" in c.greeting and "LOGINDISABLED" not in c.greeting
    c.login()


@pytest.mark.parametrize("peer", ["127.0.0.1", "127.9.9.9", "::1"])
def test_loopback_may_always_log_in(open_session, peer):
    c = open_session(peer=peer)
    assert "AUTH=PLAIN]" in c.greeting
    c.login()


def test_authenticate_plain_initial_response(open_session):
    c = open_session()
    r = c.expect(f"AUTHENTICATE PLAIN {b64(chr(0) + ALICE + chr(0) + PASSWORD)}", "OK",
                 f"CAPABILITY {AUTH_CAPS}", "Logged in")
    assert r.untagged == []
    c.expect("SELECT INBOX", "OK")


def test_authenticate_plain_with_authzid_equal_to_user(open_session):
    c = open_session()
    c.expect(f"AUTHENTICATE PLAIN {b64(ALICE + chr(0) + ALICE + chr(0) + PASSWORD)}", "OK")


def test_authenticate_plain_foreign_authzid_refused(open_session):
    c = open_session()
    c.expect(f"AUTHENTICATE PLAIN {b64(BOB + chr(0) + ALICE + chr(0) + PASSWORD)}", "NO",
             "AUTHORIZATIONFAILED")


def test_authenticate_plain_with_continuation(open_session):
    c = open_session()
    r = authenticate_plain_continued(c, b64(chr(0) + ALICE + chr(0) + PASSWORD))
    check(r, "OK", f"CAPABILITY {AUTH_CAPS}", "Logged in")


def test_authenticate_plain_wrong_password(open_session):
    c = open_session()
    r = authenticate_plain_continued(c, b64(chr(0) + ALICE + chr(0) + "nope"))
    check(r, "NO", "AUTHENTICATIONFAILED", "Authentication failed")


def test_authenticate_cancelled_with_star(open_session):
    c = open_session()
    check(authenticate_plain_continued(c, "*"), "BAD", None, "Authentication cancelled")
    c.expect("NOOP", "OK")
    c.login()


def test_authenticate_bad_input(open_session):
    c = open_session()
    c.expect("AUTHENTICATE CRAM-MD5", "NO", "CANNOT")
    c.expect("AUTHENTICATE PLAIN !!!notbase64", "BAD")
    c.expect("AUTHENTICATE PLAIN =", "BAD")
    c.expect(f"AUTHENTICATE PLAIN {b64('no-nuls-here')}", "BAD")
    c.expect("AUTHENTICATE", "BAD")
    c.expect("NOOP", "OK")


# -- STARTTLS --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tls_pair():
    return tls_contexts(HOSTNAME)


def test_starttls_then_login_on_non_loopback(open_session, tls_pair):
    server_ctx, client_ctx = tls_pair
    c = open_session(peer="192.0.2.7", ssl_context=server_ctx)
    assert c.greeting == (f"* OK [CAPABILITY {BASE_CAPS} STARTTLS LOGINDISABLED] {HOSTNAME} "
                          "CleverMail IMAP4rev1 ready")
    c.expect("STARTTLS", "OK", "", "Begin TLS negotiation now")
    c.starttls(client_ctx)
    r = c.expect("CAPABILITY")
    assert r.untagged == [f"* CAPABILITY {BASE_CAPS} AUTH=PLAIN"]
    c.expect("STARTTLS", "BAD", None, "TLS already active")
    c.login()
    c.select()


def test_starttls_discards_pipelined_commands(open_session, tls_pair):
    server_ctx, client_ctx = tls_pair
    c = open_session(ssl_context=server_ctx)
    c.send("a1 STARTTLS\r\nx1 LOGIN alice wrong\r\n")
    assert c.line() == "a1 OK Begin TLS negotiation now"
    c.starttls(client_ctx)
    r = c.expect("NOOP")          # the injected x1 was never answered
    assert r.untagged == []


def test_starttls_without_certificate_is_bad(open_session):
    c = open_session()
    assert "STARTTLS" not in c.greeting
    c.expect("STARTTLS", "BAD", None, "TLS not available")


# -- one login path (login.py): failures handled as in SMTP and POP3 -------------------------------
def test_foreign_authzid_is_delayed_counted_and_logged_like_a_wrong_password(open_session, caplog,
                                                                            monkeypatch):
    caplog.set_level(logging.INFO, logger="clevermail")
    delays = fakes.failure_delays(monkeypatch)
    throttle = AuthThrottle(limit=3, window=60)
    c = open_session(throttle=throttle, auth_failure_delay=0.5)
    c.expect(f"AUTHENTICATE PLAIN {b64(chr(0) + ALICE + chr(0) + 'wrong')}", "NO",
             "AUTHENTICATIONFAILED", "Authentication failed")
    # refused whatever the password (so the distinct RFC 5530 code reveals nothing about
    # it), but only after the same verification, delay, count and log line
    c.expect(f"AUTHENTICATE PLAIN {b64(BOB + chr(0) + ALICE + chr(0) + PASSWORD)}", "NO",
             "AUTHORIZATIONFAILED", "Authorization identity must match the user")
    assert delays == [0.5, 0.5]
    assert fakes.auth_failure_lines(caplog) == [f"auth failed user='{ALICE}' (PLAIN)"] * 2
    check(authenticate_plain_continued(c, "*"), "BAD", None, "Authentication cancelled")
    check(authenticate_plain_continued(c, "x" * 70000), "BAD", None, "Authentication response too long")
    assert delays == [0.5, 0.5] and not throttle.blocked("127.0.0.1")    # neither counted
    c.expect(f'LOGIN "{ALICE}" "wrong"', "NO", "AUTHENTICATIONFAILED")   # the third failure
    assert throttle.blocked("127.0.0.1") and delays == [0.5] * 3
    assert fakes.auth_failure_lines(caplog)[-1] == f"auth failed user='{ALICE}' (LOGIN command)"
    c.expect("AUTHENTICATE PLAIN", "NO", "UNAVAILABLE", "Too many failed logins, try later")


def test_ipv4_mapped_peer_is_ipv4(open_session, caplog):
    caplog.set_level(logging.INFO, logger="clevermail")
    c = open_session(peer="::ffff:127.0.0.1")
    assert "AUTH=PLAIN]" in c.greeting
    c.login()
    assert f" 127.0.0.1] auth ok user={ALICE} (LOGIN command)" in caplog.text
    c = open_session(peer="::ffff:192.0.2.7")
    assert "LOGINDISABLED" in c.greeting
