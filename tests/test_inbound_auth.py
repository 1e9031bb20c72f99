"""Tests for clevermail.inbound: DMARC discovery and alignment, the
Authentication-Results field (RFC 8601) and its forgeries, ARC validation."""

import random

import dkim
import pytest

from clevermail.inbound import authres
from clevermail.inbound.dkimverify import verify_arc, verify_dkim
from clevermail.inbound.dmarc import DMARCChecker, aligned, organizational_domain, parse_record
from clevermail.inbound.dnsclient import DnsClient
from clevermail.relay.mx import make_resolver
from clevermail.smtp.message import Header, header_fields
from dns_server import DNSServer
from mx_helpers import dkim_txt, rsa_test_key


@pytest.fixture(scope="module")
def key():
    return rsa_test_key()


@pytest.fixture(scope="module")
def dns(key):
    zone = f"""
_dmarc.example.co.uk.   300 IN TXT "v=DMARC1; p=reject; sp=quarantine; adkim=s"
_dmarc.half.test.       300 IN TXT "v=DMARC1; p=reject; pct=50"
_dmarc.two.test.        300 IN TXT "v=DMARC1; p=reject"
_dmarc.two.test.        300 IN TXT "v=DMARC1; p=none"
_dmarc.junk.test.       300 IN TXT "not dmarc"
arc._domainkey.fwd.test. 300 IN TXT {dkim_txt(key[1])}
"""
    with DNSServer(zone, servfail={"_dmarc.flaky.test."}) as server:
        yield DnsClient(make_resolver([server.nameserver]))


def test_organizational_domain_and_alignment():
    assert organizational_domain("mail.example.co.uk") == "example.co.uk"
    assert organizational_domain("a.b.example.test") == "example.test"
    assert aligned("mail.example.co.uk", "example.co.uk", strict=False)
    assert not aligned("mail.example.co.uk", "example.co.uk", strict=True)
    assert not aligned("example.com", "example.co.uk", strict=False)


def test_parse_record():
    assert parse_record("v=DMARC1; p=reject; pct=20") == {"v": "DMARC1", "p": "reject", "pct": "20"}
    assert parse_record("v=spf1 -all") is None


@pytest.mark.parametrize("from_domain, spf, spf_domain, dkim_domains, result, policy", [
    ("example.co.uk", "pass", "example.co.uk", [], "pass", "reject"),
    ("example.co.uk", "pass", "bounce.example.co.uk", [], "pass", "reject"),     # aspf relaxed
    ("example.co.uk", "fail", "example.co.uk", ["mail.example.co.uk"], "fail", "reject"),  # adkim=s
    ("example.co.uk", "fail", "", ["example.co.uk"], "pass", "reject"),
    ("news.example.co.uk", "fail", "", [], "fail", "quarantine"),                # sp, inherited
    ("two.test", "fail", "", [], "none", "none"),                                # two records
    ("junk.test", "fail", "", [], "none", "none"),
    ("nothing.test", "fail", "", [], "none", "none"),
    ("flaky.test", "pass", "flaky.test", [], "temperror", "none"),
])
def test_dmarc(dns, from_domain, spf, spf_domain, dkim_domains, result, policy):
    got = DMARCChecker(dns).check(from_domain, spf, spf_domain, dkim_domains)
    assert (got.result, got.policy) == (result, policy)


def test_pct_samples_the_policy_down_a_step(dns):
    assert DMARCChecker(dns, sample=lambda: 0.7).check("half.test", "fail", "", []).policy == "quarantine"
    assert DMARCChecker(dns, sample=lambda: 0.2).check("half.test", "fail", "", []).policy == "reject"


def test_field_syntax_and_quoting():
    got = authres.field("mx.test", [("spf", "pass", "", [("smtp.mailfrom", "a@b.test")]),
                                     ("dkim", "neutral", "bad (tags)", [("header.d", "x y")])])
    assert got == (b"Authentication-Results: mx.test;\r\n\tspf=pass smtp.mailfrom=a@b.test;\r\n"
                   b'\tdkim=neutral (bad [tags]) header.d="x y"\r\n')
    assert authres.field("mx.test", []) == b"Authentication-Results: mx.test;\r\n\tnone\r\n"


def test_strip_ours_folded_commented_and_case_insensitive():
    msg = (b"Authentication-Results: (forged) MX.Test;\r\n  dmarc=pass\r\nSubject: s\r\n"
           b"Authentication-Results:\r\n mx.test; spf=pass\r\n"
           b"Authentication-Results: mx.test.other; spf=fail\r\n\r\n"
           b"Authentication-Results: mx.test; in the body\r\n")
    assert authres.strip_ours(msg, "mx.test") == (
        b"Subject: s\r\nAuthentication-Results: mx.test.other; spf=fail\r\n\r\n"
        b"Authentication-Results: mx.test; in the body\r\n")


def test_strip_ours_header_is_the_split_of_what_strip_ours_returns():
    """The Header strip_ours_header returns (built from the fields split once) is what
    splitting its bytes again gives, on 20,000 random header sections."""
    rng = random.Random(8601)
    pieces = [b"Authentication-Results: mx.test; spf=pass", b"authentication-results : MX.TEST (x);",
              b"Authentication-Results: other.test; x", b" folded", b"\tfolded", b"Subject: s", b"bad",
              b"\r\n", b"\r\n", b"\r\n", b"body", b""]
    for _ in range(20000):
        msg = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        header = Header(msg)
        stripped = authres.strip_ours_header(header, "mx.test")
        again = Header(stripped.data)
        assert (stripped.fields, stripped.end) == (again.fields, again.end), msg
        # what strip_ours made before the header was shared: the kept lines joined again
        fields, end = header_fields(msg)
        kept = [line for lines in fields for line in lines
                if not (authres._FIELD.match(lines[0])
                        and authres._authserv_id(b"".join(lines).split(b":", 1)[1]) == b"mx.test")]
        assert stripped.data == b"\r\n".join(kept) + msg[end:], msg
        assert (stripped is header) == (stripped.data == msg)


def test_arc_chain_validates(dns, key):
    msg = (b"From: a@origin.test\r\nTo: list@fwd.test\r\nSubject: arc\r\n"
           b"Authentication-Results: fwd.test; spf=pass smtp.mailfrom=a@origin.test\r\n\r\nbody\r\n")
    sealed = dkim.arc_sign(msg, b"arc", b"fwd.test", key[0], b"fwd.test",
                           include_headers=[b"from", b"to", b"subject"])
    sealed = b"".join(sealed) + msg
    assert verify_arc(sealed, dns)[0] == "pass"
    assert verify_arc(sealed.replace(b"body", b"b0dy"), dns)[0] == "fail"
    assert verify_arc(msg, dns)[0] == "none"


def test_unsigned_and_unknown_key(dns, key):
    assert verify_dkim(b"From: a@b.test\r\n\r\nx\r\n", dns) == []
    msg = b"From: a@nokey.test\r\nSubject: s\r\n\r\nx\r\n"
    signed = dkim.sign(msg, b"sel", b"nokey.test", key[0], include_headers=[b"from"]) + msg
    [result] = verify_dkim(signed, dns)
    assert (result.result, result.domain, result.selector) == ("permerror", "nokey.test", "sel")


def test_dns_answers_are_kept_for_their_ttl_and_errors_never():
    class Clock:
        now = 1000.0

        def __call__(self):
            return self.now

    clock = Clock()
    with DNSServer('a.test. 30 IN TXT "one"\n', servfail={"bad.test."}) as server:
        client = DnsClient(make_resolver([server.nameserver]), clock=clock)
        client.resolver.cache = None                     # only our cache
        assert client.txt("a.test") == ["one"]
        server.set_zone('a.test. 30 IN TXT "two"\n')
        assert client.txt("A.test.") == ["one"]          # kept: same name, TTL not over
        assert client.txt("b.test") == []                # negative answers are kept too
        clock.now += 31
        assert client.txt("a.test") == ["two"]
        asked = len(server.queries)
        for _ in range(2):
            with pytest.raises(Exception, match="bad.test"):
                client.txt("bad.test")
        assert len(server.queries) > asked + 1           # asked again: no error is kept
