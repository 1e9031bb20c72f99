"""Tests for clevermail.imap.bodystructure: BODY and BODYSTRUCTURE (RFC 3501 section
7.4.2), basic and extended, of single, multipart and message/rfc822 parts.

Expected strings were worked out by hand from RFC 3501 section 7.4.2 (and RFC
2045/2046 for part boundaries); sizes count the CRLF form and exclude the CRLF that
precedes a boundary line, which belongs to the boundary.  Spelling follows Dovecot
(lib-imap/imap-bodystructure.c): values as the message writes them, lower-case
defaults ("text" "plain" ("charset" "us-ascii") "7bit")."""

import pytest

from clevermail.imap import mime
from clevermail.imap.bodystructure import bodystructure

from mime_helpers import crlf, pm


# ------------------------------------------------------------- BODYSTRUCTURE
def test_bodystructure_simple_text():
    # "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII" is echoed as written; the
    # missing Content-Transfer-Encoding is Dovecot's lower-case "7bit".
    m = pm("simple.eml")
    assert bodystructure(m) == (
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7bit" 33 2 NIL NIL NIL NIL)')
    assert bodystructure(m, extended=False) == (
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7bit" 33 2)')


def test_bodystructure_alternative():
    m = pm("alternative.eml")
    assert bodystructure(m) == (
        b'(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 27 1 NIL NIL NIL NIL)'
        b'("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 36 0 NIL NIL NIL NIL)'
        b' "alternative" ("boundary" "alt-b") NIL NIL NIL)')
    assert bodystructure(m, extended=False) == (
        b'(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 27 1)'
        b'("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 36 0) "alternative")')


def test_bodystructure_attachment_with_disposition_language_id():
    assert bodystructure(pm("mixed_attachment.eml")) == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 26 1 NIL NIL NIL NIL)'
        b'("application" "pdf" ("name" "report 2024.pdf") "<part2@example.com>" '
        b'"Quarterly report" "base64" 122 NIL '
        b'("attachment" ("filename" "report 2024.pdf" "size" "42")) ("en" "fr") NIL)'
        b' "mixed" ("boundary" "----=_Part_0_12345") NIL NIL NIL)')


NESTED_ENV = (b'("Wed, 3 Jan 2024 11:00:00 -0500" "Lunch" '
              b'(("Carol" NIL "carol" "example.com")) (("Carol" NIL "carol" "example.com")) '
              b'(("Carol" NIL "carol" "example.com")) (("Dave" NIL "dave" "example.com")) '
              b'NIL NIL NIL "<lunch@example.com>")')


def test_bodystructure_nested_message_rfc822():
    # Part 2's body runs from the inner "From:" to the "--outer--" line: the
    # CRLF ending "--inner--" is the rest of that boundary line, not the CRLF
    # owned by "--outer--" (Dovecot counts it the same way): 364 octets, 17 lines.
    m = pm("nested_rfc822.eml")
    assert bodystructure(m) == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 0 NIL NIL NIL NIL)'
        b'("message" "rfc822" NIL NIL NIL "7bit" 364 ' + NESTED_ENV + b' '
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 5 0 NIL NIL NIL NIL)'
        b'("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 12 0 NIL NIL NIL NIL)'
        b' "alternative" ("boundary" "inner") NIL NIL NIL) 17 NIL ("inline" NIL) NIL NIL)'
        b' "mixed" ("boundary" "outer") NIL NIL NIL)')
    assert bodystructure(m, extended=False) == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 0)'
        b'("message" "rfc822" NIL NIL NIL "7bit" 364 ' + NESTED_ENV + b' '
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 5 0)'
        b'("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 12 0) "alternative") 17) "mixed")')
    raw = m.raw
    start, end = raw.index(b"From: Carol"), raw.index(b"--outer--")
    assert (end - start, raw.count(b"\n", start, end)) == (364, 17)


def test_bodystructure_8bit_body():
    assert bodystructure(pm("encoded_words.eml")) == (
        b'("text" "plain" ("charset" "utf-8") NIL NIL "8bit" 19 1 NIL NIL NIL NIL)')


def bs_of(header, body="x\n", extended=False):
    """BODY(STRUCTURE) of a one-part MIME message with the given header."""
    msg = crlf("MIME-Version: 1.0\n" + header + "\n" + body)
    return bodystructure(mime.parse(msg), extended=extended)


def test_tokens_are_written_as_the_message_spells_them():
    # imap-bodystructure.c part_write_body(): imap_append_string() of the
    # parsed type, subtype, parameter names/values, encoding and disposition.
    assert bs_of("Content-Type: Text/HTML; Charset=UTF-8; Format=Flowed\n"
                 "Content-Transfer-Encoding: Quoted-Printable\n"
                 "Content-Disposition: INLINE; FileName=A.txt\n", extended=True) == (
        b'("Text" "HTML" ("Charset" "UTF-8" "Format" "Flowed") NIL NIL '
        b'"Quoted-Printable" 3 1 NIL ("INLINE" ("FileName" "A.txt")) NIL NIL)')


def test_default_charset_is_lower_case_and_last():
    # params_write(default_charset=TRUE): "charset" "us-ascii" after the
    # other parameters, unless one is named charset in any case.
    assert bs_of("Content-Type: text/plain; format=flowed\n") == (
        b'("text" "plain" ("format" "flowed" "charset" "us-ascii") NIL NIL "7bit" 3 1)')
    assert bs_of("Content-Type: text/plain; ChArSeT=x\n") == (
        b'("text" "plain" ("ChArSeT" "x") NIL NIL "7bit" 3 1)')
    # not text: no default, and NIL without parameters
    assert bs_of("Content-Type: image/png\n") == b'("image" "png" NIL NIL NIL "7bit" 3)'


def test_message_rfc822_is_always_written_lower_case():
    # part_write_body(): MESSAGE_PART_FLAG_MESSAGE_RFC822 writes the literal
    # "message" "rfc822"; its parameters are written like any non-text part.
    bs = bs_of("Content-Type: Message/RFC822; X=1\n", "Subject: s\n\nhi\n")
    assert bs == (b'("message" "rfc822" ("X" "1") NIL NIL "7bit" 18 '
                  b'(NIL "s" NIL NIL NIL NIL NIL NIL NIL NIL) '
                  b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 1) 3)')


def test_multipart_subtype_and_boundary_as_written():
    # part_write_body_multipart(): subtype as written; extension data has
    # all Content-Type parameters, the boundary among them, names as written.
    msg = crlf("Content-Type: Multipart/Mixed; BOUNDARY=\"Zz\"; Type=x\n\n"
               "--Zz\n\na\n--Zz--\n")
    assert bodystructure(mime.parse(msg)) == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0 NIL NIL NIL NIL)'
        b' "Mixed" ("BOUNDARY" "Zz" "Type" "x") NIL NIL NIL)')


@pytest.mark.parametrize("headers, encoding", [
    ([], b'"7bit"'),
    (["8BIT"], b'"8BIT"'),
    ([" (c) base64 (c)"], b'"base64"'),
    # parse_content_transfer_encoding(): one token and nothing after it ...
    (["base64 junk"], b'"7bit"'),
    (["?invalid"], b'"7bit"'),
    ([""], b'"7bit"'),
    # ... and an unusable field leaves the next one a try
    (["?invalid", "Base64"], b'"Base64"'),
    (["binary", "base64"], b'"binary"'),
])
def test_transfer_encoding(headers, encoding):
    hdr = "".join("Content-Transfer-Encoding:%s\n" % h for h in headers)
    assert bs_of("Content-Type: image/png\n" + hdr) == (
        b'("image" "png" NIL NIL NIL ' + encoding + b' 3)')


@pytest.mark.parametrize("headers, disposition", [
    (["attachment"], b'("attachment" NIL)'),
    (["Attachment; Size=3; filename*=utf-8''a%20b"],
     b'("Attachment" ("Size" "3" "filename*" "utf-8\'\'a%20b"))'),
    # parse_content_disposition() runs while no parameters were found: the
    # first field with parameters wins, else the last one ...
    (["inline", "attachment; a=1", "other; b=2"], b'("attachment" ("a" "1"))'),
    (["inline", "attachment"], b'("attachment" NIL)'),
    # ... and the type is a token that may be empty
    ([""], b'("" NIL)'),
    (["; filename=x"], b'("" ("filename" "x"))'),
])
def test_disposition(headers, disposition):
    hdr = "".join("Content-Disposition: %s\n" % h for h in headers)
    assert bs_of("Content-Type: image/png\n" + hdr, extended=True) == (
        b'("image" "png" NIL NIL NIL "7bit" 3 NIL ' + disposition + b' NIL NIL)')


@pytest.mark.parametrize("headers, language", [
    (["en"], b'("en")'),
    (["EN-us, (comment) fr ,de"], b'("EN-us" "fr" "de")'),
    ([""], b"NIL"),
    # parse_content_language(): a field without atoms leaves the next a try
    (["", "fi"], b'("fi")'),
    (["sv", "fi"], b'("sv")'),
])
def test_language_is_always_a_list(headers, language):
    hdr = "".join("Content-Language: %s\n" % h for h in headers)
    hdr += "Content-Location: Http://Example.com/A\n"
    assert bs_of("Content-Type: image/png\n" + hdr, extended=True) == (
        b'("image" "png" NIL NIL NIL "7bit" 3 NIL NIL ' + language
        + b' "Http://Example.com/A")')


def test_content_headers_ignored_without_mime():
    # No MIME-Version and no Content-Type: Content-* headers do not count.
    assert bodystructure(pm("no_content_type.eml")) == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 11 1 NIL NIL NIL NIL)')


def test_unterminated_multipart_runs_to_end():
    assert bodystructure(pm("unterminated.eml")) == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 5 0 NIL NIL NIL NIL)'
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 22 1 NIL NIL NIL NIL)'
        b' "mixed" ("boundary" "b1") NIL NIL NIL)')


def test_multipart_without_boundary_has_one_empty_part():
    m = pm("no_boundary.eml")
    assert bodystructure(m) == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)'
        b' "mixed" NIL NIL NIL NIL)')
    assert mime.section(m, (1,)) == b""
    assert mime.section(m, (), "TEXT").startswith(b"--x\r\n")


DOVECOT_MSG = (
    'From: user@domain.org\nDate: Sat, 24 Mar 2007 23:00:00 +0200\nMime-Version: 1.0\n'
    'Content-Type: multipart/mixed; boundary="foo\n bar"\n\nRoot MIME prologue\n\n'
    '--foo bar\nContent-Type: text/x-myown; charset=us-ascii; foo="quoted\\"string"\n'
    'Content-ID: <foo@example.com>\nContent-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n'
    'Content-Disposition: inline; foo=bar\nContent-Description: hellodescription\n'
    'Content-Language: en, fi, se\nContent-Location: http://example.com/test.txt\n'
    '\nhello\n\n--foo bar\nContent-Type: message/rfc822\n\nFrom: sub@domain.org\n'
    'To: sub-to1@domain.org, sub-to2@domain.org\nDate: Sun, 12 Aug 2012 12:34:56 +0300\n'
    'Subject: submsg\nContent-Type: multipart/alternative; boundary="sub1"\n\n'
    'Sub MIME prologue\n--sub1\nContent-Type: text/html\nContent-Transfer-Encoding: 8bit\n\n'
    '<p>Hello world</p>\n\n--sub1\nContent-Type: text/plain\n'
    'Content-Transfer-Encoding: ?invalid\n\nHello another world\n\n--sub1--\n'
    'Sub MIME epilogue\n\n--foo bar--\nRoot MIME epilogue\n')
DOVECOT_SUB_ENV = (
    b'("Sun, 12 Aug 2012 12:34:56 +0300" "submsg" '
    b'((NIL NIL "sub" "domain.org")) ((NIL NIL "sub" "domain.org")) '
    b'((NIL NIL "sub" "domain.org")) ((NIL NIL "sub-to1" "domain.org")'
    b'(NIL NIL "sub-to2" "domain.org")) NIL NIL NIL NIL)')


def test_dovecot_reference_message():
    # Dovecot's test-imap-bodystructure.c message and its expected
    # testmsg_bodystructure / testmsg_body, verbatim (Dovecot's test writes
    # the root without the parentheses the FETCH response puts around it).
    m = mime.parse(crlf(DOVECOT_MSG))
    assert bodystructure(m) == b"(" + (
        b'("text" "x-myown" ("charset" "us-ascii" "foo" "quoted\\"string") '
        b'"<foo@example.com>" "hellodescription" "7bit" 7 1 "Q2hlY2sgSW50ZWdyaXR5IQ==" '
        b'("inline" ("foo" "bar")) ("en" "fi" "se") "http://example.com/test.txt")'
        b'("message" "rfc822" NIL NIL NIL "7bit" 412 ' + DOVECOT_SUB_ENV + b' '
        b'(("text" "html" ("charset" "us-ascii") NIL NIL "8bit" 20 1 NIL NIL NIL NIL)'
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 21 1 NIL NIL NIL NIL) '
        b'"alternative" ("boundary" "sub1") NIL NIL NIL) 21 NIL NIL NIL NIL) '
        b'"mixed" ("boundary" "foo bar") NIL NIL NIL') + b")"
    assert bodystructure(m, extended=False) == b"(" + (
        b'("text" "x-myown" ("charset" "us-ascii" "foo" "quoted\\"string") '
        b'"<foo@example.com>" "hellodescription" "7bit" 7 1)'
        b'("message" "rfc822" NIL NIL NIL "7bit" 412 ' + DOVECOT_SUB_ENV + b' '
        b'(("text" "html" ("charset" "us-ascii") NIL NIL "8bit" 20 1)'
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 21 1) "alternative") 21) '
        b'"mixed"') + b")"


def test_digest_parts_default_to_message_rfc822():
    msg = crlf('Content-Type: multipart/digest; boundary=d\n\n--d\n\n'
               'Subject: inner\n\nbody\n--d--\n')
    bs = bodystructure(mime.parse(msg), extended=False)
    assert bs == (b'(("message" "rfc822" NIL NIL NIL "7bit" 22 '
                  b'(NIL "inner" NIL NIL NIL NIL NIL NIL NIL NIL) '
                  b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 0) 2) "digest")')


@pytest.mark.parametrize("value, expected", [
    # message-part-data.c parse_content_type(): the type as parsed, subtype
    # "" and no parameters read; still a text part when the type is "text".
    ("text", b'("text" "" ("charset" "us-ascii") NIL NIL "7bit" 3 1)'),
    ("text; charset=utf-8", b'("text" "" ("charset" "us-ascii") NIL NIL "7bit" 3 1)'),
    ("image/", b'("image" "" NIL NIL NIL "7bit" 3)'),
    # "multipart" without "/" is not a multipart (message-parser.c)
    ("multipart; boundary=b", b'("multipart" "" NIL NIL NIL "7bit" 3)'),
    # an empty Content-Type is still a Content-Type: no text/plain default
    ("", b'("" "" NIL NIL NIL "7bit" 3)'),
    # a "/" followed by something: the (possibly empty) subtype and parameters
    ("image/; name=a", b'("image" "" ("name" "a") NIL NIL "7bit" 3)'),
])
def test_content_type_without_subtype(value, expected):
    msg = ("Content-Type: %s\r\n\r\nx\r\n" % value).encode()
    assert bodystructure(mime.parse(msg), extended=False) == expected


@pytest.mark.parametrize("value, expected", [
    ('text/plain; charset="utf-8"', [("charset", "utf-8")]),
    ("text/plain ; charset = utf-8 (comment); format=flowed",
     [("charset", "utf-8"), ("format", "flowed")]),
    ('a/b; name*0="long "; name*1="name.txt"', [("name", "long name.txt")]),
    ("a/b; name*0*=utf-8''%C3%A9; name*1=x%", [("name*", "utf-8''%C3%A9x%25")]),
    ("a/b; filename*=utf-8''caf%C3%A9.txt", [("filename*", "utf-8''caf%C3%A9.txt")]),
    ("a/b; n*0=a; n*2=c", [("n*0", "a"), ("n*2", "c")]),
    ("a/b; name==?utf-8?q?x?=; z=1", [("name", "=?utf-8?q?x?="), ("z", "1")]),
    ("a/b; @@@; ok=1; =; bad; k=\"unterminated", [("ok", "1"), ("k", "unterminated")]),
    ("a/b; n*%s=x" % ("9" * 5000), [("n*" + "9" * 5000, "x")]),
    # names keep their case (rfc2231_parse() never folds them) ...
    ("a/b; CharSet=X; Format=Flowed", [("CharSet", "X"), ("Format", "Flowed")]),
    # ... continuations merge ignoring ASCII case, under the name sorting first
    ("a/b; name*1=b; Name*0=a", [("Name", "ab")]),
    ("a/b; NAME*1*=b; name*0*=a; x=y", [("x", "y"), ("NAME*1*", "b"), ("name*0*", "a")]),
])
def test_content_type_parameters(value, expected):
    hdr = ("Content-Type: %s\r\n\r\n" % value).encode()
    root = mime.parse(hdr).root
    assert root.params == expected


def test_boundary_cuts_a_part_header_short():
    msg = crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n"
               "Content-Type: message/rfc822\n--b\nContent-Type: text/plain\n\nok\n--b--\n")
    m = mime.parse(msg)
    assert bodystructure(m, extended=False) == (
        b'(("message" "rfc822" NIL NIL NIL "7bit" 0 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)'
        b' ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) 0)'
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 2 0) "mixed")')
    assert mime.section(m, (1,), "MIME") == b"Content-Type: message/rfc822"


def test_outer_boundary_closes_inner_multipart():
    msg = crlf("Content-Type: multipart/mixed; boundary=out\n\n--out\n"
               "Content-Type: multipart/alternative; boundary=in\n\n--in\n\na\n"
               "--out\n\nb\n--out--\n")
    bs = bodystructure(mime.parse(msg), extended=False)
    assert bs == (b'((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0)'
                  b' "alternative")'
                  b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0) "mixed")')


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
    bs = bodystructure(m)
    assert bs.count(b'"mixed"') == mime.MAX_DEPTH
    assert b'"application" "octet-stream"' in bs


def test_many_parts_are_bounded():
    msg = crlf("Content-Type: multipart/mixed; boundary=b\n\n"
               + "--b\n\nx\n" * (mime.MAX_PARTS + 50) + "--b--\n")
    m = mime.parse(msg)
    assert len(m.root.children) < mime.MAX_PARTS


def test_bare_lf_is_normalized_to_crlf():
    m = mime.parse(b"Subject: x\n\nline\nline2\r\n")
    assert m.raw == b"Subject: x\r\n\r\nline\r\nline2\r\n"
    assert bodystructure(m, extended=False) == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 13 2)')
