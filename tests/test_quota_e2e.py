"""End to end, mailbox quotas with a real MailService on loopback port 0: smtplib
gets 452 4.2.2 at RCPT when the mailbox is full and 552 5.2.2 when the declared
SIZE can never fit; an over-quota copy of a message with other recipients waits
in the relay queue and is delivered once the quota is raised by another process
(the CLI), or bounced to the sender when it can never fit.  imaplib and
imapclient read GETQUOTAROOT/GETQUOTA after deliveries and changes by other
processes, meet NO [OVERQUOTA] on APPEND and COPY, and read STATUS (SIZE)."""

import email
import imaplib
import os
import smtplib
import subprocess
import sys

import pytest

from clevermail.service import MailService
from conftest import write_config
from clevermail.config import load_config
from fakes import ALICE, BOB, PASSWORD, make_accounts
from waiting import wait_for

pytestmark = pytest.mark.e2e

BIG = b"Subject: filler\r\n\r\n" + (b"x" * 98 + b"\r\n") * 20   # 2000+ bytes, short lines


@pytest.fixture
def service(tmp_path, thread_guard):
    path = write_config(tmp_path, relay={"interval": 0.2, "retry_schedule": [1]},
                        server={"trusted_networks": ["127.0.0.1/32"]})
    make_accounts(tmp_path / "users.ini")
    svc = MailService(load_config(path)).start()
    svc.config_path = path
    yield svc
    svc.stop()


def cli(service, *args):
    """`clevermail` in a process of its own, as an operator runs it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    done = subprocess.run([sys.executable, "-m", "clevermail", "--config", service.config_path, *args],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def smtp(service):
    return smtplib.SMTP("127.0.0.1", service.port("smtp"), local_hostname="client.test", timeout=10)


def send_unsized(service, sender, rcpts, data):
    """MAIL without SIZE= (sendmail declares it): the size is known after DATA only."""
    with smtp(service) as s:
        s.ehlo()
        assert s.mail(sender)[0] == 250
        for rcpt in rcpts:
            assert s.rcpt(rcpt)[0] == 250
        return s.data(data)


def messages(service, address, sub="new"):
    root = service.store.ensure_user(address)
    return [open(os.path.join(root, sub, n), "rb").read() for n in sorted(os.listdir(os.path.join(root, sub)))]


def test_smtp_rcpt_refusals(service):
    service.store.deliver_local("", [ALICE], BIG)
    used = service.store.quota.usage(ALICE).storage
    out = cli(service, "user", "quota", ALICE, "--storage", str(used))
    assert f"storage {used} used, limit {used} (own)" in out
    with smtp(service) as s:
        s.ehlo()
        s.mail("someone@remote.test")
        assert s.rcpt(ALICE) == (452, b"4.2.2 Mailbox full, try again later")
        assert s.rcpt(BOB)[0] == 250
        s.rset()
        s.mail("someone@remote.test", [f"SIZE={used + 1}"])
        code, text = s.rcpt(ALICE)
        assert (code, text[:6]) == (552, b"5.2.2 ")
    cli(service, "user", "quota", ALICE, "--none")
    with smtp(service) as s:
        assert s.sendmail(BOB, [ALICE], BIG) == {}
    assert len(messages(service, ALICE)) == 2


def data_reply(service, rcpts, data=BIG):
    """(code, text) after DATA of a message whose SIZE was not declared."""
    return send_unsized(service, "someone@remote.test", rcpts, data)


FULL_NOW = (452, b"4.2.2 Mailbox full, try again later")
NEVER_FITS = (552, b"5.2.2 Mailbox full: the message is larger than the mailbox quota")


def test_after_data_codes(service):
    """After DATA (no SIZE declared): a mailbox that is full now 452 4.2.2, one that
    can never hold this message (it is larger than the limit) 552 5.2.2 (RFC 3463);
    with several recipients one reply for all: 552 only when no copy could ever be
    stored, 452 while one may fit later (a retry then stores it and bounces the
    others' copies through the queue)."""
    service.store.deliver_local("", [BOB], BIG)
    used = service.store.quota.usage(BOB).storage
    cli(service, "user", "quota", BOB, "--storage", str(used + 1000))      # full now
    cli(service, "user", "quota", ALICE, "--storage", "1000")              # never fits
    assert data_reply(service, [BOB]) == FULL_NOW
    assert data_reply(service, [ALICE]) == NEVER_FITS
    assert data_reply(service, [BOB, ALICE]) == FULL_NOW
    assert data_reply(service, [ALICE, BOB]) == FULL_NOW
    cli(service, "user", "quota", BOB, "--messages", "1", "--storage", "1M")  # full by count:
    with smtp(service) as s:                                                # known at RCPT
        s.ehlo()
        s.mail("someone@remote.test")
        assert s.rcpt(BOB) == FULL_NOW
    cli(service, "user", "quota", BOB, "--messages", "none")
    inbox = service.store.open_folder(BOB, "INBOX")
    try:
        inbox.expunge(inbox.uids)               # Bob's mailbox empty...
    finally:
        service.store.release_folder(inbox)
    cli(service, "user", "quota", BOB, "--storage", "1500")                # ...and too small
    assert data_reply(service, [ALICE, BOB]) == NEVER_FITS
    assert messages(service, ALICE) == [] == messages(service, BOB)
    assert service.queue.list() == []
    # BDAT ends the same way
    with smtp(service) as s:
        s.ehlo()
        s.mail("someone@remote.test")
        s.rcpt(ALICE)
        s.send(b"BDAT %d LAST\r\n" % len(BIG) + BIG)
        assert s.getreply() == NEVER_FITS


def test_queued_copy_delivered_when_room_is_made(service):
    service.store.deliver_local("", [ALICE], BIG)
    used = service.store.quota.usage(ALICE).storage
    # room for the message alone, not beside what is there; the sender is local: no
    # report may leave for a domain the tests have no DNS for
    cli(service, "user", "quota", ALICE, "--storage", str(used + 1000))
    assert send_unsized(service, BOB, [ALICE, BOB], BIG)[0] == 250
    assert len(messages(service, BOB)) == 1
    assert len(messages(service, ALICE)) == 1      # its copy waits in the queue
    assert wait_for(lambda: service.queue.list() and service.queue.list()[0].recipients[0].attempts >= 1,
                    timeout=10)
    assert len(messages(service, ALICE)) == 1      # tried, still full: deferred
    cli(service, "user", "quota", ALICE, "--storage", "1M")
    assert wait_for(lambda: len(messages(service, ALICE)) == 2, timeout=15)
    assert wait_for(lambda: service.queue.list() == [], timeout=10)


def test_notify_success_of_a_deferred_copy_is_sent_when_it_is_delivered(service):
    """RFC 3461: "delivered" only once the copy is in the mailbox, not when it was
    queued for lack of room; the queued copy keeps its NOTIFY and ORCPT."""
    service.store.deliver_local("", [ALICE], BIG)
    used = service.store.quota.usage(ALICE).storage
    cli(service, "user", "quota", ALICE, "--storage", str(used + 1000))
    with smtp(service) as s:
        s.ehlo()
        assert s.mail(BOB)[0] == 250
        assert s.rcpt(ALICE, ["NOTIFY=SUCCESS", f"ORCPT=rfc822;{ALICE}"])[0] == 250
        assert s.rcpt(BOB)[0] == 250
        assert s.data(BIG)[0] == 250
    (entry,) = service.queue.list()
    assert [(r.address, r.notify, r.orcpt) for r in entry.recipients] == [(ALICE, ["SUCCESS"], f"rfc822;{ALICE}")]
    assert wait_for(lambda: service.queue.list()[0].recipients[0].attempts >= 1, timeout=10)
    assert len(messages(service, BOB)) == 1          # his copy; no report: ALICE's copy waits
    cli(service, "user", "quota", ALICE, "--storage", "1M")
    assert wait_for(lambda: len(messages(service, BOB)) == 2, timeout=15)
    report = email.message_from_bytes(messages(service, BOB)[1])
    assert report.get_content_type() == "multipart/report"
    (group,) = report.get_payload()[1].get_payload()[1:]
    assert (group["Action"], group["Final-Recipient"], group["Original-Recipient"]) == (
        "delivered", f"rfc822; {ALICE}", f"rfc822;{ALICE}")
    assert len(messages(service, ALICE)) == 2


def test_copy_that_can_never_fit_is_bounced(service):
    cli(service, "user", "quota", ALICE, "--storage", "1000")
    assert send_unsized(service, BOB, [ALICE, BOB], BIG)[0] == 250
    assert wait_for(lambda: len(messages(service, BOB)) == 2, timeout=15)
    report = email.message_from_bytes(messages(service, BOB)[1])
    assert report.get_content_type() == "multipart/report"
    text = report.as_string()
    assert f"Final-Recipient: rfc822; {ALICE}" in text and "5.2.2" in text
    assert messages(service, ALICE) == []


# -- IMAP ----------------------------------------------------------------------------------
def imap(service):
    client = imaplib.IMAP4("127.0.0.1", service.port("imap"), timeout=10)
    client.login(ALICE, PASSWORD)
    return client


def test_imap_quota_after_deliveries_and_other_processes(service):
    cli(service, "user", "quota", ALICE, "--storage", "100K", "--messages", "10")
    with smtp(service) as s:
        for _ in range(3):
            s.sendmail(BOB, [ALICE], BIG)
    u = service.store.quota.usage(ALICE)
    assert u.messages == 3
    client = imap(service)
    try:
        assert "QUOTA" in client.capabilities and "STATUS=SIZE" in client.capabilities
        typ, data = client.getquotaroot("INBOX")
        assert typ == "OK"
        assert data == [[b'"INBOX" ""'], [f'"" (STORAGE {-(-u.storage // 1024)} 100 MESSAGE 3 10)'.encode()]]
        # other processes: the operator lowers the limit, `clevermail import` adds a
        # message (both write files the server shares: users.ini, the quota ledger)
        cli(service, "user", "quota", ALICE, "--messages", "4")
        root = service.store.user_root(ALICE)
        dropped = os.path.join(os.path.dirname(service.config_path), "dropped.mbox")
        with open(dropped, "wb") as f:
            f.write(b"From someone@remote.test Thu Dec  3 10:00:00 2026\n"
                    b"Subject: dropped in\n\n" + b"y" * 3000 + b"\n")
        cli(service, "import", ALICE, dropped)
        u = service.store.quota.usage(ALICE)
        assert u.messages == 4
        assert client.getquota('""') == ("OK", [f'"" (STORAGE {-(-u.storage // 1024)} 100 MESSAGE 4 4)'.encode()])
        typ, data = client.append("INBOX", None, None, BIG)
        assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]")
        client.select("INBOX")
        typ, data = client.copy("1", "Trash")
        assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]")
        typ, _ = client._simple_command("MOVE", "1:2", "Trash")
        assert typ == "OK"                       # the same quota root: allowed at the limit
        typ, data = client.status("Trash", "(MESSAGES SIZE)")
        sizes = sum(os.path.getsize(os.path.join(root, ".Trash", "cur", n))
                    for n in os.listdir(os.path.join(root, ".Trash", "cur")))
        lf = sum(open(os.path.join(root, ".Trash", "cur", n), "rb").read().count(b"\n")
                 for n in os.listdir(os.path.join(root, ".Trash", "cur")))
        assert data == [f'"Trash" (MESSAGES 2 SIZE {sizes + lf})'.encode()]
    finally:
        client.logout()


def test_imap_move_over_quota(service):
    """A MOVE adds nothing to the one quota root: allowed within quota; refused NO
    [OVERQUOTA] when the user is over quota already (the limit was lowered), except
    into \\Trash, so that the user can still clean up."""
    for _ in range(3):
        service.store.deliver_local("", [ALICE], BIG)
    client = imap(service)
    try:
        client.select("INBOX")
        assert client._simple_command("MOVE", "1", "Archive")[0] == "OK"
        cli(service, "user", "quota", ALICE, "--messages", "2")
        typ, data = client._simple_command("MOVE", "1", "Archive")
        assert (typ, data) == ("NO", [b"[OVERQUOTA] Mailbox quota exceeded"])
        typ, data = client.uid("MOVE", "3", "Drafts")
        assert (typ, data) == ("NO", [b"[OVERQUOTA] Mailbox quota exceeded"])
        assert client.status("Drafts", "(MESSAGES)")[1] == [b'"Drafts" (MESSAGES 0)']
        typ, _ = client._simple_command("MOVE", "1:2", "Trash")
        assert typ == "OK"
        assert client.status("Trash", "(MESSAGES)")[1] == [b'"Trash" (MESSAGES 2)']
        client.select("Trash")
        client.store("1", "+FLAGS", "\\Deleted")
        client.expunge()                         # room again: within quota
        client.select("Archive")
        assert client._simple_command("MOVE", "1", "INBOX")[0] == "OK"
    finally:
        client.logout()
    assert service.store.quota.usage(ALICE).messages == 2


def test_imapclient_quota(service):
    imapclient = pytest.importorskip("imapclient")
    cli(service, "user", "quota", ALICE, "--storage", "1M")
    service.store.deliver_local("", [ALICE], BIG)
    with imapclient.IMAPClient("127.0.0.1", port=service.port("imap"), ssl=False, timeout=10) as c:
        c.login(ALICE, PASSWORD)
        roots, quotas = c.get_quota_root("INBOX")
        assert roots.quota_roots == [""]
        assert [(q.quota_root, q.resource, q.limit) for q in quotas] == [("", "STORAGE", 1024)]
        assert quotas[0].usage == -(-service.store.quota.usage(ALICE).storage // 1024)
        with pytest.raises(imapclient.exceptions.IMAPClientError, match="NOPERM"):
            c.set_quota([imapclient.imapclient.Quota("", "STORAGE", 0, 10)])
