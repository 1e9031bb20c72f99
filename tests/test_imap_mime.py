"""Tests for clevermail.imap.mime's sections: BODY[section] parts, HEADER, TEXT and MIME
of messages and nested parts, as RFC 3501 section 6.4.5 numbers them.  ENVELOPE is in
test_imap_envelope.py, BODY/BODYSTRUCTURE in test_imap_bodystructure.py.

Sizes count the CRLF form and exclude the CRLF that precedes a boundary line, which
belongs to the boundary (RFC 2045/2046)."""

from clevermail.imap import mime

from mime_helpers import crlf, pm


# ------------------------------------------------------------------ sections
def test_sections_of_single_part_message():
    m = pm("simple.eml")
    raw = m.raw
    header, body = raw.split(b"\r\n\r\n", 1)
    assert mime.section(m, ()) == raw
    assert mime.section(m, (), "HEADER") == header + b"\r\n\r\n"
    assert mime.section(m, (), "TEXT") == body
    assert mime.section(m, (1,)) == body          # part 1 of a non-multipart
    assert mime.section(m, (1,), "MIME") == header + b"\r\n\r\n"
    assert mime.section(m, (2,)) == b""
    assert mime.section(m, (1, 2)) == b""
    assert mime.section(m, (1,), "HEADER") == b""   # not a message/rfc822


def test_header_fields_and_not():
    m = pm("simple.eml")
    assert mime.section(m, (), "HEADER.FIELDS", ("subject", "CC", "X-None")) == (
        b"Subject: IMAP4rev1 WG mtg summary and minutes\r\n"
        b"cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n\r\n")
    assert mime.section(m, (), "HEADER.FIELDS", ("X-None",)) == b"\r\n"
    assert mime.section(m, (), "HEADER.FIELDS.NOT",
                        ("Date", "From", "To", "cc", "Message-Id", "Subject")) == (
        b"MIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n")


def test_header_fields_keep_folded_lines():
    m = pm("encoded_words.eml")
    assert mime.section(m, (), "HEADER.FIELDS", ("Subject",)) == (
        b"Subject: =?UTF-8?B?SGVsbG8gV8O2cmxk?=\r\n =?ISO-8859-1?Q?_caf=E9?=\r\n\r\n")


def test_sections_of_multipart():
    m = pm("alternative.eml")
    assert mime.section(m, (1,)) == b"Hello Bob,\r\ncaf=C3=A9 time?"
    assert mime.section(m, (2,)) == b"<p>Hello Bob,<br>caf=C3=A9 time?</p>"
    assert mime.section(m, (1,), "MIME") == (
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n")
    assert mime.section(m, (3,)) == b""
    assert mime.section(m, (), "TEXT").startswith(b"This is a multi-part message")
    assert mime.section(m, (), "TEXT").endswith(b"--alt-b--\r\n")


def test_sections_of_nested_message():
    m = pm("nested_rfc822.eml")
    inner_header = (b"From: Carol <carol@example.com>\r\nTo: Dave <dave@example.com>\r\n"
                    b"Subject: Lunch\r\nDate: Wed, 3 Jan 2024 11:00:00 -0500\r\n"
                    b"Message-ID: <lunch@example.com>\r\nMIME-Version: 1.0\r\n"
                    b"Content-Type: multipart/alternative; boundary=inner\r\n\r\n")
    assert mime.section(m, (1,)) == b"See below."
    assert mime.section(m, (2,), "MIME") == (
        b"Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n")
    assert mime.section(m, (2,), "HEADER") == inner_header
    assert mime.section(m, (2,)) == inner_header + mime.section(m, (2,), "TEXT")
    assert mime.section(m, (2,), "TEXT").startswith(b"--inner\r\nContent-Type: text/plain")
    assert mime.section(m, (2,), "HEADER.FIELDS", ("subject",)) == b"Subject: Lunch\r\n\r\n"
    assert mime.section(m, (2, 1)) == b"Noon?"
    assert mime.section(m, (2, 2)) == b"<b>Noon?</b>"
    assert mime.section(m, (2, 2), "MIME") == b"Content-Type: text/html; charset=us-ascii\r\n\r\n"
    assert mime.section(m, (2, 3)) == b""
    assert mime.section(m, (2, 1), "HEADER") == b""
    assert mime.section(m, (1, 1)) == b"See below."   # a leaf's part 1 is itself


def test_top_level_message_rfc822():
    msg = crlf("Content-Type: message/rfc822\n\nSubject: in\n\nhello\n")
    m = mime.parse(msg)
    assert mime.section(m, (1,)) == b"Subject: in\r\n\r\nhello\r\n"
    assert mime.section(m, (1,), "HEADER") == b"Subject: in\r\n\r\n"
    assert mime.section(m, (1, 1)) == b"hello\r\n"


def test_header_without_blank_line():
    m = mime.parse(b"Subject: only header\r\nFrom: a@b")
    assert mime.section(m, (), "HEADER") == b"Subject: only header\r\nFrom: a@b"
    assert mime.section(m, (), "TEXT") == b""
    assert mime.section(m, (), "HEADER.FIELDS", ("from",)) == b"From: a@b\r\n\r\n"
