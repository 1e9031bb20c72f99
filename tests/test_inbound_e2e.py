"""Inbound authentication end to end: a MailService with [inbound] checks on, its DNS a
real server on loopback (SPF, DKIM keys, DMARC records), messages from smtplib on the
MX port, signed with dkimpy in the test.  Every policy outcome with its reply code and
the Authentication-Results field, which must parse as RFC 8601 says."""

import os
import re
import smtplib

import dkim
import pytest

from dns_server import DNSServer
from mx_helpers import MXServices, dkim_txt, rsa_test_key, sample, scrape
from smtp_helpers import inbox, make_users_file

pytestmark = pytest.mark.e2e

HOST = "mail.example.test"          # the authserv-id: conftest's hostname


@pytest.fixture(scope="module")
def key():
    return rsa_test_key()


@pytest.fixture(scope="module")
def zone(key):
    return f"""
strict.test.               300 IN TXT "v=spf1 ip4:192.0.2.1 -all"
_dmarc.strict.test.        300 IN TXT "v=DMARC1; p=reject; rua=mailto:d@strict.test"
sel._domainkey.strict.test. 300 IN TXT {dkim_txt(key[1])}
careful.test.              300 IN TXT "v=spf1 -all"
_dmarc.careful.test.       300 IN TXT "v=DMARC1; p=quarantine"
friendly.test.             300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"
lax.test.                  300 IN TXT "v=spf1 -all"
"""


@pytest.fixture(scope="module")
def dns(zone):
    with DNSServer(zone, servfail={"_dmarc.flaky.test."}) as server:
        yield server


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    return make_users_file(tmp_path_factory.mktemp("inbound-users"))


@pytest.fixture
def start(tmp_path, dns, users):
    services = MXServices(tmp_path, users)

    def start(**inbound):
        return services(inbound={"checks": True, **inbound},
                        relay={"nameservers": [f"127.0.0.1:{dns.port}"]},
                        metrics={"listen": "127.0.0.1:0"})

    yield start
    services.stop_all()


def send(svc, sender, body, rcpt="alice@example.test"):
    with smtplib.SMTP("127.0.0.1", svc.port("smtp"), local_hostname="client.example", timeout=15) as s:
        return s.sendmail(sender, [rcpt], body)


def message(from_, subject="hello", extra=b""):
    return (f"From: {from_}\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
            f"Date: Wed, 02 Dec 2026 12:00:00 +0000\r\nMessage-ID: <{subject}@x>\r\n").encode() \
        + extra + b"\r\nbody\r\n"


def signed(key, from_, domain="strict.test"):
    msg = message(from_, "signed")
    return dkim.sign(msg, b"sel", domain.encode(), key[0], include_headers=[b"from", b"to", b"subject"]) + msg


AR_RESULT = re.compile(r"^(spf|dkim|dmarc|arc)=(pass|fail|softfail|neutral|none|permerror|temperror|policy)"
                       r"(?: \([^()]*\))?(?: [a-z]+\.[a-z]+=(?:[^\s;\"]+|\"[^\"]*\"))*$")


def auth_results(raw):
    """The one Authentication-Results field of ours, parsed: [(method, result, text)].
    `raw` as on disk (LF line ends) or on the wire."""
    raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    fields = re.findall(r"^Authentication-Results:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", head,
                        re.M | re.I)
    ours = [f for f in fields if f.strip().split(";", 1)[0].strip() == HOST]
    assert len(ours) == 1, fields
    parts = [p.strip() for p in re.sub(r"\r\n[ \t]", " ", ours[0]).split(";")]
    assert parts[0] == HOST
    out = []
    for part in parts[1:]:
        assert AR_RESULT.match(part), part        # RFC 8601 2.2 resinfo syntax
        method, _, rest = part.partition("=")
        out.append((method, rest.split()[0], part))
    return out


def test_forged_dmarc_reject_domain_is_refused(start):
    svc = start()
    with pytest.raises(smtplib.SMTPDataError) as info:
        send(svc, "boss@strict.test", message("Boss <boss@strict.test>"))
    assert info.value.smtp_code == 550
    assert info.value.smtp_error == b"5.7.1 Message refused: DMARC policy of strict.test"
    assert inbox(svc.data_dir, "alice@example.test") == []
    samples = scrape(svc)
    assert sample(samples, "clevermail_inbound_auth_results_total", method="dmarc", result="fail") == 1
    assert sample(samples, "clevermail_inbound_verdicts_total", verdict="reject") == 1
    assert sample(samples, "clevermail_inbound_verdicts_total", verdict="accept") == 0


def test_signed_mail_passes_dkim_and_dmarc(start, key):
    svc = start()
    assert send(svc, "boss@strict.test", signed(key, "boss@strict.test")) == {}
    [raw] = inbox(svc.data_dir, "alice@example.test")
    results = auth_results(raw)
    assert ("spf", "fail") in [(m, r) for m, r, _ in results]
    [dkim_result] = [text for m, _, text in results if m == "dkim"]
    assert dkim_result == "dkim=pass header.d=strict.test header.s=sel header.a=rsa-sha256"
    assert "dmarc=pass (p=reject) header.from=strict.test" in [t for _, _, t in results]
    samples = scrape(svc)
    assert sample(samples, "clevermail_inbound_auth_results_total", method="dkim", result="pass") == 1
    assert sample(samples, "clevermail_inbound_auth_results_total", method="dmarc", result="pass") == 1
    assert sample(samples, "clevermail_inbound_auth_results_total", method="spf", result="fail") == 1
    assert sample(samples, "clevermail_inbound_verdicts_total", verdict="accept") == 1


def test_tampered_signature_fails(start, key):
    svc = start(dmarc_reject="tag")
    body = signed(key, "boss@strict.test").replace(b"body", b"b0dy")
    assert send(svc, "boss@strict.test", body) == {}
    [raw] = inbox(svc.data_dir, "alice@example.test")
    results = {m: r for m, r, _ in auth_results(raw)}
    assert results["dkim"] == "fail" and results["dmarc"] == "fail"


def test_quarantine_goes_to_junk(start):
    svc = start()
    assert send(svc, "x@careful.test", message("x@careful.test")) == {}
    assert inbox(svc.data_dir, "alice@example.test") == []
    junk = os.path.join(svc.data_dir, "mail", "example.test", "alice", ".Junk", "new")
    [name] = os.listdir(junk)
    raw = open(os.path.join(junk, name), "rb").read()
    assert ("dmarc", "fail") in [(m, r) for m, r, _ in auth_results(raw)]
    assert sample(scrape(svc), "clevermail_inbound_verdicts_total", verdict="quarantine") == 1


def test_spf_pass_without_dmarc_and_spf_fail_tagged_by_default(start):
    svc = start()
    assert send(svc, "a@friendly.test", message("a@friendly.test")) == {}
    assert send(svc, "a@lax.test", message("a@lax.test", "second")) == {}
    first, second = inbox(svc.data_dir, "alice@example.test")
    assert [(m, r) for m, r, _ in auth_results(first)][0] == ("spf", "pass")
    assert "spf=pass smtp.mailfrom=a@friendly.test" in [t for _, _, t in auth_results(first)]
    assert ("dmarc", "none") in [(m, r) for m, r, _ in auth_results(first)]
    assert [(m, r) for m, r, _ in auth_results(second)][0] == ("spf", "fail")


def test_spf_fail_refused_when_configured(start):
    svc = start(spf_fail="reject")
    with pytest.raises(smtplib.SMTPDataError) as info:
        send(svc, "a@lax.test", message("a@lax.test"))
    assert info.value.smtp_code == 550


def test_forged_authentication_results_of_ours_are_removed(start):
    svc = start()
    extra = (f"Authentication-Results: {HOST};\r\n dmarc=pass header.from=friendly.test\r\n"
             "Authentication-Results: other.example; spf=pass\r\n").encode()
    assert send(svc, "a@friendly.test", message("a@friendly.test", extra=extra)) == {}
    [raw] = inbox(svc.data_dir, "alice@example.test")
    assert b"dmarc=pass header.from=friendly.test" not in raw
    assert b"Authentication-Results: other.example; spf=pass" in raw
    auth_results(raw)                                   # exactly one of ours


def test_mail_claiming_a_local_domain_is_refused(start):
    svc = start()
    with pytest.raises(smtplib.SMTPDataError) as info:
        send(svc, "someone@friendly.test", message("Alice <alice@example.test>"))
    assert (info.value.smtp_code, info.value.smtp_error[:5]) == (550, b"5.7.1")


def test_dns_trouble_where_it_decides_is_451(start):
    svc = start()
    with pytest.raises(smtplib.SMTPDataError) as info:
        send(svc, "a@friendly.test", message("a@flaky.test"))
    assert (info.value.smtp_code, info.value.smtp_error[:5]) == (451, b"4.4.3")


def test_authenticated_clients_are_not_checked(start):
    svc = start()
    with smtplib.SMTP("127.0.0.1", svc.port("smtp"), local_hostname="client.example", timeout=15) as s:
        s.login("alice@example.test", "alice-pw")
        s.sendmail("alice@example.test", ["bob@example.test"], message("alice@example.test"))
    [raw] = inbox(svc.data_dir, "bob@example.test")
    assert b"Authentication-Results" not in raw
