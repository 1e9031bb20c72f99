"""Tests for clevermail.imap.search (RFC 3501 section 6.4.4 SEARCH keys): what each key
matches -- the cheap keys (flags, sizes, dates, sequence sets and UIDs, NOT/OR), header
and address keys, body and text keys.  Costs, charsets and syntax errors are in
test_imap_search_costs.py, odd and random input in test_imap_search_robustness.py."""

import base64
import calendar

import pytest

from clevermail.imap import decode

from search_helpers import MULTI, PLAIN, Ctx, Msg, NoRaw, match


def utc(y, mo, d, h=0, mi=0, s=0):
    return float(calendar.timegm((y, mo, d, h, mi, s)))


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
