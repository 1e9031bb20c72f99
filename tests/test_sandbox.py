"""`clevermail sandbox` end to end: a real SandboxService on loopback ports with stdlib
clients (smtplib, imaplib, poplib), the faults, the never-relay rule against a DNS
server and a sink that would take the mail, and the command as a process."""

import email
import imaplib
import os
import poplib
import signal
import smtplib
import ssl
import subprocess
import sys

import pytest

from clevermail.relay.mx import make_resolver
from clevermail.sandbox.faults import FaultError, Faults
from clevermail.sandbox.service import Sandbox
from dns_server import DNSServer
from relay_sink import Sink

pytestmark = pytest.mark.e2e

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def box(tmp_path):
    with Sandbox(str(tmp_path / "sandbox")) as sandbox:
        yield sandbox


def send(box, sender, rcpts, data, port="smtp", login=None, tls=True):
    with smtplib.SMTP("127.0.0.1", box.port(port), timeout=10) as smtp:
        if tls:
            smtp.starttls(context=ssl.create_default_context(cafile=box.cafile))
        if login:
            smtp.login(*login)
        return smtp.sendmail(sender, rcpts, data)


def imap_inbox(box, user, password="anything"):
    imap = imaplib.IMAP4("127.0.0.1", box.port("imap"), timeout=10)
    try:
        imap.starttls(ssl.create_default_context(cafile=box.cafile))
        imap.login(user, password)
        imap.select("INBOX")
        _, data = imap.search(None, "ALL")
        out = []
        for num in data[0].split():
            _, parts = imap.fetch(num, "(RFC822)")
            out.append(email.message_from_bytes(parts[0][1]))
        return out
    finally:
        imap.logout()


def test_every_recipient_of_every_domain_gets_its_own_mailbox(box):
    refused = send(box, "app@myapp.test", ["bob@example.com", "Carol+orders@Other.Test"],
                   b"From: app@myapp.test\r\nSubject: welcome\r\n\r\nHello.\r\n")
    assert refused == {}
    (bob,) = imap_inbox(box, "bob@example.com", "any password")
    (carol,) = imap_inbox(box, "carol@other.test", "another one")
    assert bob["Subject"] == carol["Subject"] == "welcome"
    assert box.mailboxes.addresses() == ["bob@example.com", "carol@other.test"]
    # POP3 reads the same mailbox, any password
    pop = poplib.POP3("127.0.0.1", box.port("pop3"), timeout=10)
    try:
        pop.stls(ssl.create_default_context(cafile=box.cafile))
        pop.user("bob@example.com")
        pop.pass_("whatever")
        _, lines, _ = pop.retr(1)
        assert b"Subject: welcome" in lines
    finally:
        pop.quit()


def test_submission_takes_any_login_and_any_sender(box):
    send(box, "noreply@shop.example", ["dave@customer.example"],
         b"From: Shop <noreply@shop.example>\r\nSubject: order 7\r\n\r\nThanks.\r\n",
         port="submission", login=("apikey", "secret"))
    (msg,) = imap_inbox(box, "dave@customer.example")
    assert msg["Subject"] == "order 7"
    assert msg["Message-ID"]            # submission completes the message (RFC 6409 8)


def test_a_real_account_needs_its_password(box):
    box.add_account("erin@example.com", "right password")
    with pytest.raises(imaplib.IMAP4.error):
        imap_inbox(box, "erin@example.com", "wrong password")
    assert imap_inbox(box, "erin@example.com", "right password") == []
    with pytest.raises(smtplib.SMTPAuthenticationError):
        send(box, "erin@example.com", ["x@example.com"], b"Subject: x\r\n\r\nx\r\n",
             port="submission", login=("erin@example.com", "wrong password"))


def test_never_relays_even_with_a_resolver_that_would_answer(tmp_path):
    """Mail to an outside domain from an authenticated client (which a production
    server relays) stays in the sandbox: the MX of external.test is a sink on loopback
    that would accept it, and the DNS server would name it."""
    zone = "external.test. 300 IN MX 10 mx.external.test.\nmx.external.test. 300 IN A 127.0.0.1\n"
    with Sink() as sink, DNSServer(zone) as dns:
        overrides = {"relay": {"mx_port": sink.port, "interval": 0.1,
                               "nameservers": [f"127.0.0.1:{dns.port}"]}}
        resolver = make_resolver([("127.0.0.1", dns.port)])
        with Sandbox(str(tmp_path / "sb"), overrides=overrides, resolver=resolver) as box:
            send(box, "me@here.test", ["someone@external.test"], b"Subject: out\r\n\r\nx\r\n",
                 port="submission", login=("me@here.test", "pw"))
            (msg,) = imap_inbox(box, "someone@external.test")
            assert msg["Subject"] == "out"
            assert box.service.queue.list() == []
            queue_dir = os.path.join(box.data_dir, "queue")
            assert [n for n in os.listdir(queue_dir) if n.endswith((".eml", ".json"))] == []
        assert sink.messages == [] and sink.sessions == []
        assert dns.queries == []
        # ...though both were there to take it
        assert [str(r.exchange) for r in resolver.resolve("external.test", "MX")] == ["mx.external.test."]


def test_fail_rcpt_refuses_matching_addresses_with_its_code(tmp_path):
    faults = Faults.from_options(["*@bounce.test=550", "full@*=452"])
    with Sandbox(str(tmp_path / "sb"), faults=faults) as box:
        with smtplib.SMTP("127.0.0.1", box.port("smtp"), timeout=10) as smtp:
            smtp.ehlo()
            smtp.mail("app@myapp.test")
            assert smtp.rcpt("Someone@Bounce.test")[0] == 550
            code, text = smtp.rcpt("full@example.com")
            assert (code, text[:5]) == (452, b"4.2.2")
            assert smtp.rcpt("ok@example.com")[0] == 250
            smtp.data(b"Subject: partial\r\n\r\nx\r\n")
        assert box.mailboxes.addresses() == ["ok@example.com"]
        # faults can change while it runs (the pytest plugin does): now none
        box.faults = Faults()
        assert send(box, "a@b.test", ["someone@bounce.test"], b"Subject: y\r\n\r\ny\r\n") == {}


def test_fail_rcpt_code_421_closes_the_connection(tmp_path):
    with Sandbox(str(tmp_path / "sb"), faults=Faults.from_options(["*=421"])) as box:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            send(box, "a@b.test", ["x@y.test"], b"Subject: z\r\n\r\nz\r\n", tls=False)
        assert info.value.recipients["x@y.test"][0] == 421


def test_drop_after_data_closes_before_the_reply_and_delivers_nothing(tmp_path):
    with Sandbox(str(tmp_path / "sb"), faults=Faults(drop_after_data=True)) as box:
        with pytest.raises(smtplib.SMTPServerDisconnected):
            send(box, "a@b.test", ["victim@example.com"], b"Subject: lost\r\n\r\nx\r\n")
        # BDAT LAST is the end of a message too
        with smtplib.SMTP("127.0.0.1", box.port("smtp"), timeout=10) as smtp:
            smtp.ehlo()
            smtp.mail("a@b.test")
            smtp.rcpt("victim@example.com")
            smtp.send(b"BDAT 12 LAST\r\nSubject: b\r\n")
            with pytest.raises(smtplib.SMTPServerDisconnected):
                smtp.getreply()
        assert box.mailboxes.messages("victim@example.com") == []
        box.faults = Faults()
        send(box, "a@b.test", ["victim@example.com"], b"Subject: kept\r\n\r\nx\r\n")
        assert [m["subject"] for m in box.mailboxes.messages("victim@example.com")] == ["kept"]


def test_delay_holds_every_reply(tmp_path):
    """A client whose timeout is shorter than the delay never sees the greeting."""
    with Sandbox(str(tmp_path / "sb"), faults=Faults(delay=3)) as box:
        with pytest.raises((TimeoutError, OSError)):
            smtplib.SMTP("127.0.0.1", box.port("smtp"), timeout=0.3)
        box.faults = Faults()
        assert send(box, "a@b.test", ["c@d.test"], b"Subject: d\r\n\r\nd\r\n") == {}


@pytest.mark.parametrize("text, why", [
    ("*@x.test", "PATTERN=CODE"), ("=550", "PATTERN=CODE"), ("*@x.test=250", "4xx or 5xx"),
    ("*@x.test=55", "4xx or 5xx"), ("*@x.test=abc", "4xx or 5xx")])
def test_fail_rcpt_option_errors(text, why):
    with pytest.raises(FaultError, match=why):
        Faults.from_options([text])


def test_negative_delay_is_refused():
    with pytest.raises(FaultError):
        Faults.from_options(delay=-1)


def test_temporary_data_dir_is_removed_at_stop():
    box = Sandbox().start()
    data = box.data_dir
    assert os.path.isfile(os.path.join(data, "sandbox.ini"))
    box.stop()
    assert not os.path.exists(data)


def test_the_command_prints_settings_serves_and_stops_on_sigterm(tmp_path):
    data = tmp_path / "kept"
    proc = subprocess.Popen(
        [sys.executable, "-m", "clevermail", "sandbox", "--data", str(data), "--smtp-port", "0",
         "--submission-port", "0", "--imap-port", "0", "--pop3-port", "0", "--api-port", "0",
         "--fail-rcpt", "*@bounce.test=550"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    try:
        lines = []
        while not lines or lines[-1].strip() != "Python:":
            line = proc.stdout.readline()
            assert line, f"the sandbox ended early: {''.join(lines)}"
            lines.append(line)
        text = "".join(lines)
        ports = {}
        for line in lines:
            words = line.split()
            if len(words) > 1 and words[0] in ("SMTP", "IMAP") and ":" in words[1]:
                ports[words[0]] = int(words[1].rpartition(":")[2])
        assert "fault       RCPT TO matching *@bounce.test -> 550 5.1.1" in text
        assert str(data / "tls" / "cert.pem") in text
        with smtplib.SMTP("127.0.0.1", ports["SMTP"], timeout=10) as smtp:
            smtp.sendmail("a@b.test", ["cli@example.com"], b"Subject: via cli\r\n\r\nx\r\n")
        imap = imaplib.IMAP4("127.0.0.1", ports["IMAP"], timeout=10)
        imap.login("cli@example.com", "x")
        assert imap.select("INBOX")[1] == [b"1"]
        imap.logout()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert (data / "sandbox.ini").is_file()     # --data is kept


def test_the_command_refuses_a_host_that_is_not_loopback():
    out = subprocess.run([sys.executable, "-m", "clevermail", "sandbox", "--host", "0.0.0.0"],
                         cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 1
    assert "loopback only" in out.stderr


def test_the_pytest_plugin_is_inert_until_its_fixtures_are_used():
    """pytest imports the plugin for every run where CleverMail is installed: that
    import must not bring in the server, let alone start it."""
    code = ("import sys, threading, clevermail.pytest_plugin\n"
            "loaded = sorted(m for m in sys.modules if m.startswith('clevermail.') and m != 'clevermail.pytest_plugin')\n"
            "print(loaded, threading.active_count())\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["[]", "1"], out.stderr


def test_the_plugin_is_registered_as_a_pytest11_entry_point():
    from configparser import ConfigParser
    cfg = ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    points = [line.split("=") for line in cfg["options.entry_points"]["pytest11"].split("\n") if line.strip()]
    assert [(k.strip(), v.strip()) for k, v in points] == [("clevermail", "clevermail.pytest_plugin")]
