"""Tests for clevermail.imap.session (with mailboxes.py and messages.py under it),
run over socket.socketpair() with raw command lines and exact tagged replies."""

import base64
import logging
import os
import types

import pytest

from clevermail import login as login_module
from clevermail.login import AuthThrottle
from clevermail.netbase import SessionPolicy
import fakes
from fakes import session_fixtures, tls_contexts
from imap_helpers import (ALICE, BOB, DOMAIN, HOSTNAME, PASSWORD, FakeServer, check,
                          deliver, make_handler, message, start_session)
from waiting import wait_for

BASE_CAPS = ("IMAP4rev1 LITERAL+ SASL-IR IDLE UIDPLUS MOVE NAMESPACE ENABLE ID UNSELECT "
             "CHILDREN SPECIAL-USE")
SYSTEM_FLAGS = "\\Answered \\Flagged \\Deleted \\Seen \\Draft"
NEW_ACCOUNT_LIST = [
    '* LIST (\\HasNoChildren) "/" "INBOX"',
    '* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
    '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
    '* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
    '* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
    '* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
]


def b64(text):
    return base64.b64encode(text.encode()).decode()


def read_greeting(client):
    client.greeting = client.line()
    assert client.greeting.startswith("* OK [CAPABILITY "), client.greeting


handler, store, open_session = session_fixtures(make_handler, FakeServer, start_session,
                                                read_greeting)


@pytest.fixture
def client(open_session):
    c = open_session()
    c.login()
    return c


@pytest.fixture
def selected(client, store):
    """Alice logged in with INBOX selected, holding messages 1..3 (UIDs 1..3)."""
    deliver(store, 3)
    client.select()
    return client


def uidvalidity(store, name="INBOX", address=ALICE):
    folder = store.open_folder(address, name)
    store.release_folder(folder)
    return folder.uidvalidity


def wait_idling(store, name="INBOX", address=ALICE):
    """Wait (bounded) until an IDLE session registered as a waiter of the folder: the
    waiter is added just after "+ idling" is sent."""
    folder = store._open[store.folder_path(address, name)]
    assert wait_for(lambda: folder.waiters, timeout=5)
    return folder


def tree(root):
    """Every path under root (to prove that nothing was created)."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        out.update(os.path.join(dirpath, n) for n in dirnames + filenames)
    return out


def two_logged_in(open_session, select=False, **first_kw):
    """Two sessions logged in as Alice (first_kw: the first one's server), with INBOX
    selected in both if `select`."""
    a, b = open_session(**first_kw), open_session()
    for c in (a, b):
        c.login()
    if select:
        for c in (a, b):
            c.select()
    return a, b


def start_idle(client):
    """Send IDLE (tag i1) and check the continuation."""
    client.send("i1 IDLE\r\n")
    assert client.line() == "+ idling"


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
    assert r.tagged == f"a2 OK [CAPABILITY {BASE_CAPS}] Logged in"
    r = c.expect("CAPABILITY")
    assert r.untagged == [f"* CAPABILITY {BASE_CAPS}"]


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
    check(c.read_reply("a1"), "OK", f"CAPABILITY {BASE_CAPS}", "Logged in")


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
                 f"CAPABILITY {BASE_CAPS}", "Logged in")
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
    check(r, "OK", f"CAPABILITY {BASE_CAPS}", "Logged in")


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


# -- SELECT / EXAMINE ----------------------------------------------------------------------
def test_select_responses(client, store):
    deliver(store, 2)
    r = client.expect("SELECT INBOX", "OK", "READ-WRITE", "SELECT completed")
    assert r.untagged == [
        f"* FLAGS ({SYSTEM_FLAGS})",
        f"* OK [PERMANENTFLAGS ({SYSTEM_FLAGS} \\*)] Flags permitted",
        "* 2 EXISTS",
        "* 2 RECENT",
        "* OK [UNSEEN 1] First unseen",
        f"* OK [UIDVALIDITY {uidvalidity(store)}] UIDs valid",
        "* OK [UIDNEXT 3] Predicted next UID",
    ]


def test_select_empty_and_case_insensitive_inbox(client, store):
    r = client.expect("SELECT inBox", "OK", "READ-WRITE")
    assert "* 0 EXISTS" in r.untagged and "* 0 RECENT" in r.untagged
    assert not any("UNSEEN" in u for u in r.untagged)


def test_select_missing_mailbox_leaves_selected_state(selected):
    selected.expect("SELECT Nope", "NO", "NONEXISTENT", "Mailbox does not exist")
    selected.expect("FETCH 1 FLAGS", "BAD")


def test_examine_is_read_only(client, store):
    deliver(store, 2)
    r = client.expect("EXAMINE INBOX", "OK", "READ-ONLY", "EXAMINE completed")
    assert "* OK [PERMANENTFLAGS ()] Flags permitted" in r.untagged
    client.expect("STORE 1 +FLAGS (\\Seen)", "NO", "READ-ONLY")
    client.expect("EXPUNGE", "NO", "READ-ONLY")
    client.expect("MOVE 1 Trash", "NO", "READ-ONLY")
    client.expect("UID EXPUNGE 1", "NO", "READ-ONLY")
    r = client.expect("FETCH 1 BODY[]")
    assert r.untagged[0].startswith("* 1 FETCH (BODY[] {") and "FLAGS" not in r.untagged[0]
    r = client.expect("FETCH 1 FLAGS")
    assert r.untagged == ["* 1 FETCH (FLAGS (\\Recent))"]    # EXAMINE sees \Recent ...
    client.expect("COPY 1 Trash", "OK")                     # copying out is reading
    client.expect("CLOSE")
    r = client.select()
    assert "* 2 RECENT" in r.untagged                       # ... but does not take it


def test_recent_goes_to_first_session_only(open_session, store):
    deliver(store, 2)
    a, b = two_logged_in(open_session)
    assert "* 2 RECENT" in a.select().untagged
    assert "* 0 RECENT" in b.select().untagged
    assert a.expect("FETCH 1:2 FLAGS").untagged == ["* 1 FETCH (FLAGS (\\Recent))",
                                                    "* 2 FETCH (FLAGS (\\Recent))"]
    assert b.expect("FETCH 1:2 FLAGS").untagged == ["* 1 FETCH (FLAGS ())", "* 2 FETCH (FLAGS ())"]
    store.deliver(ALICE, message(3))
    first = b.expect("NOOP").untagged
    second = a.expect("NOOP").untagged
    assert first == ["* 3 EXISTS", "* 1 RECENT"]
    assert second == ["* 3 EXISTS", "* 2 RECENT"]


# -- CREATE / DELETE / RENAME ------------------------------------------------------------------
def test_new_account_list_has_special_use(client):
    r = client.expect('LIST "" *', "OK", "", "LIST completed")
    assert r.untagged == NEW_ACCOUNT_LIST


def test_create_with_superiors(client):
    client.expect("CREATE Work/Projects/2024", "OK", "", "CREATE completed")
    r = client.expect('LIST "" Work*')
    assert r.untagged == ['* LIST (\\HasChildren) "/" "Work"',
                          '* LIST (\\HasChildren) "/" "Work/Projects"',
                          '* LIST (\\HasNoChildren) "/" "Work/Projects/2024"']
    client.expect("SELECT Work", "OK")          # superiors are real, selectable mailboxes
    client.expect("CREATE Work/Projects/2024", "NO", "ALREADYEXISTS")
    client.expect("CREATE INBOX", "NO", "ALREADYEXISTS")
    client.expect("CREATE inbox", "NO", "ALREADYEXISTS")


def test_create_trailing_separator_and_inbox_children(client):
    client.expect('CREATE "Lists/"', "OK")
    client.expect("CREATE inbox/Sub", "OK")
    r = client.expect('LIST "" *')
    assert '* LIST (\\HasNoChildren) "/" "Lists"' in r.untagged
    assert '* LIST (\\HasChildren) "/" "INBOX"' in r.untagged
    assert '* LIST (\\HasNoChildren) "/" "INBOX/Sub"' in r.untagged


def test_delete(client, store):
    client.expect("CREATE Old", "OK")
    client.expect("SUBSCRIBE Old", "OK")
    client.expect("DELETE Old", "OK", "", "DELETE completed")
    assert client.expect('LIST "" Old').untagged == []
    assert client.expect('LSUB "" Old').untagged == []
    client.expect("DELETE Old", "NO", "NONEXISTENT")
    client.expect("DELETE INBOX", "NO", "CANNOT", "INBOX cannot be deleted")
    client.expect("DELETE inbox", "NO", "CANNOT")


def test_delete_parent_keeps_children_as_noselect(client):
    client.expect("CREATE A/B", "OK")
    client.expect("DELETE A", "OK")
    r = client.expect('LIST "" A/*')
    assert r.untagged == ['* LIST (\\HasNoChildren) "/" "A/B"']
    r = client.expect('LIST "" A')
    assert r.untagged == ['* LIST (\\HasChildren \\Noselect) "/" "A"']
    client.expect("SELECT A", "NO", "NONEXISTENT")


def test_delete_selected_mailbox_in_other_session_ends_it(open_session):
    a, b = two_logged_in(open_session)
    a.expect("CREATE Doomed", "OK")
    b.select("Doomed")
    a.expect("DELETE Doomed", "OK")
    b.send("b1 NOOP\r\n")
    assert b.line() == "* BYE Selected mailbox was deleted"
    assert b.at_eof()


def test_rename_with_children(client, store):
    client.expect("CREATE Work/Projects", "OK")
    client.expect("SUBSCRIBE Work/Projects", "OK")
    data = message(1)
    client.send(f"a9 APPEND Work/Projects {{{len(data)}+}}\r\n".encode() + data + b"\r\n")
    check(client.read_reply("a9"), "OK")
    client.expect("RENAME Work Job", "OK", "", "RENAME completed")
    r = client.expect('LIST "" *')
    assert '* LIST (\\HasChildren) "/" "Job"' in r.untagged
    assert '* LIST (\\HasNoChildren) "/" "Job/Projects"' in r.untagged
    assert not any('"Work' in u for u in r.untagged)
    r = client.expect("STATUS Job/Projects (MESSAGES)")
    assert r.untagged == ['* STATUS "Job/Projects" (MESSAGES 1)']
    assert client.expect('LSUB "" Job/*').untagged == ['* LSUB () "/" "Job/Projects"']
    client.expect("RENAME Work Other", "NO", "NONEXISTENT")
    client.expect("RENAME Job Trash", "NO", "ALREADYEXISTS")
    client.expect("RENAME Job INBOX", "NO", "ALREADYEXISTS")


def test_rename_creates_missing_superiors(client):
    client.expect("CREATE Flat", "OK")
    client.expect("RENAME Flat Deep/Er/Flat", "OK")
    r = client.expect('LIST "" Deep*')
    assert r.untagged == ['* LIST (\\HasChildren) "/" "Deep"',
                          '* LIST (\\HasChildren) "/" "Deep/Er"',
                          '* LIST (\\HasNoChildren) "/" "Deep/Er/Flat"']


def test_rename_selected_mailbox_unselects_it(client):
    client.expect("CREATE Work/Sub", "OK")
    client.select("Work/Sub")
    client.expect("RENAME Work Job", "OK")
    client.expect("NOOP", "OK")                  # the session lives on, unselected
    client.expect("FETCH 1 FLAGS", "BAD")
    client.select("Job/Sub")
    client.expect("RENAME Job/Sub Job/Sub2", "OK")
    client.expect("CREATE Job/Sub", "OK")
    assert "* 0 EXISTS" in client.select("Job/Sub").untagged


def test_rename_inbox_moves_mail_and_leaves_inbox_empty(client, store):
    deliver(store, 2)
    client.expect("RENAME INBOX Old-Inbox", "OK")
    r = client.expect("STATUS INBOX (MESSAGES)")
    assert r.untagged == ['* STATUS "INBOX" (MESSAGES 0)']
    r = client.expect("STATUS Old-Inbox (MESSAGES)")
    assert r.untagged == ['* STATUS "Old-Inbox" (MESSAGES 2)']
    store.deliver(ALICE, message(3))
    r = client.expect("STATUS INBOX (MESSAGES)")
    assert r.untagged == ['* STATUS "INBOX" (MESSAGES 1)']


def test_rename_selected_inbox_reports_expunges(open_session, store):
    deliver(store, 2)
    a, b = two_logged_in(open_session)
    b.select()
    a.expect("RENAME INBOX Saved", "OK")
    assert b.expect("NOOP").untagged == ["* 2 EXPUNGE", "* 1 EXPUNGE"]


# -- mailbox names ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ['".."', '"../other"', '"../../example.test/bob"', '"/etc"',
                                  '"/etc/passwd"', '"~bob"', '"a/~b"', '"a/../b"', '"a//b"',
                                  '"."', '"&AAA-"', '"x&AAo-y"', '"&Jjo"', '"&AGEAYgBj-"'])
def test_escaping_names_are_refused(client, store, name):
    store.deliver(ALICE, message(1))
    client.select()
    root = store.mail_root
    before = tree(root)
    client.expect(f"COPY 1 {name}", "NO", "CANNOT")
    client.expect(f"MOVE 1 {name}", "NO", "CANNOT")
    client.expect(f"APPEND {name} {{1+}}\r\nx", "NO", "CANNOT")    # not TRYCREATE: CREATE would fail
    for command in (f"CREATE {name}", f"SELECT {name}", f"EXAMINE {name}", f"DELETE {name}",
                    f"RENAME Trash {name}", f"RENAME {name} Other", f"STATUS {name} (MESSAGES)",
                    f"SUBSCRIBE {name}", f"UNSUBSCRIBE {name}"):
        client.expect(command, "NO", "CANNOT")
    assert tree(root) == before


def test_raw_nul_in_name_is_bad(client, store):
    before = tree(store.mail_root)
    client.send(b'a1 CREATE {3}\r\n')
    assert client.line() == "+ Ready for literal data"
    client.send(b"a\x00b\r\n")
    check(client.read_reply("a1"), "BAD", None, "NUL character in command")
    assert tree(store.mail_root) == before


def test_other_users_mail_is_out_of_reach(client, store):
    store.deliver(BOB, message(1, to=BOB))
    bob_before = tree(store.user_root(BOB))
    client.expect('SELECT "../bob"', "NO", "CANNOT")
    client.expect('CREATE "bob@example.test"', "OK")       # just a name in alice's tree
    assert os.path.isdir(os.path.join(store.user_root(ALICE), ".bob@example%2Etest"))
    assert tree(store.user_root(BOB)) == bob_before
    r = client.select()
    assert "* 0 EXISTS" in r.untagged


def test_modified_utf7_names_round_trip(client, store):
    client.expect('CREATE "Entw&APw-rfe"', "OK")
    client.expect('CREATE "&ZeVnLIqe-/&U,BTFw-"', "OK")
    r = client.expect('LIST "" *')
    assert '* LIST (\\HasNoChildren) "/" "Entw&APw-rfe"' in r.untagged
    assert '* LIST (\\HasChildren) "/" "&ZeVnLIqe-"' in r.untagged
    assert '* LIST (\\HasNoChildren) "/" "&ZeVnLIqe-/&U,BTFw-"' in r.untagged
    root = store.user_root(ALICE)
    assert os.path.isdir(os.path.join(root, ".Entwürfe"))
    assert os.path.isdir(os.path.join(root, ".日本語.台北"))
    r = client.expect('SELECT "Entw&APw-rfe"', "OK")
    r = client.expect('STATUS "Entw&APw-rfe" (MESSAGES)')
    assert r.untagged == ['* STATUS "Entw&APw-rfe" (MESSAGES 0)']
    client.expect('CREATE "a&-b"', "OK")
    assert '* LIST (\\HasNoChildren) "/" "a&-b"' in client.expect('LIST "" a*').untagged


def test_dots_and_percent_in_names(client, store):
    client.expect('CREATE "v1.2 100%"', "OK")
    r = client.expect('LIST "" v*')
    assert r.untagged == ['* LIST (\\HasNoChildren) "/" "v1.2 100%"']


# -- SUBSCRIBE / LIST / LSUB ----------------------------------------------------------------------
def test_subscribe_unsubscribe_lsub(client):
    r = client.expect('LSUB "" *', "OK", "", "LSUB completed")
    assert r.untagged == ['* LSUB () "/" "Archive"', '* LSUB () "/" "Drafts"', '* LSUB () "/" "Junk"',
                          '* LSUB () "/" "Sent"', '* LSUB () "/" "Trash"']
    client.expect("SUBSCRIBE INBOX", "OK", "", "SUBSCRIBE completed")
    client.expect("SUBSCRIBE Future", "OK")               # need not exist (RFC 3501 6.3.6)
    client.expect("UNSUBSCRIBE Junk", "OK", "", "UNSUBSCRIBE completed")
    r = client.expect('LSUB "" *')
    assert r.untagged == ['* LSUB () "/" "Archive"', '* LSUB () "/" "Drafts"', '* LSUB () "/" "Sent"',
                          '* LSUB () "/" "Trash"', '* LSUB () "/" "INBOX"',
                          '* LSUB (\\Noselect) "/" "Future"']
    assert client.expect('LSUB "" inbox').untagged == ['* LSUB () "/" "INBOX"']
    assert client.expect('LSUB "" %u%').untagged == ['* LSUB (\\Noselect) "/" "Future"']
    client.expect("SUBSCRIBE", "BAD")


def test_lsub_percent_returns_unsubscribed_parent_as_noselect(client):
    client.expect("CREATE Work/Projects/2024", "OK")
    client.expect("SUBSCRIBE Work/Projects/2024", "OK")
    # RFC 3501 6.3.9: "%" stops at the first level; the parent comes back \Noselect
    assert client.expect('LSUB "" W%').untagged == ['* LSUB (\\Noselect) "/" "Work"']
    assert client.expect('LSUB "" Work/%').untagged == ['* LSUB (\\Noselect) "/" "Work/Projects"']
    assert client.expect('LSUB "" Work/*').untagged == ['* LSUB () "/" "Work/Projects/2024"']
    client.expect("SUBSCRIBE Work", "OK")
    assert client.expect('LSUB "" W%').untagged == ['* LSUB () "/" "Work"']


def test_list_wildcards(client):
    client.expect("CREATE Work/Projects/2024", "OK")
    r = client.expect('LIST "" %')
    assert r.untagged == NEW_ACCOUNT_LIST + ['* LIST (\\HasChildren) "/" "Work"']
    r = client.expect('LIST "" Work/%')
    assert r.untagged == ['* LIST (\\HasChildren) "/" "Work/Projects"']
    r = client.expect('LIST Work/ %')
    assert r.untagged == ['* LIST (\\HasChildren) "/" "Work/Projects"']
    r = client.expect('LIST "" W*4')
    assert r.untagged == ['* LIST (\\HasNoChildren) "/" "Work/Projects/2024"']
    r = client.expect('LIST "" %/%/%')
    assert r.untagged == ['* LIST (\\HasNoChildren) "/" "Work/Projects/2024"']
    assert client.expect('LIST "" work').untagged == []       # only INBOX ignores case


def test_list_inbox_case_insensitive(client):
    client.expect("CREATE INBOX/Sub", "OK")
    client.expect("CREATE Inbound", "OK")
    for pattern in ("INBOX", "inbox", "InBoX", "inb%", "inbox%"):
        r = client.expect(f'LIST "" "{pattern}"')
        assert r.untagged == ['* LIST (\\HasChildren) "/" "INBOX"'], pattern
    assert client.expect('LIST "" inbox/%').untagged == ['* LIST (\\HasNoChildren) "/" "INBOX/Sub"']
    assert client.expect('LIST "" inbox/sub').untagged == []       # below INBOX case counts
    assert client.expect('LIST "" "inb*"').untagged == ['* LIST (\\HasChildren) "/" "INBOX"',
                                                        '* LIST (\\HasNoChildren) "/" "INBOX/Sub"']
    assert client.expect('LIST "" "Inb*"').untagged == ['* LIST (\\HasChildren) "/" "INBOX"',
                                                        '* LIST (\\HasNoChildren) "/" "INBOX/Sub"',
                                                        '* LIST (\\HasNoChildren) "/" "Inbound"']


def test_list_empty_pattern_gives_delimiter(client):
    r = client.expect('LIST "" ""', "OK")
    assert r.untagged == ['* LIST (\\Noselect) "/" ""']
    client.expect("LIST onearg", "BAD")


# -- STATUS ---------------------------------------------------------------------------------------
def test_status(client, store):
    deliver(store, 3)
    r = client.expect("STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)", "OK", "",
                      "STATUS completed")
    assert r.untagged == [f'* STATUS "INBOX" (MESSAGES 3 RECENT 3 UIDNEXT 4 '
                          f'UIDVALIDITY {uidvalidity(store)} UNSEEN 3)']
    client.select()
    client.expect("STORE 1 +FLAGS.SILENT (\\Seen)")
    r = client.expect("STATUS inbox (unseen recent)")
    assert r.untagged == ['* STATUS "INBOX" (UNSEEN 2 RECENT 0)']
    client.expect("STATUS INBOX (MESSAGES BOGUS)", "BAD")
    client.expect("STATUS INBOX ()", "BAD")
    client.expect("STATUS INBOX MESSAGES", "BAD")
    client.expect("STATUS Missing (MESSAGES)", "NO", "NONEXISTENT")


# -- APPEND -----------------------------------------------------------------------------------------
def append(client, mailbox, data, extra=""):
    tag = next(client.tags)
    client.send(f"{tag} APPEND {mailbox}{extra} {{{len(data)}+}}\r\n".encode() + data + b"\r\n")
    return client.read_reply(tag)


def test_append_with_flags_and_date(client, store):
    r = append(client, "Drafts", message(1), ' (\\Draft \\Seen $Todo) "17-Jul-1996 02:44:25 -0700"')
    check(r, "OK", f"APPENDUID {uidvalidity(store, 'Drafts')} 1", "APPEND completed")
    client.select("Drafts")
    r = client.expect("FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)")
    assert r.untagged == ['* 1 FETCH (FLAGS (\\Draft \\Seen $Todo \\Recent) '
                          f'INTERNALDATE "17-Jul-1996 09:44:25 +0000" RFC822.SIZE {len(message(1))})']
    r = client.expect("FETCH 1 BODY.PEEK[]")
    assert r.untagged == ["* 1 FETCH (BODY[] {%d}\r\n%s)" % (len(message(1)), message(1).decode())]


def test_append_recent_flag_ignored_and_uids_ascend(client, store):
    validity = uidvalidity(store)
    check(append(client, "INBOX", message(1), " (\\Recent)"), "OK", f"APPENDUID {validity} 1")
    check(append(client, "INBOX", message(2), " ()"), "OK", f"APPENDUID {validity} 2")
    check(append(client, "inbox", message(3)), "OK", f"APPENDUID {validity} 3")


def test_append_to_missing_mailbox_says_trycreate(client, store):
    before = tree(store.mail_root)
    check(append(client, "Nowhere", message(1)), "NO", "TRYCREATE", "Mailbox does not exist")
    assert tree(store.mail_root) == before
    client.expect("CREATE Nowhere", "OK")
    check(append(client, "Nowhere", message(1)), "OK")


def test_append_to_selected_mailbox_reports_exists(selected):
    r = append(selected, "INBOX", message(9))
    assert r.untagged == ["* 4 EXISTS", "* 4 RECENT"]


def test_append_bad_arguments(client):
    check(append(client, "INBOX", b""), "NO")
    check(append(client, "INBOX", message(1), ' "not a date"'), "BAD")
    check(append(client, "INBOX", message(1), ' (\\Seen) "17-Jul-1996 02:44:25 -0700" extra'), "BAD")
    check(append(client, "INBOX", message(1), " (bad(flag)"), "BAD")
    client.expect("APPEND INBOX", "BAD")


# -- NAMESPACE / ENABLE ---------------------------------------------------------------------------
def test_namespace(client):
    r = client.expect("NAMESPACE", "OK", "", "NAMESPACE completed")
    assert r.untagged == ['* NAMESPACE (("" "/")) NIL NIL']


def test_enable(client):
    r = client.expect("ENABLE CONDSTORE", "OK", "", "ENABLE completed")
    assert r.untagged == ["* ENABLED"]
    client.expect("ENABLE", "BAD")


# -- IDLE ---------------------------------------------------------------------------------------
def test_idle_reports_new_mail_at_once(selected, store):
    start_idle(selected)
    store.deliver(ALICE, message(4))
    assert selected.line() == "* 4 EXISTS"
    assert selected.line() == "* 4 RECENT"
    selected.send("DONE\r\n")
    check(selected.read_reply("i1"), "OK", "", "IDLE terminated")


def test_idle_reports_flags_and_expunges_of_others(open_session, store):
    deliver(store, 2)
    a, b = two_logged_in(open_session, select=True)
    start_idle(a)
    b.expect("STORE 2 +FLAGS.SILENT (\\Flagged)")
    assert a.line() == "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))"
    b.expect("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert a.line() == "* 1 FETCH (UID 1 FLAGS (\\Deleted \\Recent))"
    b.expect("EXPUNGE")
    assert a.line() == "* 1 EXPUNGE"
    a.send("done\r\n")
    check(a.read_reply("i1"), "OK")
    assert a.expect("FETCH 1 UID").untagged == ["* 1 FETCH (UID 2)"]


def test_idle_in_authenticated_state(client):
    start_idle(client)
    client.send("DONE\r\n")
    check(client.read_reply("i1"), "OK")


def test_idle_wrong_continuation(selected):
    start_idle(selected)
    selected.send("i2 NOOP\r\n")
    check(selected.read_reply("i1"), "BAD", None, "Expected DONE")
    selected.expect("NOOP", "OK")
    selected.expect("IDLE now", "BAD")


def test_idle_times_out(open_session):
    c = open_session(timeout=0.5)
    c.login()
    start_idle(c)
    assert c.line() == "* BYE Autologout; idle for too long"
    assert c.at_eof()


# -- CHECK / CLOSE / UNSELECT / EXPUNGE -------------------------------------------------------------
def test_check(selected):
    assert selected.expect("CHECK", "OK", "", "CHECK completed").untagged == []


def test_close_expunges_silently(selected, store):
    selected.expect("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    r = selected.expect("CLOSE", "OK", "", "CLOSE completed")
    assert r.untagged == []
    selected.expect("FETCH 1 FLAGS", "BAD")
    r = selected.expect("STATUS INBOX (MESSAGES)")
    assert r.untagged == ['* STATUS "INBOX" (MESSAGES 1)']
    r = selected.select()
    assert "* 1 EXISTS" in r.untagged
    assert selected.expect("FETCH 1 UID").untagged == ["* 1 FETCH (UID 3)"]


def test_close_after_examine_does_not_expunge(selected):
    selected.expect("STORE 1 +FLAGS.SILENT (\\Deleted)")
    selected.expect("EXAMINE INBOX", "OK", "READ-ONLY")
    selected.expect("CLOSE")
    r = selected.expect("STATUS INBOX (MESSAGES)")
    assert r.untagged == ['* STATUS "INBOX" (MESSAGES 3)']


def test_unselect_does_not_expunge(selected):
    selected.expect("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert selected.expect("UNSELECT", "OK", "", "UNSELECT completed").untagged == []
    selected.expect("FETCH 1 FLAGS", "BAD")
    r = selected.expect("STATUS INBOX (MESSAGES)")
    assert r.untagged == ['* STATUS "INBOX" (MESSAGES 3)']


def test_expunge(selected, store):
    store.deliver(ALICE, message(4))
    selected.expect("NOOP")
    selected.expect("STORE 1,3 +FLAGS.SILENT (\\Deleted)")
    r = selected.expect("EXPUNGE", "OK", "", "EXPUNGE completed")
    assert r.untagged == ["* 3 EXPUNGE", "* 1 EXPUNGE"]
    assert selected.expect("FETCH 1:* UID").untagged == ["* 1 FETCH (UID 2)", "* 2 FETCH (UID 4)"]
    assert selected.expect("EXPUNGE").untagged == []


# -- SEARCH -----------------------------------------------------------------------------------
def test_search(selected):
    assert selected.expect("SEARCH ALL", "OK", "", "SEARCH completed").untagged == ["* SEARCH 1 2 3"]
    assert selected.expect('SEARCH SUBJECT "message 2"').untagged == ["* SEARCH 2"]
    assert selected.expect("SEARCH CHARSET UTF-8 BODY {7+}\r\nmessage").untagged == ["* SEARCH 1 2 3"]
    selected.expect("STORE 2 +FLAGS.SILENT (\\Seen)")
    assert selected.expect("SEARCH SEEN").untagged == ["* SEARCH 2"]
    assert selected.expect("SEARCH UNSEEN NOT 1").untagged == ["* SEARCH 3"]
    assert selected.expect("SEARCH RECENT").untagged == ["* SEARCH 1 2 3"]
    assert selected.expect("SEARCH 2:*").untagged == ["* SEARCH 2 3"]
    assert selected.expect("UID SEARCH UID 2:3", "OK", "", "UID SEARCH completed").untagged == \
        ["* SEARCH 2 3"]
    assert selected.expect("SEARCH FROM nobody").untagged == ["* SEARCH"]


def test_search_errors(selected):
    selected.expect("SEARCH BOGUSKEY", "BAD")
    selected.expect("SEARCH CHARSET KOI8-R ALL", "NO", "BADCHARSET (US-ASCII UTF-8)")
    selected.expect("SEARCH SUBJECT", "BAD")


# -- FETCH ------------------------------------------------------------------------------------
def test_fetch_body_sets_seen_and_reports_flags(selected):
    data = message(1).decode()
    r = selected.expect("FETCH 1 BODY[]", "OK", "", "FETCH completed")
    assert r.untagged == [f"* 1 FETCH (BODY[] {{{len(data)}}}\r\n{data} FLAGS (\\Seen \\Recent))"]
    r = selected.expect("FETCH 1 BODY[]")          # already seen: no FLAGS this time
    assert r.untagged == [f"* 1 FETCH (BODY[] {{{len(data)}}}\r\n{data})"]
    assert selected.expect("NOOP").untagged == []  # our own change is not echoed


def test_fetch_body_peek_leaves_seen_alone(selected):
    r = selected.expect("FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)] FLAGS)")
    assert r.untagged == ["* 2 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {22}\r\n"
                          "Subject: message 2\r\n\r\n FLAGS (\\Recent))"]
    r = selected.expect("FETCH 2 (FLAGS RFC822.HEADER)")
    assert r.untagged[0].startswith("* 2 FETCH (FLAGS (\\Recent) RFC822.HEADER {")
    assert selected.expect("FETCH 2 FLAGS").untagged == ["* 2 FETCH (FLAGS (\\Recent))"]


def test_fetch_rfc822_and_text_set_seen(selected):
    r = selected.expect("FETCH 1 RFC822.TEXT")
    assert r.untagged == ["* 1 FETCH (RFC822.TEXT {20}\r\nBody of message 1.\r\n FLAGS (\\Seen \\Recent))"]
    r = selected.expect("FETCH 2 (FLAGS RFC822)")
    assert r.untagged[0].startswith("* 2 FETCH (FLAGS (\\Seen \\Recent) RFC822 {")


def test_fetch_items(selected, store):
    r = selected.expect("FETCH 1:2 (UID RFC822.SIZE)")
    size = len(message(1))
    assert r.untagged == [f"* 1 FETCH (UID 1 RFC822.SIZE {size})", f"* 2 FETCH (UID 2 RFC822.SIZE {size})"]
    r = selected.expect("FETCH 3 ENVELOPE")
    assert r.untagged == ['* 3 FETCH (ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "message 3" '
                          '((NIL NIL "sender" "example.test")) ((NIL NIL "sender" "example.test")) '
                          '((NIL NIL "sender" "example.test")) ((NIL NIL "alice" "example.test")) '
                          'NIL NIL NIL NIL))']
    r = selected.expect("FETCH 3 BODY[TEXT]<5.7>")
    assert r.untagged == ["* 3 FETCH (BODY[TEXT]<5> {7}\r\nof mess FLAGS (\\Seen \\Recent))"]
    r = selected.expect("FETCH * FAST")
    assert r.untagged[0].startswith("* 3 FETCH (FLAGS (\\Seen \\Recent) INTERNALDATE \"")


def test_fetch_errors(selected):
    selected.expect("FETCH 4 FLAGS", "BAD", None, "Invalid message sequence number")
    selected.expect("FETCH 0 FLAGS", "BAD")
    selected.expect("FETCH 1 BOGUS", "BAD")
    selected.expect("FETCH 1", "BAD")
    selected.expect("FETCH x FLAGS", "BAD")
    selected.expect("NOOP", "OK")


def test_uid_fetch(selected):
    r = selected.expect("UID FETCH 2:* FLAGS", "OK", "", "UID FETCH completed")
    assert r.untagged == ["* 2 FETCH (UID 2 FLAGS (\\Recent))", "* 3 FETCH (UID 3 FLAGS (\\Recent))"]
    assert selected.expect("UID FETCH 99 FLAGS").untagged == []
    r = selected.expect("UID FETCH 99:* FLAGS")        # "*" = 3, so 3:99
    assert r.untagged == ["* 3 FETCH (UID 3 FLAGS (\\Recent))"]


# -- STORE ------------------------------------------------------------------------------------
def test_store_variants(selected):
    r = selected.expect("STORE 1 FLAGS (\\Seen \\Flagged)", "OK", "", "STORE completed")
    assert r.untagged == ["* 1 FETCH (FLAGS (\\Flagged \\Seen \\Recent))"]
    r = selected.expect("STORE 1 +FLAGS (\\Answered)")
    assert r.untagged == ["* 1 FETCH (FLAGS (\\Flagged \\Answered \\Seen \\Recent))"]
    r = selected.expect("STORE 1 -FLAGS (\\Seen \\Flagged)")
    assert r.untagged == ["* 1 FETCH (FLAGS (\\Answered \\Recent))"]
    r = selected.expect("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    assert r.untagged == []
    r = selected.expect("STORE 1 FLAGS.SILENT ()")
    assert r.untagged == []
    r = selected.expect("FETCH 1:2 FLAGS")
    assert r.untagged == ["* 1 FETCH (FLAGS (\\Recent))", "* 2 FETCH (FLAGS (\\Deleted \\Recent))"]
    r = selected.expect("STORE 3 +FLAGS \\Seen")                 # a single flag without parens
    assert r.untagged == ["* 3 FETCH (FLAGS (\\Seen \\Recent))"]


def test_store_keywords(selected):
    r = selected.expect("STORE 1 +FLAGS ($Label1 NonJunk)")
    assert r.untagged == ["* 1 FETCH (FLAGS ($Label1 NonJunk \\Recent))"]
    r = selected.expect("SELECT INBOX")
    assert f"* FLAGS ({SYSTEM_FLAGS} $Label1 NonJunk)" in r.untagged
    r = selected.expect("STORE 1 -FLAGS (nonjunk)")
    assert r.untagged == ["* 1 FETCH (FLAGS ($Label1 \\Recent))"]   # re-selecting keeps \Recent


def test_reselect_keeps_this_sessions_recent(selected):
    r = selected.expect("SELECT INBOX")
    recent = [ln for ln in r.untagged if ln.endswith(" RECENT")]
    r = selected.expect("EXAMINE INBOX")
    assert [ln for ln in r.untagged if ln.endswith(" RECENT")] == recent
    r = selected.expect("SELECT INBOX")
    assert [ln for ln in r.untagged if ln.endswith(" RECENT")] == recent
    assert recent != ["* 0 RECENT"]


def test_store_errors(selected):
    selected.expect("STORE 1 FLAGZ (\\Seen)", "BAD")
    selected.expect("STORE 1 +FLAGS", "BAD")
    selected.expect("STORE 1 +FLAGS (\"quoted\")", "BAD")
    selected.expect("STORE 9 +FLAGS (\\Seen)", "BAD")


def test_uid_store(selected):
    r = selected.expect("UID STORE 2:3 +FLAGS (\\Flagged)", "OK", "", "UID STORE completed")
    assert r.untagged == ["* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))",
                          "* 3 FETCH (UID 3 FLAGS (\\Flagged \\Recent))"]
    assert selected.expect("UID STORE 7 +FLAGS (\\Flagged)").untagged == []


# -- COPY / MOVE / UID forms --------------------------------------------------------------------
def test_copy_with_copyuid(selected, store):
    validity = uidvalidity(store, "Archive")
    selected.expect("STORE 2 +FLAGS.SILENT (\\Flagged $Work)")
    selected.expect("COPY 2:3 Archive", "OK", f"COPYUID {validity} 2:3 1:2", "COPY completed")
    selected.expect("COPY 1 Archive", "OK", f"COPYUID {validity} 1 3")
    selected.expect("COPY 1 Missing", "NO", "TRYCREATE")
    selected.expect("COPY 5 Archive", "BAD")
    selected.expect("COPY 1", "BAD")
    r = selected.expect("STATUS Archive (MESSAGES)")
    assert r.untagged == ['* STATUS "Archive" (MESSAGES 3)']
    selected.select("Archive")
    assert selected.expect("FETCH 1 FLAGS").untagged == ["* 1 FETCH (FLAGS (\\Flagged $Work \\Recent))"]


def test_uid_copy(selected, store):
    validity = uidvalidity(store, "Trash")
    selected.expect("UID COPY 1,3 Trash", "OK", f"COPYUID {validity} 1,3 1:2", "COPY completed")
    assert selected.expect("UID COPY 50 Trash").tagged.endswith("OK COPY completed")


def test_move_sends_copyuid_then_expunge(selected, store):
    validity = uidvalidity(store, "Trash")
    r = selected.expect("MOVE 2 Trash", "OK", "", "MOVE completed")
    assert r.untagged == [f"* OK [COPYUID {validity} 2 1] Moved", "* 2 EXPUNGE"]
    assert selected.expect("FETCH 1:* UID").untagged == ["* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)"]
    selected.expect("MOVE 1 Missing", "NO", "TRYCREATE")
    assert selected.expect("FETCH 1:* UID").untagged == ["* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)"]


def test_uid_move(selected, store):
    validity = uidvalidity(store, "Trash")
    r = selected.expect("UID MOVE 1:2 Trash", "OK", "", "MOVE completed")
    assert r.untagged == [f"* OK [COPYUID {validity} 1:2 1:2] Moved", "* 2 EXPUNGE", "* 1 EXPUNGE"]
    r = selected.expect("STATUS Trash (MESSAGES)")
    assert r.untagged == ['* STATUS "Trash" (MESSAGES 2)']


def test_uid_expunge_only_named(selected):
    selected.expect("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
    r = selected.expect("UID EXPUNGE 2:3", "OK", "", "UID EXPUNGE completed")
    assert r.untagged == ["* 3 EXPUNGE", "* 2 EXPUNGE"]
    assert selected.expect("FETCH 1:* UID").untagged == ["* 1 FETCH (UID 1)"]
    selected.expect("UID EXPUNGE", "BAD")


def test_uid_errors(selected):
    selected.expect("UID", "BAD")
    selected.expect("UID FROB 1", "BAD")
    selected.expect('UID "FETCH" 1 FLAGS', "BAD")


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
    r = a.expect("FETCH 2 UID", "NO", "EXPUNGEISSUED")
    assert r.untagged == []
    r = a.expect("NOOP")
    assert r.untagged == ["* 2 EXPUNGE"]
    assert a.expect("FETCH 1:* UID").untagged == ["* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)"]


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
    store.deliver(ALICE, message(4))
    r = a.expect("FETCH 1 UID")
    assert r.untagged == ["* 1 FETCH (UID 1)", "* 4 EXISTS", "* 4 RECENT"]
    r = b.expect("SEARCH ALL")
    assert r.untagged == ["* SEARCH 1 2 3", "* 4 EXISTS", "* 0 RECENT"]


def test_internal_error_answers_tagged_serverbug(selected, monkeypatch):
    from clevermail.imap import cmd_selected

    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(cmd_selected, "parse_search", boom)
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


def test_copy_into_selected_mailbox_reports_exists(selected, store):
    r = selected.expect("COPY 1:2 INBOX", "OK", f"COPYUID {uidvalidity(store)} 1:2 4:5")
    assert r.untagged == ["* 5 EXISTS", "* 5 RECENT"]


@pytest.mark.parametrize("mailbox, change", [("Work", "DELETE Work"),
                                             ("Work/Sub", "RENAME Work Job")],
                         ids=["deleted", "renamed"])
def test_idle_learns_at_once_that_its_mailbox_went_away(open_session, store, mailbox, change):
    a, b = two_logged_in(open_session, timeout=60)   # a missed wake fails on the client timeout
    b.expect(f"CREATE {mailbox}", "OK")
    a.select(mailbox)
    start_idle(a)
    wait_idling(store, mailbox)
    b.expect(change, "OK")
    assert a.line() == "* BYE Selected mailbox was deleted"   # not after the 30 s poll
    assert a.at_eof()


def test_idle_learns_at_once_that_inbox_was_renamed(open_session, store):
    deliver(store, 2)
    a, b = two_logged_in(open_session, timeout=60)   # a missed wake fails on the client timeout
    a.select()
    start_idle(a)
    wait_idling(store, "INBOX")
    b.expect("RENAME INBOX Saved", "OK")
    assert a.line() == "* 2 EXPUNGE"
    assert a.line() == "* 1 EXPUNGE"
    a.send("DONE\r\n")
    check(a.read_reply("i1"), "OK")


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
