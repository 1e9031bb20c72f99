"""End to end: IMAP4rev2 and UTF8=ACCEPT against MailService on 127.0.0.1 port 0, mail
arriving over SMTP: imapclient as an IMAP4rev1 client and stdlib imaplib after ENABLE
IMAP4rev2 side by side (each sees its own SELECT, new-mail and SEARCH responses), and a
UTF-8 mailbox name round trip between imaplib with UTF8=ACCEPT and imapclient, which
speaks modified UTF-7."""

import imaplib
import smtplib

import imapclient
import pytest

from imap_helpers import ALICE, PASSWORD, make_accounts

from clevermail.service import MailService
from conftest import make_config

pytestmark = pytest.mark.e2e


def _mail(n):
    return (f"From: bob@remote.example\r\nTo: {ALICE}\r\nSubject: note {n}\r\n"
            f"Message-ID: <{n}@remote.example>\r\n\r\nBody {n}\r\n").encode()


@pytest.fixture
def env(thread_guard, tmp_path):
    conf = make_config(tmp_path, limits={"auth_failure_delay": 0, "imap_timeout": 30})
    make_accounts(conf.server.users_file)
    service = MailService(conf).start()
    try:
        yield service
    finally:
        service.stop()


def _send(service, *numbers):
    with smtplib.SMTP("127.0.0.1", service.port("smtp"), timeout=10) as smtp:
        for n in numbers:
            smtp.sendmail("bob@remote.example", [ALICE], _mail(n))


def _rev2(service):
    c = imaplib.IMAP4("127.0.0.1", service.port("imap"), timeout=10)
    c.login(ALICE, PASSWORD)
    assert "IMAP4REV2" in c.capabilities
    typ, data = c._simple_command("ENABLE", "IMAP4rev2")
    assert typ == "OK" and c.untagged_responses.pop("ENABLED") == [b"IMAP4rev2"]
    return c


def test_rev1_and_rev2_side_by_side(env):
    _send(env, 1, 2)
    old = imapclient.IMAPClient("127.0.0.1", port=env.port("imap"), ssl=False, timeout=10)
    new = _rev2(env)
    try:
        old.login(ALICE, PASSWORD)
        assert b"IMAP4REV2" in old.capabilities() and b"IMAP4REV1" in old.capabilities()
        info = old.select_folder("INBOX")
        assert info[b"EXISTS"] == 2 and info[b"RECENT"] == 2
        typ, data = new.select("INBOX")
        assert typ == "OK" and data == [b"2"]
        assert "RECENT" not in new.untagged_responses and "UNSEEN" not in new.untagged_responses
        assert new.untagged_responses.pop("LIST") == [b'(\\HasNoChildren) "/" "INBOX"']
        # SEARCH: `* SEARCH` for rev1, ESEARCH for rev2
        assert old.search("ALL") == [1, 2]
        typ, data = new._simple_command("UID", "SEARCH", "ALL")
        assert typ == "OK"
        (esearch,) = new.untagged_responses.pop("ESEARCH")
        assert esearch.endswith(b" UID ALL 1:2")
        assert "SEARCH" not in new.untagged_responses
        # new mail: rev1 is told of \Recent, rev2 only of EXISTS
        _send(env, 3)
        new.untagged_responses.clear()
        assert new.noop()[0] == "OK"
        assert new.untagged_responses.get("EXISTS") == [b"3"] and "RECENT" not in new.untagged_responses
        typ, data = new.fetch("3", "(FLAGS)")
        assert data == [b"3 (FLAGS ())"]
        assert old.noop()[1] == [(3, b"EXISTS"), (3, b"RECENT")]
        assert old.get_flags([3]) == {3: (b"\\Recent",)}
    finally:
        old.logout()
        new.logout()


def test_utf8_mailbox_name_round_trip(env):
    new = imaplib.IMAP4("127.0.0.1", env.port("imap"), timeout=10)
    old = imapclient.IMAPClient("127.0.0.1", port=env.port("imap"), ssl=False, timeout=10)
    try:
        new.login(ALICE, PASSWORD)
        assert new.enable("UTF8=ACCEPT")[0] == "OK"
        # imaplib sends a bare name as an atom: quoted, as RFC 6855 wants UTF-8
        assert new.create('"Entwürfe/Köln & Bonn"')[0] == "OK"
        typ, data = new.list('""', '"Entw*"')
        assert data == ['(\\HasChildren) "/" "Entwürfe"'.encode(),
                        '(\\HasNoChildren) "/" "Entwürfe/Köln & Bonn"'.encode()]
        old.login(ALICE, PASSWORD)
        names = [name for _flags, _sep, name in old.list_folders(pattern="Entw*")]
        assert names == ["Entwürfe", "Entwürfe/Köln & Bonn"]
        old.select_folder("Entwürfe/Köln & Bonn")
        old.append("Entwürfe/Köln & Bonn", _mail(1))
        typ, data = new.status('"Entwürfe/Köln & Bonn"', "(MESSAGES)")
        assert data == ['"Entwürfe/Köln & Bonn" (MESSAGES 1)'.encode()]
        assert old.rename_folder("Entwürfe/Köln & Bonn", "Entwürfe/Düsseldorf") == b"RENAME completed"
        typ, data = new.select('"Entwürfe/Düsseldorf"')
        assert typ == "OK" and data == [b"1"]
    finally:
        old.logout()
        new.logout()
