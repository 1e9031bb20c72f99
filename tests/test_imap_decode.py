"""Tests for clevermail.imap.decode: header and body text of mime.py's part tree,
decoded for SEARCH (RFC 2045 transfer encodings and charsets, RFC 2047 words)."""

import base64

from clevermail.imap import mime
from clevermail.imap.decode import body_text, decode_header_value, header_fields


def parse(raw):
    return mime.parse(raw)


def test_header_fields_unfolded_and_decoded_in_order():
    raw = (b"Subject: =?utf-8?q?caf=C3=A9?=\r\n  and more\r\n"
           b"From: J\xc3\xb6rg <j@x>\r\nTo: J\xf6rg <j@y>\r\nX-Empty:\r\n\r\nbody")
    assert header_fields(parse(raw)) == [
        ("subject", "café  and more"), ("from", "Jörg <j@x>"), ("to", "Jörg <j@y>"),
        ("x-empty", "")]


def test_a_line_without_colon_stays_in_the_header_as_fetch_sees_it():
    raw = b"Subject: x\r\nnot a field\r\n\r\nbody text"
    pm = parse(raw)
    assert [name for name, _ in header_fields(pm)] == ["subject", "not a field"]
    assert body_text(pm) == "body text" == mime.section(pm, (), "TEXT").decode()


def test_transfer_encodings_and_charsets_per_part():
    raw = (b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
           b"--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
           b"Content-Transfer-Encoding: Quoted-Printable\r\n\r\nK=F6ln, soft=\r\nbreak\r\n"
           b"--b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: BASE64\r\n\r\n"
           + base64.encodebytes("<p>grün</p>".encode()).replace(b"\n", b"\r\n")
           + b"--b\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\nplain \xc3\xa9\r\n"
           b"--b--\r\n")
    assert body_text(parse(raw)).split("\n") == ["Köln, softbreak", "<p>grün</p>", "plain é"]


def test_bad_base64_is_decoded_as_far_as_it_goes():
    head = b"MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    good = base64.b64encode(b"hello world")            # aGVsbG8gd29ybGQ=
    assert body_text(parse(head + good[:8] + b"!! \r\n" + good[8:])) == "hello world"  # junk
    assert body_text(parse(head + b"aGk")) == "hi"          # padding missing
    assert body_text(parse(head + b"aGkhZ")) == "hi!"       # a lone last character


def test_only_text_leaves_count():
    raw = (b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
           b"--b\r\nContent-Type: application/octet-stream\r\n\r\nbinary secret\r\n"
           b"--b\r\nContent-Type: image/png\r\n\r\npng secret\r\n"
           b"--b\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n"
           b"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n"
           b"--b\r\nContent-Type: bogus\r\n\r\nno subtype: text/plain (RFC 2045 5.2)\r\n"
           b"--b--\r\n")
    assert body_text(parse(raw)).split("\n") == [
        "Action: failed", "inner body", "no subtype: text/plain (RFC 2045 5.2)"]


def test_multipart_without_parts_is_read_as_text():
    assert body_text(parse(b"Content-Type: multipart/mixed\r\n\r\nno boundary here")) == \
        "no boundary here"
    unclosed = b'Content-Type: multipart/mixed; boundary="zz"\r\n\r\nno delimiter ever'
    assert body_text(parse(unclosed)) == "no delimiter ever"


def test_nesting_past_mime_bounds_is_read_as_text():
    raw = b"Content-Type: text/plain\r\n\r\nneedle\r\n"
    for i in range(mime.MAX_DEPTH + 5):
        raw = (b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
               + raw + b"\r\n--b%d--\r\n" % i)
    assert "needle" in body_text(parse(raw))


def test_decode_header_value():
    assert decode_header_value(b"=?iso-8859-1?q?Caf=E9?= =?utf-8?b?IOKCrA==?=") == "Café €"
    assert decode_header_value(b"J\xf6rg =?x-no-such?q?ok?=") == "Jörg ok"   # Latin-1, UTF-8
