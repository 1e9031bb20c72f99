"""Tests for clevermail.imap.parser's value helpers (RFC 3501 section 9): astring, atoms
and quote_astring, quote and its round trip through the parser, section_end, flag
lists, and the date-time of APPEND (parse_datetime, format_datetime)."""

import pytest

from clevermail.imap.dates import format_datetime
from clevermail.imap.parser import (Atom, ParseError, astring, flag_list, is_atom, parse_datetime, quote,
                                    quote_astring, section_end)

from imap_parser_helpers import args


# --- helpers ----------------------------------------------------------------
def test_astring():
    assert astring(Atom("INBOX")) == "INBOX"
    assert type(astring(Atom("INBOX"))) is str
    assert astring("Entwürfe".encode()) == "Entwürfe"
    with pytest.raises(ParseError, match="UTF-8"):
        astring(b"\xff")
    with pytest.raises(ParseError):
        astring(["a"])


@pytest.mark.parametrize("text, expected", [
    ("17-Jul-1996 02:44:25 -0700", 837596665.0),
    (" 7-Jul-1996 02:44:25 -0700", 836732665.0),
    ("07-jul-1996 09:44:25 +0000", 836732665.0),
    ("7-JUL-1996 11:14:25 +0130", 836732665.0),
    ("01-Jan-1970 00:00:00 +0000", 0.0),
])
def test_parse_datetime(text, expected):
    assert parse_datetime(text.encode()) == expected
    assert parse_datetime(Atom(text)) == expected


@pytest.mark.parametrize("text", [
    "17-Jul-1996 02:44:25", "17-Foo-1996 02:44:25 -0700", "32-Jul-1996 02:44:25 -0700",
    "29-Feb-1997 02:44:25 -0700", "17-Jul-1996 24:00:00 -0700", "17-Jul-1996 02:60:25 -0700",
    "17-Jul-1996 02:44:25 -0760", "17-Jul-96 02:44:25 -0700", "17-Jul-1996  02:44:25 -0700",
    "١٧-Jul-1996 02:44:25 -0700", "", "17-Jul-1996 02:44:25 -0700x",
])
def test_parse_datetime_rejects(text):
    with pytest.raises(ParseError, match="Invalid date-time"):
        parse_datetime(text.encode())


def test_parse_datetime_rejects_list_and_8bit():
    with pytest.raises(ParseError):
        parse_datetime([b"17-Jul-1996 02:44:25 -0700"])
    with pytest.raises(ParseError):
        parse_datetime(b"17-J\xc3\xbcl-1996 02:44:25 -0700")


def test_format_datetime_round_trips_through_append_parsing():
    assert parse_datetime(format_datetime(1700000000).strip('"').encode()) == 1700000000


def test_is_atom_and_quote_astring():
    for text in ("From", "X-Spam-Flag", "a.b", "$Junk"):
        assert is_atom(text) and quote_astring(text) == text.encode()
    for text, quoted in (("", b'""'), ("X Y", b'"X Y"'), ("a]b", b'"a]b"'), ("a%", b'"a%"'),
                         ('say "hi"', b'"say \\"hi\\""'), ("back\\", b'"back\\\\"')):
        assert not is_atom(text) and quote_astring(text) == quoted


def test_is_atom_takes_exactly_the_strict_atom_chars():
    """RFC 3501 ATOM-CHAR: printable ASCII but ( ) { SP CTL % * " \\ ] (a regex scan now)."""
    from clevermail.imap.tokens import STRICT_ATOM_CHARS

    for code in range(0x300):
        char = chr(code)
        assert is_atom(char) == (code in STRICT_ATOM_CHARS), hex(code)
        assert is_atom("A" + char + "z") == (code in STRICT_ATOM_CHARS), hex(code)
    assert not is_atom("Subject\n") and not is_atom("\nSubject") and is_atom("A" * 1000)


def test_section_end_is_the_first_bracket_for_lines_and_atoms():
    assert section_end("HEADER.FIELDS (A B)]<0.5>") == 19
    assert section_end(b"A1 FETCH 1 BODY[TEXT] BODY[1]", 16) == 20
    assert section_end("no bracket") == -1


def test_quote():
    assert quote(None) == b"NIL"
    assert quote("") == b'""'
    assert quote("INBOX") == b'"INBOX"'
    assert quote('a"b\\c') == b'"a\\"b\\\\c"'
    assert quote(b"x y") == b'"x y"'
    assert quote("Entwürfe") == b"{9}\r\nEntw\xc3\xbcrfe"
    assert quote("a\r\nb") == b"{4}\r\na\r\nb"
    assert quote(b"a\x00") == b"{2}\r\na\x00"


def test_quote_round_trips_through_parser():
    for value in ['a"b\\c', "plain", ""]:
        assert args(b"A1 X " + quote(value)) == [value.encode()]


def test_flag_list():
    flags = [Atom("\\Seen"), Atom("$Forwarded"), Atom("Junk")]
    assert flag_list(flags) == ["\\Seen", "$Forwarded", "Junk"]
    assert flag_list(Atom("\\Deleted")) == ["\\Deleted"]
    assert flag_list([]) == []
    toks = args(b"A1 STORE 1 +FLAGS (\\Seen \\Answered $Label1)")
    assert flag_list(toks[2]) == ["\\Seen", "\\Answered", "$Label1"]
    assert all(type(f) is str for f in flag_list(toks[2]))


@pytest.mark.parametrize("tok", [
    [b"\\Seen"], b"\\Seen", [["\\Seen"]], ["\\"], ["*"], ["\\*"], ["a%"], ["a]"],
    ["a\\b"], ["BODY[1 2]"],
])
def test_flag_list_rejects(tok):
    tok = [Atom(t) if isinstance(t, str) else t for t in tok] if isinstance(tok, list) else tok
    with pytest.raises(ParseError):
        flag_list(tok)
