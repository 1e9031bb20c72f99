"""Tests for the fast paths of the IMAP command parser and what feeds it: the regex scans
of clevermail.imap.parser (tag, name, atom runs, quoted strings without escapes), the one
copy a literal takes (wire.LineReader.read into a tokens.Literal), and the one-range
path of clevermail.imap.seqset.  Each case sits at an edge between a fast path and the
byte-by-byte one, and says the tokens or the error text the grammar gives there."""

import socket

import pytest

from clevermail.imap.parser import Atom, Literal, Literal8, ParseError, parse_command
from clevermail.imap.replies import IMAPBad
from clevermail.imap.seqset import parse_sequence_set
from clevermail.wire import LineReader


def parse(line, *chunks, max_literal=1000):
    served = list(chunks)

    def more(n, synchronizing):
        return served.pop(0)
    return parse_command(line, more, max_literal)


def typed(tokens):
    """Tokens with their types spelled out (a Literal and a quoted string are both bytes)."""
    return [typed(t) if isinstance(t, list) else (type(t).__name__, t) for t in tokens]


@pytest.mark.parametrize("line, tokens", [
    (b"a1 X foo", [("Atom", "foo")]),
    (b"a1 X  foo   bar ", [("Atom", "foo"), ("Atom", "bar")]),
    (b"a1 X 1:* (FLAGS)", [("Atom", "1:*"), [("Atom", "FLAGS")]]),
    (b"a1 X ((a) b)", [[[("Atom", "a")], ("Atom", "b")]]),
    (b"a1 X BODY.PEEK[HEADER.FIELDS (A B)]<0.10> x",
     [("Atom", "BODY.PEEK[HEADER.FIELDS (A B)]<0.10>"), ("Atom", "x")]),
    (b"a1 X [a b]", [("Atom", "[a"), ("Atom", "b]")]),        # "[" opening an atom is plain
    (b"a1 X a[b c", [("Atom", "a[b"), ("Atom", "c")]),         # no "]" on the line
    (b"a1 X a[b] c[d]", [("Atom", "a[b]"), ("Atom", "c[d]")]),
    (b"a1 X ~x ~", [("Atom", "~x"), ("Atom", "~")]),            # "~" not before "{": an atom
    (b"a1 X \\Seen $Label1 %*", [("Atom", "\\Seen"), ("Atom", "$Label1"), ("Atom", "%*")]),
    (b'a1 X "" "a b" "(x)"', [("bytes", b""), ("bytes", b"a b"), ("bytes", b"(x)")]),
    (b'a1 X "a\\"b" "c\\\\d"', [("bytes", b'a"b'), ("bytes", b"c\\d")]),
    (b'a1 X "\xc3\xa9t\xc3\xa9"', [("bytes", "\u00e9t\u00e9".encode())]),
    (b'a1 X "x"y', None),
    (b"a1 X x(y)", None),
])
def test_tokens_at_the_edges_of_the_scans(line, tokens):
    if tokens is None:
        with pytest.raises(ParseError, match="Missing space between arguments") as exc:
            parse(line)
        assert exc.value.tag == "a1"
    else:
        assert typed(parse(line).args) == tokens


@pytest.mark.parametrize("line, text, tag", [
    (b"", "Missing tag", None),
    (b" X", "Missing tag", None),
    (b"a+1 X", "Invalid tag", None),
    (b"a\x01 X", "Invalid tag", None),
    (b"a1", "Missing command", "a1"),
    (b"a1 ", "Missing command", "a1"),
    (b"a1 X\x01", "Invalid command name", "a1"),
    (b"a1 X(", "Invalid command name", "a1"),
    (b'a1 X "\xff"', "Invalid UTF-8 in quoted string", "a1"),
    (b'a1 X "a\rb"', "CR or LF in quoted string", "a1"),
    (b'a1 X "abc', "Unterminated quoted string", "a1"),
    (b'a1 X "a\\', "Unterminated quoted string", "a1"),
    (b'a1 X "a\\b"', "Invalid escape in quoted string", "a1"),
    (b"a1 X a\xc3\xa9", "8-bit character outside a quoted string or literal", "a1"),
    (b"a1 X a)", "Unbalanced parenthesis", "a1"),
    (b"a1 X (a", "Unbalanced parenthesis", "a1"),
    (b"a1 X a[\x01]", "Invalid character in fetch section", "a1"),
])
def test_errors_at_the_edges_of_the_scans(line, text, tag):
    with pytest.raises(ParseError) as exc:
        parse(line)
    assert str(exc.value) == text
    assert exc.value.tag == tag


def test_tag_and_name_runs():
    cmd = parse(b"A]1.x uid fetch 1 (UID)")
    assert (cmd.tag, cmd.name) == ("A]1.x", "UID")
    assert typed(cmd.args) == [("Atom", "fetch"), ("Atom", "1"), [("Atom", "UID")]]


@pytest.mark.parametrize("served", [b"a\x00c", bytearray(b"a\x00c"), Literal(b"a\x00c")])
def test_a_literal_is_one_literal_whatever_more_returns(served):
    cmd = parse(b"a1 APPEND x ~{3}", (served, b" y"))
    assert typed(cmd.args) == [("Atom", "x"), ("Literal8", b"a\x00c"), ("Atom", "y")]
    cmd = parse(b"a1 APPEND x {3}", (bytes(served).replace(b"\x00", b"b"), b""))
    assert typed(cmd.args) == [("Atom", "x"), ("Literal", b"abc")]
    with pytest.raises(ParseError, match="NUL character in command"):
        parse(b"a1 APPEND x {3}", (served, b""))


def test_a_literal_read_by_the_session_is_not_copied_again():
    """The reader makes the Literal itself; the parser keeps that very object."""
    ours, theirs = socket.socketpair()
    try:
        theirs.sendall(b"hello world\r\nnext\r\n")
        reader = LineReader(ours, chunk=4)
        data = reader.read(5, Literal)
        assert type(data) is Literal and data == b"hello"
        assert reader.read(6) == b" world" and type(reader.read(0)) is bytes
        assert reader.readline(100) == b"\r\n"
        assert reader.readline(100) == b"next\r\n"
        kept = []

        def more(n, synchronizing):
            kept.append(reader.read(n, Literal))
            return kept[-1], b""
        theirs.sendall(b"abcdef")
        cmd = parse_command(b"a1 X {3}", more, 10)
        assert cmd.args[0] is kept[0] and kept[0] == b"abc"
        assert reader.read(3) == b"def"
    finally:
        ours.close()
        theirs.close()


@pytest.mark.parametrize("text, largest, members, max_number", [
    ("5", 9, [5], 5),
    ("5", 3, [], 5),
    ("7:2", 9, [2, 3, 4, 5, 6, 7], 7),
    ("*", 4, [4], 0),
    ("*", 0, [], 0),
    ("3:*", 2, [2], 3),            # "*" below the other end (RFC 3501 6.4.8)
    ("*:1", 3, [1, 2, 3], 1),
    ("4294967295", 2, [], 4294967295),
])
def test_one_range_sets(text, largest, members, max_number):
    seqset = parse_sequence_set(text)
    assert list(seqset.iter(largest)) == members
    assert list(seqset.numbers(largest)) == members
    assert [n for n in range(largest + 1) if seqset.contains(n, largest)] == members
    assert seqset.max_number() == max_number
    assert seqset.resolve(list(range(1, largest + 1)), largest) == members


@pytest.mark.parametrize("text", ["0", "05", "\u00b2", "\u0663", "4294967296", "1:", ":1", "1,", "a"])
def test_numbers_that_are_not_sequence_numbers(text):
    with pytest.raises(IMAPBad, match="Invalid sequence set"):
        parse_sequence_set(text)


def test_max_number_over_many_ranges():
    assert parse_sequence_set("3,9:*,*:12,2").max_number() == 12
    assert parse_sequence_set("*,*:*").max_number() == 0
    assert isinstance(parse(b"a1 X 1").args[0], Atom)
    assert Literal8.__mro__[1] is Literal


def test_a_line_parsed_before_is_parsed_alike_under_another_tag():
    """The memo of what follows the tag: same tokens, the new tag, new lists each time."""
    first = parse(b"a1 FETCH 2 (UID BODY.PEEK[HEADER.FIELDS (FROM)])")
    first.args[1].append("changed")
    first.args.append("changed")
    again = parse(b"b22 FETCH 2 (UID BODY.PEEK[HEADER.FIELDS (FROM)])")
    assert (again.tag, again.name) == ("b22", "FETCH")
    assert typed(again.args) == [("Atom", "2"), [("Atom", "UID"), ("Atom", "BODY.PEEK[HEADER.FIELDS (FROM)]")]]
    assert again.args[1] is not first.args[1]


def test_what_the_memo_never_answers():
    """Errors are raised again with the line's own tag; a line that may end in a literal
    asks for it every time."""
    for tag in ("a1", "b2"):
        with pytest.raises(ParseError, match="Missing space between arguments") as exc:
            parse(tag.encode() + b' X "x"y')
        assert exc.value.tag == tag
    for data in (b"one", b"two"):
        cmd = parse(b"a1 APPEND INBOX {3}", (data, b""))
        assert cmd.args == ["INBOX", data]
    with pytest.raises(ParseError, match="Invalid tag"):
        parse(b"a+ NOOP")
    parse(b"a1 NOOP")
    with pytest.raises(ParseError, match="Invalid tag"):
        parse(b"a+ NOOP")


def test_the_memo_is_bounded(monkeypatch):
    from clevermail.imap import parser
    monkeypatch.setattr(parser, "_memo", {})
    for n in range(parser._MEMO_SIZE * 2 + 5):
        assert parse(b"a1 FETCH %d (FLAGS)" % n).args[0] == str(n)
    assert 0 < len(parser._memo) <= parser._MEMO_SIZE
    long_line = b"a1 X " + b"y" * parser._MEMO_LINE
    assert parse(long_line).args == ["y" * parser._MEMO_LINE]
    assert long_line[2:] not in parser._memo
