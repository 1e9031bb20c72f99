"""Tests for clevermail doctor: the zone-file lines (doctor/records.py, pure), the
checks against a loopback DNS server (tests/dns_server.py) with a right zone and a
wrong one, and the command through click with a real config, keys and certificate."""

import datetime
import json
import shutil

import pytest
import trustme
from click.testing import CliRunner

from clevermail.cli import main
from clevermail.dkim.keys import KeyStore, key_dir
from clevermail.doctor import Doctor
from clevermail.doctor import records
from clevermail.inbound.dnsclient import DnsClient
from clevermail.relay import mta_sts
from clevermail.relay.mx import make_resolver
from dns_server import DNSServer

HOST = "mail.example.test"
DOMAIN = "example.test"
ED_RECORD = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
POLICY = "version: STSv1\nmode: enforce\nmx: mail.example.test\nmax_age: 86400\n"

RIGHT = f"""
{HOST}.                      300 IN A     127.0.0.1
1.0.0.127.in-addr.arpa.      300 IN PTR   {HOST}.
{DOMAIN}.                    300 IN MX    10 {HOST}.
{DOMAIN}.                    300 IN TXT   "v=spf1 mx -all"
{DOMAIN}.                    300 IN TXT   "google-site-verification=abc"
sel1._domainkey.{DOMAIN}.    300 IN TXT   "v=DKIM1; k=ed25519; " "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
_dmarc.{DOMAIN}.             300 IN TXT   "v=DMARC1; p=reject; rua=mailto:d@{DOMAIN}"
_mta-sts.{DOMAIN}.           300 IN TXT   "v=STSv1; id=20261203"
_smtp._tls.{DOMAIN}.         300 IN TXT   "v=TLSRPTv1; rua=mailto:tls@{DOMAIN}"
"""

WRONG = f"""
{HOST}.                      300 IN A     127.0.0.1
1.0.0.127.in-addr.arpa.      300 IN PTR   host-127-0-0-1.provider.test.
{DOMAIN}.                    300 IN MX    10 mx.elsewhere.test.
{DOMAIN}.                    300 IN TXT   "v=spf1 ip4:192.0.2.1 -all"
sel1._domainkey.{DOMAIN}.    300 IN TXT   "v=DKIM1; k=ed25519; p=AAAAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
_dmarc.{DOMAIN}.             300 IN TXT   "v=DMARC1; p=none"
_mta-sts.{DOMAIN}.           300 IN TXT   "v=STSv1; id=1"
_smtp._tls.{DOMAIN}.         300 IN TXT   "v=TLSRPTv1; rua=tls@{DOMAIN}"
"""


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


def cert_file(ca, tmp_path, name, days):
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = ca.issue_cert(name, not_before=now - datetime.timedelta(days=1),
                         not_after=now + datetime.timedelta(days=days))
    path = tmp_path / f"{name}-{days}.pem"
    cert.cert_chain_pems[0].write_to_path(str(path))
    return str(path)


def doctor(dns, **kw):
    args = dict(dkim=lambda d: [("sel1", ED_RECORD, "sel1 line", "signs")], deliverable=lambda a: None,
                mta_sts_fetch=lambda d: POLICY)
    args.update(kw)
    return Doctor(DnsClient(make_resolver([dns.nameserver], timeout=2, lifetime=4)), HOST, [DOMAIN],
                  **args)


def by_name(checks):
    out = {}
    for c in checks:
        out.setdefault(c.name, []).append(c)
    return out


# -- records ---------------------------------------------------------------------------------
def test_zone_lines():
    assert records.mx_line("example.com", "mail.example.com") == "example.com. 3600 IN MX 10 mail.example.com."
    assert records.spf_line("example.com", "mail.example.com", True) == 'example.com. 3600 IN TXT "v=spf1 mx -all"'
    assert records.spf_record("mail.example.com", False, ["192.0.2.7", "2001:db8::7"]) == (
        "v=spf1 a:mail.example.com ip4:192.0.2.7 ip6:2001:db8::7 -all")
    assert records.ptr_line("192.0.2.7", "mail.example.com") == (
        "7.2.0.192.in-addr.arpa. 3600 IN PTR mail.example.com.")
    assert records.address_line("mail.example.com", "2001:db8::7") == "mail.example.com. 3600 IN AAAA 2001:db8::7"
    assert records.dmarc_line("example.com") == (
        '_dmarc.example.com. 3600 IN TXT "v=DMARC1; p=quarantine; rua=mailto:postmaster@example.com"')
    assert records.tlsrpt_line("example.com") == (
        '_smtp._tls.example.com. 3600 IN TXT "v=TLSRPTv1; rua=mailto:postmaster@example.com"')
    lines = records.domain_records("example.com", "mail.example.com", addresses=["192.0.2.7"],
                                   spf_ips=["192.0.2.7"], dkim_lines=["k1"])
    assert lines[1:5] == [records.mx_line("example.com", "mail.example.com"),
                          'example.com. 3600 IN TXT "v=spf1 mx ip4:192.0.2.7 -all"', "k1",
                          records.dmarc_line("example.com")]
    assert "7.2.0.192.in-addr.arpa. 3600 IN PTR mail.example.com." in lines
    # what --records prints for MTA-STS parses as the policy it describes
    policy = "\n".join(line[4:] for line in records.mta_sts_lines("example.com", "mail.example.com", "1")[2:])
    assert mta_sts.parse_policy(policy) == ("enforce", ("mail.example.com",), 604800)


# -- the checks --------------------------------------------------------------------------------
def test_a_right_zone_passes_every_check(ca, tmp_path):
    with DNSServer(RIGHT) as dns:
        checks = doctor(dns, certificate=cert_file(ca, tmp_path, HOST, 90)).run()
    assert [(c.name, c.status) for c in checks if c.status != "ok"] == []
    names = by_name(checks)
    assert set(names) == {"hostname", "address", "ptr", "tls", "mx", "spf", "dkim", "dmarc", "mta-sts",
                          "tls-rpt", "postmaster", "abuse"}
    assert names["spf"][0].detail == "'v=spf1 mx -all' passes for 127.0.0.1"
    assert names["ptr"][0].detail == f"127.0.0.1 -> {HOST} -> 127.0.0.1 (forward-confirmed)"
    assert names["dmarc"][0].detail == "p=reject"
    assert all(not c.fix for c in checks)


def test_a_wrong_zone_fails_with_the_lines_to_publish(ca, tmp_path):
    with DNSServer(WRONG) as dns:
        checks = doctor(dns, certificate=cert_file(ca, tmp_path, "other.example.test", 90),
                        deliverable=lambda a: None if a.startswith("abuse") else "no such account",
                        mta_sts_fetch=lambda d: POLICY.replace(HOST, "mx.elsewhere.test")).run()
    status = {(c.name, c.status) for c in checks}
    fixes = {c.name: c.fix for c in checks}
    assert ("hostname", "ok") in status and ("address", "ok") in status
    assert ("ptr", "fail") in status
    assert fixes["ptr"][0] == f"1.0.0.127.in-addr.arpa. 3600 IN PTR {HOST}."
    assert ("tls", "fail") in status
    assert ("mx", "fail") in status and fixes["mx"] == (f"{DOMAIN}. 3600 IN MX 10 {HOST}.",)
    spf = by_name(checks)["spf"][0]
    assert spf.status == "fail" and "127.0.0.1: fail" in spf.detail
    # the MX is not us: the suggestion names the host, not "mx"
    assert spf.fix == (f'{DOMAIN}. 3600 IN TXT "v=spf1 a:{HOST} -all"',)
    dkim = by_name(checks)["dkim"][0]
    assert dkim.status == "fail" and "another key" in dkim.detail and dkim.fix == ("sel1 line",)
    assert ("dmarc", "warn") in status
    mts = by_name(checks)["mta-sts"][0]
    assert mts.status == "fail" and "not mail.example.test" in mts.detail
    assert mts.fix[0] == f'_mta-sts.{DOMAIN}. 3600 IN TXT "v=STSv1; id=1"'
    assert ("tls-rpt", "fail") in status
    assert ("postmaster", "fail") in status and ("abuse", "ok") in status


def test_missing_records_and_lookup_trouble(ca, tmp_path):
    zone = f"{HOST}. 300 IN A 127.0.0.1\n"
    with DNSServer(zone, servfail={f"_dmarc.{DOMAIN}."}) as dns:
        checks = doctor(dns, dkim=lambda d: [], addresses=["127.0.0.1", "192.0.2.9"],
                        certificate=cert_file(ca, tmp_path, HOST, 5)).run()
    names = by_name(checks)
    assert names["address"][0].status == "fail"
    assert names["address"][0].fix == (f"{HOST}. 3600 IN A 192.0.2.9",)
    assert names["mx"][0].fix == (f"{DOMAIN}. 3600 IN MX 10 {HOST}.",)
    assert names["spf"][0].status == "fail" and "no SPF record" in names["spf"][0].detail
    assert names["spf"][0].fix == (f'{DOMAIN}. 3600 IN TXT "v=spf1 a:{HOST} ip4:127.0.0.1 ip4:192.0.2.9 -all"',)
    assert names["dkim"][0].status == "warn" and "dkim keygen" in names["dkim"][0].detail
    assert names["dmarc"][0].status == "warn" and "DNS lookup failed" in names["dmarc"][0].detail
    assert names["mta-sts"][0].detail == "not published (optional)"
    assert names["tls"][0].status == "warn" and "expires in" in names["tls"][0].detail


def test_a_pending_selector_is_looked_up_as_dkim_activate_will(ca, tmp_path):
    """A pair made beside the keys that sign is pending until `dkim activate` finds its
    records: doctor says whether that look will succeed (a warning at worst: the keys
    that sign go on signing)."""
    other = "v=DKIM1; k=ed25519; p=AAAAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    keys = [("sel1", ED_RECORD, "sel1 line", "signs"),
            ("2027r", "v=DKIM1; k=rsa; p=UlNBa2V5", "2027r line", "pending"),
            ("2027e", ED_RECORD, "2027e line", "pending"),
            ("odd", other, "odd line", "pending")]
    zone = RIGHT + (f'2027e._domainkey.{DOMAIN}. 300 IN TXT "{ED_RECORD}"\n'
                    f'odd._domainkey.{DOMAIN}. 300 IN TXT "{ED_RECORD}"\n')
    with DNSServer(zone) as dns:
        checks = doctor(dns, dkim=lambda d: keys, certificate=cert_file(ca, tmp_path, HOST, 90)).run()
    assert [(c.status, c.detail, c.fix) for c in by_name(checks)["dkim"]] == [
        ("ok", f"sel1._domainkey.{DOMAIN} matches our ed25519 key", ()),
        ("warn", f"pending 2027r._domainkey.{DOMAIN} is not published yet: publish it, then "
                 f"`clevermail dkim activate {DOMAIN} 2027`", ("2027r line",)),
        ("ok", f"pending 2027e._domainkey.{DOMAIN} is published with our ed25519 key: "
               f"`clevermail dkim activate {DOMAIN} 2027` switches signing to it", ()),
        ("warn", f"pending odd._domainkey.{DOMAIN} publishes another key than ours: publish ours "
                 f"before `clevermail dkim activate {DOMAIN} odd`", ("odd line",))]
    # only pending keys is no signing at all
    with DNSServer(RIGHT) as dns:
        checks = doctor(dns, dkim=lambda d: keys[1:], certificate=cert_file(ca, tmp_path, HOST, 90)).run()
    assert [(c.status, c.detail) for c in by_name(checks)["dkim"]] == [
        ("warn", f"no DKIM key: mail is not signed (clevermail dkim keygen {DOMAIN})")]


def test_localhost_and_no_certificate():
    with DNSServer("") as dns:
        doc = Doctor(DnsClient(make_resolver([dns.nameserver], timeout=2, lifetime=4)), "localhost", [])
        checks = doc.run()
    names = by_name(checks)
    assert names["hostname"][0].status == "fail"
    assert names["tls"][0].status == "warn" and "no [tls] certificate" in names["tls"][0].detail


# -- the command -----------------------------------------------------------------------------
@pytest.fixture
def configured(tmp_path, write_config, relay_users, ca):
    shutil.copy(relay_users, tmp_path / "users.ini")
    keys = KeyStore(key_dir(str(tmp_path / "data")))
    lines = [k.zone_line for k in keys.generate(DOMAIN, "cli")]
    pair = ca.issue_cert(HOST)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    pair.cert_chain_pems[0].write_to_path(str(cert))
    pair.private_key_pem.write_to_path(str(key))

    def config(dns):
        return write_config(tmp_path, relay={"nameservers": [f"127.0.0.1:{dns.port}"]},
                            tls={"certificate": str(cert), "key": str(key)})
    return config, lines


def run(cfg, *args):
    return CliRunner().invoke(main, ["--config", cfg, "doctor", *args], catch_exceptions=False)


def test_doctor_command_right_and_wrong(configured):
    config, dkim_lines = configured
    right = RIGHT.replace(f'_mta-sts.{DOMAIN}.           300 IN TXT   "v=STSv1; id=20261203"\n', "")
    right = right.replace(right.splitlines()[6], "\n".join(line.replace(" 3600 ", " 300 ")
                                                           for line in dkim_lines))
    with DNSServer(right) as dns:
        cfg = config(dns)
        result = run(cfg)
        assert result.exit_code == 0, result.output
        assert "0 warnings, 0 failed" in result.output and f"[{DOMAIN}]" in result.output
        data = json.loads(run(cfg, "--json").output)
        assert data["summary"]["fail"] == 0 and data["domains"] == [DOMAIN]   # localhost skipped
        assert {c["name"] for c in data["checks"] if c["name"] == "dkim" and c["status"] == "ok"} == {"dkim"}
        assert len([c for c in data["checks"] if c["name"] == "dkim"]) == 2    # rsa and ed25519

        dns.set_zone(WRONG)
        result = run(cfg)
        assert result.exit_code == 1
        assert f"  FAIL  mx         MX names mx.elsewhere.test, not {HOST}" in result.output
        assert f"        publish: {DOMAIN}. 3600 IN MX 10 {HOST}." in result.output
        for line in dkim_lines:
            assert f"        publish: {line}" in result.output
        data = json.loads(run(cfg, "--json").output)
        assert data["summary"]["fail"] >= 5
        mx = [c for c in data["checks"] if c["name"] == "mx"][0]
        assert mx == {"scope": DOMAIN, "name": "mx", "status": "fail",
                      "detail": f"MX names mx.elsewhere.test, not {HOST}",
                      "fix": [f"{DOMAIN}. 3600 IN MX 10 {HOST}."]}

        records_out = run(cfg, "--records", DOMAIN).output.splitlines()
        assert f"{DOMAIN}. 3600 IN MX 10 {HOST}." in records_out
        assert f'{DOMAIN}. 3600 IN TXT "v=spf1 mx -all"' in records_out
        assert all(line in records_out for line in dkim_lines)
        assert f"1.0.0.127.in-addr.arpa. 3600 IN PTR {HOST}." in records_out
        assert run(cfg, "--address", "not-an-ip").exit_code == 2


def dkim_activate(cfg, *args):
    return CliRunner().invoke(main, ["--config", cfg, "dkim", "activate", *args], catch_exceptions=False)


def test_doctor_command_tells_whether_a_pending_pair_is_published(configured, tmp_path):
    """keygen beside signing keys makes a pending pair: doctor warns until its records
    are published, then says `dkim activate` will find them, and it does."""
    config, dkim_lines = configured
    pending = [k.zone_line for k in KeyStore(key_dir(str(tmp_path / "data"))).generate(DOMAIN, "next")]
    right = RIGHT.replace(f'_mta-sts.{DOMAIN}.           300 IN TXT   "v=STSv1; id=20261203"\n', "")
    right = right.replace(right.splitlines()[6], "\n".join(line.replace(" 3600 ", " 300 ")
                                                           for line in dkim_lines))
    with DNSServer(right) as dns:
        cfg = config(dns)
        result = run(cfg)
        assert result.exit_code == 0, result.output        # warnings only: the old pair signs
        assert (f"  warn  dkim       pending nextr._domainkey.{DOMAIN} is not published yet: publish it, "
                f"then `clevermail dkim activate {DOMAIN} next`\n"
                f"        publish: {pending[0]}\n"
                f"  warn  dkim       pending nexte._domainkey.{DOMAIN} is not published yet: publish it, "
                f"then `clevermail dkim activate {DOMAIN} next`\n"
                f"        publish: {pending[1]}\n") in result.output
        assert "0 failed" in result.output and "2 warnings" in result.output
        records_out = run(cfg, "--records", DOMAIN).output.splitlines()
        assert all(line in records_out for line in dkim_lines + pending)
        assert dkim_activate(cfg, DOMAIN, "next").exit_code == 1

        dns.set_zone(right + "\n".join(line.replace(" 3600 ", " 300 ") for line in pending) + "\n")
        result = run(cfg)
        assert result.exit_code == 0 and "0 warnings, 0 failed" in result.output, result.output
        assert (f"  ok    dkim       pending nextr._domainkey.{DOMAIN} is published with our rsa key: "
                f"`clevermail dkim activate {DOMAIN} next` switches signing to it\n"
                f"  ok    dkim       pending nexte._domainkey.{DOMAIN} is published with our ed25519 key: "
                f"`clevermail dkim activate {DOMAIN} next` switches signing to it\n") in result.output
        activated = dkim_activate(cfg, DOMAIN, "next")
        assert activated.exit_code == 0 and f"{DOMAIN} now signs with nextr, nexte" in activated.output
        assert f"  ok    dkim       nextr._domainkey.{DOMAIN} matches our rsa key\n" in run(cfg).output
