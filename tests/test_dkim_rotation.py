"""DKIM key rotation, publish-then-switch, end to end: a running MailService signs with
its first pair; `clevermail dkim keygen --selector NEW` adds a pending pair that signs
nothing; `clevermail dkim activate` asks the configured resolver ([relay] nameservers: a
loopback DNS server) and refuses while the records are missing or carry another key,
switches once they are published (or with --force), and the server then signs with
the new pair, verified by dkimpy in a separate process against that DNS; the old pair
stays listed until `dkim delete`."""

import re
import shutil
import smtplib

import pytest
from click.testing import CliRunner

from clevermail.cli import main
from clevermail.config import load_config
from dkim_verify import verify, zone_lines
from dns_server import DNSServer
from relay_sink import Replies, ServiceEnv, Sink
from waiting import wait_for

pytestmark = pytest.mark.e2e

ALICE = ServiceEnv.ALICE
REMOTE = "carol@there.test"


def cli(env, *args):
    return CliRunner().invoke(main, ["--config", env.config_path, *args], catch_exceptions=False)


@pytest.fixture
def env(thread_guard, tmp_path, relay_users, write_config):
    """A started ServiceEnv relaying to a Sink, its [relay] nameservers a loopback DNS
    server (env.dns) that publishes what `dkim list` printed at start."""
    shutil.copy(relay_users, tmp_path / "users.ini")
    sink = Sink(rcpt=Replies())
    with DNSServer("") as dns:
        path = write_config(tmp_path, relay={"mx_port": sink.port, "nameservers": [f"127.0.0.1:{dns.port}"]},
                            smtp={"listen": ["127.0.0.1:0"], "submission_listen": ["127.0.0.1:0"]})
        env = ServiceEnv(load_config(path), sink)
        env.config_path, env.dns = path, dns
        try:
            env.start()
            env.first = zone_lines(cli(env, "dkim", "list").output)
            assert len(env.first) == 2
            dns.set_zone("\n".join(env.first))
            yield env
        finally:
            env.stop()
            sink.close()


def send_signed(env, subject):
    """A message from ALICE over submission, as the sink got it: (its selectors, data)."""
    before = len(env.sink.messages)
    with smtplib.SMTP("127.0.0.1", env.service.port("submission"), timeout=10) as s:
        s.login(ALICE, ServiceEnv.USERS[ALICE])
        s.sendmail(ALICE, [REMOTE], f"From: {ALICE}\r\nTo: {REMOTE}\r\nSubject: {subject}\r\n\r\nhi\r\n".encode())
    assert wait_for(lambda: len(env.sink.messages) > before)
    data = env.sink.messages[-1].data
    return re.findall(rb"(?m)^\ts=([a-z0-9-]+);", data.split(b"\r\n\r\n", 1)[0]), data


def assert_verified(env, data, selectors):
    results = verify(data, env.dns.port)
    assert [(r["s"], r["ok"]) for r in results] == [(s, True) for s in selectors], results


def test_a_new_pair_signs_only_once_activated_after_its_records_are_published(env):
    old = [line.split(".")[0] for line in env.first]               # e.g. 202612r, 202612e
    made = cli(env, "dkim", "keygen", "example.test", "--selector", "next")
    assert made.exit_code == 0, made.output
    assert "are pending: publish these records, then `clevermail dkim activate example.test next`" in made.output
    new_lines = zone_lines(made.output)
    assert [line.split(".")[0] for line in new_lines] == ["nextr", "nexte"]
    listed = cli(env, "dkim", "list").output
    assert re.search(rf"{old[0]} +rsa +\S+ +signs", listed)
    assert re.search(r"nextr +rsa +\S+ +pending: publish, then `clevermail dkim activate`", listed)

    # pending: the server goes on signing with the published pair
    selectors, data = send_signed(env, "before")
    assert selectors == [s.encode() for s in old]
    assert_verified(env, data, old)

    # not published yet: refused, nothing switched
    refused = cli(env, "dkim", "activate", "example.test", "next")
    assert refused.exit_code == 1
    assert "nextr._domainkey.example.test: no key record published; publish:\n" + new_lines[0] in refused.output
    assert "not switched: example.test signs with the keys it signed with" in refused.output
    # published with another key (the old one's): refused too
    wrong = new_lines[0].split(" IN TXT ")[0] + " IN TXT " + env.first[0].split(" IN TXT ")[1]
    env.dns.set_zone("\n".join(env.first + [wrong, new_lines[1]]))
    refused = cli(env, "dkim", "activate", "example.test", "next")
    assert refused.exit_code == 1
    assert "nextr._domainkey.example.test publishes another key than ours" in refused.output
    assert "nexte" not in refused.output.split("not switched")[0]     # the ed25519 one is right
    assert re.search(r"nextr +rsa +\S+ +pending", cli(env, "dkim", "list").output)

    # published: switched; the old pair stays listed, to be kept published
    env.dns.set_zone("\n".join(env.first + new_lines))
    done = cli(env, "dkim", "activate", "example.test", "next")
    assert done.exit_code == 0, done.output
    assert done.output.startswith("example.test now signs with nextr, nexte\n")
    assert f"keep the records of {old[0]}, {old[1]} published for a few days" in done.output
    listed = cli(env, "dkim", "list").output
    assert re.search(rf"{old[0]} +rsa +\S+ +old: keep published until deleted", listed)
    assert re.search(r"nexte +ed25519 +\S+ +signs", listed)

    # the running server switches (it looks at the manifest at most once a second)
    assert wait_for(lambda: send_signed(env, "after")[0] == [b"nextr", b"nexte"])
    _, data = send_signed(env, "verified")
    assert_verified(env, data, ["nextr", "nexte"])

    assert cli(env, "dkim", "delete", "example.test", old[0]).exit_code == 0
    assert old[0] not in cli(env, "dkim", "list").output


def test_force_switches_without_the_records_and_says_so(env):
    assert cli(env, "dkim", "keygen", "example.test", "--selector", "rushed").exit_code == 0
    forced = cli(env, "dkim", "activate", "example.test", "rushedr", "--force")   # one selector
    assert forced.exit_code == 0
    assert "rushedr._domainkey.example.test: no key record published" in forced.output
    assert "example.test now signs with rushedr (forced: records not seen published)" in forced.output
    listed = cli(env, "dkim", "list").output
    assert re.search(r"rushedr +rsa +\S+ +signs", listed)
    assert re.search(r"rushede +ed25519 +\S+ +pending", listed)
    unknown = cli(env, "dkim", "activate", "example.test", "nosuch")
    assert unknown.exit_code == 1 and "has no selector nosuch (nor nosuchr/nosuche)" in unknown.output
