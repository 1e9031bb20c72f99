"""Tests for clevermail.imap.names: a client's mailbox argument (an Atom, or bytes for a
quoted string or literal, as the parser gives them) to a folder name (INBOX
case-insensitive, modified UTF-7), a name back on the wire, and LIST/LSUB patterns
(RFC 3501 5.1, 5.1.3, 6.3.8)."""

import pytest

from clevermail.imap.names import ListPattern, mailbox_name, wire_name
from clevermail.imap.parser import Atom
from clevermail.imap.replies import IMAPNo


@pytest.mark.parametrize("token, name", [
    (Atom("INBOX"), "INBOX"), (Atom("inbox"), "INBOX"), (b"InBox", "INBOX"),
    (Atom("inbox/Sub"), "INBOX/Sub"), (Atom("INBOXES"), "INBOXES"), (b"Inbound", "Inbound"),
    (Atom("Entw&APw-rfe"), "Entwürfe"), (b"a&-b", "a&b"),
])
def test_mailbox_name(token, name):
    assert mailbox_name(token) == name


@pytest.mark.parametrize("raw", [b"&Jjo", b"a&b", b"&AGEAYgBj-", b"&Zm-"])
def test_mailbox_name_refuses_bad_modified_utf7(raw):
    with pytest.raises(IMAPNo) as info:
        mailbox_name(raw)
    assert info.value.code == "CANNOT"


def test_wire_name_is_quoted_modified_utf7():
    assert wire_name("Entwürfe") == b'"Entw&APw-rfe"'
    assert wire_name('say "hi"') == b'"say \\"hi\\""'


@pytest.mark.parametrize("reference, pattern, matches, misses", [
    ("", "*", ["INBOX", "a/b/c"], []),
    ("", "%", ["INBOX", "Work"], ["Work/Sub"]),
    ("", "Work/%", ["Work/Sub"], ["Work", "Work/Sub/Deep"]),
    ("Work/", "%", ["Work/Sub"], ["Sub", "Work"]),
    ("Work/", "/Top", ["/Top"], ["Work//Top"]),              # a rooted pattern ignores the reference
    ("", "inb%", ["INBOX"], ["INBOX/Sub", "Inbound"]),
    ("", "Inb*", ["INBOX", "INBOX/Sub", "Inbound"], []),
    ("", "inbox/sub", [], ["INBOX/Sub"]),                    # below INBOX case counts
    ("", "work", [], ["Work"]),
    ("", "v1.2 100%", ["v1.2 100", "v1.2 100x"], ["v1x2 100"]),  # '.' is literal
])
def test_list_pattern(reference, pattern, matches, misses):
    matcher = ListPattern(reference, pattern)
    assert [m for m in matches if matcher.match(m)] == matches
    assert [m for m in misses if matcher.match(m)] == []
