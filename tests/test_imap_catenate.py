"""Tests for CATENATE (RFC 4469, clevermail/imap/catenate.py): the parts list, messages
put together from text and URLs of the user's messages (relative and imap:// forms,
sections and partials), URLAUTH URLs of another user's, and the failures: BADURL,
TRYCREATE before it, TOOBIG, nothing stored when a part fails."""

import pytest

from clevermail.imap.catenate import parse_parts
from clevermail.imap.parser import Atom
from clevermail.imap.replies import IMAPBad
from imap_helpers import ALICE, BOB, deliver, handler, open_session, store, uidvalidity  # noqa: F401

FIRST = b"From: foo@example.test\r\nSubject: one\r\n\r\nHello world body\r\n"


def lit(data):
    return f"{{{len(data)}+}}\r\n".encode() + data


def append_cat(c, mailbox, *parts, options=b""):
    """APPEND with CATENATE: parts are ("TEXT", bytes) or ("URL", str)."""
    tag = next(c.tags)
    pieces = []
    for kind, value in parts:
        if kind == "TEXT":
            pieces.append(b"TEXT " + lit(value))
        else:
            pieces.append(b'URL "' + value.encode() + b'"')
    c.send(f"{tag} APPEND {mailbox} ".encode() + options + b"CATENATE (" + b" ".join(pieces) + b")\r\n")
    return c.read_reply(tag)


def bodies(c, mailbox):
    c.expect(f"SELECT {mailbox}")
    r = c.expect("FETCH 1:* (BODY.PEEK[])")
    return [line.split("}\r\n", 1)[1][:-1].encode() for line in r.untagged if " FETCH " in line]


@pytest.fixture
def alice(open_session, store):
    store.deliver_local("", [ALICE], FIRST)
    c = open_session()
    c.login()
    c.expect("CREATE Out")
    return c


def test_parse_parts_shapes():
    assert parse_parts([Atom("TEXT"), b"ab", Atom("url"), b"/INBOX/;UID=1"]) == \
        [("TEXT", b"ab"), ("URL", "/INBOX/;UID=1")]
    for bad in ([], [Atom("TEXT")], [Atom("BODY"), b"x"], [Atom("URL"), [b"x"]], [b"TEXT", b"x"], None):
        with pytest.raises(IMAPBad):
            parse_parts(bad)


def test_text_and_urls_make_one_message(alice, store):
    v = uidvalidity(store)
    r = append_cat(alice, "Out", ("TEXT", b"From: new@example.test\r\n\r\n"),
                   ("URL", f"/INBOX;UIDVALIDITY={v}/;UID=1/;SECTION=TEXT"),
                   ("URL", "/INBOX/;UID=1/;SECTION=HEADER.FIELDS%20(SUBJECT)/;PARTIAL=0.9"),
                   ("TEXT", b"\r\nend\r\n"), options=b"(\\Seen) ")
    assert r.tagged.split()[1] == "OK" and "APPENDUID" in r.tagged
    assert bodies(alice, "Out") == [b"From: new@example.test\r\n\r\nHello world body\r\nSubject: \r\nend\r\n"]
    r = alice.expect("FETCH 1 (FLAGS)")
    assert "\\Seen" in r.untagged[0]


def test_imap_url_of_the_users_own_message(alice):
    r = append_cat(alice, "Out", ("URL", "imap://alice@example.test/INBOX/;UID=1"))
    assert r.tagged.split()[1] == "OK"
    assert bodies(alice, "Out")[0].endswith(b"Hello world body\r\n")


def test_bad_urls_fail_and_store_nothing(alice, store):
    for url in ("/INBOX;UIDVALIDITY=12345/;UID=1", "/INBOX/;UID=99", "/Nowhere/;UID=1", "not a url",
                "imap://bob@example.test/INBOX/;UID=1"):
        r = append_cat(alice, "Out", ("TEXT", b"Subject: x\r\n\r\n"), ("URL", url), ("TEXT", b"more\r\n"))
        assert r.tagged.split()[1:3] == ["NO", "[BADURL"], r
        assert url.split("]")[0] in r.tagged
    r = alice.expect("STATUS Out (MESSAGES)")
    assert r.untagged == ['* STATUS "Out" (MESSAGES 0)']


def test_trycreate_comes_before_badurl(alice):
    r = append_cat(alice, "Missing", ("URL", "/INBOX;UIDVALIDITY=1/;UID=1"))
    assert r.tagged.split()[1:3] == ["NO", "[TRYCREATE]"]


def test_urlauth_url_of_another_user(open_session, store):
    store.deliver_local("", [BOB], b"Subject: from bob\r\n\r\nbob's text\r\n")
    b, a = open_session(), open_session()
    b.login(BOB)
    (line,) = b.expect('GENURLAUTH "imap://bob@example.test/INBOX/;UID=1/;SECTION=TEXT;'
                       f'URLAUTH=user+{ALICE}" INTERNAL').untagged
    signed = line.split('"')[1]
    a.login()
    r = append_cat(a, "INBOX", ("TEXT", b"Subject: fwd\r\n\r\n"), ("URL", signed))
    assert r.tagged.split()[1] == "OK"
    assert bodies(a, "INBOX") == [b"Subject: fwd\r\n\r\nbob's text\r\n"]
    # without the token Bob's mailbox is not Alice's to read
    r = append_cat(a, "INBOX", ("URL", "imap://bob@example.test/INBOX/;UID=1"))
    assert r.tagged.split()[1:3] == ["NO", "[BADURL"]


def test_too_big(alice, handler):
    limit = 1 << 20                     # imap_helpers' FakeServer message_size
    r = append_cat(alice, "Out", *[("URL", "/INBOX/;UID=1")] * 2, ("TEXT", b"x" * (limit - 10)))
    assert r.tagged.split()[1:3] == ["NO", "[TOOBIG]"]


def test_catenate_in_a_multiappend_all_or_nothing(alice):
    tag = next(alice.tags)
    body = b"Subject: two\r\n\r\nplain literal\r\n"
    alice.send(f"{tag} APPEND Out CATENATE (URL \"/INBOX/;UID=1/;SECTION=HEADER\" TEXT ".encode()
               + lit(b"first\r\n") + b") (\\Flagged) " + lit(body) + b"\r\n")
    r = alice.read_reply(tag)
    assert r.tagged.split()[1] == "OK" and "APPENDUID" in r.tagged
    got = bodies(alice, "Out")
    assert got[0].endswith(b"Subject: one\r\n\r\nfirst\r\n") and got[1] == body
    # one bad URL: neither message is stored
    tag = next(alice.tags)
    alice.send(f"{tag} APPEND Out ".encode() + lit(body) + b' CATENATE (URL "/INBOX/;UID=42")\r\n')
    assert alice.read_reply(tag).tagged.split()[1:3] == ["NO", "[BADURL"]
    assert alice.expect("STATUS Out (MESSAGES)").untagged == ['* STATUS "Out" (MESSAGES 2)']
