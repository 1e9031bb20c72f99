"""Pure tests of clevermail.smtp.message: the received body's wire form and checks
(RFC 5321 4.5.2, 4.5.3.1.6), queue ids and the Received header (RFC 5321 4.4, RFC 3848)."""

import email.utils
import re

import pytest

from clevermail.smtp import message
from clevermail.smtp.handler import Recipient
from clevermail.smtp.replies import R554_LONG_LINE, SMTPReplyError


def header(**kw):
    args = dict(helo="client.test", peer="192.0.2.7", hostname="mx.example.test", esmtp=True,
                tls_info=None, authenticated=False, queue_id="0123456789AB", session_id="ab1",
                recipients=[Recipient("a@example.test"), Recipient("b@example.test")])
    args.update(kw)
    return message.received_header(**args)


@pytest.mark.parametrize("body, stuffed, out", [
    (b"a\r\n..b\r\n", True, b"a\r\n.b\r\n"),
    (b"a\r\n..b\r\n", False, b"a\r\n..b\r\n"),          # BDAT: never stuffed
    (b"a\nb\rc\r\n", False, b"a\r\nb\r\nc\r\n"),
    (b"a\n..b\n", True, b"a\r\n.b\r\n"),               # a lax client stuffs after its LFs
    (b"", True, b""),
])
def test_prepare_body(body, stuffed, out):
    assert message.prepare_body(body, stuffed) == out


def test_prepare_body_refuses_a_line_over_998_octets():
    assert message.prepare_body(b"x" * 998 + b"\r\n", False) == b"x" * 998 + b"\r\n"
    with pytest.raises(SMTPReplyError) as info:
        message.prepare_body(b"ok\r\n" + b"x" * 999 + b"\r\n", False)
    assert info.value.reply is R554_LONG_LINE


def test_queue_ids_are_12_hex_digits_and_differ():
    ids = {message.new_queue_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[0-9A-F]{12}", i) for i in ids)


def test_received_header_layout():
    text = header().decode()
    lines = text.split("\r\n")
    assert lines[0] == "Received: from client.test (192.0.2.7 [192.0.2.7])"
    assert lines[1] == "\tby mx.example.test (CleverMail) with ESMTP id 0123456789AB session ab1;"
    assert lines[2].startswith("\t") and email.utils.parsedate_to_datetime(lines[2][1:]) is not None
    assert lines[3:] == [""]                     # ends in CRLF, folded with tabs


@pytest.mark.parametrize("esmtp, tls, auth, word", [
    (False, False, False, "SMTP"),
    (False, True, True, "SMTP"),                # RFC 3848 keywords are for ESMTP only
    (True, False, False, "ESMTP"),
    (True, True, False, "ESMTPS"),
    (True, False, True, "ESMTPA"),
    (True, True, True, "ESMTPSA"),
])
def test_received_with_keyword(esmtp, tls, auth, word):
    tls_info = ("TLSv1.3", "TLS_AES_256_GCM_SHA384") if tls else None
    text = header(esmtp=esmtp, tls_info=tls_info, authenticated=auth).decode()
    assert f" with {word} id " in text
    assert ("(TLSv1.3 TLS_AES_256_GCM_SHA384)" in text) == tls


def test_received_names_a_single_recipient_only():
    one = header(recipients=[Recipient("bob@example.test", ("bob@example.test",))]).decode()
    assert "session ab1\r\n\tfor <bob@example.test>;\r\n" in one
    assert "for <" not in header().decode()     # more would disclose Bcc recipients


def test_received_ipv6_peer_is_an_address_literal():
    assert header(peer="2001:db8::1").startswith(b"Received: from client.test (2001:db8::1 [IPv6:2001:db8::1])")


def test_received_header_keeps_utf8():
    text = header(helo="b\u00fccher.example", recipients=[Recipient("j\u00f6@b\u00fccher.example")])
    assert "from b\u00fccher.example".encode() in text and "for <j\u00f6@b\u00fccher.example>".encode() in text


# -- submission fix-ups (RFC 6409 8.2, 8.3) ------------------------------------------------
def test_fixups_add_date_and_message_id_at_the_end_of_the_header_section():
    from clevermail.smtp.message import submission_fixups
    out = submission_fixups(b"From: a@example.test\r\nSubject: x\r\n\r\nDate: in the body\r\n", "mx.example.test")
    head, body = out.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    assert lines[:2] == [b"From: a@example.test", b"Subject: x"]
    assert lines[2].startswith(b"Date: ") and re.fullmatch(rb"Message-ID: <[0-9a-f]{32}@mx\.example\.test>", lines[3])
    assert body == b"Date: in the body\r\n"


def test_fixups_keep_fields_present_in_any_case_and_folded():
    from clevermail.smtp.message import submission_fixups
    data = b"DATE : Wed, 2 Dec 2026 10:00:00 +0000\r\nSubject: x\r\n Message-ID: folded\r\nmessage-id:<1@x>\r\n\r\nb\r\n"
    assert submission_fixups(data, "h") == data
    only_date = b"Date: Wed, 2 Dec 2026 10:00:00 +0000\r\n\r\nb\r\n"
    out = submission_fixups(only_date, "h")
    assert out.count(b"Date: ") == 1 and out.count(b"Message-ID: <") == 1


def test_fixups_without_body_or_without_headers():
    from clevermail.smtp.message import submission_fixups
    out = submission_fixups(b"Subject: x\r\n", "h")
    assert out.startswith(b"Subject: x\r\nDate: ") and out.endswith(b"@h>\r\n")
    out = submission_fixups(b"\r\nbody only\r\n", "h")
    assert out.startswith(b"Date: ") and out.endswith(b"@h>\r\n\r\nbody only\r\n")
