"""Tests for clevermail.imap.mime: ENVELOPE, BODY/BODYSTRUCTURE, sections.

Expected strings were worked out by hand from RFC 3501 section 7.4.2 (and
RFC 2045/2046 for part boundaries); sizes count the CRLF form and exclude the
CRLF that precedes a boundary line, which belongs to the boundary.
"""

import pathlib

import pytest

from clevermail.imap import envelope, mime

DATA = pathlib.Path(__file__).parent / "data" / "messages"


def load(name):
    """A corpus message in CRLF form (files are stored with LF endings)."""
    return (DATA / name).read_bytes().replace(b"\n", b"\r\n")


def pm(name):
    return mime.parse(load(name))


def crlf(text):
    return text.replace("\n", "\r\n").encode("utf-8")


# ------------------------------------------------------------------ ENVELOPE

def test_envelope_rfc3501_example():
    # The message behind the example in RFC 3501 section 7.4.2.
    assert mime.envelope(pm("simple.eml")) == (
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
    assert mime.envelope(pm("encoded_words.eml")) == (
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
    assert mime.envelope(pm("group.eml")) == (
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
    env = mime.envelope(pm("mixed_attachment.eml"))
    assert env == (
        b'("Tue, 2 Jan 2024 09:30:00 +0100" "Report attached" '
        b'(("Doe, Jane" NIL "jane" "example.com")) '
        b'(("Doe, Jane" NIL "jane" "example.com")) '
        b'(("Doe, Jane" NIL "jane" "example.com")) '
        b'((NIL NIL "team" "example.com")) NIL NIL NIL "<mixed-1@example.com>")')


def test_envelope_empty_message_and_empty_values():
    assert mime.envelope(mime.parse(b"")) == b"(" + b" ".join([b"NIL"] * 10) + b")"
    env = mime.envelope(mime.parse(b"Subject:\r\nFrom:\r\nTo: a@b\r\n\r\n"))
    # present-but-empty Subject is "", an empty From is NIL
    assert env == b'(NIL "" NIL NIL NIL ((NIL NIL "a" "b")) NIL NIL NIL NIL)'


def test_envelope_first_header_wins_and_names_case_insensitive():
    env = mime.envelope(mime.parse(b"SUBJECT: one\r\nsubject: two\r\n\r\n"))
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
    assert mime.nstring(value) == expected


# ------------------------------------------------------------- BODYSTRUCTURE

def test_bodystructure_simple_text():
    m = pm("simple.eml")
    assert mime.bodystructure(m) == (
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 33 2 NIL NIL NIL NIL)')
    assert mime.bodystructure(m, extended=False) == (
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 33 2)')


def test_bodystructure_alternative():
    m = pm("alternative.eml")
    assert mime.bodystructure(m) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 27 1 NIL NIL NIL NIL)'
        b'("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 36 0 NIL NIL NIL NIL)'
        b' "ALTERNATIVE" ("BOUNDARY" "alt-b") NIL NIL NIL)')
    assert mime.bodystructure(m, extended=False) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 27 1)'
        b'("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 36 0) "ALTERNATIVE")')


def test_bodystructure_attachment_with_disposition_language_id():
    assert mime.bodystructure(pm("mixed_attachment.eml")) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 26 1 NIL NIL NIL NIL)'
        b'("APPLICATION" "PDF" ("NAME" "report 2024.pdf") "<part2@example.com>" '
        b'"Quarterly report" "BASE64" 122 NIL '
        b'("ATTACHMENT" ("FILENAME" "report 2024.pdf" "SIZE" "42")) ("en" "fr") NIL)'
        b' "MIXED" ("BOUNDARY" "----=_Part_0_12345") NIL NIL NIL)')


NESTED_ENV = (b'("Wed, 3 Jan 2024 11:00:00 -0500" "Lunch" '
              b'(("Carol" NIL "carol" "example.com")) (("Carol" NIL "carol" "example.com")) '
              b'(("Carol" NIL "carol" "example.com")) (("Dave" NIL "dave" "example.com")) '
              b'NIL NIL NIL "<lunch@example.com>")')


def test_bodystructure_nested_message_rfc822():
    # Part 2's body runs from the inner "From:" to the "--outer--" line: the
    # CRLF ending "--inner--" is the rest of that boundary line, not the CRLF
    # owned by "--outer--" (Dovecot counts it the same way): 364 octets, 17 lines.
    m = pm("nested_rfc822.eml")
    assert mime.bodystructure(m) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 10 0 NIL NIL NIL NIL)'
        b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 364 ' + NESTED_ENV + b' '
        b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 5 0 NIL NIL NIL NIL)'
        b'("TEXT" "HTML" ("CHARSET" "us-ascii") NIL NIL "7BIT" 12 0 NIL NIL NIL NIL)'
        b' "ALTERNATIVE" ("BOUNDARY" "inner") NIL NIL NIL) 17 NIL ("INLINE" NIL) NIL NIL)'
        b' "MIXED" ("BOUNDARY" "outer") NIL NIL NIL)')
    assert mime.bodystructure(m, extended=False) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 10 0)'
        b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 364 ' + NESTED_ENV + b' '
        b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 5 0)'
        b'("TEXT" "HTML" ("CHARSET" "us-ascii") NIL NIL "7BIT" 12 0) "ALTERNATIVE") 17) "MIXED")')
    raw = m.raw
    start, end = raw.index(b"From: Carol"), raw.index(b"--outer--")
    assert (end - start, raw.count(b"\n", start, end)) == (364, 17)


def test_bodystructure_8bit_body():
    assert mime.bodystructure(pm("encoded_words.eml")) == (
        b'("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "8BIT" 19 1 NIL NIL NIL NIL)')


def test_content_headers_ignored_without_mime():
    # No MIME-Version and no Content-Type: Content-* headers do not count.
    assert mime.bodystructure(pm("no_content_type.eml")) == (
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 11 1 NIL NIL NIL NIL)')


def test_unterminated_multipart_runs_to_end():
    assert mime.bodystructure(pm("unterminated.eml")) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 5 0 NIL NIL NIL NIL)'
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 22 1 NIL NIL NIL NIL)'
        b' "MIXED" ("BOUNDARY" "b1") NIL NIL NIL)')


def test_multipart_without_boundary_has_one_empty_part():
    m = pm("no_boundary.eml")
    assert mime.bodystructure(m) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0 NIL NIL NIL NIL)'
        b' "MIXED" NIL NIL NIL NIL)')
    assert mime.section(m, (1,)) == b""
    assert mime.section(m, (), "TEXT").startswith(b"--x\r\n")


def test_dovecot_reference_message():
    # Dovecot's test-imap-bodystructure.c message: same sizes and line counts.
    msg = crlf(
        'From: user@domain.org\nMime-Version: 1.0\n'
        'Content-Type: multipart/mixed; boundary="foo\n bar"\n\nRoot MIME prologue\n\n'
        '--foo bar\nContent-Type: text/x-myown; charset=us-ascii; foo="quoted\\"string"\n'
        'Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\nContent-Location: http://example.com/test.txt\n'
        '\nhello\n\n--foo bar\nContent-Type: message/rfc822\n\nFrom: sub@domain.org\n'
        'To: sub-to1@domain.org, sub-to2@domain.org\nDate: Sun, 12 Aug 2012 12:34:56 +0300\n'
        'Subject: submsg\nContent-Type: multipart/alternative; boundary="sub1"\n\n'
        'Sub MIME prologue\n--sub1\nContent-Type: text/html\nContent-Transfer-Encoding: 8bit\n\n'
        '<p>Hello world</p>\n\n--sub1\nContent-Type: text/plain\n'
        'Content-Transfer-Encoding: ?invalid\n\nHello another world\n\n--sub1--\n'
        'Sub MIME epilogue\n\n--foo bar--\nRoot MIME epilogue\n')
    assert mime.bodystructure(mime.parse(msg), extended=False) == (
        b'(("TEXT" "X-MYOWN" ("CHARSET" "us-ascii" "FOO" "quoted\\"string") NIL NIL "7BIT" 7 1)'
        b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 412 ("Sun, 12 Aug 2012 12:34:56 +0300" "submsg" '
        b'((NIL NIL "sub" "domain.org")) ((NIL NIL "sub" "domain.org")) '
        b'((NIL NIL "sub" "domain.org")) ((NIL NIL "sub-to1" "domain.org")'
        b'(NIL NIL "sub-to2" "domain.org")) NIL NIL NIL NIL) '
        b'(("TEXT" "HTML" ("CHARSET" "US-ASCII") NIL NIL "8BIT" 20 1)'
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 21 1) "ALTERNATIVE") 21) "MIXED")')


def test_digest_parts_default_to_message_rfc822():
    msg = crlf('Content-Type: multipart/digest; boundary=d\n\n--d\n\n'
               'Subject: inner\n\nbody\n--d--\n')
    bs = mime.bodystructure(mime.parse(msg), extended=False)
    assert bs == (b'(("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 22 '
                  b'(NIL "inner" NIL NIL NIL NIL NIL NIL NIL NIL) '
                  b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 4 0) 2) "DIGEST")')


def test_content_type_without_subtype_is_octet_stream():
    bs = mime.bodystructure(mime.parse(b"Content-Type: text\r\n\r\nx"), extended=False)
    assert bs == b'("APPLICATION" "OCTET-STREAM" NIL NIL NIL "7BIT" 1)'


@pytest.mark.parametrize("value, expected", [
    ('text/plain; charset="utf-8"', [("CHARSET", "utf-8")]),
    ("text/plain ; charset = utf-8 (comment); format=flowed",
     [("CHARSET", "utf-8"), ("FORMAT", "flowed")]),
    ('a/b; name*0="long "; name*1="name.txt"', [("NAME", "long name.txt")]),
    ("a/b; name*0*=utf-8''%C3%A9; name*1=x%", [("NAME*", "utf-8''%C3%A9x%25")]),
    ("a/b; filename*=utf-8''caf%C3%A9.txt", [("FILENAME*", "utf-8''caf%C3%A9.txt")]),
    ("a/b; n*0=a; n*2=c", [("N*0", "a"), ("N*2", "c")]),
    ("a/b; name==?utf-8?q?x?=; z=1", [("NAME", "=?utf-8?q?x?="), ("Z", "1")]),
    ("a/b; @@@; ok=1; =; bad; k=\"unterminated", [("OK", "1"), ("K", "unterminated")]),
    ("a/b; n*%s=x" % ("9" * 5000), [("N*" + "9" * 5000, "x")]),
])
def test_content_type_parameters(value, expected):
    hdr = ("Content-Type: %s\r\n\r\n" % value).encode()
    root = mime.parse(hdr).root
    assert root.params == expected


def test_boundary_cuts_a_part_header_short():
    msg = crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n"
               "Content-Type: message/rfc822\n--b\nContent-Type: text/plain\n\nok\n--b--\n")
    m = mime.parse(msg)
    assert mime.bodystructure(m, extended=False) == (
        b'(("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 0 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)'
        b' ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0) 0)'
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 2 0) "MIXED")')
    assert mime.section(m, (1,), "MIME") == b"Content-Type: message/rfc822"


def test_outer_boundary_closes_inner_multipart():
    msg = crlf("Content-Type: multipart/mixed; boundary=out\n\n--out\n"
               "Content-Type: multipart/alternative; boundary=in\n\n--in\n\na\n"
               "--out\n\nb\n--out--\n")
    bs = mime.bodystructure(mime.parse(msg), extended=False)
    assert bs == (b'((("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1 0)'
                  b' "ALTERNATIVE")'
                  b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1 0) "MIXED")')


def test_longest_boundary_prefix_wins():
    # "--ab" starts both "--a" lines and "--ab" lines: the longer one matches.
    msg = crlf("Content-Type: multipart/mixed; boundary=a\n\n--a\n"
               "Content-Type: multipart/mixed; boundary=ab\n\n--ab\n\nx\n--ab--\n--a--\n")
    m = mime.parse(msg)
    assert mime.section(m, (1, 1)) == b"x"
    assert len(m.root.children) == 1


def test_deep_nesting_is_bounded():
    depth = 500     # fixed-width boundaries: none is a prefix of another
    head = "".join("Content-Type: multipart/mixed; boundary=b%03d\n\n--b%03d\n" % (i, i)
                   for i in range(depth))
    msg = crlf(head + "\nleaf\n" + "".join("--b%03d--\n" % i for i in reversed(range(depth))))
    m = mime.parse(msg)
    bs = mime.bodystructure(m)
    assert bs.count(b'"MIXED"') == mime.MAX_DEPTH
    assert b'"APPLICATION" "OCTET-STREAM"' in bs


def test_many_parts_are_bounded():
    msg = crlf("Content-Type: multipart/mixed; boundary=b\n\n"
               + "--b\n\nx\n" * (mime.MAX_PARTS + 50) + "--b--\n")
    m = mime.parse(msg)
    assert len(m.root.children) < mime.MAX_PARTS


def test_bare_lf_is_normalized_to_crlf():
    m = mime.parse(b"Subject: x\n\nline\nline2\r\n")
    assert m.raw == b"Subject: x\r\n\r\nline\r\nline2\r\n"
    assert mime.bodystructure(m, extended=False) == (
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 13 2)')


# ------------------------------------------------------------------ sections

def test_sections_of_single_part_message():
    m = pm("simple.eml")
    raw = m.raw
    header, body = raw.split(b"\r\n\r\n", 1)
    assert mime.section(m, ()) == raw
    assert mime.section(m, (), "HEADER") == header + b"\r\n\r\n"
    assert mime.section(m, (), "TEXT") == body
    assert mime.section(m, (1,)) == body          # part 1 of a non-multipart
    assert mime.section(m, (1,), "MIME") == header + b"\r\n\r\n"
    assert mime.section(m, (2,)) == b""
    assert mime.section(m, (1, 2)) == b""
    assert mime.section(m, (1,), "HEADER") == b""   # not a message/rfc822


def test_header_fields_and_not():
    m = pm("simple.eml")
    assert mime.section(m, (), "HEADER.FIELDS", ("subject", "CC", "X-None")) == (
        b"Subject: IMAP4rev1 WG mtg summary and minutes\r\n"
        b"cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n\r\n")
    assert mime.section(m, (), "HEADER.FIELDS", ("X-None",)) == b"\r\n"
    assert mime.section(m, (), "HEADER.FIELDS.NOT",
                        ("Date", "From", "To", "cc", "Message-Id", "Subject")) == (
        b"MIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n")


def test_header_fields_keep_folded_lines():
    m = pm("encoded_words.eml")
    assert mime.section(m, (), "HEADER.FIELDS", ("Subject",)) == (
        b"Subject: =?UTF-8?B?SGVsbG8gV8O2cmxk?=\r\n =?ISO-8859-1?Q?_caf=E9?=\r\n\r\n")


def test_sections_of_multipart():
    m = pm("alternative.eml")
    assert mime.section(m, (1,)) == b"Hello Bob,\r\ncaf=C3=A9 time?"
    assert mime.section(m, (2,)) == b"<p>Hello Bob,<br>caf=C3=A9 time?</p>"
    assert mime.section(m, (1,), "MIME") == (
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n")
    assert mime.section(m, (3,)) == b""
    assert mime.section(m, (), "TEXT").startswith(b"This is a multi-part message")
    assert mime.section(m, (), "TEXT").endswith(b"--alt-b--\r\n")


def test_sections_of_nested_message():
    m = pm("nested_rfc822.eml")
    inner_header = (b"From: Carol <carol@example.com>\r\nTo: Dave <dave@example.com>\r\n"
                    b"Subject: Lunch\r\nDate: Wed, 3 Jan 2024 11:00:00 -0500\r\n"
                    b"Message-ID: <lunch@example.com>\r\nMIME-Version: 1.0\r\n"
                    b"Content-Type: multipart/alternative; boundary=inner\r\n\r\n")
    assert mime.section(m, (1,)) == b"See below."
    assert mime.section(m, (2,), "MIME") == (
        b"Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n")
    assert mime.section(m, (2,), "HEADER") == inner_header
    assert mime.section(m, (2,)) == inner_header + mime.section(m, (2,), "TEXT")
    assert mime.section(m, (2,), "TEXT").startswith(b"--inner\r\nContent-Type: text/plain")
    assert mime.section(m, (2,), "HEADER.FIELDS", ("subject",)) == b"Subject: Lunch\r\n\r\n"
    assert mime.section(m, (2, 1)) == b"Noon?"
    assert mime.section(m, (2, 2)) == b"<b>Noon?</b>"
    assert mime.section(m, (2, 2), "MIME") == b"Content-Type: text/html; charset=us-ascii\r\n\r\n"
    assert mime.section(m, (2, 3)) == b""
    assert mime.section(m, (2, 1), "HEADER") == b""
    assert mime.section(m, (1, 1)) == b"See below."   # a leaf's part 1 is itself


def test_top_level_message_rfc822():
    msg = crlf("Content-Type: message/rfc822\n\nSubject: in\n\nhello\n")
    m = mime.parse(msg)
    assert mime.section(m, (1,)) == b"Subject: in\r\n\r\nhello\r\n"
    assert mime.section(m, (1,), "HEADER") == b"Subject: in\r\n\r\n"
    assert mime.section(m, (1, 1)) == b"hello\r\n"


def test_header_without_blank_line():
    m = mime.parse(b"Subject: only header\r\nFrom: a@b")
    assert mime.section(m, (), "HEADER") == b"Subject: only header\r\nFrom: a@b"
    assert mime.section(m, (), "TEXT") == b""
    assert mime.section(m, (), "HEADER.FIELDS", ("from",)) == b"From: a@b\r\n\r\n"
