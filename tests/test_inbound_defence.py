"""Tests for the MX defences: DNS block/allow lists, greylisting, per-client rates,
the unknown-recipient limit and pregreet detection; pure, then end to end through a
MailService whose DNS is a server on loopback."""

import smtplib
import socket

import pytest

from clevermail.inbound.defence import ClientRates
from clevermail.inbound.dnsbl import DNSLists, query_name
from clevermail.inbound.dnsclient import DnsClient
from clevermail.inbound.greylist import Greylist, client_network
from clevermail.relay.mx import make_resolver
from dns_server import DNSServer
from mx_helpers import MXServices, sample, scrape
from smtp_helpers import inbox, make_users_file

ZONE = """
2.0.0.127.block.test.       300 IN A   127.0.0.2
2.0.0.127.block.test.       300 IN TXT "spam source, see https://block.test/127.0.0.2"
3.0.0.127.block.test.       300 IN A   127.0.0.2
3.0.0.127.allow.test.       300 IN A   127.0.10.1
4.0.0.127.block.test.       300 IN A   127.255.255.254
5.0.0.127.block.test.       300 IN A   192.0.2.1
1.0.0.127.block.test.       300 IN A   127.0.0.2
"""


class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture(scope="module")
def dns():
    with DNSServer(ZONE, servfail={"6.0.0.127.block.test."}) as server:
        yield server


def test_query_names():
    assert query_name("192.0.2.99", "zen.example") == "99.2.0.192.zen.example"
    assert query_name("::ffff:192.0.2.99", "zen.example.") == "99.2.0.192.zen.example"
    assert query_name("2001:db8::1", "z.test") == "1." + "0." * 23 + "8.b.d.0.1.0.0.2.z.test"


def test_dns_lists(dns):
    lists = DNSLists(DnsClient(make_resolver([dns.nameserver])), block=["block.test"], allow=["allow.test"])
    listing = lists.check("127.0.0.2")
    assert (listing.zone, listing.reason) == ("block.test", "spam source, see https://block.test/127.0.0.2")
    assert lists.check("127.0.0.3") is None             # the allow list wins
    assert lists.check("127.0.0.4") is None             # a list's error code is no listing
    assert lists.check("127.0.0.5") is None             # outside 127/8: a broken zone
    assert lists.check("127.0.0.6") is None             # DNS trouble lists nobody
    assert lists.check("127.0.0.7") is None
    assert DNSLists(lists.dns, block=["block.test"]).check("127.0.0.1").reason == "listed by block.test"


def test_greylist_triplets_delay_window_and_known_networks(tmp_path):
    clock = Clock()
    grey = Greylist(str(tmp_path), delay=300, window=86400, allow_days=36, clock=clock)
    assert grey.check("192.0.2.10", "A@x.test", "bob@example.test") == 300
    clock.now += 100
    assert grey.check("192.0.2.10", "a@x.test", "bob@example.test") == 200      # too early
    clock.now += 250
    assert grey.check("192.0.2.99", "a@x.test", "bob@example.test") is None      # same /24 retried
    # the network is known now: other triplets pass at once, for 36 days
    assert grey.check("192.0.2.11", "new@y.test", "alice@example.test") is None
    clock.now += 37 * 86400
    assert grey.check("192.0.2.11", "new@y.test", "alice@example.test") == 300
    # a retry after the window starts over
    assert grey.check("198.51.100.1", "s@z.test", "r@example.test") == 300
    clock.now += 86401
    assert grey.check("198.51.100.1", "s@z.test", "r@example.test") == 300
    # another process on the same data dir shares the state
    other = Greylist(str(tmp_path), delay=300, clock=clock)
    clock.now += 301
    assert other.check("198.51.100.1", "s@z.test", "r@example.test") is None
    grey.close()
    other.close()


def test_client_networks():
    assert client_network("192.0.2.77") == "192.0.2.0/24"
    assert client_network("2001:db8:1:2:3::4") == "2001:db8:1:2::/64"
    assert client_network("::ffff:192.0.2.77") == "192.0.2.0/24"


def test_client_rates():
    clock = Clock()
    rates = ClientRates(2, clock)
    assert [rates.hit("a"), rates.hit("a"), rates.hit("a"), rates.hit("b")] == [False, False, True, False]
    clock.now += 61
    assert rates.hit("a") is False
    assert ClientRates(0, clock).hit("a") is False


# -- end to end -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def users(tmp_path_factory):
    return make_users_file(tmp_path_factory.mktemp("defence-users"))


@pytest.fixture
def start(tmp_path, dns, users, thread_guard):
    services = MXServices(tmp_path, users)

    def start(**spam):
        return services(spam=spam, relay={"nameservers": [f"127.0.0.1:{dns.port}"]},
                        metrics={"listen": "127.0.0.1:0"})

    yield start
    services.stop_all()


def smtp(svc):
    return smtplib.SMTP("127.0.0.1", svc.port("smtp"), local_hostname="mx.far.test", timeout=10)


def test_block_list_refuses_with_the_lists_reason(start):
    svc = start(dnsbl=["block.test"])            # the client is 127.0.0.1: listed
    with smtp(svc) as s:
        with pytest.raises(smtplib.SMTPSenderRefused) as info:
            s.sendmail("x@far.test", ["alice@example.test"], b"Subject: s\r\n\r\nx\r\n")
    assert info.value.smtp_code == 554
    assert info.value.smtp_error == b"5.7.1 Client address 127.0.0.1 blocked by block.test: listed by block.test"
    samples = scrape(svc)
    assert sample(samples, "clevermail_defence_checks_total", check="dnsbl", outcome="refused") == 1
    assert sample(samples, "clevermail_defence_checks_total", check="dnsbl", outcome="passed") == 0
    # a refusal of its own in the SMTP refusals, not a relay denial
    assert sample(samples, "clevermail_smtp_refused_total", reason="dnsbl") == 1
    assert sample(samples, "clevermail_smtp_refused_total", reason="relay_denied") is None


def test_greylisting_defers_the_first_attempt_only(start):
    svc = start(greylist=True, greylist_delay=0)
    with smtp(svc) as s:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            s.sendmail("x@far.test", ["alice@example.test"], b"Subject: s\r\n\r\nx\r\n")
        assert info.value.recipients["alice@example.test"][:2] == (451, b"4.7.1 Greylisted, try again in 1 seconds")
        assert s.sendmail("x@far.test", ["alice@example.test"], b"Subject: s\r\n\r\nx\r\n") == {}
    # authenticated sessions are never greylisted
    with smtp(svc) as s:
        s.login("bob@example.test", "bob-pw")
        assert s.sendmail("bob@example.test", ["alice@example.test"], b"Subject: t\r\n\r\nx\r\n") == {}
    assert len(inbox(svc.data_dir, "alice@example.test")) == 2
    samples = scrape(svc)
    assert sample(samples, "clevermail_defence_checks_total", check="greylist", outcome="refused") == 1
    assert sample(samples, "clevermail_defence_checks_total", check="greylist", outcome="passed") == 1
    assert sample(samples, "clevermail_smtp_refused_total", reason="greylist") == 1


def test_harvesting_is_cut_off_after_the_unknown_recipient_limit(start):
    svc = start(unknown_recipients=2)
    with smtp(svc) as s:
        s.ehlo()
        s.mail("x@far.test")
        assert s.rcpt("nobody1@example.test")[0] == 550
        assert s.rcpt("nobody2@example.test")[0] == 550
        code, text = s.rcpt("nobody3@example.test")
        assert (code, text) == (421, b"4.7.0 mail.example.test Too many unknown recipients, closing connection")
        with pytest.raises(smtplib.SMTPServerDisconnected):
            s.noop()
    samples = scrape(svc)
    assert sample(samples, "clevermail_smtp_refused_total", reason="harvest") == 1
    assert sample(samples, "clevermail_smtp_refused_total", reason="unknown_user") == 2
    assert sample(samples, "clevermail_smtp_refused_total", reason="rate") is None


def test_message_and_connection_rates(start):
    svc = start(messages_per_minute=2, connections_per_minute=3)
    with smtp(svc) as s:
        for _ in range(2):
            assert s.sendmail("x@far.test", ["alice@example.test"], b"Subject: s\r\n\r\nx\r\n") == {}
        with pytest.raises(smtplib.SMTPSenderRefused) as info:
            s.sendmail("x@far.test", ["alice@example.test"], b"Subject: s\r\n\r\nx\r\n")
        assert info.value.smtp_code == 450
    smtp(svc).quit()
    smtp(svc).quit()                            # the third connection this minute
    with pytest.raises(smtplib.SMTPConnectError) as info:
        smtp(svc)
    assert info.value.smtp_code == 421
    samples = scrape(svc)
    counts = {(check, outcome): sample(samples, "clevermail_defence_checks_total", check=check, outcome=outcome)
              for check in ("message_rate", "connection_rate") for outcome in ("refused", "passed")}
    assert counts == {("message_rate", "refused"): 1, ("message_rate", "passed"): 2,
                      ("connection_rate", "refused"): 1, ("connection_rate", "passed"): 3}
    # the 450 at MAIL and the 421 at connect are both refusals for rate
    assert sample(samples, "clevermail_smtp_refused_total", reason="rate") == 2


def test_a_client_talking_before_the_banner_is_refused(start):
    svc = start(pregreet=True, pregreet_wait=2)
    with socket.create_connection(("127.0.0.1", svc.port("smtp")), timeout=10) as sock:
        sock.sendall(b"EHLO eager.test\r\n")
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = sock.recv(1024)
            if not chunk:
                break
            data += chunk
    assert data == b"554 5.5.1 Protocol error: talking before the greeting\r\n"
    with smtp(svc) as s:                        # a patient client is served
        assert s.noop()[0] == 250
    assert sample(scrape(svc), "clevermail_smtp_refused_total", reason="pregreet") == 1
