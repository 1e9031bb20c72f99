"""Tests for clevermail.pop3.parser and the pure parts of clevermail.pop3.replies.

The parser is given its grammar as the session gives it: read from the command table."""

import inspect

import pytest

from clevermail.pop3 import parser, replies
from clevermail.pop3.parser import Command
from clevermail.pop3.replies import ErrorReply, POP3Error
from clevermail.pop3.session import POP3Session

GRAMMAR = POP3Session.GRAMMAR


def parse_command(line):
    return parser.parse_command(line, GRAMMAR)


@pytest.mark.parametrize("line, expected", [
    (b"STAT\r\n", Command("STAT", ())),
    (b"stat\r\n", Command("STAT", ())),
    (b"NOOP\n", Command("NOOP", ())),
    (b"RSET\r\n", Command("RSET", ())),
    (b"QUIT\r\n", Command("QUIT", ())),
    (b"CAPA\r\n", Command("CAPA", ())),
    (b"STLS\r\n", Command("STLS", ())),
    (b"LIST\r\n", Command("LIST", (None,))),
    (b"LIST 3\r\n", Command("LIST", (3,))),
    (b"list 3 \r\n", Command("LIST", (3,))),
    (b"UIDL\r\n", Command("UIDL", (None,))),
    (b"UIDL 12\r\n", Command("UIDL", (12,))),
    (b"RETR 1\r\n", Command("RETR", (1,))),
    (b"DELE 007\r\n", Command("DELE", (7,))),
    (b"TOP 2 0\r\n", Command("TOP", (2, 0))),
    (b"TOP 2 10\r\n", Command("TOP", (2, 10))),
    (b"USER alice@example.test\r\n", Command("USER", ("alice@example.test",))),
    (b"PASS two words \r\n", Command("PASS", ("two words ",))),
    (b"PASS p\xc3\xa4ss\r\n", Command("PASS", ("p\u00e4ss",))),
    (b"AUTH\r\n", Command("AUTH", (None, None))),
    (b"AUTH plain\r\n", Command("AUTH", ("PLAIN", None))),
    (b"AUTH PLAIN AGFsaWNlAHB3\r\n", Command("AUTH", ("PLAIN", "AGFsaWNlAHB3"))),
    (b"AUTH PLAIN =\r\n", Command("AUTH", ("PLAIN", "="))),
])
def test_valid_commands(line, expected):
    assert parse_command(line) == expected


@pytest.mark.parametrize("line, reply", [
    (b"\r\n", b"-ERR empty command\r\n"),
    (b"FOO\r\n", b"-ERR unknown command FOO\r\n"),
    (b"APOP alice abc\r\n", b"-ERR unknown command APOP\r\n"),
    (b"STAT 1\r\n", b"-ERR STAT takes no argument\r\n"),
    (b"QUIT now\r\n", b"-ERR QUIT takes no argument\r\n"),
    (b"LIST 1 2\r\n", b"-ERR LIST takes at most one message number\r\n"),
    (b"LIST x\r\n", b"-ERR invalid message number: 'x'\r\n"),
    (b"LIST -1\r\n", b"-ERR invalid message number: '-1'\r\n"),
    (b"LIST  1\r\n", b"-ERR arguments must be separated by single spaces\r\n"),
    (b"RETR\r\n", b"-ERR RETR needs one message number\r\n"),
    (b"RETR +1\r\n", b"-ERR invalid message number: '+1'\r\n"),
    (b"RETR 12345678901\r\n", b"-ERR invalid message number: '12345678901'\r\n"),
    (b"RETR \xd9\xa3\r\n", b"-ERR invalid message number: '\xd9\xa3'\r\n"),
    (b"DELE\r\n", b"-ERR DELE needs one message number\r\n"),
    (b"TOP 1\r\n", b"-ERR TOP needs a message number and a line count\r\n"),
    (b"TOP 1 -1\r\n", b"-ERR invalid line count: '-1'\r\n"),
    (b"USER\r\n", b"-ERR USER takes exactly one name\r\n"),
    (b"USER a b\r\n", b"-ERR USER takes exactly one name\r\n"),
    (b"PASS\r\n", b"-ERR missing password\r\n"),
    (b"PASS \r\n", b"-ERR missing password\r\n"),
    (b"AUTH PLAIN a b\r\n", b"-ERR AUTH takes a mechanism and an optional initial response\r\n"),
    (b"USER \xff\r\n", b"-ERR command is not valid UTF-8\r\n"),
    (b"USER a\x00b\r\n", b"-ERR control characters in command\r\n"),
    (b"USER " + b"a" * 256 + b"\r\n", b"-ERR argument too long\r\n"),
])
def test_invalid_commands(line, reply):
    with pytest.raises(POP3Error) as info:
        parse_command(line)
    assert info.value.reply == reply
    assert info.value.counts


# One valid line per argument kind, and what each must parse to.
SAMPLES = {
    parser.no_args: ("", ()),
    parser.optional_message: (" 2", (2,)),
    parser.message: (" 2", (2,)),
    parser.message_and_lines: (" 2 5", (2, 5)),
    parser.name: (" alice", ("alice",)),
    parser.rest_of_line: (" pass word", ("pass word",)),
    parser.sasl: (" plain =", ("PLAIN", "=")),
}


def test_grammar_is_the_command_table():
    assert GRAMMAR == {verb: kind for verb, (_, _, kind) in POP3Session.COMMANDS.items()}
    assert set(GRAMMAR.values()) <= set(SAMPLES)     # every kind in use has a sample below


@pytest.mark.parametrize("verb", sorted(POP3Session.COMMANDS))
def test_every_verb_in_the_table_parses_into_its_method_arguments(verb):
    method, states, kind = POP3Session.COMMANDS[verb]
    rest, args = SAMPLES[kind]
    assert parse_command(f"{verb.lower()}{rest}\r\n".encode()) == Command(verb, args)
    # the arguments fit the method they are passed to
    inspect.signature(method).bind(None, *args)
    if kind is parser.optional_message or kind is parser.sasl:
        inspect.signature(method).bind(None, *parse_command(f"{verb}\r\n".encode()).args)


@pytest.mark.parametrize("verb", ["APOP", "FOO", "XTND", "LAST", "RPOP", "UIDL2"])
def test_a_verb_outside_the_table_is_unknown(verb):
    assert verb not in POP3Session.COMMANDS
    with pytest.raises(POP3Error) as info:
        parse_command(f"{verb} 1\r\n".encode())
    assert info.value.reply == f"-ERR unknown command {verb}\r\n".encode()
    assert info.value.error.text == f"unknown command {verb}"
    assert info.value.counts


def test_a_grammar_without_the_verb_refuses_it():
    # the parser knows no verb of its own: what it is given is all there is
    with pytest.raises(POP3Error) as info:
        parser.parse_command(b"STAT\r\n", {"NOOP": parser.no_args})
    assert info.value.reply == b"-ERR unknown command STAT\r\n"
    assert parser.parse_command(b"noop\r\n", {"NOOP": parser.no_args}) == Command("NOOP", ())


def test_error_replies_carry_rfc3206_codes():
    assert POP3Error(ErrorReply("x", replies.AUTH)).reply == b"-ERR [AUTH] x\r\n"
    assert POP3Error(ErrorReply("x", replies.SYS_TEMP)).reply == b"-ERR [SYS/TEMP] x\r\n"
    assert POP3Error(ErrorReply("x", replies.IN_USE, counts=False)).reply == b"-ERR [IN-USE] x\r\n"
    assert replies.ok() == b"+OK\r\n"
    assert replies.multiline("list", ["1 2", "2 3"]) == b"+OK list\r\n1 2\r\n2 3\r\n.\r\n"
    assert replies.multiline("none", []) == b"+OK none\r\n.\r\n"


def test_named_errors_fill_their_details_and_keep_code_and_count():
    gone = replies.ERR_MESSAGE_GONE.format(3)
    assert gone.wire == b"-ERR message 3 was deleted by another session\r\n"
    assert not gone.counts and replies.ERR_MESSAGE_GONE.counts is False
    assert replies.ERR_NEEDS_TLS.wire == b"-ERR [AUTH] plaintext authentication needs TLS (use STLS)\r\n"
    assert replies.ERR_INTERNAL.wire == b"-ERR [SYS/TEMP] internal server error, try again later\r\n"
    error = POP3Error(replies.ERR_IN_USE)
    assert error.error is replies.ERR_IN_USE
    assert (error.reply, error.counts) == (b"-ERR [IN-USE] maildrop already locked by another POP3 session\r\n",
                                           False)
