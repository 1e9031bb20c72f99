"""The tests' loopback DNS server (tests/dns_server.py) answers as a real one does,
seen through dnspython's resolver and CleverMail's own make_resolver."""

import dns.flags
import dns.message
import dns.query
import dns.resolver
import pytest

from clevermail.relay.mx import make_resolver
from dns_server import DNSServer

ZONE = """
example.test.            300 IN MX   10 mail.example.test.
mail.example.test.       300 IN A    127.0.0.1
mail.example.test.       300 IN AAAA ::1
example.test.            300 IN TXT  "v=spf1 ip4:127.0.0.1 -all"
alias.example.test.      300 IN CNAME mail.example.test.
_25._tcp.mail.example.test. 300 IN TLSA 3 1 1 0000000000000000000000000000000000000000000000000000000000000000
big.example.test.        300 IN TXT  "{chunk}" "{chunk}" "{chunk}" "{chunk}"
""".replace("{chunk}", "k" * 250)


@pytest.fixture
def server():
    with DNSServer(ZONE, authenticated={"_25._tcp.mail.example.test."},
                   servfail={"broken.example.test."}) as dns_server:
        yield dns_server


def resolver(server):
    return make_resolver([server.nameserver])


def test_answers_from_the_zone(server):
    r = resolver(server)
    assert [str(rr.exchange) for rr in r.resolve("example.test", "MX")] == ["mail.example.test."]
    assert [rr.address for rr in r.resolve("mail.example.test", "A")] == ["127.0.0.1"]
    assert [rr.address for rr in r.resolve("mail.example.test", "AAAA")] == ["::1"]
    assert r.resolve("example.test", "TXT")[0].strings == (b"v=spf1 ip4:127.0.0.1 -all",)
    assert [rr.address for rr in r.resolve("alias.example.test", "A")] == ["127.0.0.1"]
    assert ("example.test.", "MX") in server.queries


def test_nxdomain_nodata_and_servfail(server):
    r = resolver(server)
    with pytest.raises(dns.resolver.NXDOMAIN):
        r.resolve("nowhere.example.test", "A")
    with pytest.raises(dns.resolver.NoAnswer):
        r.resolve("example.test", "A")
    with pytest.raises(dns.resolver.NoNameservers):
        r.resolve("broken.example.test", "A")


def test_authenticated_data_bit_only_where_asked(server):
    secure = dns.message.make_query("_25._tcp.mail.example.test", "TLSA", want_dnssec=True)
    reply = dns.query.udp(secure, server.host, port=server.port, timeout=5)
    assert reply.flags & dns.flags.AD
    plain = dns.message.make_query("mail.example.test", "A", want_dnssec=True)
    assert not dns.query.udp(plain, server.host, port=server.port, timeout=5).flags & dns.flags.AD


def test_large_answer_is_truncated_over_udp_and_whole_over_tcp(server):
    query = dns.message.make_query("big.example.test", "TXT")      # no EDNS: 512 bytes
    udp = dns.query.udp(query, server.host, port=server.port, timeout=5)
    assert udp.flags & dns.flags.TC and not udp.answer
    tcp = dns.query.tcp(query, server.host, port=server.port, timeout=5)
    assert len(tcp.answer[0][0].strings) == 4
    # the resolver retries over TCP by itself
    assert len(resolver(server).resolve("big.example.test", "TXT")[0].strings) == 4


def test_zone_replaced_while_running(server):
    server.set_zone("example.test. 300 IN MX 20 other.example.test.\n")
    assert [str(rr.exchange) for rr in resolver(server).resolve("example.test", "MX")] == ["other.example.test."]


def test_garbage_packet_gets_no_answer_and_the_server_goes_on(server):
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"\x00\x01garbage", server.nameserver)
    test_answers_from_the_zone(server)
