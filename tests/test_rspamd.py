"""Tests for the rspamd content filter (inbound/rspamd.py): the reply parsing and each
action's outcome against a fake rspamd (stdlib http.server on port 0), then end to end
through a MailService on port 0 and a REAL rspamd started here on loopback.

The real rspamd runs from a minimal config of its own (no /etc/rspamd, no Lua rules,
no redis, no controller): one normal worker on a free loopback port, its DNS a server
on loopback (nothing leaves the machine), the GTUBE test patterns enabled.  rspamd
3.x knows four of them: XJS... (reject), YJS... (add header), ZJS... (rewrite subject),
AJS... (no action); "soft reject" and "greylist" have none and are covered by the fake.
"""

import email.header
import http.server
import json
import logging
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import threading
import urllib.request

import pytest

from clevermail.config import ConfigError
from clevermail.inbound.rspamd import (ContentFilter, RspamdClient, RspamdError, parse_reply,
                                       rewrite_subject)
from components import component_missing
from dns_server import DNSServer
from mx_helpers import MXServices, sample, scrape
from smtp_helpers import inbox, make_users_file
from waiting import wait_for

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
GTUBE_ADD_HEADER = "Y" + GTUBE[1:]
GTUBE_REWRITE_SUBJECT = "Z" + GTUBE[1:]

MESSAGE = (b"From: x@far.test\r\nTo: alice@example.test\r\nSubject: hello\r\n"
           b"X-Spam: No\r\nX-Spam-Score: -100\r\n\r\nbody\r\n")


# -- a fake rspamd ---------------------------------------------------------------------------
class FakeRspamd:
    """Answers every POST /checkv2 with `reply` (a dict, or bytes as they are) and
    `status`; keeps the requests it saw as (headers list, body)."""

    def __init__(self, reply, status=200):
        self.reply, self.status, self.requests = reply, status, []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                fake.requests.append((self.path, self.headers.items(), body))
                data = fake.reply if isinstance(fake.reply, bytes) else json.dumps(fake.reply).encode()
                self.send_response(fake.status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def scan(reply, fail="open", status=200):
    with FakeRspamd(reply, status) as fake:
        content = ContentFilter(RspamdClient("127.0.0.1", fake.port, timeout=5), fail)
        return content.check(MESSAGE, ip="192.0.2.1", helo="client.far.test", sender="x@far.test",
                             recipients=["alice@example.test"], queue_id="Q1", hostname="mx.test")


def head(body):
    return body.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def test_request_carries_the_envelope(thread_guard):
    with FakeRspamd({"action": "no action", "score": 0.5, "required_score": 15}) as fake:
        RspamdClient("127.0.0.1", fake.port).check(
            MESSAGE, ip="192.0.2.1", helo="client.far.test", sender="x@far.test",
            recipients=["alice@example.test", "bob@example.test"], queue_id="Q1",
            user="alice@example.test", hostname="mx.test")
        RspamdClient("127.0.0.1", fake.port).check(
            MESSAGE, ip="192.0.2.1", helo="bad\r\nInjected: yes", sender="", recipients=["a@b"])
    [(path, headers, body), (_, second, _)] = fake.requests
    assert path == "/checkv2" and body == MESSAGE
    assert ("IP", "192.0.2.1") in headers and ("Helo", "client.far.test") in headers
    assert ("From", "x@far.test") in headers and ("Queue-Id", "Q1") in headers
    assert [v for k, v in headers if k == "Rcpt"] == ["alice@example.test", "bob@example.test"]
    assert ("User", "alice@example.test") in headers and ("Hostname", "mx.test") in headers
    assert "User" not in dict(second) and "Injected" not in dict(second)
    assert ("Helo", "bad Injected: yes") in second


def test_reject_is_550(thread_guard):
    outcome = scan({"action": "reject", "score": 20.5, "required_score": 15, "symbols": {"GTUBE": {}}})
    assert outcome.refusal.wire == b"550 5.7.1 Message refused as spam: score 20.50 / 15.00\r\n"
    assert outcome.reason.startswith("rspamd reject, score 20.50 / 15.00")
    assert outcome.scan.symbols == ("GTUBE",)


@pytest.mark.parametrize("action", ["soft reject", "greylist"])
def test_soft_reject_and_greylist_are_451(thread_guard, action):
    outcome = scan({"action": action, "score": 5, "required_score": 15})
    assert outcome.refusal.wire == \
        f"451 4.7.1 Message deferred by the content filter: {action}, try again later\r\n".encode()


def test_add_header_labels_and_goes_to_junk(thread_guard):
    outcome = scan({"action": "add header", "score": 7, "required_score": 15})
    assert outcome.refusal is None and outcome.folder == "Junk"
    fields = head(outcome.body)
    assert fields[:2] == [b"X-Spam: Yes", b"X-Spam-Score: 7.00 / 15.00"]
    # the sender's own labels are gone
    assert b"X-Spam: No" not in fields and b"X-Spam-Score: -100" not in fields
    assert b"Subject: hello" in fields and outcome.body.endswith(b"\r\n\r\nbody\r\n")


def test_rewrite_subject(thread_guard):
    outcome = scan({"action": "rewrite subject", "score": 9, "required_score": 15,
                    "subject": "*** SPAM *** hello"})
    assert outcome.folder == "Junk"
    fields = head(outcome.body)
    assert b"X-Spam: Yes" in fields and b"Subject: *** SPAM *** hello" in fields
    assert b"Subject: hello" not in fields


def test_no_action_delivers_with_the_score(thread_guard):
    outcome = scan({"action": "no action", "score": -1.25, "required_score": 15})
    assert outcome.refusal is None and outcome.folder is None and outcome.reason == ""
    assert head(outcome.body)[0] == b"X-Spam-Score: -1.25 / 15.00"
    assert b"X-Spam: " not in outcome.body


@pytest.mark.parametrize("reply, status", [(b"not json", 200), (b"{}", 200), (b'{"action": 3}', 200),
                                           ({"action": "reject"}, 500)])
def test_bad_replies_are_errors(thread_guard, caplog, reply, status):
    with caplog.at_level(logging.WARNING, "clevermail.inbound"):
        outcome = scan(reply, status=status)
    assert outcome.refusal is None and outcome.body == MESSAGE      # fail open: unscanned
    assert "rspamd unavailable" in caplog.text
    assert scan(reply, fail="tempfail", status=status).refusal.wire.startswith(b"451 4.7.1 ")


def test_parse_reply():
    parsed = parse_reply(b'{"action": "rewrite subject", "score": 6, "required_score": 15.0,'
                         b' "subject": "[SPAM] x", "symbols": {"B": {}, "A": {}},'
                         b' "messages": {"smtp_message": "go away"}}')
    assert (parsed.action, parsed.score, parsed.required_score) == ("rewrite subject", 6.0, 15.0)
    assert (parsed.symbols, parsed.subject, parsed.message) == (("A", "B"), "[SPAM] x", "go away")
    with pytest.raises(RspamdError):
        parse_reply(b'{"action": "no action", "score": "lots"}')


def test_rewrite_subject_folded_and_non_ascii():
    body = b"Subject: a\r\n long one\r\nTo: b\r\n\r\nSubject: in the body\r\n"
    out = rewrite_subject(body, "[SPAM] caf\u00e9")
    fields = head(out)
    assert fields[0] == b"To: b" and len(fields) == 2 and b"long one" not in out
    encoded = fields[1].decode("ascii").removeprefix("Subject: ")
    assert str(email.header.make_header(email.header.decode_header(encoded))) == "[SPAM] caf\u00e9"
    assert out.endswith(b"Subject: in the body\r\n")


def test_slow_rspamd_times_out(thread_guard):
    with socket.socket() as listener:       # accepts (the kernel's backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = RspamdClient("127.0.0.1", listener.getsockname()[1], timeout=0.3)
        with pytest.raises(RspamdError):
            client.check(MESSAGE, ip="192.0.2.1", helo="h", sender="", recipients=["a@b"])


def test_config_keys(tmp_path):
    make_config = __import__("conftest").make_config
    spam = make_config(tmp_path).spam
    assert (spam.rspamd, spam.rspamd_timeout, spam.rspamd_fail) == (None, 10.0, "open")
    spam = make_config(tmp_path, spam={"rspamd": "127.0.0.1:11333", "rspamd_timeout": "2.5",
                                       "rspamd_fail": "tempfail"}).spam
    assert (spam.rspamd, spam.rspamd_timeout, spam.rspamd_fail) == (("127.0.0.1", 11333), 2.5, "tempfail")
    for bad in ({"rspamd_fail": "maybe"}, {"rspamd": "127.0.0.1"}, {"rspamd_timeout": "0"}):
        with pytest.raises(ConfigError, match=r"\[spam\] rspamd"):
            make_config(tmp_path, spam=bad)


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
