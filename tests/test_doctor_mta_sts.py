"""`clevermail doctor`'s MTA-STS check for real: the loopback DNS server (tests/dns_server.py)
publishes `_mta-sts.<domain>` and the address of `mta-sts.<domain>`, and an HTTPS server on
loopback (tests/policy_server.py: stdlib http.server + ssl, a trustme certificate for that
name, trusted through the fetcher's CA data) serves the policy file that mta_sts.Fetcher, the one the command
uses, fetches: a right policy, a wrong one (mx, mode), a wrong TXT id, and a policy that
is not served as RFC 8461 3.3 wants (404, not text/plain, a certificate for another name)."""

import ssl

import pytest
import trustme

from clevermail.doctor import Doctor
from clevermail.inbound.dnsclient import DnsClient
from clevermail.relay import mta_sts
from clevermail.relay.mx import make_resolver
from dns_server import DNSServer
from policy_server import PolicyServer

HOST = "mail.example.test"
DOMAIN = "example.test"
RIGHT = "version: STSv1\nmode: enforce\nmx: mail.example.test\nmax_age: 86400\n"
ZONE = f"""
{HOST}.                 300 IN A     127.0.0.1
mta-sts.{DOMAIN}.       300 IN A     127.0.0.1
{DOMAIN}.               300 IN MX    10 {HOST}.
_mta-sts.{DOMAIN}.      300 IN TXT   "v=STSv1; id=20261203T1"
_smtp._tls.{DOMAIN}.    300 IN TXT   "v=TLSRPTv1; rua=mailto:tls@{DOMAIN}"
"""


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def https(ca, thread_guard):
    """The policy server (tests/policy_server.py) with a certificate for mta-sts.<domain>,
    serving RIGHT; `https.context` is its SSLContext (a test may change its certificate)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(f"mta-sts.{DOMAIN}").configure_cert(context)
    with PolicyServer(context) as server:
        server.context = context
        server.policy(RIGHT, ctype="text/plain; charset=utf-8")
        yield server


@pytest.fixture
def dns():
    with DNSServer(ZONE) as server:
        yield server


def mta_sts_check(dns, https, ca):
    """The doctor's mta-sts check with the fetcher `clevermail doctor` uses, pointed at
    the loopback DNS server, trusting the test CA, on the HTTPS server's port."""
    resolver = make_resolver([dns.nameserver], timeout=2, lifetime=4)
    fetcher = mta_sts.Fetcher(resolver=resolver, cadata=ca.cert_pem.bytes().decode(), timeout=10.0,
                              port=https.port)
    doc = Doctor(DnsClient(resolver), HOST, [DOMAIN], mta_sts_fetch=fetcher.fetch)
    (check,) = [c for c in doc.run() if c.name == "mta-sts"]
    return check


def test_a_right_policy_is_fetched_over_https_and_passes(dns, https, ca):
    check = mta_sts_check(dns, https, ca)
    assert (check.status, check.detail) == ("ok", f"enforce, id 20261203T1, names {HOST}")
    assert https.requests == ["/.well-known/mta-sts.txt"]


def test_a_policy_naming_another_mx_fails(dns, https, ca):
    https.policy(RIGHT.replace(f"mx: {HOST}", "mx: *.elsewhere.test"))
    check = mta_sts_check(dns, https, ca)
    assert check.status == "fail"
    assert check.detail == f"the policy (enforce) names *.elsewhere.test, not {HOST}: senders will not deliver"
    assert check.fix[0] == f'_mta-sts.{DOMAIN}. 3600 IN TXT "v=STSv1; id=20261203T1"'


def test_a_testing_policy_warns(dns, https, ca):
    https.policy(RIGHT.replace("mode: enforce", "mode: testing"))
    check = mta_sts_check(dns, https, ca)
    assert (check.status, check.detail) == ("warn", "mode testing: senders are not held to TLS")


def test_a_wrong_id_in_the_txt_record_fails(dns, https, ca):
    dns.set_zone(ZONE.replace("id=20261203T1", "id=2026-12-03"))     # '-' is not allowed (RFC 8461 3.1)
    check = mta_sts_check(dns, https, ca)
    assert check.status == "fail"
    assert check.detail == (f"_mta-sts.{DOMAIN}: 'v=STSv1; id=2026-12-03' is not one valid v=STSv1 "
                            "record with an id")
    assert https.requests == []            # nothing fetched for a record that is not valid


def test_an_invalid_policy_file_fails(dns, https, ca):
    https.policy(RIGHT.replace("mode: enforce", "mode: strict"))
    check = mta_sts_check(dns, https, ca)
    assert check.status == "fail" and check.detail.startswith("the policy file is invalid: ")


@pytest.mark.parametrize("status, ctype, why", [
    (404, "text/plain", f"mta-sts.{DOMAIN}: HTTP 404 Not Found"),
    (301, "text/plain", f"mta-sts.{DOMAIN}: HTTP 301 Moved Permanently"),
    (200, "text/html", f"mta-sts.{DOMAIN}: Content-Type text/html, not text/plain")])
def test_a_policy_not_served_as_rfc_8461_says_fails(dns, https, ca, status, ctype, why):
    https.policy(RIGHT, status=status, ctype=ctype)
    check = mta_sts_check(dns, https, ca)
    assert (check.status, check.detail) == ("fail", f"the policy is announced but not served: {why}")


def test_a_certificate_for_another_name_fails(dns, https, ca):
    ca.issue_cert("www.example.test").configure_cert(https.context)
    check = mta_sts_check(dns, https, ca)
    assert check.status == "fail"
    assert check.detail.startswith(f"the policy is announced but not served: mta-sts.{DOMAIN}: ")
    assert "certificate verify failed" in check.detail
    assert https.requests == []


def test_an_untrusted_certificate_fails(dns, https):
    check = mta_sts_check(dns, https, trustme.CA())        # not the CA that issued it
    assert check.status == "fail" and "certificate verify failed" in check.detail
