"""Hostile and odd messages through IMAP's MIME parser (mime.py), ENVELOPE and its
address reader (envelope.py), BODY and BODYSTRUCTURE (bodystructure.py): the header
splitter's edges (a line without colon, a first line that is a continuation, bare CR
and LF, NULs, no blank line, a last line of CR and one byte, boundaries inside a part's
header, a 1 MB header), the plain-address reading against the RFC 5322 tokenizer, and
a session that FETCHes such messages and goes on.  The expected values are what these
modules gave before the header splitter and the address reader were rewritten for
speed (issue 18): the rewrite must not change a byte."""

import random

import pytest

from clevermail.imap import envelope, mime
from clevermail.imap.bodystructure import bodystructure, part_structure
from imap_helpers import ALICE, append, client, handler, open_session, store  # noqa: F401 (fixtures)


def tree(raw, repair=False):
    """(fields, bstart, [(hstart, bstart, end, fields)] of the children) of a message."""
    root = mime.parse(raw, repair).root
    return (root.fields, root.bstart,
            [(c.hstart, c.bstart, c.end, c.fields) for c in root.children])


TEXT_PLAIN = b'"text" "plain" ("charset" "us-ascii") NIL NIL "7bit"'


# ------------------------------------------------------------------ header splitter

@pytest.mark.parametrize("raw, fields, bstart", [
    # a line without a colon is a field named by the whole line
    (b"NoColon here\r\nSubject: s\r\n\r\nbody\r\n",
     [["nocolon here", 0, -1, 14], ["subject", 14, 21, 26]], 28),
    # a first line starting with white space has nothing to continue: a field
    (b" folded\r\nSubject: s\r\n\r\nbody\r\n",
     [[" folded", 0, -1, 9], ["subject", 9, 16, 21]], 23),
    # continuation lines, with tabs and white space alone, belong to their field
    (b"Subject: a\r\n b\r\n\t c\r\n \r\nX: y\r\n\r\n",
     [["subject", 0, 7, 24], ["x", 24, 25, 30]], 32),
    # a last line of CR and one byte, unended, ends the header as a blank line would
    (b"Subject: s\r\n\rZ", [["subject", 0, 7, 12]], 14),
    (b"\rZ", [], 2),
    # bare LF line ends (not repaired) and a bare LF blank line
    (b"Subject: s\nFrom: a@b\n\nbody\n", [["subject", 0, 7, 11], ["from", 11, 15, 21]], 22),
    # no blank line: the header runs to the end
    (b"Subject: s\r\nFrom: a@b\r\n", [["subject", 0, 7, 12], ["from", 12, 16, 23]], 23),
    (b"Subject: s\r\nX", [["subject", 0, 7, 12], ["x", 12, -1, 13]], 13),
    # bare CRs are not line ends; CR CR LF is not a blank line
    (b"Subject: a\rb\r\nFrom: a@b\r\r\n\r\nx\r",
     [["subject", 0, 7, 14], ["from", 14, 18, 26]], 28),
    # NULs are kept, in names too
    (b"Sub\x00ject: x\r\nSubject: a\x00b\r\n\r\n\x00\r\n",
     [["sub\x00ject", 0, 8, 13], ["subject", 13, 20, 27]], 29),
    # the colon is looked for in the first line only; 8-bit names are lower-cased
    (b"Na me\r\n :x\r\n\xc0B: v\r\n\r\n", [["na me", 0, -1, 12], ["\xe0b", 12, 14, 19]], 21),
    (b"", [], 0),
    (b"\r\n", [], 2),
    (b"\n\nX: y\r\n", [], 1),
])
def test_header_fields(raw, fields, bstart):
    got_fields, got_bstart, children = tree(raw)
    assert (got_fields, got_bstart, children) == (fields, bstart, [])
    # the header-only parse (BODY[HEADER], ENVELOPE from the cached header) agrees
    top = mime.parse(raw, repair=False).top()
    assert (top.fields, top.bstart) == (fields, bstart)


MULTI = b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'


def test_a_boundary_inside_a_parts_header_cuts_it_short():
    raw = MULTI + b"--b\r\nContent-Type: text/html\r\nX: y\r\n--b\r\n\r\npart2\r\n--b--\r\n"
    assert tree(raw)[2] == [
        (52, 81, 81, [["content-type", 52, 64, 77], ["x", 77, 78, 83]]), (88, 90, 95, [])]
    assert bodystructure(mime.parse(raw)) == (
        b'(("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)'
        b'(' + TEXT_PLAIN + b' 5 0 NIL NIL NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL)')


def test_a_dash_line_that_is_no_boundary_is_a_field():
    raw = MULTI + b"--b\r\nX: y\r\n--not-b: z\r\n\r\nhi\r\n--b--\r\n"
    assert tree(raw)[2] == [(52, 72, 74, [["x", 52, 53, 58], ["--not-b", 58, 65, 70]])]


def test_a_parts_header_without_blank_line_before_the_next_part():
    raw = MULTI + b"--b\r\nX: y\r\n--b\r\nY: z\r\n\r\nbody\r\n--b--\r\n"
    # (the CRLF before a boundary is the boundary's: the first part's header ends at 56)
    assert tree(raw)[2] == [(52, 56, 56, [["x", 52, 53, 58]]),
                            (63, 71, 75, [["y", 63, 64, 69]])]


def test_many_parts_without_blank_lines_parse_in_bounded_time():
    # each part's header is looked for up to the next "--" line only, not to the end
    raw = MULTI + b"--b\r\nX: y\r\n" * 5000 + b"--b--\r\n"
    root = mime.parse(raw).root
    assert len(root.children) == 5000
    assert all(c.fields == [["x", c.hstart, c.hstart + 1, c.hstart + 6]] for c in root.children)


def test_a_1mb_header_field_and_50000_header_lines():
    big = b"x" * (1 << 20)
    pm = mime.parse(b"Subject: " + big + b"\r\n\r\nbody\r\n")
    assert [f[0] for f in pm.root.fields] == ["subject"]
    assert envelope.envelope(pm) == b'(NIL "' + big + b'" ' + b" ".join([b"NIL"] * 8) + b")"
    lines = b"".join(b"X-%d: v\r\n" % i for i in range(50000))
    pm = mime.parse(lines)                  # no blank line: all header
    assert len(pm.root.fields) == 50000 and pm.root.bstart == len(lines)
    assert mime.section(pm, (), "HEADER.FIELDS", ("x-49999",)) == b"X-49999: v\r\n\r\n"


def test_nuls_in_envelope_become_0x80_literals():
    pm = mime.parse(b"Subject: a\x00b\r\nFrom: N\x00 <a@b>\r\n\r\n")
    assert envelope.envelope(pm) == (
        b'(NIL {3}\r\na\x80b (({2}\r\nN\x80 NIL "a" "b")) (({2}\r\nN\x80 NIL "a" "b"))'
        b' (({2}\r\nN\x80 NIL "a" "b")) NIL NIL NIL NIL NIL)')


# ------------------------------------------------------------------ addresses

@pytest.mark.parametrize("value, expected", [
    ('"Smith, John" <j@x>, a@b', [("Smith, John", None, "j", "x"), (None, None, "a", "b")]),
    ('"" <a@b>', [(None, None, "a", "b")]),
    ('"" x <a@b>', [(" x", None, "a", "b")]),
    ('"a  b" "" c <x@y>', [("a  b  c", None, "x", "y")]),
    ('"a"b <x@y>', [("a b", None, "x", "y")]),                  # no space between words
    ("A\t B\r\n C<x@y>,", [("A B C", None, "x", "y")]),
    (",, <x@y> ,, ", [(None, None, "x", "y")]),
    ("=?utf-8?q?M=C3=BCller?= <m@x.de>", [("=?utf-8?q?M=C3=BCller?=", None, "m", "x.de")]),
    ("J\xfcrgen <j@x>", [("J\xfcrgen", None, "j", "x")]),
    # characters str.split() would cut at but RFC 5322 does not: one word each
    ("A\xa0B <a@b>", [("A\xa0B", None, "a", "b")]),
    ("A\x85B\x0bC <a@b>", [("A\x85B\x0bC", None, "a", "b")]),
    ("A <a,b@c>", [("A", None, "ab", "c")]),                    # a comma inside < >
    ("a@b@c", [(None, None, "a", "bc")]),
    ("a b@c", [(None, None, "ab", "c")]),
    ("<a@b> x", [(None, None, "a", "b")]),
    ("a@b <c@d>", [("a b", None, "c", "d")]),
    ("x@y (c)", [("c", None, "x", "y")]),
])
def test_parse_addresses_plain_lists_and_their_neighbours(value, expected):
    assert envelope.parse_addresses(value) == expected
    assert envelope._parse_tokens(value) == expected


def test_plain_address_reading_agrees_with_the_tokenizer():
    # random lists built from the pieces where the plain reading and the tokenizer
    # could part ways; both must read every one alike
    pieces = ["Alice", '"Smith, John"', '""', '"a  b"', "=?utf-8?q?M=C3=BCller?=", "J\xfcrgen",
              "x.y", "<a@b.c>", "<@r:a@b>", "a@b", " ", "\t", "\r\n ", ",", ";", "<", ">",
              "@", '"', "\\", "(c)", "[d]", "\x85", "\xa0", "\u2003", "\x0b", "<>", "a@",
              "@b", "Grp:", "\xff\u0100"]
    rnd = random.Random(18)
    for _ in range(20000):
        value = "".join(rnd.choice(pieces) for _ in range(rnd.randrange(1, 8)))
        assert envelope.parse_addresses(value) == envelope._parse_tokens(value), value


def test_a_long_address_list():
    value = ", ".join(f"User {i} <u{i}@example.com>" for i in range(20000))
    addrs = envelope.parse_addresses(value)
    assert len(addrs) == 20000 and addrs[-1] == ("User 19999", None, "u19999", "example.com")
    assert envelope.parse_addresses(value + ", x@y (c)")[-1] == ("c", None, "x", "y")


@pytest.mark.parametrize("value, expected", [
    ("", b'""'), (" a", b'"a"'), ("a ", b'"a"'), ("a  b", b'"a b"'), ("a\tb", b'"a b"'),
    ('a"b', b'"a\\"b"'), ("a\\b", b'"a\\\\b"'), ("\x01", b'"\x01"'), ("\x7f", b'"\x7f"'),
    ("\u0100", b'"?"'), ("a\r\nb", b'"ab"'), (" \t ", b'""'),
])
def test_nstring_edges(value, expected):
    assert envelope.nstring(value) == expected


# ------------------------------------------------------------------ BODY and BODYSTRUCTURE

NESTED = (MULTI + b"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n"
          b"Content-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n--b\r\n"
          b"Content-Disposition: attachment; filename=f\r\n\r\nx\r\n--b--\r\n")


def test_body_and_bodystructure_are_made_together_and_kept():
    fresh_body = bodystructure(mime.parse(NESTED), extended=False)
    pm = mime.parse(NESTED)
    full = bodystructure(pm)
    assert pm.structures == (full, fresh_body)
    assert bodystructure(pm, extended=False) == fresh_body
    assert fresh_body == (
        b'(("message" "rfc822" NIL NIL NIL "7bit" 61 (NIL "in" NIL NIL NIL NIL NIL NIL NIL NIL)'
        b' ("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 5 0) 3)(' + TEXT_PLAIN
        + b' 1 0) "mixed")')
    assert full.endswith(b' NIL ("attachment" ("filename" "f")) NIL NIL) "mixed"'
                         b' ("boundary" "b") NIL NIL NIL)')
    assert part_structure(pm, (2,)) == (
        b'(' + TEXT_PLAIN + b' 1 0 NIL ("attachment" ("filename" "f")) NIL NIL)')


# ------------------------------------------------------------------ a session

HOSTILE = [
    b"NoColon here\r\nSubject: s\r\n\r\nbody\r\n",
    b" folded\r\nFrom: a@b\r\n\r\nbody\r\n",
    b"Subject: a\rb\r\nTo: G: a@b, (c) <@r:x@y>;\r\n\r\nx\r",
    b"Subject: s\r\n\rZ",
    MULTI + b"--b\r\nX: y\r\n--b\r\n\r\npart2\r\n--b--\r\n",
    b"Subject: " + b"y" * 900000 + b"\r\n\r\nbody\r\n",
]
# NUL cannot come in an APPEND literal (BAD); SMTP can deliver it
WITH_NUL = b"Subject: a\x00b\r\nFrom: N\x00 <a@b>\r\n\r\n\x00\r\n"


def test_a_session_fetches_hostile_messages_and_goes_on(client, store):
    for raw in HOSTILE:
        reply = append(client, "INBOX", raw)
        assert reply.tagged.split()[1] == "OK", (raw[:40], reply)
    store.deliver_local("", [ALICE], WITH_NUL)
    client.select()
    reply = client.expect("FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY RFC822.HEADER BODY.PEEK[1]"
                          " BODY.PEEK[TEXT] BODY.PEEK[HEADER.FIELDS (From To Subject)])")
    fetched = [u for u in reply.untagged if " FETCH (" in u]
    assert len(fetched) == len(HOSTILE) + 1
    assert fetched[0].startswith('* 1 FETCH (ENVELOPE (NIL "s" NIL NIL NIL NIL NIL NIL NIL NIL)'
                                 ' BODYSTRUCTURE (' + TEXT_PLAIN.decode() + ' 6 1 NIL NIL NIL NIL)')
    assert ('((NIL NIL "G" NIL)(NIL NIL "a" "b")(NIL "@r" "x" "y")(NIL NIL NIL NIL))'
            in fetched[2])
    assert 'BODY[HEADER.FIELDS (From To Subject)] {14}\r\nSubject: s\r\n\r\n' in fetched[3]
    assert fetched[4].startswith('* 5 FETCH (ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)'
                                 ' BODYSTRUCTURE ((' + TEXT_PLAIN.decode() + ' 0 0 NIL NIL NIL NIL)(')
    assert '"' + "y" * 900000 + '"' in fetched[5]
    assert ' {3}\r\na\udc80b (({2}\r\nN\udc80 NIL "a" "b"))' in fetched[6]
    client.expect("NOOP")


# ------------------------------------------------------------------ kept values

def test_content_types_are_kept_short_only_and_each_part_gets_its_own_params():
    from clevermail.imap import bodystructure as bs
    value = "text/plain; name=" + "n" * 300
    before = mime._kept_content_type.cache_info().currsize
    a = mime.parse(f"Content-Type: {value}\r\n\r\n".encode()).root
    assert mime._kept_content_type.cache_info().currsize == before     # too long to keep
    assert a.params == [("name", "n" * 300)]
    raw = b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    a, b = mime.parse(raw).root, mime.parse(raw).root
    assert a.params == b.params == [("charset", "utf-8")] and a.params is not b.params
    assert mime._kept_content_type.cache_info().maxsize == mime._KEPT_TYPES
    # BODYSTRUCTURE's repeated words: a long one is written, not kept
    before = bs._kept_token.cache_info().currsize
    assert bs._token("x" * 81) == b'"' + b"x" * 81 + b'"'
    assert bs._kept_token.cache_info().currsize == before
    assert bs._token(None) == b"NIL" and bs._token(" a  b ") == b'"a b"'


@pytest.mark.parametrize("raw", [NESTED, MULTI + b"--b\r\nX: y\r\n--b--\r\n", b"Subject: s\r\n\rZ",
                                 b"X: y\r\n", b"", b"\r\n\r\n", b"From: a@b\r\n folded\r\n\r\nbody"])
def test_the_tree_after_the_header_alone_is_the_tree_made_at_once(raw):
    at_once = mime.parse(raw)
    header_first = mime.parse(raw)
    top = header_first.top()
    assert header_first.root.fields == at_once.root.fields == top.fields
    assert header_first.root.bstart == at_once.root.bstart == top.bstart
    assert bodystructure(header_first) == bodystructure(at_once)
    assert envelope.envelope(header_first) == envelope.envelope(at_once)
