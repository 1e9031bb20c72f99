"""Tests for clevermail.inbound.spf (RFC 7208) against a real DNS server on loopback."""

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
"""


@pytest.fixture(scope="module")
def spf():
    with DNSServer(ZONE, servfail={"broken.test."}) as server:
        yield SPFChecker(DnsClient(make_resolver([server.nameserver])))


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
