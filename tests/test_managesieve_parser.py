"""Tests for clevermail.managesieve.parser (pure) and the strings of replies.py."""

import pytest

from clevermail.managesieve import parser, replies as R
from clevermail.managesieve.parser import Atom, LiteralTooLarge, parse_command, parse_string_line
from clevermail.managesieve.replies import SieveNo

GRAMMAR = {
    "CAPABILITY": parser.no_args,
    "NOOP": parser.optional_string,
    "GETSCRIPT": parser.name,
    "RENAMESCRIPT": parser.two_names,
    "PUTSCRIPT": parser.name_and_script,
    "CHECKSCRIPT": parser.script,
    "HAVESPACE": parser.name_and_number,
    "AUTHENTICATE": parser.sasl,
}


class Wire:
    """`more` over a list of byte chunks: each call takes n octets and one line."""

    def __init__(self, data=b""):
        self.data = data
        self.calls = []

    def __call__(self, n):
        self.calls.append(n)
        octets, self.data = self.data[:n], self.data[n:]
        assert len(octets) == n, "the test wire ran out"
        line, sep, self.data = self.data.partition(b"\n")
        return octets, line + sep


def parse(line, rest=b"", max_literal=1000):
    wire = Wire(rest)
    cmd = parse_command(line, GRAMMAR, wire, max_literal)
    assert wire.data == b"", "octets left unread"
    return cmd


def refused(line, rest=b"", max_literal=1000):
    with pytest.raises(SieveNo) as info:
        parse(line, rest, max_literal)
    return info.value.error.text


# -- verbs and the simple kinds ---------------------------------------------------------------

def test_verbs_are_case_insensitive_and_take_their_kind():
    assert parse(b"capability\r\n") == ("CAPABILITY", ())
    assert parse(b"Noop\r\n") == ("NOOP", (None,))
    assert parse(b'NOOP "STARTTLS-RESYNC-CAPA"\r\n') == ("NOOP", ("STARTTLS-RESYNC-CAPA",))
    assert parse(b'GETSCRIPT "my script"\n') == ("GETSCRIPT", ("my script",))    # bare LF tolerated
    assert parse(b'RENAMESCRIPT "a" "b"\r\n') == ("RENAMESCRIPT", ("a", "b"))
    assert parse(b'HAVESPACE "x" 4294967295\r\n') == ("HAVESPACE", ("x", 4294967295))


def test_unknown_and_empty_commands():
    assert refused(b"FROBNICATE\r\n") == "unknown command FROBNICATE"
    assert refused(b"\r\n") == "empty command"
    assert refused(b"   \r\n") == "empty command"
    assert refused(b"\xff\xfe\r\n") == "unknown command ?"
    assert refused(b'"CAPABILITY"\r\n') == 'unknown command "CAPABILITY"'


def test_argument_counts_and_kinds_are_checked():
    assert refused(b'CAPABILITY "x"\r\n') == "CAPABILITY takes no arguments"
    assert refused(b"GETSCRIPT\r\n") == "GETSCRIPT takes one script name"
    assert refused(b'GETSCRIPT "a" "b"\r\n') == "GETSCRIPT takes one script name"
    assert refused(b"GETSCRIPT name\r\n") == "GETSCRIPT: 'name' must be a string (quoted or literal)"
    assert refused(b'NOOP "a" "b"\r\n') == "NOOP takes at most one string"
    assert refused(b'PUTSCRIPT "a"\r\n') == "PUTSCRIPT takes a script name and a script"
    assert refused(b'HAVESPACE "a" 12x\r\n') == "HAVESPACE: invalid number '12x'"
    assert refused(b'HAVESPACE "a" 4294967296\r\n') == "HAVESPACE: invalid number '4294967296'"
    assert refused(b'HAVESPACE "a" "12"\r\n') == "HAVESPACE: invalid number '12'"
    assert refused(b'HAVESPACE "a"\r\n') == "HAVESPACE takes a script name and a size"


# -- quoted strings -------------------------------------------------------------------------------

def test_quoted_strings_escapes_and_utf8():
    assert parse(rb'GETSCRIPT "a\"b\\c"' + b"\r\n").args == ('a"b\\c',)
    assert parse('GETSCRIPT "räksmörgås ☃"\r\n'.encode()).args == ("räksmörgås ☃",)
    assert parse(b'GETSCRIPT ""\r\n').args == ("",)
    # extra spaces between arguments are tolerated
    assert parse(b'RENAMESCRIPT  "a"   "b"  \r\n').args == ("a", "b")


def test_malformed_quoted_strings():
    assert refused(b'GETSCRIPT "abc\r\n') == "unterminated quoted string"
    assert refused(rb'GETSCRIPT "a\nb"' + b"\r\n") == R.ERR_BAD_ESCAPE.text
    assert refused(b'GETSCRIPT "a\0b"\r\n') == "CR, LF or NUL in a quoted string"
    assert refused(b'GETSCRIPT "a\rb"\r\n') == "CR, LF or NUL in a quoted string"
    assert refused(b'GETSCRIPT "\xc3\x28"\r\n') == "string is not valid UTF-8"
    assert refused(b'GETSCRIPT "a"b\r\n') == "invalid character 'b' in command"


def test_quoted_strings_stop_at_1024_octets():
    assert parse(b'GETSCRIPT "' + b"x" * 1024 + b'"\r\n').args == ("x" * 1024,)
    assert refused(b'GETSCRIPT "' + b"x" * 1025 + b'"\r\n') == R.ERR_QUOTED_TOO_LONG.text
    # octets, not characters: 342 three-octet characters are 1026 octets
    assert refused(('GETSCRIPT "' + "☃" * 342 + '"\r\n').encode()) == R.ERR_QUOTED_TOO_LONG.text


# -- literals -------------------------------------------------------------------------------------

def test_literal_plus_and_the_rest_of_the_command_after_it():
    script = b'require "fileinto";\r\nfileinto "Junk";\r\n'
    cmd = parse(b'PUTSCRIPT "spam" {%d+}\r\n' % len(script), script + b"\r\n")
    assert cmd == ("PUTSCRIPT", ("spam", script.decode()))
    # a literal name, then a quoted script on the line after the literal's octets
    cmd = parse(b"PUTSCRIPT {4+}\r\n", b'spam "keep;"\r\n')
    assert cmd == ("PUTSCRIPT", ("spam", "keep;"))
    # two literals in a row
    cmd = parse(b"RENAMESCRIPT {1+}\r\n", b"a {2+}\r\nbc\r\n")
    assert cmd == ("RENAMESCRIPT", ("a", "bc"))


def test_synchronizing_form_is_read_as_non_synchronizing():
    """RFC 5804 has no continuation request: {n} from a client is read at once."""
    wire = Wire(b"keep;\r\n")
    assert parse_command(b"CHECKSCRIPT {5}\r\n", GRAMMAR, wire, 100) == ("CHECKSCRIPT", ("keep;",))
    assert wire.calls == [5]


def test_empty_literal_and_literal_octets_are_kept_exactly():
    assert parse(b"GETSCRIPT {0+}\r\n", b"\r\n").args == ("",)
    octets = b"line one\nline two\r\n\"quoted\" {3+}\r\n"
    assert parse(b"CHECKSCRIPT {%d+}\r\n" % len(octets), octets + b"\r\n").args == (octets.decode(),)


def test_malformed_literals():
    assert refused(b"GETSCRIPT {abc+}\r\n") == R.ERR_BAD_LITERAL.text
    assert refused(b"GETSCRIPT {5++}\r\n") == R.ERR_BAD_LITERAL.text
    assert refused(b"GETSCRIPT {5+} x\r\n") == R.ERR_BAD_LITERAL.text
    assert refused(b"GETSCRIPT {-5+}\r\n") == R.ERR_BAD_LITERAL.text
    assert refused(b"GETSCRIPT {12345678901+}\r\n") == R.ERR_BAD_LITERAL.text
    assert refused(b"GETSCRIPT {4294967296+}\r\n") == R.ERR_BAD_LITERAL.text     # 2**32: no number
    with pytest.raises(SieveNo) as info:
        parse_command(b"CHECKSCRIPT {2+}\r\n", GRAMMAR, Wire(b"\xc3\x28\r\n"), 100)
    assert info.value.error.text == "string is not valid UTF-8"


def test_a_literal_over_the_limit_is_refused_before_any_octet_is_read():
    wire = Wire()
    with pytest.raises(LiteralTooLarge) as info:
        parse_command(b'PUTSCRIPT "big" {1001+}\r\n', GRAMMAR, wire, 1000)
    exc = info.value
    assert wire.calls == []
    assert (exc.size, exc.verb, exc.error.code) == (1001, "PUTSCRIPT", "QUOTA/MAXSIZE")
    assert exc.reply == b'NO (QUOTA/MAXSIZE) "script of 1001 octets is larger than the limit of 1000 octets"\r\n'
    assert not exc.counts
    with pytest.raises(LiteralTooLarge) as info:
        parse_command(b"GETSCRIPT {1001+}\r\n", GRAMMAR, wire, 1000)
    assert info.value.error.code is None and info.value.counts
    assert info.value.error.text == "string of 1001 octets is too long (at most 1000)"


def test_literal_size():
    assert parser.literal_size(b"abc {12+}\r\n") == 12
    assert parser.literal_size(b"{0}\n") == 0
    assert parser.literal_size(b"abc {12+} x\r\n") is None
    assert parser.literal_size(b"abc {4294967295+}\r\n") == 4294967295
    assert parser.literal_size(b"abc {4294967296+}\r\n") is None        # malformed: nothing follows
    assert parser.literal_size(b"abc {99999999999}\r\n") is None
    assert parser.literal_size(b"\r\n") is None


def test_a_refusal_names_the_literal_still_on_its_way():
    """Its octets must be dropped, never read as commands."""
    def pending(line, rest=b""):
        with pytest.raises(SieveNo) as info:
            parse_command(line, GRAMMAR, Wire(rest), 1000)
        return info.value.pending

    assert pending(b"FROB {12+}\r\n") == 12
    assert pending(b'PUTSCRIPT "a\\x" {5+}\r\n') == 5               # a bad escape first
    assert pending(b"PUTSCRIPT {1+}\r\n", b'\xff {7+}\r\n') == 7       # on the line after a literal
    assert pending(b'GETSCRIPT "a" "b"\r\n') is None
    assert pending(b"GETSCRIPT {1+}\r\n", b'a "b"\r\n') is None       # every literal read

    def refusing_more(n):
        raise SieveNo(R.ERR_LINE_TOO_LONG)
    with pytest.raises(SieveNo) as info:
        parse_command(b"CHECKSCRIPT {5+}\r\n", GRAMMAR, refusing_more, 1000)
    assert info.value.pending is None          # `more` took the octets: nothing pending


# -- AUTHENTICATE and SASL answers ----------------------------------------------------------------

def test_sasl_kind():
    assert parse(b'AUTHENTICATE "plain"\r\n') == ("AUTHENTICATE", ("PLAIN", None))
    assert parse(b'AUTHENTICATE "PLAIN" "AGEAYg=="\r\n') == ("AUTHENTICATE", ("PLAIN", "AGEAYg=="))
    assert parse(b'AUTHENTICATE "PLAIN" {8+}\r\n', b"AGEAYg==\r\n") == ("AUTHENTICATE", ("PLAIN", "AGEAYg=="))
    assert parse(b"AUTHENTICATE PLAIN\r\n") == ("AUTHENTICATE", ("PLAIN", None))
    assert refused(b"AUTHENTICATE\r\n") == "AUTHENTICATE takes a mechanism and an optional initial response"
    assert refused(b'AUTHENTICATE "PLAIN" AGEAYg\r\n') == \
        "AUTHENTICATE: the initial response must be a string (quoted or literal)"


def test_sasl_answer_lines():
    assert parse_string_line(b'"dXNlcg=="\r\n', Wire(), 100) == "dXNlcg=="
    assert parse_string_line(b'"*"\r\n', Wire(), 100) == "*"
    assert parse_string_line(b"{8+}\r\n", Wire(b"dXNlcg==\r\n"), 100) == "dXNlcg=="
    for bad in (b"dXNlcg==\r\n", b'"a" "b"\r\n', b"\r\n"):
        with pytest.raises(SieveNo):
            parse_string_line(bad, Wire(), 100)


def test_atoms_keep_their_text():
    assert repr(Atom("x")) == "Atom('x')"


# -- strings the server sends ------------------------------------------------------------------

def test_server_strings_are_quoted_or_literal():
    assert R.string("plain") == b'"plain"'
    assert R.string('a"b\\c') == b'"a\\"b\\\\c"'
    assert R.string("two\r\nlines") == b"{10}\r\ntwo\r\nlines"
    assert R.string("x" * 1025) == b"{1025}\r\n" + b"x" * 1025
    assert R.string("☃") == '"☃"'.encode()


def test_responses():
    assert R.ok() == b"OK\r\n"
    assert R.ok("done") == b'OK "done"\r\n'
    assert R.ok("done", R.tag_code("t1")) == b'OK (TAG "t1") "done"\r\n'
    assert R.response(R.NO, "gone", R.NONEXISTENT) == b'NO (NONEXISTENT) "gone"\r\n'
    assert R.ERR_UNKNOWN.format("X").wire == b'NO "unknown command X"\r\n'
    assert R.BYE_TIMEOUT.wire.startswith(b'BYE "')
