"""relay.mx: MX order, implicit MX, null MX, DNS failure classes, nameserver parsing."""
import random
import socket
import threading

import dns.message
import dns.rcode
import dns.resolver
import dns.rrset
import pytest

from clevermail.relay.mx import (PermanentDNSError, TemporaryDNSError, make_resolver,
                                 resolve_addresses, resolve_mx)
from relay_sink import FakeResolver


def test_mx_sorted_by_preference():
    r = FakeResolver({"example.test": {"MX": ["20 b.mx.test.", "10 a.mx.test.", "30 c.mx.test."]}})
    assert resolve_mx("example.test", r) == ["a.mx.test", "b.mx.test", "c.mx.test"]


def test_equal_preferences_in_random_order():
    r = FakeResolver({"example.test": {"MX": ["5 first.test.", "10 x.test.", "10 y.test.",
                                              "10 z.test.", "20 last.test."]}})
    orders = set()
    for seed in range(40):
        hosts = resolve_mx("example.test", r, random.Random(seed))
        assert hosts[0] == "first.test" and hosts[-1] == "last.test"
        assert sorted(hosts[1:4]) == ["x.test", "y.test", "z.test"]
        orders.add(tuple(hosts))
    assert len(orders) > 1


def test_implicit_mx_when_no_mx_records():
    r = FakeResolver({"example.test": {"A": ["192.0.2.1"]}})
    assert resolve_mx("example.test", r) == ["example.test"]
    r = FakeResolver({"example.test": {"AAAA": ["2001:db8::1"]}})
    assert resolve_mx("example.test.", r) == ["example.test"]


def test_no_mx_and_no_address_is_permanent():
    r = FakeResolver({"example.test": {"TXT": ['"x"']}})
    with pytest.raises(PermanentDNSError):
        resolve_mx("example.test", r)


def test_null_mx_is_permanent():
    r = FakeResolver({"example.test": {"MX": ["0 ."], "A": ["192.0.2.1"]}})
    with pytest.raises(PermanentDNSError, match="null MX"):
        resolve_mx("example.test", r)


def test_null_mx_beside_real_ones_is_ignored():
    r = FakeResolver({"example.test": {"MX": ["0 .", "10 mx.test."]}})
    assert resolve_mx("example.test", r) == ["mx.test"]


def test_nxdomain_is_permanent():
    with pytest.raises(PermanentDNSError, match="does not exist"):
        resolve_mx("nowhere.test", FakeResolver({}))


@pytest.mark.parametrize("exc", [dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout,
                                 dns.exception.Timeout, OSError])
def test_servfail_and_timeouts_are_temporary(exc):
    r = FakeResolver({"example.test": {"MX": exc}})
    with pytest.raises(TemporaryDNSError):
        resolve_mx("example.test", r)


def test_timeout_on_implicit_mx_address_is_temporary():
    r = FakeResolver({"example.test": {"A": dns.resolver.LifetimeTimeout}})
    with pytest.raises(TemporaryDNSError):
        resolve_mx("example.test", r)


def test_address_literals():
    r = FakeResolver({})
    assert resolve_mx("[192.0.2.7]", r) == ["192.0.2.7"]
    assert resolve_mx("[IPv6:2001:db8::7]", r) == ["2001:db8::7"]
    assert resolve_addresses("192.0.2.7", r) == ["192.0.2.7"]
    assert r.queries == []


def test_resolve_addresses():
    r = FakeResolver({"mx.test": {"A": ["192.0.2.1", "192.0.2.2"], "AAAA": ["2001:db8::1"]},
                      "v6.test": {"AAAA": ["2001:db8::2"], "A": dns.resolver.LifetimeTimeout},
                      "broken.test": {"A": dns.resolver.NoNameservers},
                      "empty.test": {"TXT": ['"x"']}})
    assert resolve_addresses("mx.test", r) == ["192.0.2.1", "192.0.2.2", "2001:db8::1"]
    assert resolve_addresses("v6.test", r) == ["2001:db8::2"]   # a partial answer is enough
    assert resolve_addresses("empty.test", r) == []
    with pytest.raises(TemporaryDNSError):
        resolve_addresses("broken.test", r)
    with pytest.raises(PermanentDNSError):
        resolve_addresses("gone.test", r)


@pytest.fixture
def dns_server():
    """A one-zone UDP nameserver on 127.0.0.1: MX for mail.test, NXDOMAIN otherwise."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                wire, peer = sock.recvfrom(4096)
            except socket.timeout:
                continue
            query = dns.message.from_wire(wire)
            resp = dns.message.make_response(query)
            q = query.question[0]
            name = q.name.to_text().lower()
            if name == "mail.test." and q.rdtype == dns.rdatatype.MX:
                resp.answer.append(dns.rrset.from_text(q.name, 300, "IN", "MX",
                                                       "10 mx1.mail.test.", "20 mx2.mail.test."))
            elif name != "mail.test.":
                resp.set_rcode(dns.rcode.NXDOMAIN)
            sock.sendto(resp.to_wire(), peer)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield sock.getsockname()[1]
    stop.set()
    t.join()
    sock.close()


def test_make_resolver_with_configured_nameserver(dns_server):
    r = make_resolver([("127.0.0.1", dns_server)], timeout=2, lifetime=4)
    assert resolve_mx("mail.test", r) == ["mx1.mail.test", "mx2.mail.test"]
    with pytest.raises(PermanentDNSError):
        resolve_mx("other.test", r)


def test_make_resolver_unreachable_nameserver_defers():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))        # bound but silent: every query times out
    try:
        r = make_resolver([("127.0.0.1", s.getsockname()[1])], timeout=0.2, lifetime=0.5)
        with pytest.raises(TemporaryDNSError):
            resolve_mx("mail.test", r)
    finally:
        s.close()


def test_make_resolver_system_config():
    try:
        r = make_resolver([])
    except dns.resolver.NoResolverConfiguration:
        pytest.skip("no system resolver configuration here")
    assert r.nameservers
