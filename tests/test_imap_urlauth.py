"""Tests for URLAUTH (RFC 4467) and URLAUTH=BINARY (RFC 5524): the URL parser
(imap/url.py), the access keys (store/url_keys.py), and GENURLAUTH, URLFETCH and
RESETKEY in sessions over socketpair, across two users."""

import datetime
import os

import pytest

from clevermail.imap.url import UrlError, parse_url, relative_url
from clevermail.store.url_keys import UrlAuthKeys
from imap_helpers import (ALICE, BOB, deliver, handler, open_session, store,  # noqa: F401 (fixtures)
                          uidvalidity)

BASE = "imap://alice@example.test/INBOX"


# -- parsing ------------------------------------------------------------------------------
def test_parse_a_signed_url():
    text = f"{BASE};UIDVALIDITY=7/;UID=3/;SECTION=1.2/;PARTIAL=10.20;URLAUTH=user+bob%40x:internal:" + "ab" * 20
    url = parse_url(text)
    assert (url.owner, url.mailbox, url.uidvalidity, url.uid, url.section, url.partial) == \
        (ALICE, "INBOX", 7, 3, "1.2", (10, 20))
    assert (url.access, url.mechanism, url.token) == ("user+bob%40x", "internal", "ab" * 20)
    assert url.rump == text[:text.index(":internal:")]


def test_parse_owner_mailbox_and_expire():
    url = parse_url("imap://bob@example.test/Work%2FR%C3%A9sum%C3%A9/;uid=1"
                    ";expire=2030-01-01T00:00:00Z;urlauth=anonymous")
    assert (url.owner, url.mailbox, url.section, url.token) == (BOB, "Work/Résumé", None, None)
    assert url.expire == datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    assert parse_url("imap://bob%40example.test@mail.host/INBOX/;uid=1").owner == BOB


@pytest.mark.parametrize("text", [
    "http://alice@example.test/INBOX/;uid=1", "imap://example.test/INBOX/;uid=1",
    "imap://alice@example.test/INBOX", "imap://alice@example.test/INBOX/;uid=0",
    "imap://alice@example.test/INBOX/;uid=x", "imap://alice@example.test//;uid=1",
    "imap://alice@example.test/INBOX/;uid=1/;bogus=1", "imap://alice@example.test/INBOX/;uid=1/;section=",
    "imap://alice@example.test/INBOX/;uid=1;urlauth=everyone",
    "imap://alice@example.test/INBOX/;uid=1;urlauth=anonymous:internal:short",
    "imap://alice@example.test/INBOX/;uid=1;expire=yesterday;urlauth=anonymous",
    "imap://alice@example.test/INBOX/;uid=99999999999",
    "imap://alice@example.test/%FF%FE/;uid=1",               # not UTF-8
    "imap://alice@example.test/INBOX/;uid=\u00b2",           # a digit, but not an ASCII one
    "imap://alice@example.test/INBOX;uidvalidity=\u0661/;uid=1",
])
def test_bad_urls(text):
    with pytest.raises(UrlError):
        parse_url(text)


def test_relative_url():
    url = relative_url("/Drafts;UIDVALIDITY=5/;UID=2/;SECTION=TEXT")
    assert (url.owner, url.mailbox, url.uidvalidity, url.uid, url.section) == (None, "Drafts", 5, 2, "TEXT")


# -- keys ------------------------------------------------------------------------------
def test_keys_sign_verify_and_reset(store):
    keys = UrlAuthKeys(store)
    token = keys.sign(ALICE, "INBOX", "rump")
    assert len(token) == 40 and keys.verify(ALICE, "INBOX", "rump", token.upper())
    assert not keys.verify(ALICE, "INBOX", "rump2", token)
    assert not keys.verify(ALICE, "Sent", "rump", token)         # another mailbox's key
    assert UrlAuthKeys(store).verify(ALICE, "INBOX", "rump", token)   # kept on disk
    keys.reset(ALICE, "INBOX")
    assert not keys.verify(ALICE, "INBOX", "rump", token)
    again = keys.sign(ALICE, "INBOX", "rump")
    keys.reset(ALICE)
    assert not keys.verify(ALICE, "INBOX", "rump", again)
    mode = os.stat(os.path.join(store.user_root(ALICE), "clevermail-urlauth-keys")).st_mode
    assert mode & 0o077 == 0


# -- sessions ------------------------------------------------------------------------------
def genurlauth(c, url):
    r = c.expect(f'GENURLAUTH "{url}" INTERNAL')
    (line,) = r.untagged
    assert line.startswith('* GENURLAUTH "') and line.endswith('"')
    return line[len('* GENURLAUTH "'):-1]


def urlfetch(c, signed):
    (line,) = c.expect(f'URLFETCH "{signed}"').untagged
    prefix = f'* URLFETCH "{signed}" '
    assert line.startswith(prefix)
    return line[len(prefix):]


@pytest.fixture
def alice_bob(open_session, store):
    deliver(store, 2)
    a, b = open_session(), open_session()
    a.login()
    b.login(BOB)
    return a, b


def test_urls_for_someone_work_for_them_only(alice_bob, store):
    a, b = alice_bob
    signed = genurlauth(a, f"{BASE}/;UID=1;URLAUTH=user+{BOB}")
    assert signed.startswith(f"{BASE}/;UID=1;URLAUTH=user+{BOB}:internal:")
    body = urlfetch(b, signed)
    assert body.startswith("{") and "Subject:" in body          # Bob reads Alice's message
    assert urlfetch(a, signed) == "NIL"                          # not for Alice herself
    anyone = genurlauth(a, f"{BASE};UIDVALIDITY={uidvalidity(store)}/;UID=2/;SECTION=HEADER;URLAUTH=authuser")
    assert "Subject:" in urlfetch(b, anyone) and "Subject:" in urlfetch(a, anyone)


def test_urls_that_do_not_verify_give_nil(alice_bob, store):
    a, b = alice_bob
    signed = genurlauth(a, f"{BASE}/;UID=1;URLAUTH=authuser")
    token = signed.rsplit(":", 1)[1]
    forged = signed[:-len(token)] + ("0" if token[0] != "0" else "1") + token[1:]
    other_uid = signed.replace(";UID=1;", ";UID=2;")
    wrong_validity = genurlauth(a, f"{BASE};UIDVALIDITY=1/;UID=1;URLAUTH=authuser")
    expired = genurlauth(a, f"{BASE}/;UID=1;EXPIRE=2001-01-01T00:00:00Z;URLAUTH=authuser")
    gone = genurlauth(a, f"{BASE}/;UID=77;URLAUTH=authuser")
    submit = genurlauth(a, f"{BASE}/;UID=1;URLAUTH=submit+{BOB}")
    stranger = f"imap://nobody@elsewhere.test/INBOX/;UID=1;URLAUTH=anonymous:internal:{'a' * 40}"
    for url in (forged, other_uid, wrong_validity, expired, gone, submit, "not a url", stranger):
        assert urlfetch(b, url) == "NIL", url
    assert not os.path.exists(store.user_root("nobody@elsewhere.test"))   # nothing made for it
    assert urlfetch(b, signed) != "NIL"


def test_resetkey_revokes(alice_bob):
    a, b = alice_bob
    signed = genurlauth(a, f"{BASE}/;UID=1;URLAUTH=authuser")
    a.expect('RESETKEY "INBOX" INTERNAL')
    assert urlfetch(b, signed) == "NIL"
    again = genurlauth(a, f"{BASE}/;UID=1;URLAUTH=authuser")
    a.expect("RESETKEY")
    assert urlfetch(b, again) == "NIL"
    a.expect('RESETKEY "Nowhere"', "NO", "NONEXISTENT")
    a.expect('RESETKEY "INBOX" OTHER', "NO")


def test_genurlauth_refuses_what_is_not_the_users(alice_bob):
    a, b = alice_bob
    a.expect('GENURLAUTH "imap://bob@example.test/INBOX/;UID=1;URLAUTH=authuser" INTERNAL', "NO")
    a.expect(f'GENURLAUTH "{BASE}/;UID=1;URLAUTH=authuser" OTHER', "NO")
    a.expect(f'GENURLAUTH "{BASE}/;UID=1" INTERNAL', "BAD")
    a.expect(f'GENURLAUTH "{BASE}/;UID=1;URLAUTH=authuser:internal:{"a" * 40}" INTERNAL', "BAD")
    a.expect('GENURLAUTH "imap://alice@example.test/Nowhere/;UID=1;URLAUTH=authuser" INTERNAL',
             "NO", "NONEXISTENT")
    a.expect("GENURLAUTH", "BAD")
    a.expect(f'GENURLAUTH "{BASE}/;UID=1;URLAUTH=authuser"', "BAD")


def test_urlfetch_binary_forms(open_session, store):
    raw = (b"From: a@example.test\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n")
    store.deliver_local("", [ALICE], raw)
    a = open_session()
    a.login()
    signed = genurlauth(a, f"{BASE}/;UID=1/;SECTION=1;URLAUTH=authuser")
    (line,) = a.expect(f'URLFETCH ("{signed}" BINARY BODYPARTSTRUCTURE BODY)').untagged
    assert line == (f'* URLFETCH "{signed}" (BODYPARTSTRUCTURE ("text" "plain" ("charset" "us-ascii") '
                    'NIL NIL "base64" 11 0 NIL NIL NIL NIL) BODY {18}\r\naGVsbG8gd29ybGQ=\r\n BINARY {11}\r\n'
                    'hello world)')
    a.expect(f'URLFETCH ("{signed}" BOGUS)', "BAD")
    a.expect("URLFETCH ()", "BAD")
