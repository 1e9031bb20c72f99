"""Tests for clevermail.imap.envelope: ENVELOPE (RFC 3501 section 7.4.2) of corpus and
hand-made messages, the expected strings worked out by hand from the RFC; spelling
follows Dovecot (lib-imap): values as the message writes them."""

import pytest

from clevermail.imap import envelope, mime

from mime_helpers import pm


# ------------------------------------------------------------------ ENVELOPE
def test_envelope_rfc3501_example():
    # The message behind the example in RFC 3501 section 7.4.2.
    assert envelope.envelope(pm("simple.eml")) == (
        b'("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" '
        b'"IMAP4rev1 WG mtg summary and minutes" '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'((NIL NIL "imap" "cac.washington.edu")) '
        b'((NIL NIL "minutes" "CNRI.Reston.VA.US")'
        b'("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL '
        b'"<B27397-0100000@cac.washington.edu>")')


def test_envelope_encoded_words_stay_encoded_and_8bit_is_literal():
    assert envelope.envelope(pm("encoded_words.eml")) == (
        b'("Thu, 4 Jan 2024 08:00:00 +0000" '
        # folded subject: CRLF removed, the continuation's space kept
        b'"=?UTF-8?B?SGVsbG8gV8O2cmxk?= =?ISO-8859-1?Q?_caf=E9?=" '
        b'(("=?ISO-8859-1?Q?Andr=E9?= Pirard" NIL "PIRARD" "vm1.ulg.ac.be")) '
        b'(("=?ISO-8859-1?Q?Andr=E9?= Pirard" NIL "PIRARD" "vm1.ulg.ac.be")) '
        # raw UTF-8 in a header cannot be a quoted string: literal
        b'(({7}\r\nJ\xc3\xbcrgen NIL "j" "example.de")) '
        b'(("=?UTF-8?B?SsO8cmdlbg==?=" NIL "juergen" "example.de")'
        b'("Smith, John (Sales)" NIL "john.smith" "example.com")) '
        b'(("Keld =?ISO-8859-1?Q?J=F8rn_Simonsen?=" NIL "keld" "dkuug.dk")) '
        b'NIL "<prev@example.com>" "<enc-1@example.com>")')


def test_envelope_groups_routes_comments_missing_domain():
    assert envelope.envelope(pm("group.eml")) == (
        b'("Fri, 5 Jan 2024 00:00:00 +0000" "Spaced out subject" '
        b'((NIL NIL "MAILER-DAEMON" "MISSING_DOMAIN")) '
        b'(("List Bounces" NIL "list-bounces" "lists.example.org")) '
        b'((NIL NIL "MAILER-DAEMON" "MISSING_DOMAIN")) '
        b'((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) '
        b'((NIL NIL "Friends" NIL)(NIL NIL "alice" "example.com")'
        b'("Bob B." NIL "bob" "example.com")(NIL NIL NIL NIL)'
        b'(NIL NIL "carol" "example.com")) '
        b'((NIL "@relay1.example,@relay2.example" "dave" "example.com")) NIL NIL)')


def test_envelope_quoted_display_name_with_comma():
    env = envelope.envelope(pm("mixed_attachment.eml"))
    assert env == (
        b'("Tue, 2 Jan 2024 09:30:00 +0100" "Report attached" '
        b'(("Doe, Jane" NIL "jane" "example.com")) '
        b'(("Doe, Jane" NIL "jane" "example.com")) '
        b'(("Doe, Jane" NIL "jane" "example.com")) '
        b'((NIL NIL "team" "example.com")) NIL NIL NIL "<mixed-1@example.com>")')


def test_envelope_empty_message_and_empty_values():
    assert envelope.envelope(mime.parse(b"")) == b"(" + b" ".join([b"NIL"] * 10) + b")"
    env = envelope.envelope(mime.parse(b"Subject:\r\nFrom:\r\nTo: a@b\r\n\r\n"))
    # present-but-empty Subject is "", an empty From is NIL
    assert env == b'(NIL "" NIL NIL NIL ((NIL NIL "a" "b")) NIL NIL NIL NIL)'


def test_envelope_first_header_wins_and_names_case_insensitive():
    env = envelope.envelope(mime.parse(b"SUBJECT: one\r\nsubject: two\r\n\r\n"))
    assert env.startswith(b'(NIL "one" NIL')


@pytest.mark.parametrize("value, expected", [
    ("a@b", [(None, None, "a", "b")]),
    ("<a@b>", [(None, None, "a", "b")]),
    ("A B <a@b>", [("A B", None, "a", "b")]),
    ('"A \\"q\\" B" <a@b>', [('A "q" B', None, "a", "b")]),
    ("a@b (Comment (nested) here)", [("Comment (nested) here", None, "a", "b")]),
    ('"john doe"@example.com', [(None, None, "john doe", "example.com")]),
    ("a@[127.0.0.1]", [(None, None, "a", "[127.0.0.1]")]),
    ("a@b, , c@d,", [(None, None, "a", "b"), (None, None, "c", "d")]),
    ("John Q. Public <jqp@x.org>", [("John Q. Public", None, "jqp", "x.org")]),
    ("<@r1,@r2:u@h>", [(None, "@r1,@r2", "u", "h")]),
    ("nobody", [(None, None, "nobody", "MISSING_DOMAIN")]),
    ("@example.com", [(None, None, "MISSING_MAILBOX", "example.com")]),
    ("G: a@b", [(None, None, "G", None), (None, None, "a", "b"), (None, None, None, None)]),
    ("G:;, H: x@y;", [(None, None, "G", None), (None, None, None, None),
                      (None, None, "H", None), (None, None, "x", "y"), (None, None, None, None)]),
    ("", []),
    ("(only a comment)", []),
])
def test_parse_addresses(value, expected):
    assert envelope.parse_addresses(value) == expected


@pytest.mark.parametrize("value, expected", [
    (None, b"NIL"),
    ("", b'""'),
    ("plain", b'"plain"'),
    ('say "hi" \\o/', b'"say \\"hi\\" \\\\o/"'),
    ("  folded\r\n\t text  ", b'"folded text"'),
    ("caf\xe9", b"{4}\r\ncaf\xe9"),
    ("a\0b", b"{3}\r\na\x80b"),
])
def test_nstring_quoting(value, expected):
    assert envelope.nstring(value) == expected
