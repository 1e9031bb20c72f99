"""Tests for clevermail.managesieve.session (and the handler under it) over
socket.socketpair(), with a real SieveScripts in tmp_path and the real Sieve parser."""

import base64
import logging

import pytest

import fakes
from clevermail.login import AuthThrottle
from clevermail.netbase import SessionPolicy
from clevermail.sieve import EXTENSIONS
from fakes import session_fixtures, tls_contexts
from managesieve_helpers import (ALICE, BOB, MAX_SIZE, PASSWORD, FakeServer, make_handler, plain,
                                 start_session)

GREETING = 'OK "CleverMail ManageSieve ready (mail.example.test)"'
SIEVE = f'"SIEVE" "{" ".join(EXTENSIONS)}"'
CAPS = ['"IMPLEMENTATION" "CleverMail"', '"SASL" "PLAIN LOGIN"', SIEVE, '"MAXREDIRECTS" "5"',
        '"UNAUTHENTICATE"', '"VERSION" "1.0"']
R_BAD_ESCAPE = 'NO "a backslash in a quoted string must escape \\\\ or \\""'
SCRIPT = 'require "fileinto";\r\nif header :contains "subject" "spam" {\r\n  fileinto "Junk";\r\n}\r\n'


def read_greeting(client):
    lines, status = client.response()
    assert (lines, status) == (CAPS, GREETING)


handler, scripts_root, open_session = session_fixtures(make_handler, FakeServer, start_session,
                                                       read_greeting)


@pytest.fixture
def scripts(handler):
    return handler.scripts


def b64(text):
    return base64.b64encode(text.encode()).decode()


# -- greeting, CAPABILITY, STARTTLS ------------------------------------------------------------

def test_capability_repeats_the_greeting(open_session):
    c = open_session()
    assert c.cmd("CAPABILITY") == (CAPS, 'OK "CAPABILITY completed"')


def test_off_loopback_without_tls_no_mechanism_is_offered(open_session):
    c = open_session(peer="192.0.2.7", greet=False)
    lines, status = c.response()
    assert lines[1] == '"SASL" ""' and status == GREETING
    c.expect(f'AUTHENTICATE "PLAIN" "{plain()}"',
             'NO (ENCRYPT-NEEDED) "plaintext authentication needs TLS (use STARTTLS)"')
    c.expect("STARTTLS", 'NO "STARTTLS not available: no TLS certificate configured"')


def test_plaintext_allowed_by_config(open_session):
    c = open_session(peer="192.0.2.7", policy=SessionPolicy(allow_plaintext_auth=True))
    c.login()


@pytest.fixture(scope="module")
def tls_pair():
    return tls_contexts("mail.example.test")


def test_starttls_sends_the_capabilities_again(open_session, tls_pair):
    server_ctx, client_ctx = tls_pair
    c = open_session(peer="192.0.2.7", ssl_context=server_ctx, greet=False)
    lines, status = c.response()
    assert '"STARTTLS"' in lines and '"SASL" ""' in lines
    # a command pipelined after STARTTLS is discarded, never run (no injection)
    c.send(f'STARTTLS\r\nAUTHENTICATE "PLAIN" "{plain()}"\r\n')
    assert c.response() == ([], 'OK "begin TLS negotiation now"')
    c.starttls(client_ctx)
    lines, status = c.response()        # RFC 5804 2.2: unasked, right after the handshake
    assert status == 'OK "TLS negotiation successful"'
    assert lines == CAPS                # PLAIN and LOGIN now, STARTTLS no more
    c.expect("STARTTLS", 'NO "TLS is already active"')
    c.login()
    c.expect("NOOP", 'OK "NOOP completed"')


# -- AUTHENTICATE --------------------------------------------------------------------------------

def test_plain_with_a_literal_initial_response_and_owner(open_session):
    c = open_session()
    response = plain()
    c.send(f'AUTHENTICATE "PLAIN" {{{len(response)}+}}\r\n{response}\r\n')
    assert c.response() == ([], f'OK "logged in as {ALICE}"')
    lines, _ = c.cmd("CAPABILITY")
    assert f'"OWNER" "{ALICE}"' in lines


def test_plain_without_initial_response_is_asked_for_it(open_session):
    c = open_session()
    c.send('AUTHENTICATE "PLAIN"\r\n')
    assert c.item() == '""'                     # the empty challenge, as a string
    response = plain()
    c.send(f"{{{len(response)}+}}\r\n{response}\r\n")
    assert c.response() == ([], f'OK "logged in as {ALICE}"')


def test_login_mechanism(open_session):
    c = open_session()
    c.send('AUTHENTICATE "LOGIN"\r\n')
    assert c.item() == f'"{b64("Username:")}"'
    c.send(f'"{b64(BOB)}"\r\n')
    assert c.item() == f'"{b64("Password:")}"'
    c.send(f'"{b64(PASSWORD)}"\r\n')
    assert c.response() == ([], f'OK "logged in as {BOB}"')


def test_cancel_and_malformed_answers(open_session):
    c = open_session()
    c.send('AUTHENTICATE "PLAIN"\r\n')
    assert c.item() == '""'
    c.send('"*"\r\n')
    assert c.response() == ([], 'NO "authentication cancelled"')
    c.send('AUTHENTICATE "PLAIN"\r\n')
    c.item()
    c.send("bare-word\r\n")
    assert c.response() == ([], 'NO "malformed SASL response: a SASL response takes one string"')
    c.expect('AUTHENTICATE "PLAIN" "not base64!"', 'NO "malformed SASL response: invalid base64"')
    c.expect('AUTHENTICATE "CRAM-MD5"', 'NO "unsupported SASL mechanism CRAM-MD5"')
    c.login()
    c.expect(f'AUTHENTICATE "PLAIN" "{plain()}"', 'NO "AUTHENTICATE is not valid once authenticated"')


def test_failures_go_through_the_one_login_path(open_session, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="clevermail")
    delays = fakes.failure_delays(monkeypatch)
    throttle = AuthThrottle(limit=2, window=300)
    c = open_session(throttle=throttle, auth_failure_delay=0.5)
    c.expect(f'AUTHENTICATE "PLAIN" "{plain(password="wrong")}"', 'NO "authentication failed"')
    # a right password with a foreign authzid fails the same way
    c.expect(f'AUTHENTICATE "PLAIN" "{plain(authzid=BOB)}"', 'NO "authentication failed"')
    assert delays == [0.5, 0.5]
    assert fakes.auth_failure_lines(caplog) == [f"auth failed user='{ALICE}' (PLAIN)"] * 2
    c.expect(f'AUTHENTICATE "PLAIN" "{plain()}"', 'NO (TRYLATER) "too many failed logins, try again later"')
    assert PASSWORD not in caplog.text and plain() not in caplog.text


def test_secrets_never_logged(open_session, caplog):
    caplog.set_level(logging.DEBUG, logger="clevermail")
    c = open_session()
    c.send('AUTHENTICATE "PLAIN"\r\n')
    c.item()
    response = plain()
    c.send(f'"{response}"\r\n')
    c.response()
    c.cmd("UNAUTHENTICATE")
    c.login()
    assert "auth ok user=alice@example.test (PLAIN)" in caplog.text
    assert response not in caplog.text and PASSWORD not in caplog.text


# -- state -----------------------------------------------------------------------------------------

def test_script_commands_need_authentication_and_unauthenticate_goes_back(open_session):
    c = open_session()
    for command in ("LISTSCRIPTS", 'GETSCRIPT "a"', 'SETACTIVE "a"', "UNAUTHENTICATE"):
        verb = command.split()[0]
        c.expect(command, f'NO "{verb} needs authentication: AUTHENTICATE first"')
    c.login()
    c.expect("LISTSCRIPTS", 'OK "LISTSCRIPTS completed"')
    c.expect("STARTTLS", 'NO "STARTTLS is not valid once authenticated"')
    c.expect("UNAUTHENTICATE", 'OK "UNAUTHENTICATE completed"')
    c.expect("LISTSCRIPTS", 'NO "LISTSCRIPTS needs authentication: AUTHENTICATE first"')
    assert c.cmd("CAPABILITY") == (CAPS, 'OK "CAPABILITY completed"')     # no OWNER
    c.login(BOB)


def test_noop_tag_and_logout(open_session):
    c = open_session()
    c.expect('NOOP "STARTTLS-RESYNC-CAPA"', 'OK (TAG "STARTTLS-RESYNC-CAPA") "NOOP completed"')
    c.expect('NOOP {3+}\r\na"b', 'OK (TAG "a\\"b") "NOOP completed"')
    c.expect("LOGOUT", 'OK "logout completed"')
    assert c.at_eof()


# -- scripts ---------------------------------------------------------------------------------------

def test_put_list_get_activate_delete(open_session, scripts):
    c = open_session()
    c.login()
    c.put("spam", SCRIPT)
    c.put("vacation", 'require "vacation";\r\nvacation :days 3 "Away";\r\n')
    assert c.cmd("LISTSCRIPTS") == (['"spam"', '"vacation"'], 'OK "LISTSCRIPTS completed"')
    assert c.cmd('GETSCRIPT "spam"') == ([f"{{{len(SCRIPT)}}}\r\n{SCRIPT}"], 'OK "GETSCRIPT completed"')
    c.expect('SETACTIVE "spam"', 'OK "SETACTIVE completed"')
    assert scripts.active(ALICE) == ("spam", SCRIPT)
    assert c.cmd("LISTSCRIPTS")[0] == ['"spam" ACTIVE', '"vacation"']
    c.expect('DELETESCRIPT "spam"', "NO (ACTIVE) \"script 'spam' is active\"")
    c.expect('SETACTIVE "vacation"', 'OK "SETACTIVE completed"')
    c.expect('DELETESCRIPT "spam"', 'OK "DELETESCRIPT completed"')
    c.expect('SETACTIVE ""', 'OK "SETACTIVE completed"')       # deactivates
    assert scripts.active(ALICE) is None
    assert c.cmd("LISTSCRIPTS")[0] == ['"vacation"']
    c.expect('GETSCRIPT "spam"', "NO (NONEXISTENT) \"no script named 'spam'\"")
    c.expect('DELETESCRIPT "spam"', "NO (NONEXISTENT) \"no script named 'spam'\"")
    c.expect('SETACTIVE "spam"', "NO (NONEXISTENT) \"no script named 'spam'\"")
    assert scripts.list(BOB) == []                              # each user their own


def test_putscript_replaces_and_keeps_utf8_names(open_session, scripts):
    c = open_session()
    c.login()
    c.put("filtre à spam", "keep;\r\n")
    c.put("filtre à spam", "discard;\r\n")
    assert scripts.get(ALICE, "filtre à spam") == "discard;\r\n"
    assert c.cmd("LISTSCRIPTS")[0] == ['"filtre à spam"']


def test_rename(open_session, scripts):
    c = open_session()
    c.login()
    c.put("a", "keep;\r\n")
    c.put("b", "keep;\r\n")
    c.expect('SETACTIVE "a"', 'OK "SETACTIVE completed"')
    c.expect('RENAMESCRIPT "a" "b"', "NO (ALREADYEXISTS) \"a script named 'b' exists\"")
    c.expect('RENAMESCRIPT "x" "y"', "NO (NONEXISTENT) \"no script named 'x'\"")
    c.expect('RENAMESCRIPT "a" "c"', 'OK "RENAMESCRIPT completed"')
    assert scripts.list(ALICE) == [("b", False), ("c", True)]     # the active one stays active


def test_syntax_errors_say_their_line_and_nothing_is_stored(open_session, scripts):
    c = open_session()
    c.login()
    bad = 'require "fileinto";\r\nif header :contains "subject" "x" {\r\n  fileinot "Junk";\r\n}\r\n'
    data = bad.encode()
    c.send(f'PUTSCRIPT "bad" {{{len(data)}+}}\r\n'.encode() + data + b"\r\n")
    lines, status = c.response()
    assert lines == [] and status.startswith('NO "line 3: ') and "fileinot" in status
    assert scripts.list(ALICE) == []
    c.send(f"CHECKSCRIPT {{{len(data)}+}}\r\n".encode() + data + b"\r\n")
    assert c.response() == (lines, status)
    c.send(f"CHECKSCRIPT {{{len(SCRIPT)}+}}\r\n{SCRIPT}\r\n")
    assert c.response() == ([], 'OK "the script is valid"')
    c.send('PUTSCRIPT "r" "fileinto \\"Junk\\";"\r\n')
    lines, status = c.response()
    assert status.startswith('NO "line 1: ') and "fileinto" in status
    assert scripts.list(ALICE) == []
    # a user's script errors never count toward the error limit
    for _ in range(25):
        c.send(f"CHECKSCRIPT {{{len(data)}+}}\r\n".encode() + data + b"\r\n")
        assert c.response()[1].startswith('NO "line 3: ')
    c.expect("NOOP", 'OK "NOOP completed"')


def test_bad_script_names(open_session):
    c = open_session()
    c.login()
    c.expect('PUTSCRIPT "" "keep;"', 'NO "empty script name"')
    c.expect('PUTSCRIPT {3+}\r\na\tb "keep;"', 'NO "control character in script name"')
    c.expect(f'HAVESPACE "{"n" * 200}" 10', 'NO "script name longer than 128 characters"')


def test_havespace_and_quotas(open_session):
    c = open_session()
    c.login()
    c.expect('HAVESPACE "a" 100', 'OK "PUTSCRIPT would succeed"')
    c.expect(f'HAVESPACE "a" {MAX_SIZE + 1}', f'NO (QUOTA/MAXSIZE) "script of {MAX_SIZE + 1} octets is '
                                             f'larger than the limit of {MAX_SIZE} octets"')
    for name in ("a", "b", "c"):
        c.put(name, "keep;\r\n")
    c.expect('HAVESPACE "d" 10', 'NO (QUOTA/MAXSCRIPTS) "no more than 3 scripts"')
    c.expect('HAVESPACE "c" 10', 'OK "PUTSCRIPT would succeed"')      # a replacement fits
    c.put("d", "keep;\r\n", 'NO (QUOTA/MAXSCRIPTS) "no more than 3 scripts"')


def test_a_script_over_the_size_limit_is_dropped_and_the_session_goes_on(open_session, scripts):
    c = open_session()
    c.login()
    big = b"# " + b"x" * MAX_SIZE + b"\r\n"
    c.send(f'PUTSCRIPT "big" {{{len(big)}+}}\r\n'.encode() + big + b"\r\nNOOP\r\n")
    assert c.response() == ([], f'NO (QUOTA/MAXSIZE) "script of {len(big)} octets is larger than '
                                f'the limit of {MAX_SIZE} octets"')
    assert c.response() == ([], 'OK "NOOP completed"')
    assert scripts.list(ALICE) == []


def test_the_literals_of_a_refused_command_are_never_read_as_commands(open_session, scripts):
    c = open_session()
    c.login()
    c.put("keep", "keep;\r\n")
    c.expect('SETACTIVE "keep"', 'OK "SETACTIVE completed"')
    inside = 'SETACTIVE ""\r\nLOGOUT\r\n'
    c.send(f"FROBNICATE {{{len(inside)}+}}\r\n{inside}\r\n")
    assert c.response() == ([], 'NO "unknown command FROBNICATE"')
    c.send(f'PUTSCRIPT "bad\\name" {{{len(inside)}+}}\r\n{inside}\r\n')
    assert c.response() == ([], R_BAD_ESCAPE)
    c.expect("NOOP", 'OK "NOOP completed"')
    assert scripts.active(ALICE) == ("keep", "keep;\r\n")


def test_a_literal_too_large_to_drop_ends_the_session(open_session):
    c = open_session(message_size=100000)
    c.login()
    c.send('PUTSCRIPT "big" {99999999+}\r\n')
    lines, status = c.response()
    assert status.startswith('BYE "command of more than ')
    assert c.at_eof()


def test_many_literals_in_one_command_are_bounded(open_session):
    """Each literal is under the limit; together they would make a command without end."""
    c = open_session()
    max_command = MAX_SIZE + 4 * 8192
    c.send("NOOP" + " {2000+}\r\n" + "x" * 2000 + "".join(" {2000+}\r\n" + "x" * 2000 for _ in range(19)))
    assert c.response() == ([], f'BYE "command of more than {max_command} octets: closing the connection"')
    assert c.at_eof()


# -- hostile input ---------------------------------------------------------------------------------

def test_garbage_gets_no_and_too_many_errors_end_the_session(open_session):
    c = open_session(errors_per_session=6)
    c.expect("FROB", 'NO "unknown command FROB"')
    c.expect('GETSCRIPT "unterminated', 'NO "unterminated quoted string"')
    c.expect("\x01\x02", 'NO "unknown command ?"')
    c.send(b"NOOP \xff\r\n")
    assert c.response() == ([], "NO \"invalid character '\xff' in command\"")
    c.send("X" * 9000 + "\r\n")
    assert c.response() == ([], 'NO "command line too long"')
    c.expect("FROB", 'NO "unknown command FROB"')       # the sixth
    assert c.response() == ([], 'BYE "too many errors, closing the connection"')
    assert c.at_eof()
