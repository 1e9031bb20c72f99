"""relay.dane and DANE in delivery (RFC 7672, RFC 6698): TLSA matching on real
certificates (trustme), TLSA lookups from a loopback DNS server with and without
the AD bit, and deliveries to sinks whose certificates match or do not."""
import hashlib
import logging
import ssl

import pytest
import trustme

from clevermail.relay import dane
from clevermail.relay.dane import TLSA, find_ta, lookup_tlsa, match_ee, matches, spki
from clevermail.relay.delivery import deliver_mx
from clevermail.relay.smtp_client import Transport
from clevermail.relay.mx import TemporaryDNSError, make_resolver
from dns_server import DNSServer
from relay_sink import Sink, message

MSG = message(1)
SECURE = ("there.test.", "mx.there.test.", "_25._tcp.mx.there.test.")
ZONE = """
there.test.     300 IN MX 10 mx.there.test.
mx.there.test.  300 IN A  127.0.0.1
"""


def der(pem_blob) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem_blob.bytes().decode())


@pytest.fixture(scope="module")
def pki():
    """A root, an intermediate (the DANE-TA anchor) and a leaf for mx.there.test."""
    root = trustme.CA()
    inter = root.create_child_ca()
    leaf = inter.issue_cert("mx.there.test")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(ctx)        # presents leaf + intermediate
    return {"ctx": ctx, "leaf": der(leaf.cert_chain_pems[0]), "inter": der(inter.cert_pem),
            "root": der(root.cert_pem), "other_leaf": der(trustme.CA().issue_cert("mx.there.test").cert_chain_pems[0])}


def tlsa(usage, selector, mtype, cert_der) -> str:
    data = cert_der if selector == 0 else spki(cert_der)
    if mtype == 1:
        data = hashlib.sha256(data).digest()
    elif mtype == 2:
        data = hashlib.sha512(data).digest()
    return f"_25._tcp.mx.there.test. 300 IN TLSA {usage} {selector} {mtype} {data.hex()}\n"


# -- pure ----------------------------------------------------------------------------------
@pytest.mark.parametrize("selector", [0, 1])
@pytest.mark.parametrize("mtype", [0, 1, 2])
def test_matching_types_and_selectors(pki, selector, mtype):
    data = pki["leaf"] if selector == 0 else spki(pki["leaf"])
    data = {0: data, 1: hashlib.sha256(data).digest(), 2: hashlib.sha512(data).digest()}[mtype]
    rec = TLSA(3, selector, mtype, data)
    assert rec.usable and matches(rec, pki["leaf"]) and not matches(rec, pki["other_leaf"])
    assert match_ee([rec], pki["leaf"]) == rec and match_ee([rec], pki["other_leaf"]) is None


def test_spki_rejects_garbage():
    for junk in (b"", b"\x30\x03\x02\x01", b"\x04\x00", b"\x30\x84\xff\xff\xff\xff"):
        with pytest.raises(ValueError):
            spki(junk)
    assert not matches(TLSA(3, 1, 1, b"x" * 32), b"not a certificate")


def test_find_ta_skips_the_leaf(pki):
    ta = TLSA(2, 1, 1, hashlib.sha256(spki(pki["inter"])).digest())
    assert find_ta([ta], [pki["leaf"], pki["inter"]]) == pki["inter"]
    assert find_ta([ta], [pki["inter"]]) is None
    as_leaf = TLSA(2, 0, 1, hashlib.sha256(pki["leaf"]).digest())
    assert find_ta([as_leaf], [pki["leaf"], pki["inter"]]) is None


def test_unusable_usages_are_dropped():
    assert not TLSA(1, 0, 1, b"").usable and not TLSA(0, 1, 1, b"").usable
    assert not TLSA(3, 2, 1, b"").usable and not TLSA(3, 1, 3, b"").usable


def test_lookup_needs_the_ad_bit(pki):
    zone = ZONE + tlsa(3, 1, 1, pki["leaf"]) + "_25._tcp.mx.there.test. 300 IN TLSA 1 0 1 " + "ab" * 32 + "\n"
    with DNSServer(zone, authenticated=SECURE) as dns:
        found = lookup_tlsa("mx.there.test", make_resolver([dns.nameserver], dnssec=True))
        assert [(r.usage, r.selector, r.mtype) for r in found] == [(3, 1, 1)]   # PKIX-EE dropped
    with DNSServer(zone) as dns:                                 # no AD: does not count
        assert lookup_tlsa("mx.there.test", make_resolver([dns.nameserver], dnssec=True)) is None
    with DNSServer(ZONE, authenticated=SECURE) as dns:           # no records
        assert lookup_tlsa("mx.there.test", make_resolver([dns.nameserver], dnssec=True)) is None
    with DNSServer(ZONE, servfail=["_25._tcp.mx.there.test."]) as dns:
        with pytest.raises(TemporaryDNSError):
            lookup_tlsa("mx.there.test", make_resolver([dns.nameserver], dnssec=True, lifetime=3))


# -- delivery -----------------------------------------------------------------------------
@pytest.fixture
def deliver(thread_guard):
    made = []

    def run(zone, sink_kw, *, authenticated=SECURE, dnssec=True, tls_context=None, **kw):
        sink = Sink(**sink_kw)
        made.append(sink)
        dns = DNSServer(zone, authenticated=authenticated).start()
        try:
            t = Transport(hostname="relay.here.test",
                          resolver=make_resolver([dns.nameserver], dnssec=dnssec),
                          port=sink.port, timeout=5, command_timeout=5, dnssec=dnssec,
                          tls_context=tls_context or ssl.create_default_context())
            res = deliver_mx(t, "there.test", "a@here.test", ["b@there.test"], MSG, qid="QD", **kw)
        finally:
            dns.stop()
        return res["b@there.test"], sink, t
    yield run
    for s in made:
        s.close()


@pytest.mark.parametrize("selector,mtype", [(1, 1), (0, 2), (0, 0)])
def test_dane_ee_match_delivers(deliver, pki, selector, mtype):
    # the sink's CA is trusted by nobody: only the TLSA record vouches for it
    res, sink, _ = deliver(ZONE + tlsa(3, selector, mtype, pki["leaf"]), {"starttls": pki["ctx"]})
    assert res.state == "delivered" and str(res.tls).endswith("/dane")
    assert sink.messages[0].tls and len(sink.sessions) == 1


def test_dane_ee_mismatch_defers(deliver, pki, caplog):
    with caplog.at_level(logging.INFO, "clevermail.relay"):
        res, sink, _ = deliver(ZONE + tlsa(3, 1, 1, pki["other_leaf"]), {"starttls": pki["ctx"]})
    assert res.state == "deferred" and "4.7.5" in res.reply and "no TLSA record" in res.reply
    assert sink.messages == []
    assert "MAIL" not in sink.sessions[0]["commands"]


def test_dane_without_ad_is_ignored(deliver, pki):
    # the same mismatching record, but the answer is not secure: opportunistic TLS
    res, sink, _ = deliver(ZONE + tlsa(3, 1, 1, pki["other_leaf"]), {"starttls": pki["ctx"]},
                           authenticated=())
    assert res.state == "delivered" and str(res.tls).endswith("/none")


def test_dane_needs_a_secure_mx_lookup(deliver, pki):
    res, _, _ = deliver(ZONE + tlsa(3, 1, 1, pki["other_leaf"]), {"starttls": pki["ctx"]},
                        authenticated=SECURE[1:])          # MX answer without AD
    assert res.state == "delivered" and str(res.tls).endswith("/none")


def test_dane_off_unless_configured(deliver, pki):
    res, _, _ = deliver(ZONE + tlsa(3, 1, 1, pki["other_leaf"]), {"starttls": pki["ctx"]},
                        dnssec=False)
    assert res.state == "delivered"


def test_dane_ta_digest_verifies_the_chain_through_the_presented_anchor(deliver, pki):
    res, sink, t = deliver(ZONE + tlsa(2, 1, 1, pki["inter"]), {"starttls": pki["ctx"]})
    assert res.state == "delivered" and str(res.tls).endswith("/dane")
    # found in the chain, then verified by OpenSSL with it as the only anchor
    assert len(sink.sessions) == 2 and len(sink.messages) == 1
    assert t.dane_anchors["mx.there.test"] == pki["inter"]


def test_dane_ta_full_certificate_in_dns(deliver, pki):
    res, sink, _ = deliver(ZONE + tlsa(2, 0, 0, pki["inter"]), {"starttls": pki["ctx"]})
    assert res.state == "delivered" and str(res.tls).endswith("/dane")
    assert len(sink.sessions) == 1


def test_dane_ta_checks_the_name(pki, deliver):
    # the chain is right but the certificate is for another host
    root = trustme.CA()
    inter = root.create_child_ca()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    inter.issue_cert("elsewhere.test").configure_cert(ctx)
    res, sink, _ = deliver(ZONE + tlsa(2, 0, 0, der(inter.cert_pem)), {"starttls": ctx})
    assert res.state == "deferred" and "4.7.5" in res.reply and sink.messages == []


def test_dane_ta_wrong_anchor_defers(deliver, pki):
    res, sink, _ = deliver(ZONE + tlsa(2, 1, 1, pki["root"]), {"starttls": pki["ctx"]})
    assert res.state == "deferred" and sink.messages == []


def test_dane_makes_tls_mandatory(deliver, pki, caplog):
    # a secure TLSA RRset and a host without STARTTLS: no cleartext delivery
    res, sink, _ = deliver(ZONE + tlsa(3, 1, 1, pki["leaf"]), {})
    assert res.state == "deferred" and "STARTTLS" in res.reply and sink.messages == []


def test_unusable_records_still_make_tls_mandatory(deliver, pki):
    zone = ZONE + "_25._tcp.mx.there.test. 300 IN TLSA 1 0 1 " + "ab" * 32 + "\n"
    res, sink, _ = deliver(zone, {})
    assert res.state == "deferred" and sink.messages == []
    res, sink, _ = deliver(zone, {"starttls": pki["ctx"]})     # encrypted, unauthenticated
    assert res.state == "delivered" and str(res.tls).endswith("/none")


def test_dane_precedes_an_mta_sts_policy(deliver, pki):
    class Enforce:
        def get(self, domain):
            from clevermail.relay.mta_sts import Policy
            return Policy("1", "enforce", ("other.there.test",), 86400, 0.0)
    sink = Sink(starttls=pki["ctx"])
    try:
        with DNSServer(ZONE + tlsa(3, 1, 1, pki["leaf"]), authenticated=SECURE) as dns:
            t = Transport(hostname="relay.here.test", resolver=make_resolver([dns.nameserver], dnssec=True),
                          port=sink.port, timeout=5, command_timeout=5, dnssec=True, mta_sts=Enforce())
            res = deliver_mx(t, "there.test", "a@here.test", ["b@there.test"], MSG)
    finally:
        sink.close()
    # the policy does not name mx.there.test and its certificate is not CA-trusted,
    # but DANE governs the host
    assert res["b@there.test"].state == "delivered" and str(res["b@there.test"].tls).endswith("/dane")


def test_peer_chain_has_the_intermediate(pki):
    """The chain seam works on this Python (public from 3.13, private before)."""
    import socket
    import threading
    a, b = socket.socketpair()
    server = threading.Thread(target=lambda: pki["ctx"].wrap_socket(b, server_side=True).close())
    server.start()
    try:
        ctx = dane.tls_context_for_ta([])
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        with ctx.wrap_socket(a, server_hostname="mx.there.test") as s:
            chain = dane.peer_chain(s)
    finally:
        server.join(5)
        b.close()
    assert chain[:2] == [pki["leaf"], pki["inter"]]
