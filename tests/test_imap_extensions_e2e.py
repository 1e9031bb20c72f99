"""End to end: SORT, THREAD, ESEARCH, SEARCHRES and MULTIAPPEND through real clients,
stdlib imaplib and imapclient (its sort(), thread() and multiappend() calls), against
MailService on 127.0.0.1 port 0; mail arrives over SMTP and APPEND."""

import datetime
import imaplib
import re
import smtplib

import imapclient
import pytest

from imap_helpers import ALICE, PASSWORD, make_accounts

from clevermail.service import MailService
from conftest import make_config

pytestmark = pytest.mark.e2e


def _mail(n, subject, sender, date, extra=""):
    return (f"From: {sender}\r\nTo: {ALICE}\r\nSubject: {subject}\r\nDate: {date}\r\n"
            f"Message-ID: <{n}@example.test>\r\n{extra}\r\nBody {n}\r\n").encode()


MAILS = [
    _mail(1, "Planning", "Carol <carol@remote.example>", "Mon, 7 Feb 2022 10:00:00 +0000"),
    _mail(2, "Re: Planning", "bob@remote.example", "Mon, 7 Feb 2022 11:00:00 +0000",
          "In-Reply-To: <1@example.test>\r\n"),
    _mail(3, "Lunch", "alice@remote.example", "Mon, 7 Feb 2022 09:00:00 +0000"),
    _mail(4, "Re: Re: Planning", "dave@remote.example", "Mon, 7 Feb 2022 12:00:00 +0000",
          "References: <1@example.test> <2@example.test>\r\n"),
    _mail(5, "[team] Fwd: Lunch", "erin@remote.example", "Mon, 7 Feb 2022 13:00:00 +0000"),
]


@pytest.fixture
def env(thread_guard, tmp_path):
    conf = make_config(tmp_path, limits={"auth_failure_delay": 0, "imap_timeout": 30})
    make_accounts(conf.server.users_file)
    service = MailService(conf).start()
    try:
        # the first three by SMTP, the rest by APPEND
        with smtplib.SMTP("127.0.0.1", service.port("smtp"), timeout=10) as smtp:
            for data in MAILS[:3]:
                smtp.sendmail("sender@remote.example", [ALICE], data)
        c = imaplib.IMAP4("127.0.0.1", service.port("imap"), timeout=10)
        c.login(ALICE, PASSWORD)
        for data in MAILS[3:]:
            assert c.append("INBOX", None, None, data)[0] == "OK"
        c.logout()
        yield service
    finally:
        service.stop()


def test_imaplib_sort_thread_esearch_searchres(env):
    c = imaplib.IMAP4("127.0.0.1", env.port("imap"), timeout=10)
    try:
        for cap in ("SORT", "SORT=DISPLAY", "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT",
                    "ESEARCH", "ESORT", "SEARCHRES"):
            assert cap in c.capabilities
        c.login(ALICE, PASSWORD)
        c.select("INBOX")
        assert c.sort("(DATE)", "UTF-8", "ALL") == ("OK", [b"3 1 2 4 5"])
        assert c.sort("(SUBJECT REVERSE DATE)", "UTF-8", "ALL") == ("OK", [b"5 3 4 2 1"])
        assert c.sort("(FROM)", "UTF-8", "ALL") == ("OK", [b"3 2 1 4 5"])
        assert c.sort("(DISPLAYFROM)", "UTF-8", "ALL") == ("OK", [b"3 2 1 4 5"])
        assert c.uid("SORT", "(REVERSE DATE)", "UTF-8", "ALL") == ("OK", [b"5 4 2 1 3"])
        assert c.thread("REFERENCES", "UTF-8", "ALL") == ("OK", [b"(3 5)(1 2 4)"])
        assert c.thread("ORDEREDSUBJECT", "UTF-8", "ALL") == ("OK", [b"(3 5)(1 (2)(4))"])
        typ, data = c._simple_command("SEARCH", "RETURN", "(MIN MAX COUNT)", "FROM", "remote.example")
        assert typ == "OK"
        assert c.untagged_responses.pop("ESEARCH")[0].endswith(b"MIN 1 MAX 5 COUNT 5")
        assert c._simple_command("SEARCH", "RETURN", "(SAVE)", "SUBJECT", "Planning")[0] == "OK"
        typ, data = c.fetch("$", "(UID)")
        assert typ == "OK" and [re.sub(rb"\s+", b" ", d) for d in data] == [
            b"1 (UID 1)", b"2 (UID 2)", b"4 (UID 4)"]
        assert c.store("$", "+FLAGS", "(\\Flagged)")[0] == "OK"
        assert c.search(None, "FLAGGED") == ("OK", [b"1 2 4"])
        assert c.search(None, "NOT", "$") == ("OK", [b"3 5"])
    finally:
        c.logout()


def test_imapclient_sort_and_thread(env):
    with imapclient.IMAPClient("127.0.0.1", port=env.port("imap"), ssl=False, timeout=10) as c:
        c.login(ALICE, PASSWORD)
        c.select_folder("INBOX")
        assert c.has_capability("SORT") and c.has_capability("THREAD=REFERENCES")
        # imapclient asks with UIDs (UID SORT / UID THREAD)
        assert c.sort(["DATE"]) == [3, 1, 2, 4, 5]
        assert c.sort(["REVERSE", "SUBJECT", "REVERSE", "DATE"], ["NOT", "FROM", "carol"]) == [4, 2, 5, 3]
        assert c.thread() == ((3, 5), (1, 2, 4))
        assert c.thread("ORDEREDSUBJECT") == ((3, 5), (1, (2,), (4,)))
        assert c.thread(criteria=["SINCE", "1-Jan-2000", "NOT", "UID", "2"]) == ((3, 5), (1, 4))
        c.delete_messages([1])
        c.expunge()
        assert c.thread() == ((3, 5), (2, 4))
        assert c.sort("FROM") == [3, 2, 4, 5]


def test_imapclient_multiappend(env):
    with imapclient.IMAPClient("127.0.0.1", port=env.port("imap"), ssl=False, timeout=10) as c:
        c.login(ALICE, PASSWORD)
        assert c.has_capability("MULTIAPPEND")
        c.create_folder("Batch")
        reply = c.multiappend("Batch", [
            MAILS[0],
            {"msg": MAILS[1], "flags": [imapclient.SEEN, b"$Later"]},
            {"msg": MAILS[2], "date": datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)},
        ])
        typ, (text,) = reply
        # UIDs in the order of the messages, whatever their internal dates
        assert typ == "OK" and re.fullmatch(rb"\[APPENDUID \d+ 1:3\] APPEND completed", text)
        c.select_folder("Batch")
        got = c.fetch([1, 2, 3], ["FLAGS", "INTERNALDATE", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        assert [got[u][b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].strip() for u in (1, 2, 3)] == [
            b"Message-ID: <1@example.test>", b"Message-ID: <2@example.test>", b"Message-ID: <3@example.test>"]
        assert set(got[2][b"FLAGS"]) == {b"\\Seen", b"$Later", b"\\Recent"}
        assert got[3][b"INTERNALDATE"].astimezone(datetime.timezone.utc).replace(tzinfo=None) == \
            datetime.datetime(2020, 1, 2, 3, 4, 5)
        # all or nothing: a bad second message stores none
        typ, _ = c.multiappend("Batch", [MAILS[3], b""])
        assert typ == "NO"
        assert c.folder_status("Batch", ["MESSAGES"])[b"MESSAGES"] == 3
