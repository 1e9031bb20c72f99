"""Tests for clevermail.pop3.session (and the handler under it) over socket.socketpair()."""

import base64
import fcntl
import logging
import os

import pytest

from clevermail.login import AuthThrottle
from clevermail.netbase import SessionPolicy
from clevermail.pop3 import handler as pop3_handler
from clevermail.pop3 import states
from clevermail.pop3.session import POP3Session
import fakes
from fakes import session_fixtures, tls_contexts
from pop3_helpers import (ALICE, BOB, PASSWORD, FakeServer, make_handler, message,
                          start_session)
from fakes import RETURN_PATH

GREETING = "+OK CleverMail POP3 server ready (mail.example.test)"
CAPA_BASE = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
CAPA_TAIL = ["EXPIRE NEVER", "IMPLEMENTATION CleverMail"]


def read_greeting(client):
    assert client.line().decode() == GREETING


handler, store, open_session = session_fixtures(make_handler, FakeServer, start_session,
                                                read_greeting, lambda h: fakes.close_store(h.store))


def deliver(store, n, address=ALICE, body=None):
    for i in range(1, n + 1):
        store.deliver_local("", [address], message(i, body))


def inbox(store, address=ALICE):
    folder = store.open_folder(address, "INBOX")
    store.release_folder(folder)
    return folder


def b64(text):
    return base64.b64encode(text.encode()).decode()


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


# -- TRANSACTION ---------------------------------------------------------------------

def test_stat_list_uidl(open_session, store):
    deliver(store, 3)
    folder = inbox(store)
    entries = [folder.by_uid[u] for u in folder.uids]
    c = open_session()
    c.login()
    total = sum(e.wsize for e in entries)
    c.expect("STAT", f"+OK 3 {total}")
    assert c.cmd("LIST") == f"+OK 3 messages ({total} octets)".encode()
    assert c.block() == [f"{i} {e.wsize}".encode() for i, e in enumerate(entries, 1)]
    c.expect("LIST 2", f"+OK 2 {entries[1].wsize}")
    c.expect("LIST 4", "-ERR no such message 4, only 3 in maildrop")
    c.expect("LIST 0", "-ERR no such message 0, only 3 in maildrop")
    assert c.cmd("UIDL") == b"+OK unique-id listing follows"
    uidls = [f"{folder.uidvalidity}.{e.uid}" for e in entries]
    assert c.block() == [f"{i} {u}".encode() for i, u in enumerate(uidls, 1)]
    c.expect("UIDL 3", f"+OK 3 {uidls[2]}")
    c.expect("NOOP", "+OK")


def test_list_and_uidl_leave_out_marked_messages(open_session, store):
    deliver(store, 4)
    folder = inbox(store)
    entries = [folder.by_uid[u] for u in folder.uids]
    c = open_session()
    c.login()
    c.expect("DELE 1", "+OK*")
    c.expect("DELE 3", "+OK*")
    c.cmd("LIST")
    assert c.block() == [f"{i} {entries[i - 1].wsize}".encode() for i in (2, 4)]
    assert c.cmd("UIDL") == b"+OK unique-id listing follows"
    assert c.block() == [f"{i} {folder.uidvalidity}.{entries[i - 1].uid}".encode() for i in (2, 4)]


def test_sizes_are_exactly_what_retr_sends(open_session, store):
    body = "line\r\n.dot line\r\n..two dots\r\n\r\n.\r\nend\r\n"
    store.deliver_local("", [ALICE], message(1, body))
    c = open_session()
    c.login()
    size = int(c.cmd("LIST 1").split()[2])
    assert c.cmd("RETR 1") == f"+OK {size} octets".encode()
    raw = c.raw_block()
    wire = RETURN_PATH + message(1, body)
    assert raw == wire.replace(b"\r\n.", b"\r\n..") + b".\r\n"
    assert len(wire) == size


def test_retr_marks_seen_top_does_not(open_session, store):
    deliver(store, 2)
    c = open_session()
    c.login()
    assert c.cmd("TOP 1 0") == b"+OK top of message follows"
    assert c.raw_block() == RETURN_PATH + message(1).split(b"\r\n\r\n")[0] + b"\r\n\r\n.\r\n"
    assert c.cmd("TOP 2 5") == b"+OK top of message follows"
    assert c.raw_block() == RETURN_PATH + message(2) + b".\r\n"
    c.cmd("RETR 2")
    assert c.raw_block() == RETURN_PATH + message(2) + b".\r\n"
    c.expect("NOOP", "+OK")      # the flag is stored after the message was sent
    folder = inbox(store)
    first, second = (folder.by_uid[u] for u in folder.uids)
    assert "S" not in first.flags and "S" in second.flags


def test_dele_rset_quit(open_session, store):
    deliver(store, 3)
    folder = store.open_folder(ALICE, "INBOX")   # an IMAP-like session holding the INBOX
    try:
        uids, modseq = list(folder.uids), folder.modseq
        c = open_session()
        c.login()
        size = [folder.by_uid[u].wsize for u in uids]
        c.expect("DELE 1", "+OK message 1 deleted")
        c.expect("DELE 1", "-ERR message 1 already deleted")
        c.expect("RETR 1", "-ERR message 1 already deleted")
        c.expect("TOP 1 0", "-ERR message 1 already deleted")
        c.expect("LIST 1", "-ERR message 1 already deleted")
        c.expect("STAT", f"+OK 2 {size[1] + size[2]}")
        assert c.cmd("LIST") == f"+OK 2 messages ({size[1] + size[2]} octets)".encode()
        assert c.block() == [f"2 {size[1]}".encode(), f"3 {size[2]}".encode()]
        c.expect("RSET", f"+OK maildrop has 3 messages ({sum(size)} octets)")
        c.expect("DELE 2", "+OK message 2 deleted")
        c.expect("DELE 3", "+OK message 3 deleted")
        assert folder.uids == uids           # marks only, until QUIT
        c.expect("QUIT", "+OK CleverMail POP3 server signing off (1 messages left)")
        assert c.line() == b""
        assert folder.uids == uids[:1]
        assert folder.changes_since(modseq) == (uids[1:], [])
        assert len(os.listdir(os.path.join(folder.path, "new"))) + len(os.listdir(os.path.join(folder.path, "cur"))) == 1
    finally:
        store.release_folder(folder)


def test_dropped_connection_deletes_nothing(open_session, store):
    deliver(store, 2)
    c = open_session()
    c.login()
    c.expect("DELE 1", "+OK*")
    c.expect("DELE 2", "+OK*")
    c.close()
    c.wait_closed()
    assert len(inbox(store)) == 2
    c2 = open_session()
    c2.expect(f"USER {ALICE}", "+OK*")
    c2.expect(f"PASS {PASSWORD}", f"+OK {ALICE} has 2 messages*")   # the lock was released


def test_idle_timeout_deletes_nothing(open_session, store):
    deliver(store, 1)
    c = open_session(timeout=0.3)
    c.login()
    c.expect("DELE 1", "+OK*")
    assert c.line() == b"-ERR autologout: idle for too long, no messages deleted"
    assert c.line() == b""
    c.wait_closed()
    assert len(inbox(store)) == 1


def test_second_session_gets_in_use(open_session, store):
    deliver(store, 1)
    first = open_session()
    first.login()
    second = open_session()
    second.expect(f"USER {ALICE}", "+OK*")
    second.expect(f"PASS {PASSWORD}", "-ERR [IN-USE] maildrop already locked by another POP3 session")
    second.expect("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORD}"), "-ERR [IN-USE]*")
    third = open_session()
    third.login(BOB)                       # other accounts are not affected
    first.expect("QUIT", "+OK*")
    first.wait_closed()
    second.login()


def test_lock_held_by_another_process_gives_in_use(open_session, handler):
    root = handler.store.ensure_user(ALICE)
    # another process's lock: an flock on a separate open file description
    fd = os.open(os.path.join(root, pop3_handler.LOCK_NAME), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        c = open_session()
        c.expect(f"USER {ALICE}", "+OK*")
        c.expect(f"PASS {PASSWORD}", "-ERR [IN-USE]*")
        assert ALICE not in handler._held
    finally:
        os.close(fd)
    c.login()


def test_snapshot_is_stable_while_mail_arrives(open_session, store):
    deliver(store, 2)
    c = open_session()
    c.login()
    stat = c.cmd("STAT")
    c.cmd("UIDL")
    uidl = c.block()
    deliver(store, 3)
    inbox(store)                           # someone syncs the shared folder meanwhile
    assert c.cmd("STAT") == stat
    c.cmd("UIDL")
    assert c.block() == uidl
    c.expect("RETR 3", "-ERR no such message 3, only 2 in maildrop")
    c.expect("QUIT", "+OK*")
    c.wait_closed()
    c2 = open_session()
    c2.expect(f"USER {ALICE}", "+OK*")
    c2.expect(f"PASS {PASSWORD}", f"+OK {ALICE} has 5 messages*")


def test_uidl_stable_across_sessions(open_session, store):
    deliver(store, 3)
    c = open_session()
    c.login()
    c.cmd("UIDL")
    before = [line.split()[1] for line in c.block()]
    c.expect("DELE 1", "+OK*")
    c.expect("QUIT", "+OK*")
    c.wait_closed()
    deliver(store, 1)
    c2 = open_session()
    c2.login()
    c2.cmd("UIDL")
    after = [line.split()[1] for line in c2.block()]
    assert after[:2] == before[1:]
    assert after[2] not in before           # a new message never reuses a value
    folder = inbox(store)
    assert after == [f"{folder.uidvalidity}.{u}".encode() for u in folder.uids]


def test_message_expunged_by_imap_during_session(open_session, store):
    deliver(store, 3)
    c = open_session()
    c.login()
    folder = store.open_folder(ALICE, "INBOX")
    try:
        folder.expunge([folder.uids[0]])      # an IMAP session expunges message 1
        c.expect("RETR 1", "-ERR message 1 was deleted by another session")
        c.expect("TOP 1 0", "-ERR message 1 was deleted by another session")
        c.expect("DELE 1", "+OK message 1 deleted")
        c.expect("DELE 2", "+OK message 2 deleted")
        c.cmd("RETR 3")
        assert c.raw_block() == RETURN_PATH + message(3) + b".\r\n"
        c.expect("QUIT", "+OK CleverMail POP3 server signing off (1 messages left)")
        assert len(folder) == 1
    finally:
        store.release_folder(folder)


def test_pipelined_commands(open_session, store):
    deliver(store, 2)
    c = open_session()
    c.send(f"USER {ALICE}\r\nPASS {PASSWORD}\r\nSTAT\r\nDELE 1\r\nLIST 1\r\nQUIT\r\n")
    replies = [c.line() for _ in range(6)]
    assert [r.split()[0] for r in replies] == [b"+OK", b"+OK", b"+OK", b"+OK", b"-ERR", b"+OK"]
    assert c.line() == b""
    assert len(inbox(store)) == 1


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


# -- the command table ------------------------------------------------------------------
@pytest.mark.parametrize("verb", sorted(POP3Session.COMMANDS))
def test_every_command_has_its_states_and_the_three_line_docstring(verb):
    method, allowed, _ = POP3Session.COMMANDS[verb]
    assert type(allowed) is frozenset and allowed and allowed <= states.ANY
    assert method.__name__ == f"cmd_{verb}"
    purpose, state_line, rfc_line = method.__doc__.strip().splitlines()
    assert purpose and state_line.strip().startswith("States: ")
    assert rfc_line.strip().startswith("RFC ")
