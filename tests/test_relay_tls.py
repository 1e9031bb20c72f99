"""Encrypted relay (issue 14): opportunistic TLS that never resends in cleartext for
a certificate, the cleartext fallback of a failed handshake, MTA-STS applied to MX
hosts, REQUIRETLS from submission to the next hop, the smarthost's CA file and
fingerprint, and the per-attempt TLS record in the log and the queue history.

Real components: a loopback DNS server (tests/dns_server.py), sinks with a trustme
certificate, a self-signed one and none, an HTTPS policy server; never the internet."""
import hashlib
import logging
import ssl

import pytest
import trustme

from clevermail.config import ConfigError, load_config
from clevermail.relay.delivery import deliver_mx, deliver_smarthost
from clevermail.relay.smtp_client import Transport
from clevermail.relay.mta_sts import Fetcher, PolicyCache
from clevermail.relay.mx import make_resolver
from clevermail.relay.queue import RelayQueue
from clevermail.relay.settings import RelaySettings
from clevermail.relay.worker import RelayWorker
from dns_server import DNSServer
from fakes import tls_contexts
from policy_server import PolicyServer
from relay_sink import Sink, message
from smtp_helpers import Env, make_users_file, plain

MSG = message(1)
ZONE = """
there.test.     300 IN MX 10 mx.there.test.
mx.there.test.  300 IN A  127.0.0.1
"""
STS_TXT = '_mta-sts.there.test. 0 IN TXT "v=STSv1; id={}"\n'


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def trusting(ca):
    """The client context that trusts the test CA (stands for the system CAs)."""
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture(scope="module")
def valid(ca):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("mx.there.test").configure_cert(ctx)
    return ctx


@pytest.fixture(scope="module")
def self_signed():
    """A really self-signed certificate: a CA's own, served as the MX certificate."""
    own = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with own.cert_pem.tempfile() as cert, own.private_key_pem.tempfile() as key:
        ctx.load_cert_chain(cert, key)
    return ctx, ssl.PEM_cert_to_DER_cert(own.cert_pem.bytes().decode())


@pytest.fixture
def net(thread_guard):
    """Sinks and a DNS server, all closed at the end."""
    made = []

    class Net:
        def sink(self, **kw):
            s = Sink(**kw)
            made.append(s)
            return s

        def dns(self, zone, **kw):
            d = DNSServer(zone, **kw).start()
            made.append(d)
            return d

        def transport(self, dns, port, **kw):
            dnssec = kw.pop("dnssec", False)
            return Transport(hostname="relay.here.test",
                             resolver=make_resolver([dns.nameserver], dnssec=dnssec),
                             port=port, timeout=5, command_timeout=5, dnssec=dnssec, **kw)
    yield Net()
    for m in made:
        (m.close if isinstance(m, Sink) else m.stop)()


def one(res):
    [r] = res.values()
    return r


# -- opportunistic TLS ---------------------------------------------------------------------
def test_self_signed_mx_gets_tls_not_cleartext(net, self_signed, trusting, caplog):
    sink = net.sink(starttls=self_signed[0])
    t = net.transport(net.dns(ZONE), sink.port, tls_context=trusting)
    with caplog.at_level(logging.INFO, "clevermail.relay"):
        r = one(deliver_mx(t, "there.test", "a@here.test", ["b@there.test"], MSG, qid="Q1"))
    assert r.state == "delivered" and r.tls.version.startswith("TLSv1") and r.tls.verified == "none"
    assert [m.tls for m in sink.messages] == [True]
    assert all(s["tls"] or "MAIL" not in s["commands"] for s in sink.sessions)  # never MAIL in clear
    assert "without TLS" not in caplog.text


def test_verified_mx_is_ca(net, valid, trusting):
    sink = net.sink(starttls=valid)
    t = net.transport(net.dns(ZONE), sink.port, tls_context=trusting)
    r = one(deliver_mx(t, "there.test", "a@here.test", ["b@there.test"], MSG))
    assert r.state == "delivered" and r.tls.verified == "ca" and len(sink.sessions) == 1


def test_no_starttls_is_cleartext(net, trusting):
    sink = net.sink()
    r = one(deliver_mx(net.transport(net.dns(ZONE), sink.port, tls_context=trusting),
                       "there.test", "a@here.test", ["b@there.test"], MSG))
    assert r.state == "delivered" and r.tls.version is None and str(r.tls) == "no-tls"


def test_failed_handshake_falls_back_to_cleartext_and_logs(net, trusting, caplog):
    sink = net.sink(broken_tls=True)
    t = net.transport(net.dns(ZONE), sink.port, tls_context=trusting)
    with caplog.at_level(logging.WARNING, "clevermail.relay"):
        r = one(deliver_mx(t, "there.test", "a@here.test", ["b@there.test"], MSG, qid="QFB"))
    assert r.state == "delivered" and r.tls.version is None
    assert len(sink.sessions) == 2 and "STARTTLS" not in sink.sessions[1]["commands"]
    assert [m.tls for m in sink.messages] == [False]
    [rec] = [x for x in caplog.records if "without TLS" in x.getMessage()]
    assert rec.levelno == logging.WARNING and "QFB" in rec.getMessage()


# -- MTA-STS ---------------------------------------------------------------------------------
POLICY = "version: STSv1\nmode: {mode}\nmx: {mx}\nmax_age: 86400\n"


@pytest.fixture
def sts(ca, thread_guard):
    """An HTTPS policy server for there.test and a PolicyCache factory using it."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("mta-sts.there.test").configure_cert(ctx)
    with PolicyServer(ctx) as server:
        def cache(dns, tmp_path, mode="enforce", mx="mx.there.test"):
            server.policy(POLICY.format(mode=mode, mx=mx))
            fetcher = Fetcher(lambda host: ("127.0.0.1", server.port), cadata=ca.cert_pem.bytes().decode())
            return PolicyCache(make_resolver([dns.nameserver]), tmp_path / "sts", fetcher)
        cache.server = server
        yield cache


def test_mta_sts_enforce_with_unverifiable_mx_defers(net, sts, self_signed, trusting, tmp_path):
    sink = net.sink(starttls=self_signed[0])
    dns = net.dns(ZONE + STS_TXT.format("1"))
    t = net.transport(dns, sink.port, tls_context=trusting, mta_sts=sts(dns, tmp_path))
    r = one(deliver_mx(t, "there.test", "a@here.test", ["b@there.test"], MSG))
    assert r.state == "deferred" and r.code == 451 and "4.7.5" in r.reply and "MTA-STS" in r.reply
    assert sink.messages == [] and len(sink.sessions) == 1      # no unverified second try


def test_mta_sts_enforce_with_verified_mx_delivers(net, sts, valid, trusting, tmp_path):
    sink = net.sink(starttls=valid)
    dns = net.dns(ZONE + STS_TXT.format("1"))
    t = net.transport(dns, sink.port, tls_context=trusting, mta_sts=sts(dns, tmp_path))
    r = one(deliver_mx(t, "there.test", "a@here.test", ["b@there.test"], MSG))
    assert r.state == "delivered" and r.tls.verified == "mta-sts"


def test_mta_sts_enforce_needs_starttls(net, sts, trusting, tmp_path):
    sink = net.sink()
    dns = net.dns(ZONE + STS_TXT.format("1"))
    t = net.transport(dns, sink.port, tls_context=trusting, mta_sts=sts(dns, tmp_path))
    r = one(deliver_mx(t, "there.test", "a@here.test", ["b@there.test"], MSG))
    assert r.state == "deferred" and "STARTTLS" in r.reply and sink.messages == []


def test_mta_sts_enforce_skips_mx_hosts_outside_the_policy(net, sts, valid, trusting, tmp_path):
    sink = net.sink(starttls=valid)
    dns = net.dns(ZONE + STS_TXT.format("1"))
    t = net.transport(dns, sink.port, tls_context=trusting,
                      mta_sts=sts(dns, tmp_path, mx="*.elsewhere.test"))
    r = one(deliver_mx(t, "there.test", "a@here.test", ["b@there.test"], MSG))
    assert r.state == "deferred" and "not named by the MTA-STS policy" in r.reply
    assert sink.sessions == []


def test_mta_sts_testing_delivers_and_logs(net, sts, self_signed, trusting, tmp_path, caplog):
    sink = net.sink(starttls=self_signed[0])
    dns = net.dns(ZONE + STS_TXT.format("1"))
    t = net.transport(dns, sink.port, tls_context=trusting,
                      mta_sts=sts(dns, tmp_path, mode="testing"))
    with caplog.at_level(logging.INFO, "clevermail.relay"):
        r = one(deliver_mx(t, "there.test", "a@here.test", ["b@there.test"], MSG, qid="QT"))
    assert r.state == "delivered" and r.tls.verified == "none" and sink.messages[0].tls
    [rec] = [x for x in caplog.records if "MTA-STS testing" in x.getMessage()]
    assert rec.levelno == logging.WARNING and "would defer" in rec.getMessage()


def test_mta_sts_policy_fetched_once_per_id(net, sts, valid, trusting, tmp_path):
    sink = net.sink(starttls=valid)
    dns = net.dns(ZONE + STS_TXT.format("1"))
    t = net.transport(dns, sink.port, tls_context=trusting, mta_sts=sts(dns, tmp_path))
    for _ in range(3):
        assert one(deliver_mx(t, "there.test", "a@here.test", ["b@there.test"], MSG)).state == "delivered"
    assert len(sts.server.requests) == 1
    dns.set_zone(ZONE + STS_TXT.format("2"))
    sts.server.policy(POLICY.format(mode="enforce", mx="other.there.test"))
    r = one(deliver_mx(t, "there.test", "a@here.test", ["b@there.test"], MSG))
    assert len(sts.server.requests) == 2 and r.state == "deferred"   # the new policy applies


# -- REQUIRETLS -------------------------------------------------------------------------------
def test_requiretls_bounces_when_the_next_hop_lacks_it(net, valid, trusting):
    sink = net.sink(starttls=valid)                  # verified TLS, no REQUIRETLS
    dns = net.dns(ZONE, authenticated=("there.test.",))
    t = net.transport(dns, sink.port, tls_context=trusting, dnssec=True)
    r = one(deliver_mx(t, "there.test", "a@here.test", ["b@there.test"], MSG, requiretls=True))
    assert r.state == "failed" and r.code == 550 and "5.7.30" in r.reply
    assert "does not support REQUIRETLS" in r.reply and sink.messages == []


def test_requiretls_delivered_over_verified_tls_to_a_requiretls_server(net, valid, trusting):
    sink = net.sink(starttls=valid, requiretls=True)
    dns = net.dns(ZONE, authenticated=("there.test.",))
    t = net.transport(dns, sink.port, tls_context=trusting, dnssec=True)
    r = one(deliver_mx(t, "there.test", "a@here.test", ["b@there.test"], MSG, requiretls=True))
    assert r.state == "delivered" and r.tls.verified == "ca"
    assert "REQUIRETLS" in sink.messages[0].mail_params and sink.messages[0].tls


def test_requiretls_needs_a_securely_known_mx_name(net, valid, trusting):
    # RFC 8689 4.2.1: an MX answer without DNSSEC (and no MTA-STS) cannot carry it
    sink = net.sink(starttls=valid, requiretls=True)
    t = net.transport(net.dns(ZONE), sink.port, tls_context=trusting, dnssec=True)
    r = one(deliver_mx(t, "there.test", "a@here.test", ["b@there.test"], MSG, requiretls=True))
    assert r.state == "failed" and "5.7.30" in r.reply and sink.messages == []


def test_requiretls_never_unverified_or_cleartext(net, self_signed, trusting):
    for kw in ({"starttls": self_signed[0], "requiretls": True}, {"requiretls": True}):
        sink = net.sink(**kw)
        dns = net.dns(ZONE, authenticated=("there.test.",))
        t = net.transport(dns, sink.port, tls_context=trusting, dnssec=True)
        r = one(deliver_mx(t, "there.test", "a@here.test", ["b@there.test"], MSG, requiretls=True))
        assert r.state != "delivered" and sink.messages == []


# -- smarthost -----------------------------------------------------------------------------------
def test_smarthost_fingerprint(net, self_signed):
    ctx, der = self_signed
    sink = net.sink(starttls=ctx)
    t = Transport(hostname="relay.here.test", timeout=5, command_timeout=5)
    good = hashlib.sha256(der).digest()
    r = one(deliver_smarthost(t, "a@here.test", ["b@there.test"], MSG, host="127.0.0.1",
                              port=sink.port, fingerprint=good))
    assert r.state == "delivered" and r.tls.verified == "fingerprint"
    r = one(deliver_smarthost(t, "a@here.test", ["b@there.test"], MSG, host="127.0.0.1",
                              port=sink.port, fingerprint=hashlib.sha256(b"other").digest()))
    assert r.state == "deferred" and "fingerprint" in r.reply and len(sink.messages) == 1


def test_smarthost_ca_file(net, ca, tmp_path):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("smart.test").configure_cert(ctx)
    sink = net.sink(starttls=ctx)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    t = Transport(hostname="relay.here.test", timeout=5, command_timeout=5,
                  connect=lambda a, p, timeout: __import__("socket").create_connection(("127.0.0.1", p), timeout))
    own = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    r = one(deliver_smarthost(t, "a@here.test", ["b@there.test"], MSG, host="smart.test",
                              port=sink.port, context=own))
    assert r.state == "delivered" and r.tls.verified == "ca"
    r = one(deliver_smarthost(t, "a@here.test", ["b@there.test"], MSG, host="smart.test",
                              port=sink.port))                          # system CAs: unknown CA
    assert r.state == "deferred" and "4.7.5" in r.reply


def test_config_refuses_a_cleartext_smarthost_password(tmp_path):
    base = {"smarthost": "smart.test:587", "smarthost_user": "u", "smarthost_password": "pw",
            "smarthost_tls": "none"}
    with pytest.raises(ConfigError, match="smarthost_password: the password would travel in clear"):
        load_config(overrides={"server": {"data_dir": str(tmp_path)}, "relay": base})
    with pytest.raises(ConfigError, match="smarthost_fingerprint: needs smarthost_tls"):
        load_config(overrides={"server": {"data_dir": str(tmp_path)},
                               "relay": {"smarthost_tls": "none", "smarthost_fingerprint": "ab" * 32}})
    with pytest.raises(ConfigError, match="not a SHA-256 fingerprint"):
        load_config(overrides={"relay": {"smarthost_fingerprint": "abc"}})
    conf = load_config(overrides={"server": {"data_dir": str(tmp_path)},
                                  "relay": {**base, "smarthost_tls": "starttls", "dnssec": True,
                                            "smarthost_fingerprint": ":".join(["AB"] * 32)}})
    assert conf.relay.smarthost_fingerprint == bytes([0xAB] * 32) and conf.relay.dnssec


# -- the record: log line and queue history ----------------------------------------------------
def test_attempt_tls_in_log_and_queue_history(net, self_signed, trusting, tmp_path, caplog):
    later = {"later@there.test": (451, "4.2.1 greylisted")}
    sink = net.sink(starttls=self_signed[0], rcpt=later)
    dns = net.dns(ZONE)
    q = RelayQueue(tmp_path / "queue")
    settings = RelaySettings(hostname="relay.here.test", mx_port=sink.port, connect_timeout=5,
                             mta_sts=False)
    w = RelayWorker(q, settings, make_resolver([dns.nameserver]), lambda *a: None,
                    lambda a: False, tls_context=trusting)
    eid = q.enqueue("a@here.test", ["b@there.test", "later@there.test"], MSG, "QH")
    with caplog.at_level(logging.INFO, "clevermail.relay"):
        w.run_once()
    e = q.get(eid)
    tls_events = [h["tls"] for h in e.history if h["event"] in ("delivered", "deferred")]
    assert len(tls_events) == 2 and all(x.startswith("TLSv1") and x.endswith("/none") for x in tls_events)
    assert "/none" in e.describe(history=True) and "tls=TLSv1" in e.describe(history=True)
    assert any("to=<b@there.test>" in r.getMessage() and "tls=TLSv1" in r.getMessage()
               for r in caplog.records)


# -- REQUIRETLS on the submission listener ------------------------------------------------------
@pytest.fixture
def smtp_env(tmp_path):
    e = Env(str(tmp_path / "data"), make_users_file(tmp_path))
    yield e
    e.connect.end(wait=False)


def test_requiretls_on_submission_only_over_tls(smtp_env):
    server_ctx, client_ctx = tls_contexts("mx.example.test")
    sub = smtp_env.server(mode="submission", ssl_context=server_ctx)
    c = smtp_env.connect(sub)
    assert "REQUIRETLS" not in c.expect(250, "EHLO client.test")
    c.expect(235, "AUTH PLAIN " + plain("alice@example.test", "alice-pw"))    # loopback
    assert c.expect(530, "MAIL FROM:<alice@example.test> REQUIRETLS").startswith("5.7.10")
    c.expect(220, "STARTTLS")
    c.sock = client_ctx.wrap_socket(c.sock, server_hostname="mx.example.test")
    c.buf = b""
    assert "REQUIRETLS" in c.expect(250, "EHLO client.test").split("\n")
    c.expect(235, "AUTH PLAIN " + plain("alice@example.test", "alice-pw"))
    c.expect(555, "MAIL FROM:<alice@example.test> REQUIRETLS=yes")     # it takes no value
    c.expect(250, "MAIL FROM:<alice@example.test> REQUIRETLS")
    c.expect(250, "RCPT TO:<carol@far.test>")
    c.expect(354, "DATA")
    c.send("Subject: secret\r\n\r\nhi\r\n.\r\n")
    c.expect(250)
    [entry] = smtp_env.queued()
    assert entry.requiretls and "REQUIRETLS" in entry.describe()
    # the flag belongs to that transaction only
    c.expect(250, "MAIL FROM:<alice@example.test>")
    c.expect(250, "RCPT TO:<dave@far.test>")
    c.expect(354, "DATA")
    c.send("Subject: plain\r\n\r\nhi\r\n.\r\n")
    c.expect(250)
    assert sorted(e.requiretls for e in smtp_env.queued()) == [False, True]


def test_requiretls_not_offered_on_the_mx_listener(smtp_env):
    server_ctx, client_ctx = tls_contexts("mx.example.test")
    c = smtp_env.connect(smtp_env.server(ssl_context=server_ctx))
    c.expect(250, "EHLO client.test")
    c.expect(220, "STARTTLS")
    c.sock = client_ctx.wrap_socket(c.sock, server_hostname="mx.example.test")
    c.buf = b""
    assert "REQUIRETLS" not in c.expect(250, "EHLO client.test")
    c.expect(555, "MAIL FROM:<x@remote.test> REQUIRETLS")


def test_worker_honours_the_entry_requiretls_flag(net, valid, trusting, tmp_path):
    """The flag kept in the queue entry reaches the relay: bounced (550 5.7.30) where
    the next hop lacks REQUIRETLS, while a plain message to it is delivered."""
    sink = net.sink(starttls=valid)
    dns = net.dns(ZONE, authenticated=("there.test.",))
    q = RelayQueue(tmp_path / "queue")
    local = []
    settings = RelaySettings(hostname="relay.here.test", mx_port=sink.port, connect_timeout=5,
                             mta_sts=False, dnssec=True)
    w = RelayWorker(q, settings, make_resolver([dns.nameserver], dnssec=True),
                    lambda sender, rcpts, data, qid: local.append((sender, rcpts, data)),
                    lambda a: a.endswith("@here.test"), tls_context=trusting)
    pending = q.prepare("a@here.test", ["b@there.test"], MSG, "QREQ", requiretls=True)
    pending.commit()
    assert q.get(pending.id).requiretls
    q.enqueue("a@here.test", ["c@there.test"], message(2), "QPLAIN")
    w.run_once()
    assert [m.rcpts for m in sink.messages] == [["c@there.test"]]
    [(sender, rcpts, dsn)] = local
    assert sender == "" and rcpts == ["a@here.test"] and b"5.7.30" in dsn
