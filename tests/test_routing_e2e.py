"""Routing rules of issue 17 end to end, with smtplib against a real MailService on
loopback: the role addresses (RFC 2142) of every local domain resolve to their
configured accounts (abuse@ to the postmaster's by default), a configured
subaddress separator, and the hop limit counting Delivered-To as well as Received
(554 5.4.6 past 30)."""

import os
import smtplib

import pytest

from clevermail.config import load_config
from clevermail.service import MailService
from conftest import write_config
from fakes import ALICE, BOB, make_accounts

pytestmark = pytest.mark.e2e


def start(tmp_path, **server):
    path = write_config(tmp_path, server=server)
    make_accounts(tmp_path / "users.ini")
    return MailService(load_config(path)).start()


@pytest.fixture
def service(tmp_path, thread_guard):
    svc = start(tmp_path, postmaster=BOB, subaddress_separator="-")
    yield svc
    svc.stop()


def inbox(service, address):
    new = os.path.join(service.store.ensure_user(address), "new")
    return [open(os.path.join(new, n), "rb").read() for n in sorted(os.listdir(new))]


def send(service, rcpts, data=b"Subject: hi\r\n\r\nhello\r\n", sender="someone@far.test"):
    with smtplib.SMTP("127.0.0.1", service.port("smtp"), timeout=10) as s:
        s.ehlo("mx.far.test")
        return s.sendmail(sender, rcpts, data)


def test_role_addresses_of_every_local_domain(service):
    assert send(service, ["postmaster@example.test", "Abuse@example.test", "postmaster@localhost"]) == {}
    assert len(inbox(service, BOB)) == 1            # one copy: the three name one account
    assert inbox(service, ALICE) == []
    # postmaster without a domain (RFC 5321 4.1.1.3) is ours too
    assert send(service, ["postmaster"]) == {}
    assert len(inbox(service, BOB)) == 2


def test_abuse_has_its_own_account_when_configured(tmp_path, thread_guard):
    svc = start(tmp_path, postmaster=BOB, abuse=ALICE)
    try:
        assert send(svc, ["abuse@localhost"]) == {}
        assert len(inbox(svc, ALICE)) == 1 and inbox(svc, BOB) == []
    finally:
        svc.stop()


def test_the_configured_subaddress_separator(service):
    local, domain = ALICE.split("@")
    assert send(service, [f"{local}-news@{domain}"]) == {}
    assert len(inbox(service, ALICE)) == 1
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(service, [f"{local}+news@{domain}"])       # "+" is no separator here
    assert refused.value.recipients[f"{local}+news@{domain}"][:2] == (550, b"5.1.1 No such user here")


@pytest.mark.parametrize("field", [b"Delivered-To: alice@example.test", b"Received: from hop by mx"])
def test_the_hop_limit_counts_delivered_to_and_received(service, field):
    thirty = b"".join(field + b"\r\n" for _ in range(30))
    assert send(service, [ALICE], thirty + b"Subject: 30 hops\r\n\r\nx\r\n") == {}
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(service, [ALICE], thirty + field + b"\r\nSubject: 31 hops\r\n\r\nx\r\n")
    assert refused.value.smtp_code == 554 and refused.value.smtp_error.startswith(b"5.4.6 ")
    assert len(inbox(service, ALICE)) == 1
