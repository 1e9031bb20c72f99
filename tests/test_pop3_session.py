"""Tests for clevermail.pop3.session over socket.socketpair(): the greeting, CAPA and the
state table, limits and failures (too many errors, a line too long, busy, internal and
commit errors, a maildrop that cannot be opened), and the command table.  Logging in is in test_pop3_login.py, the TRANSACTION state's
commands in test_pop3_transaction.py."""

import pytest

from clevermail.netbase import SessionPolicy
from clevermail.pop3 import states
from clevermail.pop3.session import POP3Session

from pop3_helpers import ALICE, PASSWORD
from pop3_session_helpers import (  # noqa: F401 (fixtures)
    CAPA_BASE, CAPA_TAIL, b64, deliver, handler, inbox, open_session, store)


# -- greeting, CAPA, state table ---------------------------------------------------
def test_capa_authorization_loopback(open_session):
    c = open_session()
    assert c.cmd("CAPA") == b"+OK capability list follows"
    assert [x.decode() for x in c.block()] == CAPA_BASE + ["USER", "SASL PLAIN"] + CAPA_TAIL


def test_capa_hides_plaintext_mechanisms_off_loopback(open_session):
    c = open_session(peer="192.0.2.7")
    assert c.cmd("CAPA") == b"+OK capability list follows"
    assert [x.decode() for x in c.block()] == CAPA_BASE + CAPA_TAIL
    c.expect("USER alice", "-ERR [AUTH] plaintext authentication needs TLS (use STLS)")
    c.expect("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORD}"), "-ERR [AUTH] plaintext authentication needs TLS (use STLS)")
    assert c.cmd("AUTH") == b"+OK SASL mechanisms follow" and c.block() == []


def test_capa_allowed_by_config(open_session):
    c = open_session(peer="192.0.2.7", policy=SessionPolicy(allow_plaintext_auth=True))
    c.cmd("CAPA")
    assert [x.decode() for x in c.block()] == CAPA_BASE + ["USER", "SASL PLAIN"] + CAPA_TAIL
    c.login()


def test_capa_in_transaction(open_session, store):
    deliver(store, 1)
    c = open_session()
    c.login()
    c.cmd("CAPA")
    assert [x.decode() for x in c.block()] == CAPA_BASE + CAPA_TAIL


@pytest.mark.parametrize("command", ["STAT", "LIST", "UIDL", "RETR 1", "TOP 1 0", "DELE 1", "RSET", "NOOP"])
def test_transaction_commands_refused_before_login(open_session, command):
    c = open_session()
    verb = command.split()[0]
    c.expect(command, f"-ERR {verb} is not valid in the AUTHORIZATION state")


@pytest.mark.parametrize("command", ["USER alice", "PASS x", "AUTH PLAIN", "STLS"])
def test_authorization_commands_refused_after_login(open_session, store, command):
    c = open_session()
    c.login()
    verb = command.split()[0]
    c.expect(command, f"-ERR {verb} is not valid in the TRANSACTION state")


def test_quit_in_authorization(open_session):
    c = open_session()
    c.expect("QUIT", "+OK CleverMail POP3 server signing off")
    assert c.line() == b""


def test_unknown_and_malformed_commands(open_session):
    c = open_session()
    c.expect("XYZZY", "-ERR unknown command XYZZY")
    c.login()
    c.expect("LIST a", "-ERR invalid message number: 'a'")
    c.expect("NOOP", "+OK")


# -- limits and failures --------------------------------------------------------------
def test_too_many_errors_disconnect_without_deleting(open_session, store):
    deliver(store, 1)
    c = open_session(errors_per_session=3)
    c.login()
    c.expect("DELE 1", "+OK*")
    c.expect("RETR 9", "-ERR no such message 9, only 1 in maildrop")   # does not count
    c.expect("BOGUS", "-ERR unknown command BOGUS")
    c.expect("STAT 1", "-ERR STAT takes no argument")
    c.expect("USER x", "-ERR USER is not valid in the TRANSACTION state")
    assert c.line() == b"-ERR too many errors, closing connection"
    assert c.line() == b""
    c.wait_closed()
    assert len(inbox(store)) == 1


def test_line_too_long(open_session):
    c = open_session()
    c.expect("NOOP " + "x" * 600, "-ERR command line too long")
    c.expect("QUIT", "+OK*")


def test_busy(open_session):
    c = open_session(greet=False, admit=False)
    assert c.line() == b"-ERR [SYS/TEMP] too many connections, try again later"
    assert c.line() == b""


def test_internal_error_keeps_session(open_session, store, handler, monkeypatch):
    deliver(store, 1)
    c = open_session()
    c.login()

    def broken(drop, index):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(handler, "open_message", broken)
    c.expect("RETR 1", "-ERR [SYS/TEMP] internal server error, try again later")
    c.expect("STAT", "+OK 1 *")


def test_commit_failure_reported(open_session, store, handler, monkeypatch):
    deliver(store, 1)
    c = open_session()
    c.login()
    c.expect("DELE 1", "+OK*")

    def broken(drop):
        raise OSError("read-only file system")
    monkeypatch.setattr(handler, "commit", broken)
    c.expect("QUIT", "-ERR [SYS/TEMP] some deleted messages not removed")
    assert c.line() == b""
    c.wait_closed()
    assert ALICE not in handler._held


def test_bug_in_commit_gets_the_internal_error_and_ends_the_session(open_session, store, handler,
                                                                   monkeypatch):
    # not an expected storage failure: the one unexpected-error reply, and since the
    # maildrop is released, QUIT still ends the session and nothing is deleted
    deliver(store, 1)
    c = open_session()
    c.login()
    c.expect("DELE 1", "+OK*")

    def broken(drop):
        raise RuntimeError("bug")
    monkeypatch.setattr(handler, "commit", broken)
    c.expect("QUIT", "-ERR [SYS/TEMP] internal server error, try again later")
    assert c.line() == b""
    c.wait_closed()
    assert ALICE not in handler._held
    assert len(inbox(store)) == 1


def test_maildrop_that_cannot_be_opened_keeps_authorization(open_session, store, handler, monkeypatch):
    from clevermail.store import StoreError

    def broken(address):
        raise StoreError("damaged uidlist")
    monkeypatch.setattr(handler, "open_maildrop", broken)
    c = open_session()
    c.expect(f"USER {ALICE}", "+OK send your password")
    c.expect(f"PASS {PASSWORD}", "-ERR [SYS/TEMP] cannot open maildrop, try again later")
    c.expect("STAT", "-ERR STAT is not valid in the AUTHORIZATION state")
    monkeypatch.undo()
    c.login()


# -- the command table ------------------------------------------------------------------
@pytest.mark.parametrize("verb", sorted(POP3Session.COMMANDS))
def test_every_command_has_its_states_and_the_three_line_docstring(verb):
    method, allowed, _ = POP3Session.COMMANDS[verb]
    assert type(allowed) is frozenset and allowed and allowed <= states.ANY
    assert method.__name__ == f"cmd_{verb}"
    purpose, state_line, rfc_line = method.__doc__.strip().splitlines()
    assert purpose and state_line.strip().startswith("States: ")
    assert rfc_line.strip().startswith("RFC ")
