"""End to end: the rspamd content filter (inbound/rspamd.py) through a MailService on
port 0 and a REAL rspamd started here on loopback: GTUBE refused, clean mail delivered
with its score, headers added and subjects rewritten into Junk, authenticated sessions
not scanned, rspamd down, reload and the metrics.

The real rspamd runs from a minimal config of its own (no /etc/rspamd, no Lua rules,
no redis, no controller): one normal worker on a free loopback port, its DNS a server
on loopback (nothing leaves the machine), the GTUBE test patterns enabled.  rspamd
3.x knows four of them: XJS... (reject), YJS... (add header), ZJS... (rewrite subject),
AJS... (no action); "soft reject" and "greylist" have none and are covered by the fake
(test_rspamd.py)."""

import logging
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import urllib.request

import pytest

from components import component_missing
from dns_server import DNSServer
from mx_helpers import MXServices, sample, scrape
from smtp_helpers import inbox, make_users_file
from waiting import wait_for


GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
GTUBE_ADD_HEADER = "Y" + GTUBE[1:]
GTUBE_REWRITE_SUBJECT = "Z" + GTUBE[1:]


# -- a real rspamd ---------------------------------------------------------------------------
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


RSPAMD_CONF = """
options {{
  pidfile = "{dir}/rspamd.pid";
  dbdir = "{dir}";
  tempdir = "{dir}";
  filters = "";
  # only the test patterns decide: GTUBE and its variants
  enable_test_patterns = true;
  # the full public suffix list takes seconds to compile; a few are plenty here
  url_tld = "{dir}/tld.dat";
  local_addrs = [];
  dns {{ nameserver = ["127.0.0.1:{dns_port}"]; timeout = 1s; retransmits = 1; }}
}}
logging {{ type = "file"; filename = "{dir}/rspamd.log"; level = "info"; }}
actions {{ reject = 15; add_header = 6; greylist = 4; }}
worker "normal" {{ bind_socket = "127.0.0.1:{port}"; count = 1; }}
"""


@pytest.fixture(scope="module")
def dns():
    with DNSServer("") as server:
        yield server


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory, dns):
    """(host, port) of a real rspamd, started and stopped here."""
    binary = shutil.which("rspamd")
    if binary is None:
        component_missing("rspamd is not installed (Debian package rspamd)")
    folder = tmp_path_factory.mktemp("rspamd")
    port = _free_port()
    (folder / "tld.dat").write_text("com\norg\nnet\ntest\n")
    (folder / "rspamd.conf").write_text(RSPAMD_CONF.format(dir=folder, port=port, dns_port=dns.port))
    command = [binary, "-f", "-c", str(folder / "rspamd.conf")]
    if os.geteuid() == 0:
        command += ["-u", "root", "-g", "root"]     # rspamd drops privileges to a user it must be told
    out = open(folder / "stdout.txt", "wb")
    process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def pong():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                return r.read().strip() == b"pong"
        except OSError:
            return process.poll() is not None       # stop waiting: it died

    try:
        if not wait_for(pong, timeout=60, interval=0.1) or process.poll() is not None:
            log = (folder / "rspamd.log").read_text() if (folder / "rspamd.log").exists() else ""
            component_missing(f"rspamd did not start: {(folder / 'stdout.txt').read_text()[-2000:]}"
                              f"{log[-2000:]}")
        yield "127.0.0.1", port
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # its own group: the workers it forked too
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        out.close()


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    return make_users_file(tmp_path_factory.mktemp("rspamd-users"))


@pytest.fixture
def start(tmp_path, users, thread_guard):
    services = MXServices(tmp_path, users)

    def start(address, **spam):
        return services(spam={"rspamd": f"{address[0]}:{address[1]}", **spam})

    yield start
    services.stop_all()


def send(svc, text, subject="hello", login=False):
    sender = "bob@example.test" if login else "x@far.test"
    body = (f"From: {sender}\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@far.test>\r\n\r\n{text}\r\n").encode()
    with smtplib.SMTP("127.0.0.1", svc.port("smtp"), local_hostname="client.far.test", timeout=30) as s:
        if login:
            s.login("bob@example.test", "bob-pw")
        return s.sendmail(sender, ["alice@example.test"], body)


def junk(data_dir):
    new = os.path.join(data_dir, "mail", "example.test", "alice", ".Junk", "new")
    return [open(os.path.join(new, n), "rb").read() for n in sorted(os.listdir(new))] \
        if os.path.isdir(new) else []


def test_gtube_is_refused(start, rspamd, caplog):
    svc = start(rspamd)
    with caplog.at_level(logging.INFO, "clevermail"):
        with pytest.raises(smtplib.SMTPDataError) as info:
            send(svc, GTUBE)
    assert (info.value.smtp_code, info.value.smtp_error) == \
        (550, b"5.7.1 Message refused as spam: score 15.00 / 15.00")
    assert inbox(svc.data_dir, "alice@example.test") == [] and junk(svc.data_dir) == []
    assert "refused from=<x@far.test>: rspamd reject" in caplog.text


def test_clean_mail_is_delivered_with_its_score(start, rspamd):
    svc = start(rspamd)
    assert send(svc, "Hello Alice, lunch tomorrow?") == {}
    [raw] = inbox(svc.data_dir, "alice@example.test")
    assert b"\nX-Spam-Score: " in raw and b"\nX-Spam: " not in raw
    assert b"lunch tomorrow" in raw


def test_add_header_and_rewrite_subject_go_to_junk(start, rspamd):
    svc = start(rspamd)
    assert send(svc, GTUBE_ADD_HEADER, subject="first") == {}
    assert send(svc, GTUBE_REWRITE_SUBJECT, subject="second") == {}
    assert inbox(svc.data_dir, "alice@example.test") == []
    first, second = sorted(junk(svc.data_dir), key=lambda raw: b"<second@" in raw)
    assert b"X-Spam: Yes\n" in first and b"X-Spam-Score: 6.00 / 15.00\n" in first
    assert b"\nSubject: first\n" in first
    assert b"X-Spam: Yes\n" in second and b"\nSubject: *** SPAM *** second\n" in second


def test_authenticated_sessions_are_not_scanned(start, rspamd):
    svc = start(rspamd)
    assert send(svc, GTUBE, login=True) == {}
    [raw] = inbox(svc.data_dir, "alice@example.test")
    assert b"X-Spam" not in raw


def test_rspamd_down_fails_open_or_tempfails(start, caplog):
    down = ("127.0.0.1", _free_port())          # nothing listens there
    svc = start(down)
    with caplog.at_level(logging.WARNING, "clevermail"):
        assert send(svc, GTUBE) == {}
    [raw] = inbox(svc.data_dir, "alice@example.test")
    assert b"X-Spam" not in raw
    assert "rspamd unavailable, message accepted unscanned" in caplog.text
    svc.stop()
    svc = start(down, rspamd_fail="tempfail")
    with pytest.raises(smtplib.SMTPDataError) as info:
        send(svc, "hello")
    assert (info.value.smtp_code, info.value.smtp_error[:5]) == (451, b"4.7.1")


def test_reload_points_the_filter_elsewhere_and_turns_it_off(start, rspamd, tmp_path):
    make_config = __import__("conftest").make_config
    svc = start(("127.0.0.1", _free_port()))            # rspamd down, fail open
    assert send(svc, GTUBE, subject="first") == {}
    notes = svc.reload(make_config(tmp_path, spam={"rspamd": f"{rspamd[0]}:{rspamd[1]}"},
                                   pop3={"listen": []}, imap={"listen": []}))
    assert notes == []
    with pytest.raises(smtplib.SMTPDataError) as info:
        send(svc, GTUBE, subject="second")
    assert info.value.smtp_code == 550
    svc.reload(make_config(tmp_path, spam={"rspamd": ""}, pop3={"listen": []}, imap={"listen": []}))
    assert send(svc, GTUBE, subject="third") == {}
    assert len(inbox(svc.data_dir, "alice@example.test")) == 2


def test_metrics_count_each_action_the_seconds_and_failures(tmp_path, users, rspamd, dns, thread_guard):
    """GTUBE and its variants through the real rspamd, then rspamd down: /metrics shows
    each action, the scans' seconds, the failures and what followed from them, and
    the inbound checks' results and verdicts of the same messages."""
    services = MXServices(tmp_path, users)
    try:
        svc = services(spam={"rspamd": f"{rspamd[0]}:{rspamd[1]}"}, metrics={"listen": "127.0.0.1:0"},
                       inbound={"checks": True}, relay={"nameservers": [f"127.0.0.1:{dns.port}"]})
        with pytest.raises(smtplib.SMTPDataError):
            send(svc, GTUBE, subject="first")
        assert send(svc, GTUBE_ADD_HEADER, subject="second") == {}
        assert send(svc, "Hello Alice, lunch tomorrow?", subject="third") == {}
        samples = scrape(svc)
        assert sample(samples, "clevermail_rspamd_scans_total", action="reject") == 1
        assert sample(samples, "clevermail_rspamd_scans_total", action="add_header") == 1
        assert sample(samples, "clevermail_rspamd_scans_total", action="no_action") == 1
        assert sample(samples, "clevermail_rspamd_scans_total", action="greylist") == 0
        assert sample(samples, "clevermail_rspamd_seconds_count") == 3
        assert sample(samples, "clevermail_rspamd_seconds_sum") > 0
        # the checks ran before rspamd, for every message (far.test publishes nothing)
        assert sample(samples, "clevermail_inbound_auth_results_total", method="spf", result="none") == 3
        assert sample(samples, "clevermail_inbound_auth_results_total", method="dkim", result="none") == 3
        assert sample(samples, "clevermail_inbound_auth_results_total", method="dmarc", result="none") == 3
        assert sample(samples, "clevermail_inbound_verdicts_total", verdict="accept") == 3
        assert sample(samples, "clevermail_smtp_refused_total", reason="policy") == 1
        svc.stop()                  # the next one uses the same data dir

        down = ("127.0.0.1", _free_port())
        for fail in ("open", "tempfail"):
            svc = services(spam={"rspamd": f"{down[0]}:{down[1]}", "rspamd_fail": fail},
                           metrics={"listen": "127.0.0.1:0"})
            if fail == "open":
                assert send(svc, "hello") == {}
            else:
                with pytest.raises(smtplib.SMTPDataError):
                    send(svc, "hello")
            samples = scrape(svc)
            outcome = "accepted_unscanned" if fail == "open" else "tempfail"
            assert sample(samples, "clevermail_rspamd_failures_total", reason="unreachable",
                          outcome=outcome) == 1
            assert sample(samples, "clevermail_rspamd_seconds_count") == 0
            svc.stop()                  # the next one uses the same data dir
    finally:
        services.stop_all()
