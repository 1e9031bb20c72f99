"""Tests for clevermail.imap.search (RFC 3501 section 6.4.4 SEARCH keys)."""

import base64
import calendar
import random

import pytest

from clevermail.imap import decode
from clevermail.imap.decode import decode_encoded_words
from clevermail.imap.replies import IMAPBad, IMAPNo
from clevermail.imap.search import parse_search


class Msg:
    """A message as the folder view's Message value gives it (flags a frozenset of
    names, \\Recent among them when held); raw() is its content for Ctx.read, and
    counts the reads."""

    def __init__(self, raw=b"", seq=1, uid=1, flags=(), recent=False,
                 internaldate=0.0, size=None):
        self._raw = raw
        self.seq, self.uid = seq, uid
        self.flags = frozenset(flags) | ({"\\Recent"} if recent else set())
        self.internaldate = internaldate
        self.size = len(raw) if size is None else size
        self.raw_calls = 0

    def raw(self):
        self.raw_calls += 1
        return self._raw


class NoRaw(Msg):
    def raw(self):
        raise AssertionError("raw() must not be called for this search")


class Ctx:
    def __init__(self, max_seq=10, max_uid=100, saved=frozenset()):
        self.max_seq, self.max_uid, self.saved = max_seq, max_uid, saved

    @staticmethod
    def read(msg):
        """The file handler's read_message, for a Msg."""
        return msg.raw()


def match(args, msg, ctx=None, **kw):
    return parse_search(args, **kw).matches(msg, ctx or Ctx())


def utc(y, mo, d, h=0, mi=0, s=0):
    return float(calendar.timegm((y, mo, d, h, mi, s)))


HEADERS = (
    b"From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <jorg@example.com>\r\n"
    b"To: alice@example.com\r\n"
    b"To: Bob <bob@example.org>\r\n"
    b"Cc: carol@example.net\r\n"
    b"Bcc: dave@example.net\r\n"
    b"Subject: =?iso-8859-1?q?Caf=E9?= meeting\r\n"
    b" =?utf-8?b?bsOkY2hzdGU=?= =?utf-8?b?IFdvY2hl?=\r\n"
    b"X-Mailer: Hand\r\n"
    b"X-Empty:\r\n"
    b"Date: Tue, 1 Feb 1994 23:30:00 -0800\r\n"
)
PLAIN = HEADERS + b"\r\nThe body says hello.\r\n"
MULTI = (
    b"Subject: parts\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
    b"preamble\r\n--XX\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Gr=FC=DFe aus K=F6ln, soft=\r\nbreak\r\n"
    b"--XX\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n"
    + base64.encodebytes("<p>Ünïcode HTML</p>".encode()).replace(b"\n", b"\r\n")
    + b"--XX\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n"
    + base64.encodebytes(b"secret attachment words").replace(b"\n", b"\r\n")
    + b"--XX--\r\n"
)


# ------------------------------------------------------------ cheap keys

@pytest.mark.parametrize("key, flags, recent, expected", [
    ("ALL", [], False, True),
    ("ANSWERED", ["\\Answered"], False, True),
    ("ANSWERED", [], False, False),
    ("UNANSWERED", [], False, True),
    ("DELETED", ["\\Deleted"], False, True),
    ("UNDELETED", ["\\Deleted"], False, False),
    ("DRAFT", ["\\Draft"], False, True),
    ("UNDRAFT", ["\\Draft"], False, False),
    ("FLAGGED", ["\\flagged"], False, True),      # flags compare case-insensitively
    ("UNFLAGGED", [], False, True),
    ("SEEN", ["\\Seen"], False, True),
    ("UNSEEN", ["\\Seen"], False, False),
    ("unseen", [], False, True),                  # key names too
    ("RECENT", [], True, True),
    ("RECENT", [], False, False),
    ("OLD", [], False, True),
    ("OLD", [], True, False),
    ("NEW", [], True, True),
    ("NEW", ["\\Seen"], True, False),
    ("NEW", [], False, False),
])
def test_flag_keys(key, flags, recent, expected):
    assert match([key], NoRaw(flags=flags, recent=recent)) is expected


def test_keyword():
    msg = NoRaw(flags=["\\Seen", "$Forwarded"])
    assert match(["KEYWORD", "$forwarded"], msg) is True
    assert match(["KEYWORD", "$Junk"], msg) is False
    assert match(["UNKEYWORD", "$FORWARDED"], msg) is False
    assert match(["UNKEYWORD", "$Junk"], msg) is True


def test_size_is_strict():
    msg = NoRaw(size=100)
    assert match(["LARGER", "99"], msg) is True
    assert match(["LARGER", "100"], msg) is False
    assert match(["SMALLER", "101"], msg) is True
    assert match(["SMALLER", "100"], msg) is False


def test_internal_date_uses_utc_date_only():
    msg = NoRaw(internaldate=utc(1994, 2, 1, 23, 59, 59))
    assert match(["ON", "1-Feb-1994"], msg) is True
    assert match(["ON", "2-Feb-1994"], msg) is False
    assert match(["BEFORE", "2-Feb-1994"], msg) is True
    assert match(["BEFORE", "1-Feb-1994"], msg) is False    # strictly earlier
    assert match(["SINCE", "1-Feb-1994"], msg) is True      # on or after
    assert match(["SINCE", "2-feb-1994"], msg) is False
    assert match(["SINCE", b"01-Feb-1994"], msg) is True    # quoted date form


def test_sequence_set_and_uid_keys():
    ctx = Ctx(max_seq=10, max_uid=120)
    msg = NoRaw(seq=10, uid=120)
    assert match(["*"], msg, ctx) is True
    assert match(["1:9"], msg, ctx) is False
    assert match(["2,4:7,9:*"], msg, ctx) is True
    assert match(["UID", "50000:*"], msg, ctx) is True         # RFC 3501 6.4.8
    assert match(["UID", "1:119"], msg, ctx) is False
    assert match(["uid", "120"], msg, ctx) is True


def test_boolean_structure():
    msg = NoRaw(flags=["\\Seen"], size=50)
    assert match(["SEEN", "LARGER", "10"], msg) is True           # implicit AND
    assert match(["SEEN", "LARGER", "60"], msg) is False
    assert match(["OR", "UNSEEN", "LARGER", "10"], msg) is True
    assert match(["OR", "UNSEEN", "LARGER", "60"], msg) is False
    assert match(["NOT", "SEEN"], msg) is False
    assert match(["NOT", "NOT", "SEEN"], msg) is True
    assert match([["SEEN", "SMALLER", "10"]], msg) is False
    assert match(["OR", ["UNSEEN", "ALL"], [["LARGER", "49"]]], msg) is True
    assert match(["NOT", ["SEEN", "DRAFT"]], msg) is True


# ------------------------------------------------------------ headers

@pytest.mark.parametrize("args, expected", [
    (["FROM", b"J\xc3\xb6rg m\xc3\xbcller"], True),   # RFC 2047 Q, UTF-8 needle
    (["FROM", "jorg@EXAMPLE.com"], True),
    (["FROM", "alice"], False),
    (["TO", "bob@example.org"], True),                  # second To: field
    (["TO", "alice"], True),
    (["CC", "carol"], True),
    (["BCC", "dave"], True),
    (["BCC", "carol"], False),
    (["SUBJECT", "café meeting nächste woche".encode()], True),  # unfolded, words joined
    (["SUBJECT", "CAFÉ".encode()], True),
    (["SUBJECT", "hello"], False),
    (["HEADER", "x-mailer", "hand"], True),
    (["HEADER", b"X-MAILER", b""], True),               # "" = field present
    (["HEADER", "X-Empty", ""], True),
    (["HEADER", "X-Missing", ""], False),
    (["HEADER", "Subject", "meeting"], True),
    (["SENTON", "1-Feb-1994"], True),                   # date as written, not UTC
    (["SENTON", "2-Feb-1994"], False),
    (["SENTBEFORE", "2-Feb-1994"], True),
    (["SENTBEFORE", "1-Feb-1994"], False),
    (["SENTSINCE", "1-Feb-1994"], True),
    (["SENTSINCE", "2-Feb-1994"], False),
    (["BODY", "meeting"], False),                       # BODY excludes headers
    (["BODY", "HELLO"], True),
    (["TEXT", "meeting"], True),
    (["TEXT", "hello"], True),
    (["TEXT", "x-mailer"], True),
])
def test_plain_message(args, expected):
    assert match(args, Msg(PLAIN)) is expected


def test_missing_field_and_date_never_match():
    msg = Msg(b"X-Other: 1\r\n\r\nbody\r\n")
    for args in (["SUBJECT", ""], ["FROM", ""], ["SENTON", "1-Jan-2000"],
                 ["SENTBEFORE", "1-Jan-3000"], ["SENTSINCE", "1-Jan-1900"]):
        assert match(args, msg) is False, args
    assert match(["NOT", "SENTBEFORE", "1-Jan-3000"], msg) is True


def test_unparseable_date_never_matches():
    msg = Msg(b"Date: not a date at all\r\n\r\n")
    assert match(["SENTSINCE", "1-Jan-1900"], msg) is False
    assert match(["SENTBEFORE", "1-Jan-3000"], msg) is False


def test_first_date_field_counts():
    msg = Msg(b"Date: 3 Mar 2021 10:00:00 +0000\r\nDate: 4 Mar 2021 10:00:00 +0000\r\n\r\n")
    assert match(["SENTON", "3-Mar-2021"], msg) is True
    assert match(["SENTON", "4-Mar-2021"], msg) is False


def test_eight_bit_headers():
    msg = Msg(b"Subject: caf\xc3\xa9 utf8\r\nFrom: J\xf6rg latin1\r\n\r\n")
    assert match(["SUBJECT", "CAFÉ".encode()], msg) is True
    assert match(["FROM", "jörg".encode()], msg) is True


# The seven messages of imaptest's search-addresses group: FROM/TO/CC/BCC match the
# parsed addresses (as ENVELOPE shows them), not the raw field with its comments.
ADDRESS_MESSAGES = [
    b"From: user-from@domain.org\r\nTo: user-to@domain.org\r\n\r\n",
    b"From: RealFrom <user-from@domain.org>\r\nTo: RealTo <user-to@domain.org>\r\n\r\n",
    b"From: <user-from (comment)@ (comment) domain.org>\r\nTo: <user-to@domain.org>\r\n\r\n",
    b"From: user-from@domain.org (RealFrom)\r\nTo: user-to@domain.org (RealTo)\r\n\r\n",
    b"From: user-from1@domain.org, user-from2@domain.org\r\n\r\n",
    b"From: RealFrom <user-from@domain.org>\r\nTo: groupname: groupuser1@domain.org,"
    b" groupuser2@domain.org;,\r\n  groupname2: groupuser3@domain.org;\r\n\r\n",
    b"From: RealFrom <user-from@domain.org>\r\nTo: groupname:;\r\n\r\n",
]


@pytest.mark.parametrize("args, expected", [
    (["FROM", "user-from@domain.org"], [1, 2, 3, 4, 6, 7]),   # 3: comments inside the address
    (["TO", "user-to@domain.org"], [1, 2, 3, 4]),
    (["FROM", "realfrom"], [2, 4, 6, 7]),                    # 4: the comment names the address
    (["FROM", "ealfro"], [2, 4, 6, 7]),
    (["FROM", "ser-fro"], [1, 2, 3, 4, 5, 6, 7]),
    (["FROM", "user-from1"], [5]),
    (["FROM", "comment"], []),                               # comments are not the address
    (["TO", "groupname"], [6, 7]),
    (["TO", "groupname2"], [6]),
    (["TO", "groupuser3"], [6]),
    (["TO", "groupuser4"], []),
    (["HEADER", "from", "comment"], [3]),                    # HEADER still reads the raw field
    (["TO", ""], [1, 2, 3, 4, 6, 7]),                        # "" = the field is there
])
def test_address_keys_match_parsed_addresses(args, expected):
    found = [n for n, raw in enumerate(ADDRESS_MESSAGES, 1) if match(args, Msg(raw))]
    assert found == expected


def test_address_names_are_decoded_after_parsing():
    """An encoded word that decodes to a comma or a bracket stays inside the name."""
    raw = b"From: =?utf-8?q?M=C3=BCller=2C_J=C3=B6rg_=3Cx=3E?= <jm@example.com>\r\n\r\n"
    assert match(["FROM", "müller, jörg <x> <jm@example.com>".encode()], Msg(raw)) is True
    assert decode.address_text("=?utf-8?q?a=2C_b?= <c@d>, e@f") == "a, b <c@d>, e@f"


# ------------------------------------------------------------ bodies

@pytest.mark.parametrize("needle, expected", [
    ("grüße aus köln", True),         # QP + ISO-8859-1
    ("soft break", False),            # soft line break joins "soft" and "break"
    ("softbreak", True),
    ("ünïcode html", True),           # base64 UTF-8 text/html
    ("secret attachment", False),     # non-text parts are not searched
    ("preamble", False),
    ("parts", False),                 # header, not body
])
def test_multipart_body(needle, expected):
    assert match(["BODY", needle.encode()], Msg(MULTI)) is expected


def test_text_covers_headers_and_parts():
    assert match(["TEXT", "parts"], Msg(MULTI)) is True
    assert match(["TEXT", "köln".encode()], Msg(MULTI)) is True


def test_base64_single_part_and_empty_body_string():
    raw = (b"Content-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n"
           + base64.b64encode("Straße".encode()) + b"\r\n")
    assert match(["BODY", b"STRASSE"], Msg(raw)) is True   # casefold: ß == ss
    assert match(["BODY", ""], Msg(b"")) is True


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


# ------------------------------------------------------------ robustness

ODD_MESSAGES = [
    b"",
    b"\r\n\r\n",
    b"no headers at all, just text\r\n",
    b" continuation first\r\nSubject: x\r\n\r\nbody",
    b"Subject: lf only\nFrom: a@b\n\nbody\n",
    b"Subject: caf\xe9\r\nFrom: \xff\xfe\xc3\r\n\r\n\xff\xfe body",
    b"Subject: =?utf-8?B?QUJDR?= =?x-bogus?Q?a=ZZ?= =?utf-8?q?=C3?= =?utf-8?b?8J+Y?=\r\n\r\n",
    b"Subject: =?\r\n =?utf-8?q?\r\nTo: ?=\r\n\r\n",
    b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64@@@=\r\n",
    b"Content-Type: text/plain; charset=x-nonsense\r\nContent-Transfer-Encoding: quoted-printable"
    b"\r\n\r\n=ZZ=\r\n=4",
    b"Content-Type: text/plain; charset*=utf-8''%E2%82%AC\r\n\r\nrfc2231",
    b"Content-Type: multipart/mixed\r\n\r\nno boundary here\r\n",
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain; '
    b'charset="\xff"\r\n\r\nunclosed part',
    b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body",
    b"Date: Mon, 99 Foo 20xx 25:61:00 +9999\r\n\r\n",
    b"Date: 31 Feb 2020 10:00:00 +0000\r\n\r\n",
    b"Date:\r\nDate: 0 0 0\r\n\r\n",
    b"Subject: " + b"x" * 20000 + b"\r\n\r\n",
]
for _n in (30, 1200):  # shallow and recursion-exhausting MIME nesting
    _raw = b"Content-Type: text/plain\r\n\r\nneedle\r\n"
    for _i in range(_n):
        _raw = (b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (_i, _i)
                + _raw + b"\r\n--b%d--\r\n" % _i)
    ODD_MESSAGES.append(_raw)


# Messages where the stdlib email package (which SEARCH used to re-parse bodies
# with) and mime.py (FETCH's parser) found different parts.
PREFIX_BOUNDARY = (
    # Like Dovecot, mime.py takes a boundary as a line prefix ("--XXjunk" ends
    # part 1); the stdlib wants the boundary alone on its line, so it saw one
    # part holding the second part's header and its undecoded base64.
    b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
    b"--XX\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n"
    b"--XXjunk after the boundary\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.b64encode("zweiter Teil, grün".encode()) + b"\r\n--XX--\r\n"
)
NESTED_PREFIX = (
    # An inner boundary that extends the outer one: the longest match wins in
    # mime.py, so "--outer-inner" is the inner delimiter, never the outer one.
    b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n'
    b'--outer\r\nContent-Type: multipart/alternative; boundary="outer-inner"\r\n\r\n'
    b"--outer-inner\r\nContent-Type: text/plain\r\n\r\nalt one\r\n"
    b"--outer-inner\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable"
    b"\r\n\r\nalt tw=\r\no\r\n--outer-inner--\r\n"
    b"--outer\r\nContent-Type: text/plain\r\n\r\nlast part\r\n--outer--\r\n"
)


def _fetch(raw, section):
    from clevermail.imap.fetch import render_fetch
    from clevermail.imap.fetch_items import parse_fetch_items
    out = render_fetch(parse_fetch_items("BODY.PEEK[%s]" % section), Msg(raw), Ctx.read)
    return out[out.index(b"}\r\n") + 3:-1]


def test_search_body_sees_the_parts_fetch_sees():
    raw = PREFIX_BOUNDARY
    assert _fetch(raw, "1") == b"first part"
    assert _fetch(raw, "2") == base64.b64encode("zweiter Teil, grün".encode())
    assert _fetch(raw, "2.MIME").startswith(b"Content-Type: text/plain; charset=utf-8\r\n")
    # SEARCH decodes part 2 where FETCH puts it (the stdlib left it base64)...
    assert match(["BODY", "zweiter Teil, grün".encode()], Msg(raw)) is True
    assert match(["BODY", "first part"], Msg(raw)) is True
    # ...and, as in FETCH, neither the delimiter line nor part 2's header is body text.
    for needle in ("junk after the boundary", "Content-Transfer-Encoding", "endlaXRlciBUZWls"):
        assert match(["BODY", needle], Msg(raw)) is False, needle
        assert match(["TEXT", needle], Msg(raw)) is False, needle


def test_search_body_in_nested_multiparts_as_fetch_splits_them():
    raw = NESTED_PREFIX
    assert [_fetch(raw, s) for s in ("1.1", "1.2", "2")] == [
        b"alt one", b"alt tw=\r\no", b"last part"]
    for needle in ("alt one", "alt two", "last part"):      # QP soft break undone
        assert match(["BODY", needle], Msg(raw)) is True, needle
    assert match(["BODY", "outer-inner"], Msg(raw)) is False


@pytest.mark.parametrize("crlf", [PLAIN, MULTI, PREFIX_BOUNDARY, NESTED_PREFIX])
def test_bare_lf_message_matches_as_its_crlf_form(crlf):
    # SEARCH skips mime.py's bare-LF repair (it needs no offsets): same answers.
    lf = crlf.replace(b"\r\n", b"\n")
    for key in ("BODY", "TEXT", "SUBJECT"):
        for needle in ("hello", "grüße", "ünïcode", "zweiter teil", "alt two", "last part",
                       "junk after", "content-type", "parts", "café", "preamble"):
            assert match([key, needle.encode()], Msg(lf)) == match([key, needle.encode()], Msg(crlf)), (key, needle)


def test_deep_mime_still_searchable():
    assert match(["BODY", "needle"], Msg(ODD_MESSAGES[-2])) is True
    assert match(["BODY", "needle"], Msg(ODD_MESSAGES[-1])) is True  # raw fallback


@pytest.mark.parametrize("raw", ODD_MESSAGES, ids=range(len(ODD_MESSAGES)))
def test_odd_messages_never_raise(raw):
    args = ["OR", "TEXT", "zz", "OR", "BODY", "needle", "OR", "FROM", "a",
            "OR", "SUBJECT", "x", "OR", "SENTON", "1-Feb-1994",
            "OR", "SENTBEFORE", "1-Jan-3000", "HEADER", "Content-Type", ""]
    assert match(args, Msg(raw, flags=["\\Seen"])) in (True, False)
    for internaldate in (0.0, 1e20, float("nan"), -1e20):
        assert match(["ON", "1-Jan-1970"], Msg(raw, internaldate=internaldate)) in (True, False)


VOCABULARY = [
    "ALL", "answered", "BCC", "BEFORE", "BODY", "CC", "DELETED", "DRAFT", "FLAGGED",
    "FROM", "HEADER", "KEYWORD", "LARGER", "NEW", "NOT", "OLD", "ON", "OR", "RECENT",
    "SEEN", "SENTBEFORE", "SENTON", "SENTSINCE", "SINCE", "SMALLER", "SUBJECT", "TEXT",
    "TO", "UID", "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNKEYWORD", "UNSEEN",
    "CHARSET", "UTF-8", "KOI8-R", "1", "1:*", "*", "0", "5:2", "2,4:7", "x", "", "$",
    "1-Feb-1994", "31-Feb-2020", "99999999999", "100", "-", "\\Seen", "needle",
    b"", b"x", b"\xff\xfe", b"1-Feb-1994", "é",
]


def _random_tokens(rng, depth=0):
    tokens = []
    for _ in range(rng.randrange(0, 9)):
        if depth < 3 and rng.random() < 0.1:
            tokens.append(_random_tokens(rng, depth + 1))
        else:
            tokens.append(rng.choice(VOCABULARY))
    return tokens


def test_random_token_lists():
    rng = random.Random(3501)
    corpus = [Msg(PLAIN), Msg(MULTI)] + [Msg(raw) for raw in ODD_MESSAGES[:-1]]
    parsed = 0
    for _ in range(2000):
        args = _random_tokens(rng)
        try:
            program = parse_search(args)
        except (IMAPBad, IMAPNo):
            continue
        parsed += 1
        for msg in corpus:
            assert program.matches(msg, Ctx()) in (True, False)
    assert parsed > 100  # the generator does reach the evaluator
