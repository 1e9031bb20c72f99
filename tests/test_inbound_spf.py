"""Tests for clevermail.inbound.spf (RFC 7208) against a real DNS server on loopback,
and the results it keeps until the DNS answers they rest on expire."""

import pytest

from clevermail.inbound.dnsclient import DnsClient
from clevermail.inbound.spf import SPFChecker
from clevermail.relay.mx import make_resolver
from dns_server import DNSServer

ZONE = """
simple.test.        300 IN TXT "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"
soft.test.          300 IN TXT "v=spf1 ~all"
neutral.test.       300 IN TXT "v=spf1 ?all"
nothing.test.       300 IN TXT "v=spf1 ip4:198.51.100.1"
amx.test.           300 IN TXT "v=spf1 a mx/24 -all"
amx.test.           300 IN A   192.0.2.10
amx.test.           300 IN MX  10 mx.amx.test.
mx.amx.test.        300 IN A   203.0.113.7
inc.test.           300 IN TXT "v=spf1 include:simple.test -all"
incnone.test.       300 IN TXT "v=spf1 include:nospf.test -all"
nospf.test.         300 IN TXT "some other text"
redir.test.         300 IN TXT "v=spf1 redirect=simple.test"
two.test.           300 IN TXT "v=spf1 -all"
two.test.           300 IN TXT "v=spf1 +all"
bad.test.           300 IN TXT "v=spf1 frobnicate -all"
macro.test.         300 IN TXT "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all"
2.2.0.192.alice._spf.macro.test. 300 IN A 127.0.0.2
loop.test.          300 IN TXT "v=spf1 include:loop.test -all"
void.test.          300 IN TXT "v=spf1 a:n1.test a:n2.test a:n3.test -all"
ptr.test.           300 IN TXT "v=spf1 ptr -all"
5.2.0.192.in-addr.arpa. 300 IN PTR host.ptr.test.
host.ptr.test.      300 IN A   192.0.2.5
helo.test.          300 IN TXT "v=spf1 ip4:192.0.2.77 -all"
short.test.         300 IN TXT "v=spf1 include:shortttl.test -all"
shortttl.test.      30  IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
hmacro.test.        300 IN TXT "v=spf1 exists:%{h}._h.hmacro.test -all"
good.client._h.hmacro.test. 300 IN A 127.0.0.2
imacro.test.        300 IN TXT "v=spf1 exists:%{i}._i.imacro.test -all"
192.0.2.8._i.imacro.test. 300 IN A 127.0.0.2
"""


@pytest.fixture(scope="module")
def dns():
    with DNSServer(ZONE, servfail={"broken.test."}) as server:
        yield server


@pytest.fixture(scope="module")
def spf(dns):
    return SPFChecker(DnsClient(make_resolver([dns.nameserver])))


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class CountingResolver:
    """The resolver with a count of the questions the DnsClient asked it."""

    def __init__(self, resolver):
        self.resolver, self.asked = resolver, []

    def resolve(self, name, rdtype):
        self.asked.append((str(name), rdtype))
        return self.resolver.resolve(name, rdtype)


@pytest.fixture
def counted(dns):
    """(SPFChecker, CountingResolver, Clock): a checker of its own, a clock to move."""
    clock = Clock()
    resolver = CountingResolver(make_resolver([dns.nameserver]))
    return SPFChecker(DnsClient(resolver, clock=clock)), resolver, clock


@pytest.mark.parametrize("ip, sender, result", [
    ("192.0.2.5", "a@simple.test", "pass"),
    ("198.51.100.5", "a@simple.test", "fail"),
    ("2001:db8::1", "a@simple.test", "pass"),
    ("::ffff:192.0.2.9", "a@simple.test", "pass"),          # IPv4-mapped is IPv4
    ("192.0.2.5", "a@soft.test", "softfail"),
    ("192.0.2.5", "a@neutral.test", "neutral"),
    ("192.0.2.5", "a@nothing.test", "neutral"),             # nothing matched, no all
    ("192.0.2.10", "a@amx.test", "pass"),                    # a
    ("203.0.113.99", "a@amx.test", "pass"),                  # mx/24
    ("203.0.114.1", "a@amx.test", "fail"),
    ("192.0.2.5", "a@inc.test", "pass"),
    ("198.51.100.5", "a@inc.test", "fail"),
    ("192.0.2.5", "a@incnone.test", "permerror"),            # include of a domain without SPF
    ("192.0.2.5", "a@redir.test", "pass"),
    ("192.0.2.5", "a@two.test", "permerror"),                # two records
    ("192.0.2.5", "a@bad.test", "permerror"),                # unknown mechanism
    ("192.0.2.5", "a@nospf.test", "none"),
    ("192.0.2.5", "a@nowhere.test", "none"),                 # NXDOMAIN
    ("192.0.2.5", "a@broken.test", "temperror"),             # SERVFAIL
    ("192.0.2.5", "a@loop.test", "permerror"),               # more than 10 lookups
    ("192.0.2.5", "a@void.test", "permerror"),               # more than 2 void lookups
    ("192.0.2.5", "a@ptr.test", "pass"),
    ("192.0.2.6", "a@ptr.test", "fail"),
    ("192.0.2.2", "alice@macro.test", "pass"),               # %{ir} and %{l1r+-}
    ("192.0.2.3", "alice@macro.test", "fail"),
    ("192.0.2.5", "a@-bad-.test", "none"),                   # no valid domain
])
def test_check_host(spf, ip, sender, result):
    assert spf.check(ip, sender, "client.test").result == result


def test_null_sender_checks_the_helo_identity(spf):
    outcome = spf.check("192.0.2.77", "", "helo.test")
    assert (outcome.result, outcome.domain) == ("pass", "helo.test")
    assert spf.check("192.0.2.78", "", "helo.test").result == "fail"


def test_permerror_says_why(spf):
    assert "2 SPF records" in spf.check("192.0.2.5", "a@two.test", "x").reason
    assert "DNS-querying terms" in spf.check("192.0.2.5", "a@loop.test", "x").reason


def test_a_result_is_kept_for_every_sender_of_the_domain_until_its_answers_expire(counted):
    spf, resolver, clock = counted
    first = spf.check("192.0.2.5", "a@inc.test", "client.test")
    assert first.result == "pass" and resolver.asked
    resolver.asked.clear()
    # another sender of the domain, another HELO name: no macro read them, same result
    assert spf.check("192.0.2.5", "b@inc.test", "other.test") is first
    assert spf.check("198.51.100.5", "a@inc.test", "client.test").result == "fail"   # per address
    assert resolver.asked == []             # the answers themselves were kept by the DnsClient
    clock.now += 299
    assert spf.check("192.0.2.5", "a@inc.test", "client.test") is first
    clock.now += 2                          # past the TTL of 300 s
    again = spf.check("192.0.2.5", "a@inc.test", "client.test")
    assert again == first and again is not first and resolver.asked


def test_the_shortest_ttl_read_decides(counted):
    spf, resolver, clock = counted
    first = spf.check("192.0.2.5", "a@short.test", "client.test")
    assert first.result == "pass"
    clock.now += 29
    assert spf.check("192.0.2.5", "a@short.test", "client.test") is first
    clock.now += 2                          # the included record's 30 s are over
    assert spf.check("192.0.2.5", "a@short.test", "client.test") is not first


def test_macros_of_the_sender_or_helo_keep_results_per_sender_and_helo(counted):
    spf, _, _ = counted
    assert spf.check("192.0.2.2", "alice@macro.test", "client.test").result == "pass"
    assert spf.check("192.0.2.2", "bob@macro.test", "client.test").result == "fail"      # %{l}
    assert spf.check("192.0.2.2", "alice@macro.test", "client.test").result == "pass"
    assert spf.check("192.0.2.9", "a@hmacro.test", "good.client").result == "pass"       # %{h}
    assert spf.check("192.0.2.9", "a@hmacro.test", "bad.client").result == "fail"
    assert spf.check("192.0.2.9", "b@hmacro.test", "good.client").result == "pass"
    # %{i} is the address, part of every key: kept for all senders of the domain
    assert spf.check("192.0.2.8", "a@imacro.test", "x.test").result == "pass"
    assert spf.check("192.0.2.8", "b@imacro.test", "y.test").result == "pass"
    assert spf.check("192.0.2.7", "a@imacro.test", "x.test").result == "fail"
    assert ("192.0.2.8", "imacro.test") in spf._results
    assert ("192.0.2.2", "macro.test") not in spf._results


def test_temperror_is_never_kept(counted):
    spf, resolver, _ = counted
    assert spf.check("192.0.2.5", "a@broken.test", "client.test").result == "temperror"
    asked = len(resolver.asked)
    assert spf.check("192.0.2.5", "a@broken.test", "client.test").result == "temperror"
    assert len(resolver.asked) > asked      # asked again


def test_kept_results_are_the_results(dns, counted):
    """Cases of test_check_host twice on one checker: each as a new checker finds it."""
    spf, _, _ = counted
    answers = DnsClient(make_resolver([dns.nameserver]))
    cases = [("192.0.2.5", s) for s in ("a@simple.test", "a@inc.test", "a@incnone.test", "a@two.test",
                                        "a@loop.test", "a@void.test", "a@ptr.test", "a@nowhere.test",
                                        "a@-bad-.test")]
    cases += [("192.0.2.2", "alice@macro.test"), ("192.0.2.3", "alice@macro.test"), ("192.0.2.6", "a@ptr.test")]
    for ip, sender in cases + cases:
        assert spf.check(ip, sender, "client.test") == SPFChecker(answers).check(ip, sender, "client.test")
