"""RFC 5321 4.5.1: postmaster@ every local domain (and bare <Postmaster>) is accepted and
lands in the configured postmaster account, or the first account when none is set.
A postmaster account of its own would take precedence (plain lookup first)."""

import smtplib

import pytest

from clevermail.accounts import AccountStore
from clevermail.service import MailService

pytestmark = pytest.mark.e2e


def start(tmp_path, make_config, **server):
    conf = make_config(tmp_path, server=server)
    accounts = AccountStore(conf.server.users_file, conf.server.domains)
    accounts.add("alice@example.test", "pw")
    accounts.add("bob@example.test", "pw")
    return MailService(conf).start()


def inbox_count(svc, address):
    folder = svc.store.open_folder(address, "INBOX")
    try:
        return len(folder)
    finally:
        svc.store.release_folder(folder)


@pytest.mark.parametrize("server, owner", [({}, "alice@example.test"),
                                           ({"postmaster": "bob@example.test"}, "bob@example.test")])
def test_postmaster_is_always_accepted(tmp_path, make_config, thread_guard, server, owner):
    svc = start(tmp_path, make_config, **server)
    try:
        with smtplib.SMTP("127.0.0.1", svc.port("smtp"), timeout=10) as s:
            s.ehlo("client.test")
            s.mail("someone@remote.test")
            assert s.rcpt("<Postmaster>")[0] == 250
            assert s.rcpt("postmaster@localhost")[0] == 250
            assert s.rcpt("nobody@example.test")[0] == 550      # other unknown users still refused
            assert s.data(b"Subject: hello postmaster\r\n\r\nhi\r\n")[0] == 250
        assert inbox_count(svc, owner) == 1     # two addresses, one mailbox: one copy
    finally:
        svc.stop()
