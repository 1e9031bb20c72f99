"""Tests for logging in to clevermail.pop3.session over socket.socketpair(): USER/PASS (a
bare name takes the first domain; unknown users and wrong passwords answered alike), the
throttle, AUTH PLAIN, secrets never logged, STLS, and the one login path (login.py):
failures delayed, counted and logged as in SMTP and IMAP."""

import logging

import pytest

from clevermail.login import AuthThrottle

import fakes
from fakes import tls_contexts
from pop3_helpers import ALICE, BOB, PASSWORD
from pop3_session_helpers import (  # noqa: F401 (fixtures)
    CAPA_BASE, CAPA_TAIL, b64, deliver, handler, inbox, open_session, store)


# -- authentication ------------------------------------------------------------------
def test_user_pass_login(open_session, store):
    deliver(store, 2)
    c = open_session()
    c.expect(f"USER {ALICE}", "+OK send your password")
    size = sum(e.wsize for e in inbox(store).by_uid.values())
    c.expect(f"PASS {PASSWORD}", f"+OK {ALICE} has 2 messages ({size} octets)")


def test_bare_user_name_gets_first_domain(open_session):
    c = open_session()
    c.expect("USER Alice", "+OK send your password")
    c.expect(f"PASS {PASSWORD}", f"+OK {ALICE} has 0 messages (0 octets)")


def test_unknown_user_and_wrong_password_answer_identically(open_session):
    c = open_session()
    c.expect("USER nobody@example.test", "+OK send your password")
    c.expect(f"PASS {PASSWORD}", "-ERR [AUTH] authentication failed")
    c.expect(f"USER {ALICE}", "+OK send your password")
    c.expect("PASS wrong", "-ERR [AUTH] authentication failed")
    c.expect("USER bad name!", "-ERR USER takes exactly one name")
    c.expect("PASS x", "-ERR send USER first")
    c.login()


def test_throttle_blocks_after_failures(open_session):
    throttle = AuthThrottle(limit=2, window=300)
    c = open_session(throttle=throttle)
    for _ in range(2):
        c.expect(f"USER {ALICE}", "+OK*")
        c.expect("PASS wrong", "-ERR [AUTH] authentication failed")
    c.expect(f"USER {ALICE}", "+OK*")
    c.expect(f"PASS {PASSWORD}", "-ERR [SYS/TEMP] too many failed logins, try again later")
    c.expect("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORD}"), "-ERR [SYS/TEMP] too many failed logins, try again later")
    assert throttle.blocked("127.0.0.1")


def test_auth_plain_initial_response(open_session):
    c = open_session()
    c.expect("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORD}"), f"+OK {ALICE} has 0 messages (0 octets)")


def test_auth_plain_continuation_and_authzid(open_session):
    c = open_session()
    c.expect("AUTH PLAIN", "+ ")
    c.expect(b64(f"{ALICE}\0{ALICE}\0{PASSWORD}"), f"+OK {ALICE} has 0 messages (0 octets)")


def test_auth_plain_failures(open_session):
    c = open_session()
    assert c.cmd("AUTH") == b"+OK SASL mechanisms follow" and c.block() == [b"PLAIN"]
    c.expect("AUTH CRAM-MD5", "-ERR unsupported SASL mechanism CRAM-MD5")
    c.expect("AUTH PLAIN", "+ ")
    c.expect("*", "-ERR authentication cancelled")
    c.expect("AUTH PLAIN =", "-ERR malformed SASL PLAIN response")
    c.expect("AUTH PLAIN !!!", "-ERR malformed SASL PLAIN response")
    c.expect("AUTH PLAIN " + b64(f"\0{ALICE}\0wrong"), "-ERR [AUTH] authentication failed")
    c.expect("AUTH PLAIN " + b64(f"\0nobody\0{PASSWORD}"), "-ERR [AUTH] authentication failed")
    # proxy login (authzid other than the user) is refused like a wrong password
    c.expect("AUTH PLAIN " + b64(f"{BOB}\0{ALICE}\0{PASSWORD}"), "-ERR [AUTH] authentication failed")
    c.expect("AUTH PLAIN", "+ ")
    c.expect("x" * 5000, "-ERR SASL response too long")
    c.expect("NOOP", "-ERR NOOP is not valid in the AUTHORIZATION state")


def test_secrets_never_logged(open_session, caplog):
    caplog.set_level(logging.DEBUG, logger="clevermail")
    c = open_session()
    c.expect(f"USER {ALICE}", "+OK*")
    c.expect("PASS wrong-secret-1", "-ERR [AUTH]*")
    secret = b64(f"\0{ALICE}\0wrong-secret-2")
    c.expect("AUTH PLAIN " + secret, "-ERR [AUTH]*")
    c.expect("AUTH PLAIN", "+ ")
    c.expect(b64(f"\0{ALICE}\0wrong-secret-3"), "-ERR [AUTH]*")
    c.expect("QUIT", "+OK*")
    c.wait_closed()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "C: PASS ***" in text and "C: AUTH PLAIN ***" in text and "C: ***" in text
    for needle in ("wrong-secret", secret, b64(f"\0{ALICE}\0wrong-secret-3")):
        assert needle not in text


# -- STLS ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tls_pair():
    return tls_contexts("mail.example.test")


def test_stls(open_session, tls_pair, store):
    deliver(store, 1)
    server_ctx, client_ctx = tls_pair
    c = open_session(peer="192.0.2.7", ssl_context=server_ctx)
    c.cmd("CAPA")
    assert [x.decode() for x in c.block()] == CAPA_BASE + ["STLS"] + CAPA_TAIL
    # a command pipelined after STLS must be discarded, never run (RFC 2595 / 3207)
    c.send("STLS\r\nUSER injected\r\n")
    assert c.line() == b"+OK begin TLS negotiation"
    c.starttls(client_ctx, "mail.example.test")
    c.cmd("CAPA")
    assert [x.decode() for x in c.block()] == CAPA_BASE + ["USER", "SASL PLAIN"] + CAPA_TAIL
    c.expect("PASS x", "-ERR send USER first")
    c.expect("STLS", "-ERR TLS is already active")
    c.login()
    c.expect("STAT", "+OK 1 *")


def test_stls_without_certificate(open_session):
    c = open_session()
    c.expect("STLS", "-ERR STLS not available: no TLS certificate configured")


# -- one login path (login.py): failures handled as in SMTP and IMAP ---------------------------
def test_foreign_authzid_fails_like_wrong_password_cancel_and_long_line_do_not_count(
        open_session, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="clevermail")
    delays = fakes.failure_delays(monkeypatch)
    throttle = AuthThrottle(limit=3, window=60)
    c = open_session(throttle=throttle, auth_failure_delay=0.5)
    c.expect("AUTH PLAIN " + b64(f"\0{ALICE}\0wrong"), "-ERR [AUTH] authentication failed")
    c.expect("AUTH PLAIN " + b64(f"{BOB}\0{ALICE}\0{PASSWORD}"), "-ERR [AUTH] authentication failed")
    assert delays == [0.5, 0.5]                      # the foreign authzid waits too
    assert fakes.auth_failure_lines(caplog) == [f"auth failed user='{ALICE}' (PLAIN)"] * 2
    c.expect("AUTH PLAIN", "+ ")
    c.expect("*", "-ERR authentication cancelled")
    c.expect("AUTH PLAIN", "+ ")
    c.expect("x" * 5000, "-ERR SASL response too long")
    assert delays == [0.5, 0.5] and not throttle.blocked("127.0.0.1")    # neither counted
    c.expect(f"USER {ALICE}", "+OK send your password")
    c.expect("PASS wrong", "-ERR [AUTH] authentication failed")         # the third failure
    assert throttle.blocked("127.0.0.1") and delays == [0.5] * 3
    assert fakes.auth_failure_lines(caplog)[-1] == f"auth failed user='{ALICE}' (USER/PASS)"
    c.expect("AUTH PLAIN", "-ERR [SYS/TEMP] too many failed logins, try again later")


def test_ipv4_mapped_peer_is_ipv4(open_session, caplog):
    caplog.set_level(logging.INFO, logger="clevermail")
    c = open_session(peer="::ffff:127.0.0.1")        # loopback: USER/PASS allowed
    assert c.cmd("CAPA") == b"+OK capability list follows"
    assert b"USER" in c.block()
    c.login()
    assert f" 127.0.0.1] auth ok user={ALICE} (USER/PASS)" in caplog.text
    c = open_session(peer="::ffff:192.0.2.7")
    c.expect(f"USER {ALICE}", "-ERR [AUTH] plaintext authentication needs TLS (use STLS)")
