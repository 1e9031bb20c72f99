"""Tests for clevermail.imap.session: the loop (literals, line limits, errors), the
command table and its state checks, and the capabilities.  Run over
socket.socketpair() with raw command lines and exact tagged replies; logging in and
STARTTLS are in test_imap_session_login.py, the pending updates and the EXPUNGE rule in
test_imap_session_updates.py, the commands' own tests in test_imap_cmd_mailboxes.py,
test_imap_cmd_selected.py and test_imap_idle.py."""

import pytest

from imap_helpers import (  # noqa: F401 (fixtures)
    ALICE, HOSTNAME, PASSWORD, check, client, handler, message, open_session, selected, store, uidvalidity)
from imap_session_helpers import AUTH_CAPS, BASE_CAPS


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
