"""Tests for the parsers under DKIM verification against dkimpy's own, on real and
tens of thousands of random inputs: dkim/canon.py's header field selection, message
split (also from header_fields' grouped fields), field start and relaxed header
canonicalisation, and clevermail.dkim.verify's b= stripping, tag-list parsing and tag
checks.  Whole signatures are judged in test_dkim_verify.py."""

import random
import re
import time

import dkim
import pytest
from dkim.canonicalization import Relaxed
from dkim.util import InvalidTagValueList, parse_tag_value

from clevermail.dkim import canon
from clevermail.dkim.verify import check_tags, signature_tags, strip_b
from clevermail.smtp.message import header_fields
from dkim_helpers import MESSAGE


def test_select_chooses_the_fields_dkimpy_chooses():
    rng = random.Random(6376)
    names = [b"from", b"to", b"subject", b"received", b"x-a"]
    for _ in range(2000):
        fields = [[rng.choice(names + [n.upper() for n in names]), b" v%d\r\n" % i]
                  for i in range(rng.randint(0, 8))]
        h = [rng.choice(names) for _ in range(rng.randint(0, 8))]
        assert canon.select(fields, h) == dkim.select_headers(fields, h)


def test_strip_b_empties_b_as_dkimpy_does():
    """verify.strip_b is dkimpy's RE_BTAG substitution (the b= value and its folding
    removed, and a final line end after it): the same bytes for real signature fields
    and 30,000 random ones."""
    rng = random.Random(3707)
    pieces = [b"b", b"=", b";", b" ", b"\t", b"\r\n", b"\n", b"\r", b"a", b"h", b"+/", b"x", b"b=", b"; b=", b"\v"]
    cases = [b" v=1; a=rsa-sha256; bh=abc=; b=AbC+/\r\n\tdef==\r\n", b" b=", b"; b=\r\n", b";b = x \r\n",
             b" bh=x; b=ab cd ; b=\n"]
    cases += [b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 30))) for _ in range(30000)]
    assert [c for c in cases if strip_b(c) != dkim.RE_BTAG.sub(b"\\1", c)] == []


def test_split_parses_as_rfc822_parse():
    """canon.split gives dkimpy's rfc822_parse result (header fields, body) for real
    messages and 20,000 random ones of field-like lines, folding, blank lines, mbox
    From_ lines and bare LFs; where dkimpy refuses the header section, so does split."""
    rng = random.Random(5322)
    pieces = [b"From: a", b"To:b", b"X-Y : z", b"From x", b" folded", b"\tfolded", b"bad line", b"",
              b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b"body", b":", b"a:b:c"]
    cases = [MESSAGE, b"", b"\r\n", b"A: b", b"A: b\r\n", b"A: b\r\n\r\n", b"\r\nbody"]
    cases += [b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 14))) for _ in range(20000)]
    for case in cases:
        try:
            theirs = dkim.rfc822_parse(case)
        except dkim.MessageFormatError:
            with pytest.raises(dkim.MessageFormatError):
                canon.split(case)
            continue
        except IndexError:
            continue                # dkimpy: a folded line before any field
        assert canon.split(case) == tuple(theirs), case


def test_field_start_reads_a_line_as_rfc822_parses_pattern():
    """canon.field_start ([name, value + CRLF] or None) is what dkimpy's field pattern
    makes of a line, on 30,000 random lines with colons first, last and doubled, white
    space, control, DEL and 8-bit octets before and after the first colon; and
    relaxed_headers is dkimpy's on those lines as values ending in CRLF (its fast cases)."""
    rng = random.Random(5324)
    pieces = [b"Subject", b"X-A", b":", b"::", b" ", b"\t", b"\x00", b"\x7f", b"\xe9", b"\x1f", b"a", b"~!",
              b"From", b"\r", b"\v", b"  ", b"\x0c", b"\r\n", b"\n", b"\r\n\t"]
    pattern = re.compile(rb"([\x21-\x7e]+?):")
    for _ in range(30000):
        line = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        match = pattern.match(line)
        theirs = None if match is None else [match.group(1), line[match.end():] + b"\r\n"]
        assert canon.field_start(line) == theirs, line
        value = line + b"\r\n"
        assert canon.relaxed_headers([(b"Subject", value)]) == Relaxed.canonicalize_headers(
            [(b"Subject", value)]), value


def test_split_grouped_is_split():
    """canon.split_grouped, on the fields smtp.message.header_fields split (the
    header split once for every check), gives split's fields, body and errors: the
    cases of test_split_parses_as_rfc822_parse and 20,000 random ones."""
    rng = random.Random(5323)
    pieces = [b"From: a", b"To:b", b"X-Y : z", b"From x", b" folded", b"\tfolded", b"bad line", b"",
              b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b"body", b":", b"a:b:c", b"\r\n\r\n"]
    cases = [MESSAGE, b"", b"\r\n", b"A: b", b"A: b\r\n", b"A: b\r\n\r\n", b"\r\nbody", b" x\r\nA: b\r\n\r\n",
             b"From x\r\n y\r\nA: b\r\n\r\n", b"A: b\r\nFrom x\r\n y\r\n\r\nz"]
    cases += [b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 14))) for _ in range(20000)]
    clean = 0
    for case in cases:
        groups = header_fields(case)[0]
        # the SMTP session's wire form has no bare LF: it may say so (crlf=True)
        ways = [{}] + ([{"crlf": True}] if case.count(b"\n") == case.count(b"\r\n") else [])
        clean += len(ways) - 1
        try:
            theirs = canon.split(case)
        except (dkim.MessageFormatError, IndexError) as exc:      # IndexError: dkimpy's, bare LFs
            for kw in ways:
                with pytest.raises(type(exc)) as info:
                    canon.split_grouped(case, groups, **kw)
                assert str(info.value) == str(exc), case
            continue
        for kw in ways:
            assert canon.split_grouped(case, groups, **kw) == theirs, case
    assert clean > 3000


def test_signature_tags_and_relaxed_headers_are_dkimpys():
    """verify.signature_tags is dkimpy's parse_tag_value (tags or the same error) and
    canon.relaxed_headers dkimpy's Relaxed.canonicalize_headers, on 30,000 random
    tag lists and header fields."""
    rng = random.Random(6377)
    pieces = [b"a", b"=", b";", b" ", b"\t", b"\r\n", b"\n", b"\r", b"\v", b"  ", b"b", b"1", b"_", b"-",
              b"v=1", b"d=x.test", b"\xe9", b"h=from:to", b"A", b"=="]
    for _ in range(30000):
        value = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 16)))
        try:
            theirs = parse_tag_value(value)
        except InvalidTagValueList as exc:
            with pytest.raises(dkim.MessageFormatError) as info:
                signature_tags(value)
            assert str(info.value) == str(exc) and type(info.value.args[0]) is type(exc), value
        else:
            assert signature_tags(value) == theirs, value
        name = b"".join(rng.choice([b"Subject", b" ", b"\t", b"X-A"]) for _ in range(rng.randint(1, 3)))
        assert canon.relaxed_headers([(name, value)]) == Relaxed.canonicalize_headers([(name, value)]), value


def test_check_tags_is_dkimpys_validate_signature_fields():
    """verify.check_tags raises what dkimpy's validate_signature_fields raises (or
    nothing) on 30,000 random signatures' tags: missing, bad or odd values of every
    tag it checks."""
    rng = random.Random(6378)
    now = int(time.time())
    choices = {
        b"v": [b"1", b"2", b""], b"a": [b"rsa-sha256", b"ed25519-sha256", b"rsa-sha1", b"rsa-md5"],
        b"b": [b"AbC+/dEf=", b"ab cd\r\n ef==", b"abc", b"a*b=", b"", b"abcd\n"],
        b"bh": [b"AbCd", b"abc", b"ab=c", b" ab cd"], b"d": [b"sign.test", b"a;b", b"\xe9.test", b"x[1]"],
        b"h": [b"from:to"], b"s": [b"sel"], b"i": [b"@sign.test", b"u@sub.sign.test", b"u@other.test",
                                                  b"sign.test", b"xsign.test", b"@SIGN.TEST"],
        b"l": [b"12", b"", b"x", b"1" * 80], b"q": [b"dns/txt", b"dns"], b"cv": [b"pass", b"maybe"],
        b"t": [str(now).encode(), str(now + 40000).encode(), b"12a", b"0"],
        b"x": [str(now + 100).encode(), str(now - 40000).encode(), b"5", b"x1"]}
    for _ in range(30000):
        tags = {name: rng.choice(values) for name, values in choices.items() if rng.random() < 0.85}
        try:
            dkim.validate_signature_fields(tags)
        except (dkim.ValidationError, IndexError) as exc:
            with pytest.raises(type(exc)) as info:
                check_tags(tags)
            assert str(info.value) == str(exc), tags
        else:
            check_tags(tags)
