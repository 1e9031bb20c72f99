"""relay.mta_sts: the TXT record, the policy file, the HTTPS fetch (against a loopback
HTTPS server with a trustme certificate) and the cache (RFC 8461)."""
import json
import ssl

import pytest
import trustme

from clevermail.relay.mta_sts import (MAX_POLICY, FetchError, Fetcher, Policy, PolicyCache,
                                      PolicyError, mx_matches, parse_policy, parse_txt)
from clevermail.relay.mx import make_resolver
from dns_server import DNSServer
from policy_server import PolicyServer

POLICY = "version: STSv1\r\nmode: enforce\r\nmx: mx.there.test\r\nmx: *.backup.there.test\r\nmax_age: 86400\r\n"


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def https(ca, thread_guard):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("mta-sts.there.test").configure_cert(ctx)
    with PolicyServer(ctx) as server:
        server.policy(POLICY)
        yield server


def fetcher_for(server, ca, **kw):
    return Fetcher(lambda host: ("127.0.0.1", server.port), cadata=ca.cert_pem.bytes().decode(), **kw)


# -- the TXT record ---------------------------------------------------------------------
@pytest.mark.parametrize("records,expected", [
    (["v=STSv1; id=20160831085700Z;"], "20160831085700Z"),
    (["v=STSv1;id=abc"], "abc"),
    (["v=spf1 -all", "v=STSv1; id=1"], "1"),              # other TXT records are ignored
    (["v=STSv1; id=1", "v=STSv1; id=2"], None),            # two policies: none (3.1)
    (["v=STSv1; id=has-dash"], None),
    (["v=STSv1; id=" + "a" * 33], None),
    (["v=STSv1"], None),
    ([], None),
])
def test_parse_txt(records, expected):
    assert parse_txt(records) == expected


# -- the policy file ---------------------------------------------------------------------
def test_parse_policy():
    assert parse_policy(POLICY) == ("enforce", ("mx.there.test", "*.backup.there.test"), 86400)
    assert parse_policy("version: STSv1\nmode: none\nmax_age: 5\n") == ("none", (), 5)
    assert parse_policy("version: STSv1\nmode: testing\nmx: a.test\nmax_age: 9999999999\nfoo: bar\n")[2] \
        == 31557600                                        # capped at a year; unknown key ignored


@pytest.mark.parametrize("text", [
    "mode: enforce\nmx: a.test\nmax_age: 1\n",                      # no version
    "version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 1\n",
    "version: STSv1\nmode: strict\nmx: a.test\nmax_age: 1\n",
    "version: STSv1\nmode: enforce\nmax_age: 1\n",                  # no mx
    "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -1\n",
    "version: STSv1\nmode: enforce\nmx: a.*.test\nmax_age: 1\n",
    "version: STSv1\nmode: enforce\nmx: a.test\n",                   # no max_age
    "version: STSv1\nmode enforce\n",
])
def test_parse_policy_refuses(text):
    with pytest.raises(PolicyError):
        parse_policy(text)


def test_mx_patterns():
    assert mx_matches("mx.there.test", "MX.there.test.")
    assert mx_matches("*.there.test", "mx1.there.test")
    assert not mx_matches("*.there.test", "there.test")
    assert not mx_matches("*.there.test", "a.b.there.test")      # one label only (4.1)
    assert not mx_matches("mx.there.test", "evil-mx.there.test")
    p = Policy("1", "enforce", ("mx.there.test",), 60, 100.0)
    assert p.allows("mx.there.test") and not p.allows("other.test")
    assert not p.expired(159.0) and p.expired(160.0)


# -- the fetch ---------------------------------------------------------------------------
def test_fetch_over_verified_https(https, ca):
    assert fetcher_for(https, ca).fetch("there.test") == POLICY
    assert https.requests == ["/.well-known/mta-sts.txt"]


def test_fetch_refuses_an_untrusted_certificate(https):
    other = trustme.CA()
    f = Fetcher(lambda host: ("127.0.0.1", https.port), cadata=other.cert_pem.bytes().decode())
    with pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED"):
        f.fetch("there.test")


def test_fetch_refuses_a_wrong_name(ca, thread_guard):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("www.there.test").configure_cert(ctx)
    with PolicyServer(ctx) as server:
        server.policy(POLICY)
        with pytest.raises(FetchError):
            fetcher_for(server, ca).fetch("there.test")


@pytest.mark.parametrize("status,ctype,body,headers,why", [
    (404, "text/plain", POLICY, {}, "HTTP 404"),
    (301, "text/plain", "", {"Location": "https://elsewhere.test/policy"}, "HTTP 301"),
    (200, "text/html", POLICY, {}, "Content-Type text/html"),
    (200, "text/plain", "x" * (MAX_POLICY + 1), {}, "larger than"),
])
def test_fetch_failures(https, ca, status, ctype, body, headers, why):
    https.policy(body, status=status, ctype=ctype, headers=headers)
    with pytest.raises(FetchError, match=why):
        fetcher_for(https, ca).fetch("there.test")
    assert https.requests == ["/.well-known/mta-sts.txt"]      # a redirect is not followed


def test_fetch_content_type_parameters_allowed(https, ca):
    https.policy(POLICY, ctype="text/plain; charset=utf-8")
    assert fetcher_for(https, ca).fetch("there.test") == POLICY


# -- the cache -------------------------------------------------------------------------
TXT = '_mta-sts.there.test. 0 IN TXT "v=STSv1; id={}"\n'


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def dns():
    with DNSServer(TXT.format("one")) as server:
        yield server


def test_policy_cached_and_refreshed_on_id_change(dns, https, ca, tmp_path):
    clock = Clock()
    cache = PolicyCache(make_resolver([dns.nameserver]), tmp_path / "sts", fetcher_for(https, ca),
                        clock=clock)
    p = cache.get("there.test")
    assert (p.id, p.mode, p.mx, p.max_age) == ("one", "enforce", ("mx.there.test", "*.backup.there.test"), 86400)
    assert len(https.requests) == 1
    on_disk = json.loads((tmp_path / "sts" / "there.test.json").read_text())
    assert on_disk["id"] == "one" and on_disk["mode"] == "enforce"
    clock.now += 100
    assert cache.get("there.test") == p and len(https.requests) == 1     # same id: cached
    # A new id is fetched at once
    https.policy(POLICY.replace("enforce", "testing"))
    dns.set_zone(TXT.format("two"))
    p2 = cache.get("there.test")
    assert (p2.id, p2.mode) == ("two", "testing") and len(https.requests) == 2
    # After a restart the disk copy serves without a fetch
    again = PolicyCache(make_resolver([dns.nameserver]), tmp_path / "sts", fetcher_for(https, ca),
                        clock=clock)
    assert again.get("there.test").mode == "testing" and len(https.requests) == 2


def test_cached_policy_used_when_the_fetch_fails_or_the_txt_is_gone(dns, https, ca, tmp_path, caplog):
    clock = Clock()
    cache = PolicyCache(make_resolver([dns.nameserver]), tmp_path, fetcher_for(https, ca), clock=clock)
    assert cache.get("there.test").id == "one"
    https.policy("", status=500)
    dns.set_zone(TXT.format("two"))
    assert cache.get("there.test").id == "one"                   # refetch failed: the old one
    assert "not fetched" in caplog.text
    dns.set_zone("")                                             # TXT removed: still cached
    assert cache.get("there.test").id == "one"
    clock.now += 86400                                           # max_age over: gone
    assert cache.get("there.test") is None


def test_no_txt_record_means_no_policy_and_no_fetch(https, ca, tmp_path):
    with DNSServer("") as dns:
        cache = PolicyCache(make_resolver([dns.nameserver]), tmp_path, fetcher_for(https, ca))
        assert cache.get("there.test") is None
    assert https.requests == []


def test_failed_fetch_is_not_repeated_at_once(dns, https, ca, tmp_path):
    clock = Clock()
    https.policy("", status=503)
    cache = PolicyCache(make_resolver([dns.nameserver]), tmp_path, fetcher_for(https, ca), clock=clock)
    assert cache.get("there.test") is None and cache.get("there.test") is None
    assert len(https.requests) == 1
    clock.now += 301
    https.policy(POLICY)
    assert cache.get("there.test").mode == "enforce" and len(https.requests) == 2


def test_damaged_cache_file_is_ignored(dns, https, ca, tmp_path):
    (tmp_path / "there.test.json").write_text("{not json")
    cache = PolicyCache(make_resolver([dns.nameserver]), tmp_path, fetcher_for(https, ca))
    assert cache.get("there.test").id == "one"
