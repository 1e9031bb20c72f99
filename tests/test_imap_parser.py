"""Tests for clevermail.imap.parser's parse_command (RFC 3501 section 9 tokens, RFC 7888
LITERAL+): tags and command names, atoms, quoted strings, lists, literals, and random
lines.  The value helpers (astring, quote, flag lists, dates) are in
test_imap_parser_values.py."""

import random

import pytest

from clevermail.imap import parser as parser_mod
from clevermail.imap.parser import (Atom, Command, LiteralTooLarge, ParseError, astring, flag_list,
                                    parse_command, parse_datetime)
from clevermail.imap.replies import IMAPBad

from imap_parser_helpers import FakeMore, args, parse


def error(line, *chunks, max_literal=1000):
    with pytest.raises(ParseError) as info:
        parse(line, *chunks, max_literal=max_literal)
    return info.value


# --- tag and command name -------------------------------------------------
def test_simple_command():
    cmd = parse(b"a001 noop")
    assert cmd == Command("a001", "NOOP", [])
    assert isinstance(cmd.tag, str) and isinstance(cmd.name, str)


def test_name_is_upper_cased_args_keep_case():
    cmd = parse(b"A1 select InBox")
    assert cmd.name == "SELECT"
    assert cmd.args == ["InBox"]
    assert type(cmd.args[0]) is Atom


def test_tag_may_contain_bracket_and_punctuation():
    assert parse(b"a]1.x-y NOOP").tag == "a]1.x-y"


@pytest.mark.parametrize("line, text", [
    (b"", "Missing tag"),
    (b" NOOP", "Missing tag"),
    (b"+ NOOP", "Invalid tag"),
    (b"a+b NOOP", "Invalid tag"),
    (b"* NOOP", "Invalid tag"),
    (b"a%1 NOOP", "Invalid tag"),
    (b"a\\1 NOOP", "Invalid tag"),
    (b"a(1 NOOP", "Invalid tag"),
    (b'"a1" NOOP', "Invalid tag"),
    (b"{3}", "Invalid tag"),
    (b"t\xc3\xa4g NOOP", "Invalid tag"),
    (b"a\x01 NOOP", "Invalid tag"),
])
def test_bad_tag_has_no_tag(line, text):
    err = error(line)
    assert err.tag is None
    assert err.text == text
    assert isinstance(err, IMAPBad)
    assert err.reply("*") == f"* BAD {text}\r\n".encode()


@pytest.mark.parametrize("line", [b"A1", b"A1 ", b"A1  ", b"A1 (NOOP)", b'A1 "NOOP"'])
def test_missing_command_keeps_tag(line):
    err = error(line)
    assert err.tag == "A1"
    assert err.text == "Missing command"


def test_invalid_command_name():
    err = error(b'A1 NOOP"x"')
    assert (err.tag, err.text) == ("A1", "Invalid command name")


def test_uid_command_args():
    cmd = parse(b"A2 UID FETCH 1:* (FLAGS)")
    assert cmd.name == "UID"
    assert cmd.args == ["FETCH", "1:*", ["FLAGS"]]


# --- atoms ------------------------------------------------------------------
@pytest.mark.parametrize("atom", [
    "\\Seen", "$Forwarded", "1:*", "2,4:7,9", "*", "%", "INBOX.*", "BODY[]",
    "BODY.PEEK[1.2.MIME]", "RFC822.SIZE", "BODY[HEADER.FIELDS (FROM TO)]<0.100>",
    "BODY.PEEK[HEADER.FIELDS.NOT (Subject Date)]", "BODY[]<0.2048>",
    "[Gmail]/Sent", "foo]bar", "NIL", "~peter/&U,BTFw-", "BINARY.PEEK[1]",
])
def test_single_atom_forms(atom):
    got = args(b"A1 X " + atom.encode())
    assert got == [atom]
    assert type(got[0]) is Atom


def test_section_with_spaces_followed_by_more_args():
    assert args(b"A1 FETCH 1 (UID BODY[HEADER.FIELDS (FROM TO)] FLAGS)") == [
        "1", ["UID", "BODY[HEADER.FIELDS (FROM TO)]", "FLAGS"]]


def test_section_with_quoted_names_is_one_atom():
    assert args(b'A1 FETCH 1 BODY[HEADER.FIELDS ("X-Y" TO)] UID') == [
        "1", 'BODY[HEADER.FIELDS ("X-Y" TO)]', "UID"]


def test_section_with_control_or_8bit_is_error():
    assert error(b"A1 FETCH 1 BODY[HEADER\t]").text == "Invalid character in fetch section"
    assert error(b"A1 FETCH 1 BODY[HEADER\x01]").text == "Invalid character in fetch section"
    assert error(b"A1 FETCH 1 BODY[\xc3\xa4]").text == "Invalid character in fetch section"


def test_many_unclosed_brackets_parse_in_linear_time(monkeypatch):
    # One "]"-search per line, not one per "[" (each to the end of the line:
    # quadratic, minutes for these lines).
    searches = []
    real = parser_mod.section_end
    monkeypatch.setattr(parser_mod, "section_end", lambda *a: searches.append(a[1]) or real(*a))
    assert len(args(b"A1 X " + b"a[ " * 30000)) == 30000
    assert len(searches) == 1
    assert args(b"A1 X B" + b"[" * 60000) == ["B" + "[" * 60000]
    assert len(searches) == 2


def test_bracket_at_atom_start_is_plain():
    # "[" opens a section only after atom characters; here it is a name char.
    assert args(b"A1 LIST [Gmail] *") == ["[Gmail]", "*"]


def test_unclosed_bracket_is_a_plain_atom_char():
    # "[" is a valid ATOM-CHAR (RFC 3501): without a "]" the atom ends at SP.
    assert args(b"A1 SELECT Foo[Bar baz") == ["Foo[Bar", "baz"]


def test_sequence_set_like_atoms():
    assert args(b"A1 STORE 1,3:5,7:* +FLAGS.SILENT (\\Deleted)") == [
        "1,3:5,7:*", "+FLAGS.SILENT", ["\\Deleted"]]


def test_atom_then_quote_without_space_is_error():
    assert error(b'A1 X abc"def"').text == "Missing space between arguments"


def test_8bit_atom_is_error():
    err = error(b"A1 SELECT Entw\xc3\xbcrfe")
    assert err.text == "8-bit character outside a quoted string or literal"
    assert err.tag == "A1"


def test_control_char_is_error():
    assert error(b"A1 X a\tb").text == "Invalid control character in command"
    assert error(b"A1 X \x7f").text == "Invalid control character in command"


# --- quoted strings ---------------------------------------------------------
def test_quoted_strings_are_bytes():
    got = args(b'A1 LOGIN "user" "p a s s"')
    assert got == [b"user", b"p a s s"]
    assert all(type(t) is bytes for t in got)


def test_quoted_escapes():
    assert args(rb'A1 X "a\"b\\c" ""') == [b'a"b\\c', b""]


def test_quoted_8bit_utf8_accepted():
    assert args('A1 SELECT "Entwürfe"'.encode()) == ["Entwürfe".encode()]


def test_quoted_keeps_parens_braces_and_tab():
    assert args(b'A1 X "(a) {3} [b]\tc"') == [b"(a) {3} [b]\tc"]


@pytest.mark.parametrize("line, text", [
    (b'A1 X "abc', "Unterminated quoted string"),
    (b'A1 X "abc\\', "Unterminated quoted string"),
    (b'A1 X "a\\nb"', "Invalid escape in quoted string"),
    (b'A1 X "a\rb"', "CR or LF in quoted string"),
    (b'A1 X "a\nb"', "CR or LF in quoted string"),
    (b'A1 X "a\x00b"', "NUL character in command"),
    (b'A1 X "a""b"', "Missing space between arguments"),
])
def test_quoted_errors(line, text):
    err = error(line)
    assert (err.tag, err.text) == ("A1", text)


# --- lists ------------------------------------------------------------------
def test_nested_lists():
    assert args(b"A1 X (a (b (c)) () d) e") == [["a", ["b", ["c"]], [], "d"], "e"]


def test_empty_list_and_list_types():
    got = args(b'A1 X () ("q" NIL)')
    assert got == [[], [b"q", "NIL"]]
    assert type(got[1]) is list and type(got[1][1]) is Atom


def test_search_style_parens():
    assert args(b'A1 SEARCH OR (FROM "a") (NOT SEEN) SINCE 1-Feb-1994') == [
        "OR", ["FROM", b"a"], ["NOT", "SEEN"], "SINCE", "1-Feb-1994"]


def test_extra_spaces_tolerated():
    assert args(b"A1 X  a   ( b  c ) ") == ["a", ["b", "c"]]


@pytest.mark.parametrize("line", [b"A1 X (a", b"A1 X ((a)", b"A1 X a)", b"A1 X (a))", b"A1 X )"])
def test_unbalanced_parens(line):
    assert error(line).text == "Unbalanced parenthesis"


def test_list_then_atom_without_space_is_error():
    assert error(b"A1 X (a)b").text == "Missing space between arguments"
    assert error(b"A1 X (a)(b)").text == "Missing space between arguments"


def test_depth_limit():
    assert args(b"A1 X " + b"(" * 100 + b")" * 100)  # deep but allowed
    assert error(b"A1 X " + b"(" * 101 + b")" * 101).text == "Lists nested too deeply"


# --- literals ---------------------------------------------------------------
def test_synchronizing_literal():
    more = FakeMore((b"fred", b" {11}"), (b"secret pass", b""))
    cmd = parse_command(b"A1 LOGIN {4}", more, 100)
    assert cmd.args == [b"fred", b"secret pass"]
    assert more.calls == [(4, True), (11, True)]


def test_non_synchronizing_literal():
    more = FakeMore((b"fred", b' "x"'))
    assert parse_command(b"A1 LOGIN {4+}", more, 100).args == [b"fred", b"x"]
    assert more.calls == [(4, False)]


def test_zero_length_literal():
    more = FakeMore((b"", b" NIL"))
    assert parse_command(b"A1 X {0}", more, 0).args == [b"", "NIL"]
    assert more.calls == [(0, True)]


def test_literal_inside_list_and_close_on_next_line():
    got = args(b"A1 X (a {3}", (b"b)c", b" d) e"))
    assert got == [["a", b"b)c", "d"], "e"]


def test_literal_with_crlf_and_8bit_content():
    assert args(b"A1 APPEND INBOX {7+}", (b"\xc3\xa4\r\nx\r\n", b"")) == [
        "INBOX", b"\xc3\xa4\r\nx\r\n"]


def test_append_with_flags_date_and_literal():
    more = FakeMore((b"Subject: hi\r\n\r\nbody", b""))
    cmd = parse_command(b'A3 APPEND Drafts (\\Seen) "17-Jul-1996 02:44:25 -0700" {19}',
                        more, 100)
    assert cmd.args == ["Drafts", ["\\Seen"], b"17-Jul-1996 02:44:25 -0700",
                        b"Subject: hi\r\n\r\nbody"]


def test_literal_exactly_max_is_allowed():
    assert args(b"A1 X {5}", (b"12345", b"")) == [b"12345"]


@pytest.mark.parametrize("marker, sync", [(b"{6}", True), (b"{6+}", False)])
def test_literal_too_large_does_not_call_more(marker, sync):
    err = error(b"A9 APPEND INBOX " + marker, max_literal=5)
    assert type(err) is LiteralTooLarge
    assert (err.tag, err.size, err.synchronizing) == ("A9", 6, sync)
    assert err.reply(err.tag) == b"A9 BAD [TOOBIG] Literal too large\r\n"


def test_second_literal_too_large_after_first_read():
    more = FakeMore((b"ab", b" {9}"))
    with pytest.raises(LiteralTooLarge) as info:
        parse_command(b"A1 X {2}", more, 5)
    assert more.calls == [(2, True)]
    assert info.value.size == 9


def test_huge_literal_size_is_too_large():
    err = error(b"A1 X {99999999999999999999}", max_literal=10)
    assert type(err) is LiteralTooLarge and err.size == 10 ** 20 - 1


@pytest.mark.parametrize("line, text", [
    (b"A1 X {5} Y", "Literal not at end of line"),
    (b"A1 X {5}Y", "Literal not at end of line"),
    (b"A1 X {5} ", "Literal not at end of line"),
    (b"A1 X {}", "Invalid literal size"),
    (b"A1 X {+}", "Invalid literal size"),
    (b"A1 X {-1}", "Invalid literal size"),
    (b"A1 X {1a}", "Invalid literal size"),
    (b"A1 X { 5}", "Invalid literal size"),
    (b"A1 X {5", "Invalid literal size"),
    (b"A1 X {5++}", "Invalid literal size"),
    (b"A1 X {" + b"9" * 21 + b"}", "Invalid literal size"),
    (b"A1 X abc{5}", "Missing space between arguments"),
])
def test_literal_syntax_errors(line, text):
    err = error(line)
    assert (type(err), err.tag, err.text) == (ParseError, "A1", text)


def test_short_literal_from_more_is_error():
    assert error(b"A1 X {5}", (b"abc", b"")).text == "Literal data shorter than announced"


def test_nul_in_literal_or_continuation_is_error():
    assert error(b"A1 X {3}", (b"a\x00b", b"")).text == "NUL character in command"
    assert error(b"A1 X {1}", (b"a", b" b\x00")).text == "NUL character in command"


def test_error_on_continuation_line():
    err = error(b"A1 X {1}", (b"a", b' "open'))
    assert (err.tag, err.text) == ("A1", "Unterminated quoted string")


def test_exceptions_from_more_pass_through():
    def more(n, sync):
        raise ConnectionError("gone")
    with pytest.raises(ConnectionError):
        parse_command(b"A1 X {1}", more, 10)


# --- fuzz -------------------------------------------------------------------
_FUZZ_PIECES = [b"A1", b" ", b"(", b")", b'"', b"\\", b"{", b"}", b"{3}", b"{0+}", b"+",
                b"[", b"]", b"<0.5>", b"BODY", b"FETCH", b"1:*", b"\x00", b"\r", b"\n",
                b"\xc3\xa4", b"\xff", b"\t", b"NIL", b"a", b"9", b"{99999}", b"*", b"%"]


_FUZZ_TOKENS = [b"a", b"1:*", b"BODY[HEADER.FIELDS (A B)]<0.5>", b'"q\\"x"', b"()",
                b"(a (b))", b"\\Seen", b'"17-Jul-1996 02:44:25 -0700"', b"1-Feb-1994",
                b'"\xc3\xa4"', b"NIL"]


def _fuzz_line(rng):
    """Raw noise, a soup of grammar pieces, or near-valid token sequences."""
    mode = rng.random()
    if mode < 0.2:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(30)))
    if mode < 0.6:
        return b"".join(rng.choice(_FUZZ_PIECES) for _ in range(rng.randrange(1, 20)))
    line = b" ".join(rng.choice(_FUZZ_TOKENS) for _ in range(rng.randrange(1, 6)))
    return line + rng.choice([b"", b"", b" {2}", b" {1+}", b" (x {0}"])


def test_fuzz_only_parse_errors():
    rng = random.Random(3501)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(2000):
        budget = [3]

        def more(n, synchronizing):
            budget[0] -= 1
            nxt = _fuzz_line(rng) if budget[0] > 0 else b")"
            return bytes(rng.randrange(256) for _ in range(n)), nxt

        line = _fuzz_line(rng)
        if rng.random() < 0.5:
            line = b"T1 CMD " + line
        try:
            cmd = parse_command(line, more, 64)
        except ParseError as exc:
            outcomes["error"] += 1
            assert exc.tag is None or isinstance(exc.tag, str)
            assert exc.reply(exc.tag or "*").endswith(b"\r\n")
            continue
        outcomes["ok"] += 1
        for tok in cmd.args:
            for helper in (astring, parse_datetime, flag_list):
                try:
                    helper(tok)
                except ParseError:
                    pass
    # The generator must exercise both paths for the test to mean anything.
    assert outcomes["ok"] > 100 and outcomes["error"] > 100
