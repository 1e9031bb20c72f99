"""End-to-end CONDSTORE and QRESYNC (RFC 7162) against a real MailService on
127.0.0.1 port 0: imapclient's condstore helpers (select_folder's HIGHESTMODSEQ,
fetch modifiers, folder_status), and imaplib resynchronising with SELECT (QRESYNC ...)
across a restart of the server, two sessions apart: one changes and expunges, the
other comes back and gets exactly what vanished and what changed."""

import imaplib
import re

import pytest

from clevermail.service import MailService
from conftest import make_config
from imap_helpers import ALICE, PASSWORD, make_accounts, message

pytestmark = pytest.mark.e2e


@pytest.fixture
def service(thread_guard, tmp_path):
    conf = make_config(tmp_path, imap={"listen": ["127.0.0.1:0"]},
                       limits={"auth_failure_delay": 0, "imap_timeout": 30})
    make_accounts(conf.server.users_file)
    running = []

    def start():
        svc = MailService(conf).start()
        running.append(svc)
        return svc

    yield start
    for svc in running:
        svc.stop()


def imaplib_client(svc):
    c = imaplib.IMAP4("127.0.0.1", svc.port("imap"), timeout=10)
    assert c.login(ALICE, PASSWORD)[0] == "OK"
    return c


def test_imapclient_condstore_helpers(service):
    imapclient = pytest.importorskip("imapclient")
    svc = service()
    for i in range(1, 5):
        svc.store.deliver_local("", [ALICE], message(i))
    c = imapclient.IMAPClient("127.0.0.1", port=svc.port("imap"), ssl=False, timeout=10)
    try:
        c.login(ALICE, PASSWORD)
        assert c.has_capability("CONDSTORE") and c.has_capability("QRESYNC")
        assert c.enable("CONDSTORE") == [b"CONDSTORE"]
        info = c.select_folder("INBOX")
        top = info[b"HIGHESTMODSEQ"]
        assert top > 0
        assert c.fetch([1, 2, 3, 4], ["FLAGS"], modifiers=["CHANGEDSINCE %d" % top]) == {}
        c.add_flags([2, 3], [imapclient.SEEN])
        changed = c.fetch([1, 2, 3, 4], ["FLAGS"], modifiers=["CHANGEDSINCE %d" % top])
        assert sorted(changed) == [2, 3]
        assert all(changed[u][b"MODSEQ"][0] > top for u in changed)
        assert c.folder_status("INBOX", ["HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"] == max(
            changed[u][b"MODSEQ"][0] for u in changed)
        assert c.search(["MODSEQ", str(top + 1)]) == [2, 3]
    finally:
        c.logout()


def _resync(c, validity, modseq):
    """SELECT INBOX (QRESYNC ...) through imaplib: (VANISHED lines, FETCH lines)."""
    typ, _ = c._simple_command("SELECT", "INBOX (QRESYNC (%d %d))" % (validity, modseq))
    assert typ == "OK"
    vanished = [v.decode() for v in c.untagged_responses.pop("VANISHED", [])]
    fetched = [f.decode() for f in c.untagged_responses.pop("FETCH", [])]
    return vanished, fetched


def test_resync_after_restart_gets_exactly_what_changed(service):
    """Session a learns the folder, the server restarts, session b changes flags and
    expunges, the server restarts again: a's QRESYNC SELECT gets the expunged UIDs as
    VANISHED (EARLIER) and the changed flags, nothing else."""
    svc = service()
    for i in range(1, 7):
        svc.store.deliver_local("", [ALICE], message(i))
    a = imaplib_client(svc)
    assert a.enable("QRESYNC")[0] == "OK"
    assert a.select("INBOX")[0] == "OK"
    validity = int(a.untagged_responses["UIDVALIDITY"][0])
    known = int(a.untagged_responses["HIGHESTMODSEQ"][0])
    a.logout()
    svc.stop()

    svc = service()
    b = imaplib_client(svc)
    assert b.select("INBOX")[0] == "OK"
    assert b.uid("STORE", "2", "+FLAGS.SILENT", "(\\Flagged)")[0] == "OK"
    assert b.uid("STORE", "3,5", "+FLAGS.SILENT", "(\\Deleted)")[0] == "OK"
    assert b.expunge()[0] == "OK"
    assert b.uid("STORE", "6", "+FLAGS.SILENT", "($Work)")[0] == "OK"
    b.logout()
    svc.stop()

    svc = service()
    a = imaplib_client(svc)
    assert a.enable("QRESYNC")[0] == "OK"
    vanished, fetched = _resync(a, validity, known)
    assert vanished == ["(EARLIER) 3,5"]
    assert [re.sub(r" MODSEQ \(\d+\)", "", f) for f in fetched] == [
        "2 (UID 2 FLAGS (\\Flagged))", "4 (UID 6 FLAGS ($Work))"]
    now = int(a.untagged_responses["HIGHESTMODSEQ"][0])
    assert now > known
    # and a resync from where it is now: nothing
    assert _resync(a, validity, now) == ([], [])
    a.logout()
