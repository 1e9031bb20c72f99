"""Tests for clevermail.imap.search on odd input: BODY and TEXT see the parts FETCH sees
(nested multiparts, prefix boundaries), bare-LF messages match as their CRLF form, deep
MIME stays searchable, odd messages never raise, and random token lists get a result or
a clean BAD."""

import base64
import random

import pytest

from clevermail.imap.replies import IMAPBad, IMAPNo
from clevermail.imap.search import parse_search

from search_helpers import MULTI, PLAIN, Ctx, Msg, match


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
