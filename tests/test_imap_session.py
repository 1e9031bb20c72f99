"""Tests for clevermail.imap.session: the loop (literals, line limits, errors), the
command table and its state checks, the pending updates sent after each command and
the EXPUNGE rule (RFC 3501 7.4.1), the one catch point, capabilities, STARTTLS and
logging in.  Run over socket.socketpair() with raw command lines and exact tagged
replies; the commands' own tests are in test_imap_cmd_mailboxes.py,
test_imap_cmd_selected.py and test_imap_idle.py."""

import base64
import logging
import types

import pytest

from clevermail import login as login_module
from clevermail.login import AuthThrottle
from clevermail.netbase import SessionPolicy
import fakes
from fakes import tls_contexts
from imap_helpers import (  # noqa: F401 (client, handler, open_session, selected, store: fixtures)
    ALICE, BOB, DOMAIN, HOSTNAME, PASSWORD, FakeServer, append, check, client, deliver, handler,
    message, open_session, selected, start_idle, store, two_logged_in, uidvalidity, wait_idling)

BASE_CAPS = ("IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR IDLE UIDPLUS MOVE NAMESPACE ENABLE ID UNSELECT "
             "CHILDREN SPECIAL-USE CREATE-SPECIAL-USE BINARY URLAUTH URLAUTH=BINARY CONDSTORE QRESYNC "
             "OBJECTID "
             "LIST-EXTENDED LIST-STATUS MULTIAPPEND CATENATE ESEARCH SEARCHRES SORT SORT=DISPLAY ESORT "
             "CONTEXT=SEARCH CONTEXT=SORT "
             "THREAD=ORDEREDSUBJECT THREAD=REFERENCES UTF8=ACCEPT NOTIFY"
             # cmd_quota.py; APPENDLIMIT is FakeServer's message_size
             " QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE STATUS=SIZE APPENDLIMIT=1048576")
AUTH_CAPS = BASE_CAPS + " COMPRESS=DEFLATE"      # after login (RFC 4978 3)


def b64(text):
    return base64.b64encode(text.encode()).decode()


def authenticate_plain_continued(client, response):
    """AUTHENTICATE PLAIN (tag a1) with `response` sent after the empty continuation;
    returns the tagged reply."""
    client.send("a1 AUTHENTICATE PLAIN\r\n")
    assert client.line() == "+ "
    client.send(response + "\r\n")
    return client.read_reply("a1")


# -- any state ------------------------------------------------------------------------
def test_greeting_advertises_capabilities(open_session):
    c = open_session()
    assert c.greeting == (f"* OK [CAPABILITY {BASE_CAPS} AUTH=PLAIN] {HOSTNAME} "
                          "CleverMail IMAP4rev1 ready")


def test_capability_before_and_after_login(open_session):
    c = open_session()
    r = c.expect("CAPABILITY", "OK", "", "CAPABILITY completed")
    assert r.untagged == [f"* CAPABILITY {BASE_CAPS} AUTH=PLAIN"]
    r = c.login()
    assert r.tagged == f"a2 OK [CAPABILITY {AUTH_CAPS}] Logged in"
    r = c.expect("CAPABILITY")
    assert r.untagged == [f"* CAPABILITY {AUTH_CAPS}"]


def test_noop_in_every_state(open_session, store):
    c = open_session()
    assert c.expect("NOOP", "OK", "", "NOOP completed").untagged == []
    c.login()
    assert c.expect("NOOP").untagged == []
    c.select()
    assert c.expect("NOOP").untagged == []


def test_logout_says_bye_and_closes(client):
    r = client.expect("LOGOUT", "OK", "", "LOGOUT completed")
    assert r.untagged == ["* BYE CleverMail logging out"]
    assert client.at_eof()


def test_logout_while_selected(selected):
    r = selected.expect("LOGOUT")
    assert r.untagged == ["* BYE CleverMail logging out"]
    assert selected.at_eof()


def test_id(open_session):
    from clevermail import __version__
    c = open_session()
    r = c.expect("ID NIL")
    assert r.untagged == [f'* ID ("name" "CleverMail" "version" "{__version__}")']
    c.expect('ID ("name" "test client")', "OK")
    c.expect("ID", "BAD")


def test_unknown_command_is_bad_and_session_lives(open_session):
    c = open_session()
    c.expect("FROBNICATE", "BAD", None, "Unknown command")
    c.expect("NOOP", "OK")


def test_malformed_commands_are_bad_and_session_lives(client):
    client.expect('LIST "" "unterminated', "BAD", None, "Unterminated quoted string")
    client.expect("LIST (a b", "BAD", None, "Unbalanced parenthesis")
    client.expect("STATUS INBOX (BOGUS)", "BAD")
    client.send(b"\r\n")
    assert client.line() == "* BAD Missing tag"
    client.send(b"  \r\n")
    assert client.line() == "* BAD Missing tag"
    client.expect("NOOP", "OK")


def test_too_many_errors_disconnect(open_session):
    c = open_session(errors_per_session=3)
    c.expect("BOGUS1", "BAD")
    c.expect("BOGUS2", "BAD")
    c.send("a3 BOGUS3\r\n")
    assert c.line() == "a3 BAD Unknown command"
    assert c.line() == "* BYE Too many invalid commands"
    assert c.at_eof()


def test_long_line_is_refused(open_session):
    c = open_session()
    c.send(b"a1 NOOP " + b"x" * 70000 + b"\r\n")
    assert c.line() == "* BAD Command line too long"
    c.expect("NOOP", "OK")


# -- wrong state ------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["SELECT INBOX", "EXAMINE INBOX", "CREATE x", "DELETE x",
                                     "RENAME x y", "SUBSCRIBE x", "UNSUBSCRIBE x", 'LIST "" *',
                                     'LSUB "" *', "STATUS INBOX (MESSAGES)", "APPEND INBOX {1+}\r\nx",
                                     "NAMESPACE", "ENABLE IDLE", "IDLE", "CHECK", "CLOSE", "UNSELECT",
                                     "EXPUNGE", "SEARCH ALL", "FETCH 1 FLAGS", "STORE 1 FLAGS ()",
                                     "COPY 1 Trash", "MOVE 1 Trash", "UID FETCH 1 FLAGS"])
def test_commands_before_login_are_bad(open_session, command):
    c = open_session()
    name = command.split()[0]
    c.expect(command, "BAD", None, f"{name} not allowed in this state: Log in first")
    c.expect("NOOP", "OK")


@pytest.mark.parametrize("command", ["CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "SEARCH ALL",
                                     "FETCH 1 FLAGS", "STORE 1 +FLAGS (\\Seen)", "COPY 1 Trash",
                                     "MOVE 1 Trash", "UID SEARCH ALL"])
def test_selected_commands_without_selection_are_bad(client, command):
    name = command.split()[0]
    client.expect(command, "BAD", None, f"{name} not allowed in this state: No mailbox selected")


@pytest.mark.parametrize("command", [f'LOGIN "{ALICE}" "{PASSWORD}"', "AUTHENTICATE PLAIN",
                                     "STARTTLS"])
def test_login_commands_after_login_are_bad(client, command):
    name = command.split()[0]
    client.expect(command, "BAD", None, f"{name} not allowed in this state: Already logged in")



# -- the command table ------------------------------------------------------------------------
def test_command_table_shape():
    from clevermail.imap import states
    from clevermail.imap.session import IMAPSession
    assert set(IMAPSession.COMMANDS) >= {"UID FETCH", "UID SEARCH", "UID STORE", "UID COPY",
                                         "UID MOVE", "UID EXPUNGE", "UID"}
    for name, (function, allowed) in IMAPSession.COMMANDS.items():
        assert type(allowed) is frozenset and allowed and allowed <= states.ANY, name
        # DESIGN 7: purpose, allowed states, RFC section, three lines
        purpose, allowed_line, rfc = function.__doc__.splitlines()
        assert purpose.strip() and allowed_line.strip().startswith("States: "), name
        assert rfc.strip().startswith("RFC "), name


def test_uid_and_its_command_word_make_one_key():
    from clevermail.imap.parser import parse_command
    from clevermail.imap.session import uid_form
    cmd = uid_form(parse_command(b"a1 uid Fetch 1:* (FLAGS)", None, 0))
    assert (cmd.tag, cmd.name, cmd.args) == ("a1", "UID FETCH", ["1:*", ["FLAGS"]])
    for line in (b"a2 UID", b"a3 UID FROB 1", b'a4 UID "FETCH" 1 FLAGS', b"a5 UID (FETCH) 1"):
        cmd = parse_command(line, None, 0)
        assert uid_form(cmd) is cmd           # left to the "UID" entry, which refuses it


def test_unknown_uid_command_before_selection_is_a_state_error(client):
    client.expect("UID FROB 1", "BAD", None, "UID not allowed in this state: No mailbox selected")
    client.expect("UID", "BAD", None, "UID not allowed in this state: No mailbox selected")


def test_internal_error_while_parsing_answers_untagged_serverbug(client, monkeypatch):
    from clevermail.imap import session

    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(session, "parse_command", boom)
    client.send("a1 NOOP\r\n")
    assert client.line() == "* BAD [SERVERBUG] Internal error, the command was not completed"
    monkeypatch.undo()
    client.expect("NOOP", "OK")

# -- literals -------------------------------------------------------------------------------
def test_synchronizing_literal_invited_and_read(client, store):
    data = message(1)
    client.send(f"a1 APPEND INBOX {{{len(data)}}}\r\n")
    assert client.line() == "+ Ready for literal data"
    client.send(data + b"\r\n")
    r = client.read_reply("a1")
    check(r, "OK", f"APPENDUID {uidvalidity(store)} 1", "APPEND completed")


def test_non_synchronizing_literal_needs_no_invitation(client, store):
    data = message(1)
    client.send(f"a1 APPEND INBOX {{{len(data)}+}}\r\n".encode() + data + b"\r\n")
    r = client.read_reply("a1")
    check(r, "OK", f"APPENDUID {uidvalidity(store)} 1")
    assert r.untagged == []


def test_synchronizing_literal_over_limit_refused_without_invitation(open_session):
    c = open_session(message_size=1000)
    c.login()
    c.send("a1 APPEND INBOX {1001}\r\n")
    # no "+": the very next line is the tagged refusal; the session then goes on
    assert c.line() == "a1 BAD [TOOBIG] Literal too large"
    c.expect("NOOP", "OK")


def test_non_synchronizing_literal_over_limit_ends_session(open_session):
    c = open_session(message_size=1000)
    c.login()
    c.send("a1 APPEND INBOX {5000000+}\r\n")      # not one byte of the literal follows
    assert c.line() == "* BYE [TOOBIG] Literal too large"
    assert c.at_eof()


def test_command_too_large_in_total_gets_tagged_refusal(open_session):
    c = open_session(message_size=1000)
    c.send("a1 SEARCH TEXT {1000}\r\n")
    invited = 0
    while True:
        line = c.line()
        if line != "+ Ready for literal data":
            break
        invited += 1
        c.send(b"x" * 1000 + b" TEXT {1000}\r\n")
    # the whole command may hold message_size + line_limit (65536) bytes
    assert invited == 65
    assert line == "a1 BAD [TOOBIG] Literal too large"
    c.expect("NOOP", "OK")


def test_literal_over_limit_before_login(open_session):
    c = open_session(message_size=100)
    c.send("a1 LOGIN {101}\r\n")
    assert c.line() == "a1 BAD [TOOBIG] Literal too large"
    c.expect("NOOP", "OK")


def test_literal_in_login(open_session):
    c = open_session()
    c.send(f"a1 LOGIN {{{len(ALICE)}}}\r\n")
    assert c.line() == "+ Ready for literal data"
    c.send(f'{ALICE} "{PASSWORD}"\r\n')
    check(c.read_reply("a1"), "OK", f"CAPABILITY {AUTH_CAPS}", "Logged in")


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


# -- updates and the EXPUNGE rule (RFC 3501 7.4.1) ----------------------------------------------
@pytest.fixture
def two_views(open_session, store):
    deliver(store, 3)
    return two_logged_in(open_session, select=True)


def test_expunge_not_sent_during_fetch_store_search(two_views):
    a, b = two_views
    b.expect("STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.expect("EXPUNGE")
    r = a.expect("FETCH 3 UID")
    assert r.untagged == ["* 3 FETCH (UID 3)"]
    r = a.expect("STORE 3 +FLAGS (\\Seen)")
    assert r.untagged == ["* 3 FETCH (FLAGS (\\Seen \\Recent))"]
    r = a.expect("SEARCH ALL")
    assert r.untagged == ["* SEARCH 1 3"]              # numbers still as the client knows them
    r = a.expect("NOOP")
    assert r.untagged == ["* 2 EXPUNGE"]
    assert a.expect("FETCH 1:* UID").untagged == ["* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)"]


def test_expunged_but_not_reported_message_still_answers(two_views):
    """RFC 2180 4.1 and 4.2.1, as Dovecot: until the session is told of an expunge,
    FETCH of the message answers what the index still has (flags, date, size) and
    OK; its content is gone, so a FETCH of it is NO [EXPUNGEISSUED] with what could
    be sent; STORE on it is taken, changes nothing and answers OK."""
    a, b = two_views
    b.expect("STORE 2 +FLAGS.SILENT (\\Deleted \\Flagged)")
    before = a.expect("NOOP")
    assert before.untagged == ["* 2 FETCH (UID 2 FLAGS (\\Flagged \\Deleted \\Recent))"]
    before = a.expect("FETCH 2 (UID FLAGS RFC822.SIZE INTERNALDATE)").untagged
    b.expect("EXPUNGE")
    r = a.expect("FETCH 2 (UID FLAGS RFC822.SIZE INTERNALDATE)")
    assert r.untagged == before
    r = a.expect("STORE 2 +FLAGS (\\Seen)")
    assert r.untagged == []
    r = a.expect("STORE 1:3 -FLAGS (\\Recent)")
    assert [line.split(" (")[0] for line in r.untagged] == ["* 1 FETCH", "* 3 FETCH"]
    r = a.expect("FETCH 1:3 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])", "NO", "EXPUNGEISSUED",
                 "Some of the requested messages no longer exist")
    assert [line.split(" (")[0] for line in r.untagged] == ["* 1 FETCH", "* 3 FETCH"]
    r = a.expect("NOOP")
    assert r.untagged == ["* 2 EXPUNGE"]


def test_expunge_sent_after_uid_commands(two_views):
    a, b = two_views
    b.expect("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.expect("EXPUNGE")
    r = a.expect("UID FETCH 3 UID")
    assert r.untagged == ["* 3 FETCH (UID 3)", "* 1 EXPUNGE"]
    assert a.expect("FETCH 1:* UID").untagged == ["* 1 FETCH (UID 2)", "* 2 FETCH (UID 3)"]


def test_flag_change_by_other_session_is_reported(two_views):
    a, b = two_views
    b.expect("STORE 1 +FLAGS.SILENT (\\Flagged)")
    assert a.expect("NOOP").untagged == ["* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))"]
    assert a.expect("NOOP").untagged == []
    b.expect("STORE 2 +FLAGS (\\Seen)")
    assert a.expect("CHECK").untagged == ["* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent))"]
    a.expect("STORE 3 +FLAGS.SILENT (\\Answered)")
    assert b.expect("NOOP").untagged == ["* 3 FETCH (UID 3 FLAGS (\\Answered))"]


def test_new_mail_reported_after_any_command(two_views, store):
    a, b = two_views
    store.deliver_local("", [ALICE], message(4))
    r = a.expect("FETCH 1 UID")
    assert r.untagged == ["* 1 FETCH (UID 1)", "* 4 EXISTS", "* 4 RECENT"]
    r = b.expect("SEARCH ALL")
    assert r.untagged == ["* SEARCH 1 2 3", "* 4 EXISTS", "* 0 RECENT"]


def test_internal_error_answers_tagged_serverbug(selected, monkeypatch):
    from clevermail.imap import cmd_search

    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(cmd_search, "parse_search", boom)
    selected.expect("SEARCH ALL", "NO", "SERVERBUG")
    selected.expect("NOOP", "OK")


def test_storage_error_under_selected_mailbox_is_answered(open_session, store):
    a, b = two_logged_in(open_session)
    b.expect("CREATE Work", "OK")
    check(append(b, "Work", message(1)), "OK")
    a.select("Work")
    b.expect("DELETE Work", "OK")
    a.send("a1 STORE 1 +FLAGS (\\Seen)\r\n")
    assert a.line() == "* BYE Selected mailbox was deleted"
    assert a.at_eof()


def test_disk_error_is_answered_and_session_lives(selected, monkeypatch):
    from clevermail.store.folder import Folder

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Folder, "append", full)
    check(append(selected, "INBOX", message(9)), "NO", "SERVERBUG")
    selected.expect("NOOP", "OK")


def test_dropped_connections_release_their_folders(open_session, store):
    deliver(store, 1)
    idle, plain = two_logged_in(open_session, select=True)
    folder = store._open[store.folder_path(ALICE, "INBOX")]
    assert folder.users == 2
    start_idle(idle)
    wait_idling(store)
    assert len(folder.waiters) == 1
    for c in (idle, plain):
        c.close()
        c.wait_closed()
    assert store._open == {}
    assert folder.users == 0 and len(folder.waiters) == 0


def test_idle_timeout_without_idle(open_session):
    c = open_session(timeout=0.3)
    assert c.line() == "* BYE Autologout; idle for too long"
    assert c.at_eof()


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
