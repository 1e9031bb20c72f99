"""Tests for smtp/policy.py, pure: which clients the MX defences are asked for, the
harvest cut-off, the sending limit, and the order of the end-of-DATA checks.  The
session tests and the inbound/defence end-to-end tests run the same steps over a
socket."""

import ipaddress
import logging
import socket
from types import SimpleNamespace

import pytest

from clevermail.inbound.defence import Defence, SpamSettings
from clevermail.smtp import replies as R
from clevermail.smtp.policy import Policy, in_networks
from clevermail.smtp.replies import SMTPReplyError
from clevermail.smtp.send_quota import SendQuota
from clevermail.smtp.sender_identity import SenderIdentity

LOG = logging.getLogger("test.smtp.policy")


def make_server(*, defence=None, inbound=None, mode="mx", implicit_tls=False, trusted=(),
                quota=None):
    handler = SimpleNamespace(
        defence=defence, inbound=inbound, quota=quota or SendQuota(None, 0, 0),
        senders=SenderIdentity(lambda domain: domain == "example.test"))
    nets = tuple(ipaddress.ip_network(n) for n in trusted)
    return SimpleNamespace(handler=handler, hostname="mx.example.test", mode=mode,
                           implicit_tls=implicit_tls, policy=SimpleNamespace(trusted_networks=nets))


def test_in_networks():
    nets = (ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("2001:db8::/32"))
    assert in_networks("192.0.2.7", nets) and in_networks("2001:db8::1", nets)
    assert not in_networks("198.51.100.1", nets)
    assert not in_networks("not an address", nets)
    assert not in_networks("192.0.2.7", ())


def test_defences_only_for_untrusted_unauthenticated_mx_clients():
    defence = Defence(SpamSettings())
    assert Policy(make_server(defence=defence), "192.0.2.1", LOG).defence() is defence
    assert Policy(make_server(defence=defence), "192.0.2.1", LOG).defence("alice@example.test") is None
    assert Policy(make_server(defence=defence, trusted=["192.0.2.0/24"]), "192.0.2.1", LOG).defence() is None
    assert Policy(make_server(defence=defence, mode="submission"), "192.0.2.1", LOG).defence() is None
    assert Policy(make_server(defence=defence, implicit_tls=True), "192.0.2.1", LOG).defence() is None
    assert Policy(make_server(), "192.0.2.1", LOG).defence() is None


def test_harvest_cut_off_after_the_configured_unknown_recipients():
    policy = Policy(make_server(defence=Defence(SpamSettings(unknown_recipients=2))), "192.0.2.1", LOG)
    policy.unknown_recipient(None)
    policy.unknown_recipient(None)
    with pytest.raises(SMTPReplyError) as exc:
        policy.unknown_recipient(None)
    assert exc.value.reply.code == 421 and exc.value.reply.status == "4.7.0"
    # an authenticated user is never cut off for it
    authed = Policy(make_server(defence=Defence(SpamSettings(unknown_recipients=1))), "192.0.2.1", LOG)
    for _ in range(5):
        authed.unknown_recipient("alice@example.test")


def test_local_sender_without_auth_refused_at_mail():
    policy = Policy(make_server(), "192.0.2.1", LOG)
    with pytest.raises(SMTPReplyError) as exc:
        policy.check_mail("someone@example.test", None)
    assert exc.value.reply is R.R550_LOCAL_SENDER_NEEDS_AUTH
    policy.check_mail("someone@elsewhere.test", None)       # foreign sender: fine


def test_sending_limit_is_450(tmp_path):
    quota = SendQuota(str(tmp_path), 1, 0)
    policy = Policy(make_server(quota=quota), "192.0.2.1", LOG)
    policy.check_quota("alice@example.test", 1)
    quota.record("alice@example.test", 1)
    with pytest.raises(SMTPReplyError) as exc:
        policy.check_quota("alice@example.test", 1)
    assert (exc.value.reply.code, exc.value.reply.status) == (450, "4.7.1")


class RecordingInbound:
    def __init__(self, action="accept"):
        self.action = action
        self.calls = []

    def strip_header(self, header):
        self.calls.append("strip")
        return header

    def check(self, body, peer, helo, sender, header):
        assert header.data is body          # split once, handed on
        self.calls.append(("check", peer, helo, sender))
        return SimpleNamespace(action=self.action, reason="spf=fail" if self.action != "accept" else "",
                               header=b"Authentication-Results: x\r\n", folder="Junk")


def test_message_checks_add_results_or_refuse():
    inbound = RecordingInbound()
    policy = Policy(make_server(inbound=inbound), "192.0.2.1", LOG)
    body, folder = policy.check_message(b"Subject: x\r\n\r\nhi\r\n", sender="a@b.test", recipients=[],
                                        queue_id="Q1", user=None, helo="client.test")
    assert body.startswith(b"Authentication-Results: x\r\nSubject") and folder == "Junk"
    assert inbound.calls == ["strip", ("check", "192.0.2.1", "client.test", "a@b.test")]
    # authenticated and trusted clients skip the checks
    assert policy.check_message(b"x\r\n", sender="", recipients=[], queue_id="Q", user="u",
                                helo="h") == (b"x\r\n", None)
    for action, code in (("reject", 550), ("tempfail", 451)):
        refusing = Policy(make_server(inbound=RecordingInbound(action)), "192.0.2.1", LOG)
        with pytest.raises(SMTPReplyError) as exc:
            refusing.check_message(b"x\r\n", sender="a@b.test", recipients=[], queue_id="Q",
                                   user=None, helo="h")
        assert exc.value.reply.code == code and "spf=fail" in exc.value.reply.text


def test_pregreet_seen_only_when_the_client_talks_first():
    policy = Policy(make_server(defence=Defence(SpamSettings(pregreet=True, pregreet_wait=0.0))),
                    "192.0.2.1", LOG)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        assert policy.at_connect(ours) is None
        theirs.sendall(b"EHLO early\r\n")
        assert policy.at_connect(ours) is R.R554_PREGREET
