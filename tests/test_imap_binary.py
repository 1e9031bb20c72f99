"""Tests for IMAP BINARY (RFC 3516, clevermail/imap/binary.py and its hooks in fetch.py,
parser.py and APPEND): decoding of sections, literal8 both ways, binary APPENDs made
storable, the UNKNOWN-CTE answer.  Pure tests first, then sessions over socketpair."""

import pytest

from clevermail.imap import binary, mime
from clevermail.imap.fetch_items import parse_fetch_items
from clevermail.imap.parser import Literal8, ParseError, parse_command
from clevermail.imap.replies import IMAPBad
from imap_helpers import client, handler, open_session, selected, store  # noqa: F401 (fixtures)

MULTI = (b"From: a@example.test\r\nMIME-Version: 1.0\r\n"
         b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
         b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
         b"  aGVs\r\n bG8g\td29y \r\nbGQ=\r\n"
         b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
         b"hello  \r\nbar=\r\n\r\nfoo\t \t= \r\n=62\r\nfoo = \t\r\nbar\r\nx=3D1_y\r\n"
         b"--b\r\nContent-Type: message/rfc822\r\n\r\n"
         b"Subject: inner\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n"
         b"--b\r\nContent-Type: application/x-odd\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
         b"begin 644 x\r\n"
         b"--b--\r\n")


def decoded(raw, *nums):
    return binary.decoded(mime.parse(raw), nums)


# -- decoding ---------------------------------------------------------------------------
def test_base64_is_decoded_skipping_whitespace():
    assert decoded(MULTI, 1) == b"hello world"


def test_quoted_printable_follows_rfc_2045():
    # trailing whitespace dropped, "=" at a line end (even before whitespace) joins
    # lines, =XX decoded, "_" stays (only headers use it for a space), CRLF kept
    assert decoded(MULTI, 2) == b"hello\r\nbar\r\nfoo\t \tb\r\nfoo bar\r\nx=1_y"


def test_message_parts_and_the_whole_message_have_their_leaves_decoded():
    # as Dovecot: every leaf inside is decoded and its encoding said "binary"
    assert decoded(MULTI, 3) == (b"Subject: inner\r\nMIME-Version: 1.0\r\n"
                                 b"Content-Transfer-Encoding: binary\r\n\r\n\0\1\2")
    assert decoded(MULTI, 3, 1) == b"\0\1\2"
    whole = MULTI[:MULTI.index(b"--b\r\nContent-Type: application/x-odd")] + b"--b--\r\n"
    assert decoded(whole) == (
        b"From: a@example.test\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        b"hello world\r\n"
        b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        b"hello\r\nbar\r\nfoo\t \tb\r\nfoo bar\r\nx=1_y\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Subject: inner\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: binary\r\n\r\n\0\1\2\r\n"
        b"--b--\r\n")
    plain = b"Subject: x\r\nMIME-Version: 1.0\r\n\r\nnothing encoded\r\n"
    assert decoded(plain) == plain


def test_unknown_encoding_raises_and_missing_part_is_empty():
    with pytest.raises(binary.UnknownCTE):
        decoded(MULTI, 4)
    with pytest.raises(binary.UnknownCTE):
        decoded(MULTI)                  # the whole message holds that part
    assert decoded(MULTI, 9) == b""


def test_identity_encodings_and_plain_message():
    raw = b"Subject: x\r\n\r\nplain body\r\n"
    assert decoded(raw, 1) == b"plain body\r\n"


def test_broken_base64_gives_what_decodes():
    head = b"MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    assert decoded(head + b"aGVs*!bG8=\r\n", 1) == b"hello"       # stray characters skipped
    assert decoded(head + b"aGVsbG\r\n", 1) == b"hell"             # cut short: what is whole
    assert decoded(head + b"aGVsbG8=garbage\r\n", 1) == b"hello"   # nothing after the padding


def test_literal8_only_for_nul():
    assert binary.literal(b"") == b'""'
    assert binary.literal(b"a\rb") == b"{3}\r\na\rb"
    assert binary.literal(b"a\0b") == b"~{3}\r\na\0b"


# -- binary messages made storable --------------------------------------------------------
BINARY_APPEND = (b"From: user@example.test\r\nMime-Version: 1.0\r\n"
                 b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n"
                 b"\r\n\x00-\xe4\n\r\n\n")


def test_storable_reencodes_binary_parts_as_base64():
    out = binary.storable(BINARY_APPEND)
    assert b"\0" not in out and out.count(b"\n") == out.count(b"\r\n")
    assert b"Content-Transfer-Encoding: binary" not in out
    assert out.count(b"Content-Transfer-Encoding: base64\r\n") == 1
    assert decoded(out, 1) == b"\x00-\xe4\n\r\n\n"


def test_storable_leaves_clean_messages_and_parts_alone():
    assert binary.storable(MULTI) is MULTI
    raw = MULTI.replace(b"AAEC", b"AA\0EC")    # one dirty part inside the rfc822 part
    out = binary.storable(raw)
    assert decoded(out, 1) == b"hello world"
    assert decoded(out, 3, 1) == b"AA\0EC"


def test_storable_makes_a_non_mime_message_mime():
    out = binary.storable(b"Subject: x\r\n\r\nab\x00c\r\n")
    assert out.startswith(b"Subject: x\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\n")
    assert decoded(out, 1) == b"ab\x00c\r\n"


# -- parsing ------------------------------------------------------------------------------
def test_parser_reads_literal8_with_nul():
    def more(n, sync):
        return b"a\0" + b"x" * (n - 2), b""
    cmd = parse_command(b"t APPEND INBOX ~{5}", more, 100)
    assert cmd.args[-1] == b"a\0xxx" and isinstance(cmd.args[-1], Literal8)
    with pytest.raises(ParseError):
        parse_command(b"t APPEND INBOX {5}", more, 100)     # a plain literal may not


def test_fetch_items_binary_forms():
    req = parse_fetch_items(["BINARY.PEEK[1]<0.5>", "BINARY.SIZE[2.1]", "BINARY[]"])
    assert [i.label for i in req.items] == [b"BINARY[1]<0>", b"BINARY.SIZE[2.1]", b"BINARY[]"]
    assert req.needs_message and req.sets_seen
    assert not parse_fetch_items(["BINARY.PEEK[1]"]).sets_seen
    for bad in ("BINARY[1.MIME]", "BINARY[HEADER]", "BINARY.SIZE[1]<0.5>", "BINARY[1"):
        with pytest.raises(IMAPBad):
            parse_fetch_items([bad])


# -- sessions -----------------------------------------------------------------------------
def append8(client, data):
    tag = next(client.tags)
    client.send(f"{tag} APPEND INBOX ~{{{len(data)}+}}\r\n".encode() + data + b"\r\n")
    return client.read_reply(tag)


def test_binary_append_and_fetch_round_trip(client):
    assert append8(client, BINARY_APPEND).tagged.split()[1] == "OK"
    client.select()
    client.send("f1 FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])\r\n")
    line = client.file.readline()
    assert line == b"* 1 FETCH (BINARY.SIZE[1] 7 BINARY[1] ~{7}\r\n"
    assert client.file.read(7) == b"\x00-\xe4\n\r\n\n"
    assert client.file.readline() == b")\r\n"
    assert client.read_reply("f1").tagged == "f1 OK FETCH completed"
    body = client.expect("FETCH 1 (BODY.PEEK[1])").untagged[0]
    assert "\0" not in body and "AC3kCg0KCg==" in body        # kept as base64


def test_fetch_binary_sets_seen_and_partial(client, store):
    from imap_helpers import append
    append(client, "INBOX", MULTI)
    client.select()
    r = client.expect("FETCH 1 (BINARY[1]<6.100>)")
    assert r.untagged == ["* 1 FETCH (BINARY[1]<6> {5}\r\nworld FLAGS (\\Seen \\Recent))"]


def test_unknown_cte_is_no_unknown_cte(client):
    from imap_helpers import append
    append(client, "INBOX", MULTI)
    client.select()
    client.expect("FETCH 1 (BINARY.PEEK[4])", "NO", "UNKNOWN-CTE")
    client.expect("FETCH 1 (BINARY.SIZE[1])")          # the session goes on
