"""Tests for clevermail.imap.utf7 (RFC 3501 section 5.1.3 modified UTF-7)."""

import pytest

from clevermail.imap.utf7 import decode, encode


@pytest.mark.parametrize("name, wire", [
    ("INBOX", "INBOX"),
    ("", ""),
    ("&", "&-"),
    ("A&B", "A&-B"),
    ("&&", "&-&-"),
    ("Entwürfe", "Entw&APw-rfe"),
    ("日本語", "&ZeVnLIqe-"),
    ("台北", "&U,BTFw-"),
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("Ü&ü", "&ANw-&-&APw-"),
    ("tab\there", "tab&AAk-here"),       # controls are not printable: encoded
    ("a\x7fb", "a&AH8-b"),               # DEL too
    ("smile 😀", "smile &2D3eAA-"),      # astral plane: a surrogate pair
    ("Sent Items", "Sent Items"),        # space is printable ASCII
])
def test_known_encodings(name, wire):
    assert encode(name) == wire
    assert decode(wire) == name


@pytest.mark.parametrize("name", [
    "Entwürfe", "日本語", "&", "~peter/mail/台北/日本語", "a&b&c", "&日本&語&",
    "Черновики", "ä", "ää", "äää", "\u00e9\u00e9\u00e9\u00e9", "x😀y😀",
    "".join(chr(c) for c in range(0x20, 0x7f)),
])
def test_round_trip(name):
    wire = encode(name)
    assert all(0x20 <= ord(c) <= 0x7e for c in wire)
    assert decode(wire) == name


def test_encode_uses_comma_not_slash():
    # U+53F0 U+5317 base64 to "U/BTFw" in standard base64.
    assert encode("台北") == "&U,BTFw-"
    assert "/" not in encode("台北")


def test_consecutive_non_ascii_is_one_shift():
    assert encode("ää").count("&") == 1


def test_encode_lone_surrogate_is_value_error():
    with pytest.raises(ValueError):
        encode("bad\ud800")


@pytest.mark.parametrize("wire, why", [
    ("&", "unterminated"),
    ("abc&ZeVn", "unterminated"),
    ("&Z!Vn-", "bad base64 character"),
    ("&U/BTFw-", "standard base64 slash is not allowed"),
    ("&ZeVnLIqe=-", "padding is not allowed"),
    ("&A-", "one base64 char is never a whole byte"),
    ("&AGE-", "encodes printable ASCII 'a'"),
    ("&AEEAQgBD-", "encodes ABC"),
    ("&ACY-", "encodes '&' itself"),
    ("&AOQAQQ-", "mixes a printable ASCII char into a shift"),
    ("&AOQ", "unterminated after base64"),
    ("&AP-", "odd number of bytes"),
    ("&2D0-", "unpaired high surrogate"),
    ("&3gA-", "unpaired low surrogate"),
    ("&APx-", "non-zero padding bits (canonical is &APw-)"),
    ("Entwürfe", "raw 8-bit is not modified UTF-7"),
    ("a\tb", "raw control character"),
    ("Trash\x7f", "DEL is no printable character"),
])
def test_decode_rejects(wire, why):
    with pytest.raises(ValueError):
        decode(wire)


def test_decode_adjacent_shifts_allowed():
    # Not canonical (one shift would do) but RFC 3501 does not forbid it.
    assert decode("&AOQ-&APY-") == "äö"
