"""Tests for clevermail.metrics: the Prometheus endpoint of a real MailService (SMTP
delivery, IMAP login failure, relay to a sink, all read back by scraping /metrics
with urllib and parsing with prometheus_client's own parser), the no-op default, the
[metrics] configuration and a taken port."""

import imaplib
import shutil
import smtplib
import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from clevermail.config import ConfigError, load_config
from clevermail.metrics import NO_METRICS, PromMetrics
from clevermail.service import MailService, StartupError
from relay_sink import Replies, ServiceEnv, Sink
from waiting import wait_for

pytestmark = pytest.mark.e2e

ALICE, BOB = ServiceEnv.ALICE, ServiceEnv.BOB
REMOTE = "carol@there.test"


def scrape(port):
    """{(sample name, frozenset(labels)): value} of one GET /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert r.status == 200
        text = r.read().decode("utf-8")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def replies():
    return Replies()


@pytest.fixture
def env(thread_guard, tmp_path, relay_users, replies, write_config):
    """conftest's relay_env with [metrics] listen on 127.0.0.1:0."""
    shutil.copy(relay_users, tmp_path / "users.ini")
    sink = Sink(rcpt=replies)
    path = write_config(tmp_path, relay={"mx_port": sink.port}, metrics={"listen": "127.0.0.1:0"})
    env = ServiceEnv(load_config(path), sink)
    try:
        yield env.start()
    finally:
        env.stop()
        sink.close()


def test_scrape_counts_smtp_imap_and_relay(env, replies):
    port = env.service.metrics_port
    assert port and port != 0
    before = scrape(port)
    assert value(before, "clevermail_messages_accepted_total") == 0
    assert value(before, "clevermail_sessions_open", protocol="smtp") == 0

    # an SMTP delivery to a local user, and one refused recipient
    with smtplib.SMTP("127.0.0.1", env.service.port("smtp"), timeout=10) as s:
        s.ehlo("client.example.test")
        s.mail("someone@elsewhere.test")
        assert s.rcpt("nobody@example.test")[0] == 550
        assert s.rcpt(BOB)[0] == 250
        assert s.data(b"Subject: hi\r\nMessage-ID: <m1@x>\r\n\r\nhello\r\n")[0] == 250
        during = scrape(port)
        assert value(during, "clevermail_sessions_open", protocol="smtp") == 1
    # an IMAP login failure
    imap = imaplib.IMAP4("127.0.0.1", env.service.port("imap"), timeout=10)
    try:
        with pytest.raises(imaplib.IMAP4.error):
            imap.login(ALICE, "wrong password")
    finally:
        imap.logout()
    # a relay to the sink, authenticated (a login that works)
    assert env.send([REMOTE], b"Subject: out\r\n\r\nrelayed\r\n") == {}
    assert wait_for(lambda: env.sink.messages)
    assert wait_for(lambda: env.queue.list() == [])

    def relayed():
        return value(scrape(port), "clevermail_relay_attempts_total", outcome="delivered") == 1
    assert wait_for(relayed)
    after = scrape(port)
    assert value(after, "clevermail_messages_accepted_total") == 2
    assert value(after, "clevermail_smtp_refused_total", reason="unknown_user") == 1
    assert value(after, "clevermail_local_deliveries_total") == 1
    assert value(after, "clevermail_local_delivery_seconds_count") == 1
    assert value(after, "clevermail_local_delivery_seconds_sum") > 0
    assert value(after, "clevermail_sessions_total", protocol="smtp") == 2
    assert value(after, "clevermail_sessions_total", protocol="imap") == 1
    assert value(after, "clevermail_sessions_open", protocol="smtp") == 0
    assert value(after, "clevermail_logins_total", protocol="imap", mechanism="login_command",
                 result="failed") == 1
    assert value(after, "clevermail_logins_total", protocol="smtp", mechanism="plain",
                 result="ok") == 1
    assert value(after, "clevermail_relay_attempts_total", outcome="deferred") == 0
    assert value(after, "clevermail_relay_delivery_seconds_count") == 1
    assert value(after, "clevermail_queue_entries", state="deferred") == 0
    assert value(after, "clevermail_queue_oldest_age_seconds") == 0
    assert value(after, "clevermail_store_errors_total", operation="smtp_delivery") is None


def test_scrape_sees_a_deferred_entry_and_its_age(env, replies):
    replies.set(451, "4.7.1 greylisted")
    env.send([REMOTE], b"Subject: later\r\n\r\nlater\r\n")
    assert wait_for(env.deferred)
    port = env.service.metrics_port
    assert wait_for(lambda: value(scrape(port), "clevermail_relay_attempts_total", outcome="deferred") == 1)
    samples = scrape(port)
    assert value(samples, "clevermail_queue_entries", state="deferred") == 1
    assert value(samples, "clevermail_queue_recipients", state="deferred") == 1
    assert value(samples, "clevermail_queue_entries", state="active") == 0
    assert value(samples, "clevermail_queue_oldest_age_seconds") >= 0
    assert value(samples, "clevermail_queue_bytes") == env.queue.list()[0].size > 0
    assert value(samples, "clevermail_queue_damaged_entries") == 0
    assert value(samples, "clevermail_relay_attempts_total", outcome="delivered") == 0


def test_a_bounce_counts_as_bounced(env, replies):
    replies.set(550, "5.1.1 no such user")
    env.send([REMOTE], b"Subject: nope\r\n\r\nnope\r\n")
    env.wait_inbox(ALICE)          # the bounce
    port = env.service.metrics_port
    assert wait_for(lambda: value(scrape(port), "clevermail_relay_attempts_total", outcome="bounced") == 1)
    # the report went to ALICE's INBOX through the relay's local delivery
    assert value(scrape(port), "clevermail_local_deliveries_total") == 1


def test_relay_denied_and_too_big_are_counted_by_reason(tmp_path, make_config, thread_guard):
    conf = make_config(tmp_path, metrics={"listen": "127.0.0.1:0"}, limits={"message_size": 2048})
    with MailService(conf) as service:
        with smtplib.SMTP("127.0.0.1", service.port("smtp"), timeout=10) as s:
            s.ehlo("client.example.test")
            s.mail("a@elsewhere.test")
            assert s.rcpt("b@elsewhere.test")[0] == 554
            s.rset()
            assert s.mail("a@elsewhere.test", ["SIZE=999999"])[0] == 552
        samples = scrape(service.metrics_port)
        assert value(samples, "clevermail_smtp_refused_total", reason="relay_denied") == 1
        assert value(samples, "clevermail_smtp_refused_total", reason="too_big") == 1
        assert value(samples, "clevermail_messages_accepted_total") == 0


def test_metrics_off_is_the_shared_no_op(tmp_path, make_config, thread_guard):
    conf = make_config(tmp_path)
    assert conf.metrics.listen is None
    with MailService(conf) as service:
        assert service.metrics is NO_METRICS
        assert service.metrics_port is None
        assert all(srv.metrics is NO_METRICS for _, srv in service.servers)


def test_a_taken_metrics_port_is_a_startup_error(tmp_path, make_config, thread_guard):
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    try:
        conf = make_config(tmp_path, metrics={"listen": f"127.0.0.1:{held.getsockname()[1]}"})
        service = MailService(conf)
        with pytest.raises(StartupError, match="metrics: cannot listen on 127.0.0.1:.*address already in use"):
            service.start()
        # every listener bound before it was closed again
        assert service.servers == []
    finally:
        held.close()


def test_the_endpoint_stops_with_the_service(tmp_path, make_config, thread_guard):
    conf = make_config(tmp_path, metrics={"listen": "127.0.0.1:0"})
    service = MailService(conf).start()
    port = service.metrics_port
    assert value(scrape(port), "clevermail_sessions_open", protocol="pop3") == 0
    service.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)


def test_registries_are_per_service():
    a, b = PromMetrics(), PromMetrics()
    a.session_opened("smtp")
    assert a.registry.get_sample_value("clevermail_sessions_total", {"protocol": "smtp"}) == 1
    assert b.registry.get_sample_value("clevermail_sessions_total", {"protocol": "smtp"}) == 0


# -- configuration ---------------------------------------------------------------------------
def test_metrics_listen_is_off_by_default_and_takes_host_port():
    assert load_config().metrics.listen is None
    assert load_config(overrides={"metrics": {"listen": "127.0.0.1:9154"}}).metrics.listen == ("127.0.0.1", 9154)
    assert load_config(overrides={"metrics": {"listen": "[::1]:0"}}).metrics.listen == ("::1", 0)


@pytest.mark.parametrize("address", ["0.0.0.0:9154", "[::]:9154", "192.0.2.1:9154", "mail.example.test:9154"])
def test_a_non_loopback_metrics_address_needs_allow_remote(address):
    with pytest.raises(ConfigError, match=r"\[metrics\] listen: .* is not a loopback address.*allow_remote = yes"):
        load_config(overrides={"metrics": {"listen": address}})
    conf = load_config(overrides={"metrics": {"listen": address, "allow_remote": "yes"}})
    assert conf.metrics.allow_remote is True


def test_a_bad_metrics_address_is_a_config_error():
    with pytest.raises(ConfigError, match=r"\[metrics\] listen"):
        load_config(overrides={"metrics": {"listen": "no-port-here"}})
