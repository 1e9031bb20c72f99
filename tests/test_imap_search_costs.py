"""Tests for clevermail.imap.search's evaluation and parsing: which keys need the
message, the cheap ones first and headers before the body (a message read and parsed
once), CHARSET accepted and refused, syntax errors with their text, bounded nesting, and
RFC 2047 encoded words decoded for matching."""

import pytest

from clevermail.imap import decode
from clevermail.imap.decode import decode_encoded_words
from clevermail.imap.replies import IMAPBad, IMAPNo
from clevermail.imap.search import parse_search

from search_helpers import PLAIN, Ctx, Msg, NoRaw, match


# ------------------------------------------------------------ costs
@pytest.mark.parametrize("args, needs", [
    (["UNSEEN"], False),
    (["OR", "1:3", "UID", "4"], False),
    (["BEFORE", "1-Jan-2000", "LARGER", "5"], False),
    (["FROM", "x"], True),
    (["NOT", "SUBJECT", "x"], True),
    (["SEEN", ["OR", "DRAFT", "BODY", "x"]], True),
    (["SENTON", "1-Jan-2000"], True),
    (["HEADER", "X", ""], True),
    (["TEXT", "x"], True),
])
def test_needs_message(args, needs):
    assert parse_search(args).needs_message is needs


def test_unseen_over_many_messages_never_reads():
    program = parse_search(["UNSEEN"])
    ctx = Ctx(max_seq=100000, max_uid=100000)
    hits = sum(program.matches(NoRaw(seq=i, uid=i, flags=["\\Seen"] if i % 3 else []), ctx)
               for i in range(1, 100001))
    assert hits == 33333


def test_cheap_keys_run_first():
    # BODY is written first but SEEN fails, so the message is never read.
    assert match(["BODY", "x", "SEEN"], NoRaw()) is False
    assert match(["OR", "BODY", "x", "UNSEEN"], NoRaw()) is True
    assert match([["SUBJECT", "x", ["TEXT", "y"]], "LARGER", "10"], NoRaw(size=5)) is False


def test_headers_before_body(monkeypatch):
    calls = []
    monkeypatch.setattr(decode, "body_text", lambda *a: calls.append(a) or "")
    assert match(["BODY", "hello", "SUBJECT", "no such subject"], Msg(PLAIN)) is False
    assert calls == []


def test_raw_read_and_headers_parsed_once(monkeypatch):
    real = decode.header_fields
    splits = []
    monkeypatch.setattr(decode, "header_fields", lambda pm: splits.append(1) or real(pm))
    msg = Msg(PLAIN)
    args = ["FROM", "jorg", "TO", "bob", "SUBJECT", "caf", "SENTON", "1-Feb-1994",
            "BODY", "hello", "TEXT", "x-mailer", "HEADER", "X-Mailer", "hand"]
    assert match(args, msg) is True
    assert msg.raw_calls == 1
    assert splits == [1]


# ------------------------------------------------------------ CHARSET
@pytest.mark.parametrize("name", ["UTF-8", "utf-8", b"UTF-8", "US-ASCII", "us-ascii"])
def test_charset_accepted(name):
    program = parse_search(["CHARSET", name, "SUBJECT", b"caf\xc3\xa9"])
    assert program.charset == (name.decode() if isinstance(name, bytes) else name).upper()
    assert program.matches(Msg(PLAIN), Ctx()) is True


@pytest.mark.parametrize("name", ["ISO-8859-1", b"KOI8-R", "utf8"])
def test_charset_rejected(name):
    with pytest.raises(IMAPNo) as info:
        parse_search(["CHARSET", name, "ALL"])
    assert info.value.code == "BADCHARSET (US-ASCII UTF-8)"


# ------------------------------------------------------------ syntax errors
@pytest.mark.parametrize("args, text", [
    ([], "Empty search criteria"),
    (["CHARSET", "UTF-8"], "Empty search criteria"),
    (["CHARSET"], "Missing charset name"),
    ([[]], "Empty search criteria"),
    (["FOO"], "Unknown search key FOO"),
    (["SEEN", "BOGUS\r\nX"], "Unknown search key BOGUS??X"),
    ([b"SEEN"], "Invalid search key SEEN"),
    (["FROM"], "Missing string after FROM"),
    (["FROM", ["x"]], "FROM needs a string, not a list"),
    (["SUBJECT", b"\xff"], "SUBJECT string is not valid UTF-8"),
    (["HEADER", "X-A"], "Missing string after HEADER"),
    (["HEADER"], "Missing field name after HEADER"),
    (["BEFORE", "1-Foo-1994"], "Invalid date 1-Foo-1994 after BEFORE (expected d-Mon-yyyy)"),
    (["SENTON", "31-Feb-2020"], "Invalid date 31-Feb-2020 after SENTON (expected d-Mon-yyyy)"),
    (["SINCE", "1994-02-01"], "Invalid date 1994-02-01 after SINCE (expected d-Mon-yyyy)"),
    (["ON"], "Missing date after ON"),
    (["LARGER", "ten"], "Invalid number ten after LARGER"),
    (["SMALLER", "-1"], "Invalid number -1 after SMALLER"),
    (["LARGER", "9223372036854775808"], "Invalid number 9223372036854775808 after LARGER"),  # number64
    (["LARGER"], "Missing number after LARGER"),
    (["KEYWORD"], "Missing keyword"),
    (["KEYWORD", b"x"], "Expected an atom for keyword"),
    (["UID"], "Missing sequence set after UID"),
    (["UID", "1:x"], "Invalid sequence set"),
    (["0"], "Invalid sequence set"),
    (["NOT"], "Missing search key"),
    (["OR", "SEEN"], "Missing search key"),
])
def test_syntax_errors(args, text):
    with pytest.raises(IMAPBad) as info:
        parse_search(args)
    assert info.value.text == text


def test_nesting_is_bounded():
    with pytest.raises(IMAPBad) as info:
        parse_search(["NOT"] * 5000 + ["ALL"])
    assert info.value.text == "Search keys nested too deeply"
    deep = ["ALL"]
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(IMAPBad):
        parse_search(deep)
    # A long but reasonable OR chain is fine.
    assert match(["OR"] * 150 + ["SEEN"] * 151, NoRaw(flags=["\\Seen"])) is True


# ------------------------------------------------------------ decoding
@pytest.mark.parametrize("text, expected", [
    ("plain", "plain"),
    ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),               # space between words dropped
    ("=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b"),
    ("=?UTF-8*en?Q?hi_there?=", "hi there"),               # RFC 2231 language suffix
    ("=?utf-8?B?QUJD?=", "ABC"),
    ("=?utf-8?B?QUI?=", "AB"),                             # missing padding tolerated
    ("=?utf-8?B?QUJDR?= ok", "=?utf-8?B?QUJDR?= ok"),       # undecodable: kept literally
    ("=?x-unknown?q?caf=C3=A9?=", "café"),                 # unknown charset: UTF-8
    ("=?base64?q?abc?=", "abc"),                           # non-text codec name
    ("=?iso-8859-1?q?=E9?=", "é"),
])
def test_decode_encoded_words(text, expected):
    assert decode_encoded_words(text) == expected
