"""Interop: real Debian mail clients against the real server.

swaks (SMTP: plain MX, pipelining, STARTTLS, implicit TLS, AUTH PLAIN/LOGIN, a message
with lone '.' lines), mbsync from isync and offlineimap (IMAP sync of a mailbox with
folders to a local Maildir and back: flags, new folders, deletions) (fetchmail:
test_interop_fetchmail.py; mutt: test_interop_mutt.py) run as subprocesses against
clevermail.service.MailService on 127.0.0.1 port 0.  Every client runs with
HOME=tmp_path/home, its config and state there, the trustme CA passed to it, and a
30 s timeout.  TLS clients check the name "localhost" (in the certificate's SAN and
CN; fetchmail through sslcommonname, the others by connecting to it): fetchmail, mbsync
and offlineimap do not match IP addresses in certificates.  A test
skips, saying why, when its client is not installed (`.ci/run` installs them on Debian
when it can).
"""

import os
import re

import pytest

from interop_helpers import (ALICE, BOB, IMAP, PASSWORD, delivered, lf, local_maildir,  # noqa: F401
                             make_local_folder, need, run, set_local_flags, wire_message,
                             ca, home, server, tls)         # (the last four: fixtures)

pytestmark = pytest.mark.interop

LONE_DOT_BODY = b"first line\r\n.\r\n..two dots\r\n.starts with a dot\r\n \r\nlast line"


# == swaks ====================================================================================
def swaks(server, home, *args, kind="smtp", check=True):
    return run([need("swaks"), "--server", f"127.0.0.1:{server.port(kind)}",
                "--ehlo", "client.test", "--timeout", "20", *args], home, check=check)


def test_swaks_plain_pipelining_lone_dot(server, home):
    """Plain MX session, PIPELINING, several recipients (one unknown), dot-stuffing."""
    data = b"Subject: lone dot\r\nFrom: sender@remote.test\r\n\r\n" + LONE_DOT_BODY
    (home / "msg.eml").write_bytes(data)
    r = swaks(server, home, "--pipeline", "--from", "sender@remote.test",
              "--to", f"{ALICE},nobody@example.test,{BOB}", "--data", "@msg.eml")
    out = r.output.replace("\r", "")     # swaks echoes the data lines as read, with CR
    assert "250-PIPELINING" in out
    # swaks sent the commands in one batch, then read the replies
    assert out.index("-> DATA") < out.index("250 2.1.0")
    assert "550 5.1.1" in out                        # nobody@: refused, the others accepted
    assert "\n -> ..\n" in out and "-> ...two dots" in out   # swaks dot-stuffed on the wire
    for address in (ALICE, BOB):
        (trace, stored), = delivered(server, address).values()
        assert stored == lf(data) + b"\n"            # un-stuffed, byte for byte
        assert trace.startswith(b"Return-Path: <sender@remote.test>\nReceived: from client.test")
    assert server.messages("nobody@example.test") == {}


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks_starttls_auth(server, home, ca, mech):
    data = f"Subject: auth {mech}\r\nFrom: {ALICE}\r\n\r\n".encode() + LONE_DOT_BODY
    (home / "msg.eml").write_bytes(data)
    r = swaks(server, home, "--tls", "--tls-verify", "--tls-ca-path", ca, "--auth", mech,
              "--auth-user", ALICE, "--auth-password", PASSWORD, "--from", ALICE, "--to", BOB,
              "--data", "@msg.eml", kind="submission")
    assert "=== TLS started" in r.output and "235 2.7.0" in r.output
    (trace, stored), = delivered(server, BOB).values()
    # an authenticated message is completed (RFC 6409 8: Date, Message-ID at the end of
    # the header section) and DKIM-signed (two fields on top); the rest byte for byte
    head, _, body = stored.partition(b"\n\n")
    original_head, _, original_body = lf(data).partition(b"\n\n")
    assert body == original_body + b"\n"
    fields = re.split(rb"\n(?![ \t])", head)
    assert [f.split(b":")[0] for f in fields] == [b"DKIM-Signature", b"DKIM-Signature", b"Subject",
                                                  b"From", b"Date", b"Message-ID"]
    assert b"\n".join(fields[2:4]) == original_head
    assert b"(TLSv1." in trace and b"with ESMTPSA" in trace


def test_swaks_implicit_tls_and_refusals(server, home, ca):
    r = swaks(server, home, "--tls-on-connect", "--tls-verify", "--tls-ca-path", ca,
              "--auth", "PLAIN", "--auth-user", ALICE, "--auth-password", PASSWORD,
              "--from", ALICE, "--to", BOB, "--body", "over implicit TLS",
              "--header", "Subject: smtps", kind="submissions")
    assert "=== TLS started" in r.output
    assert b"\n\nover implicit TLS\n" in delivered(server, BOB)["smtps"][1]
    # a wrong password, and no AUTH at all on submission: refused, nothing delivered
    bad = swaks(server, home, "--auth", "LOGIN", "--auth-user", ALICE, "--auth-password", "wrong",
                "--from", ALICE, "--to", BOB, "--body", "x", kind="submission", check=False)
    assert bad.returncode == 28 and "535 5.7.8" in bad.output, str(bad)
    anon = swaks(server, home, "--from", ALICE, "--to", BOB, "--body", "x", kind="submission",
                 check=False)
    assert anon.returncode == 23 and "530 5.7.0" in anon.output, str(anon)
    assert len(server.messages(BOB)) == 1


# == mbsync (isync) ===========================================================================
def seed_mailbox(server):
    with IMAP(server.port("imap")) as imap:
        imap.create("Work")
        imap.append("INBOX", wire_message(1, "inbox 1"), "\\Flagged")
        imap.append("INBOX", wire_message(2, "inbox 2"))
        imap.append("INBOX", wire_message(3, "inbox 3"))
        imap.append("Work", wire_message(4, "work 1"), "\\Seen")
        imap.append("Work", wire_message(5, "work 2"), "\\Seen")


def without_tuid(data):
    """mbsync adds an X-TUID header to the messages it copies into the Maildir."""
    head, sep, body = data.partition(b"\n\n")
    lines = (head + b"\n").splitlines(keepends=True)
    return b"".join(l for l in lines if not l.startswith(b"X-TUID: ")) + b"\n" + body


def assert_same(local, remote):
    """Local Maildir files hold exactly the server's messages (LF line ends)."""
    assert set(local) == set(remote)
    for subj, (_, data, _) in local.items():
        assert without_tuid(data) == without_tuid(lf(remote[subj][1])), subj


def test_mbsync_round_trip(server, home, ca):
    need("mbsync")
    seed_mailbox(server)
    mail = home / "Mail"
    mail.mkdir()
    rc = home / "mbsyncrc"
    rc.write_text(f"""\
IMAPAccount cm
Host localhost
Port {server.port("imap")}
User {ALICE}
Pass "{PASSWORD}"
SSLType STARTTLS
CertificateFile {ca}

IMAPStore remote
Account cm

MaildirStore local
Path {mail}/
Inbox {mail}/INBOX
SubFolders Verbatim

Channel cm
Far :remote:
Near :local:
Patterns *
Create Both
Remove Both
Expunge Both
SyncState *
""")

    def mbsync():
        return run([need("mbsync"), "-c", str(rc), "-V", "-a"], home)

    r = mbsync()
    assert "Connection is now encrypted" in r.output
    with IMAP(server.port("imap")) as imap:
        remote_inbox, remote_work = imap.messages("INBOX"), imap.messages("Work")
    local_inbox, local_work = local_maildir(mail / "INBOX"), local_maildir(mail / "Work")
    assert_same(local_inbox, remote_inbox)
    assert_same(local_work, remote_work)
    assert {s: f for s, (f, _, _) in local_inbox.items()} == {"inbox 1": "F", "inbox 2": "", "inbox 3": ""}
    assert {f for f, _, _ in local_work.values()} == {"S"}

    # local changes: a flag, a deletion, a new folder, a new message
    set_local_flags(local_inbox["inbox 2"][2], "RS")
    os.unlink(local_inbox["inbox 3"][2])
    plan = wire_message(8, "project plan", body="plan\r\n.\r\nend\r\n")
    make_local_folder(mail, "Projects", [("1.local", lf(plan))])
    (mail / "INBOX" / "cur" / "2.local:2,S").write_bytes(lf(wire_message(9, "local new")))
    # server changes at the same time: a flag, an expunge, a delivery
    with IMAP(server.port("imap")) as imap:
        imap.uid_store("INBOX", remote_inbox["inbox 1"][2], "+FLAGS", "\\Seen")
        imap.uid_expunge("Work", remote_work["work 1"][2])
    server.store.deliver_local("", [ALICE], wire_message(10, "server new"))

    mbsync()
    with IMAP(server.port("imap")) as imap:
        assert "Projects" in imap.folders()
        remote_inbox = imap.messages("INBOX")
        projects = imap.messages("Projects")
        remote_work = imap.messages("Work")
    assert {s: f for s, (f, _, _) in remote_inbox.items()} == {
        "inbox 1": {"\\Flagged", "\\Seen"}, "inbox 2": {"\\Answered", "\\Seen"},
        "local new": {"\\Seen"}, "server new": set()}
    # uploaded byte for byte (mbsync adds its X-TUID header to every copy it makes)
    assert without_tuid(lf(projects["project plan"][1])) == lf(plan)
    assert without_tuid(lf(remote_inbox["local new"][1])) == lf(wire_message(9, "local new"))
    local_inbox, local_work = local_maildir(mail / "INBOX"), local_maildir(mail / "Work")
    assert_same(local_inbox, remote_inbox)
    assert_same(local_work, remote_work)
    assert set(local_work) == {"work 2"}
    assert local_inbox["inbox 1"][0] == "FS"


# == offlineimap ==============================================================================
def test_offlineimap_round_trip(server, home, ca):
    """offlineimap over IMAPS with UTF-8 folder names (modified UTF-7 on the wire)."""
    need("offlineimap")
    with IMAP(server.port("imap")) as imap:
        imap.append("INBOX", wire_message(1, "inbox 1"))
        imap.append("INBOX", wire_message(2, "inbox 2"), "\\Seen")
        imap.create("Entw&APw-rfe")
        imap.append("Entw&APw-rfe", wire_message(3, "draft"), "\\Draft")
    mail = home / "Mail"
    rc = home / "offlineimaprc"
    rc.write_text(f"""\
[general]
accounts = cm
metadata = {home}/offlineimap-state
ui = basic

[Account cm]
localrepository = local
remoterepository = remote
utf8foldernames = yes

[Repository local]
type = Maildir
localfolders = {mail}

[Repository remote]
type = IMAP
remotehost = localhost
remoteport = {server.port("imaps")}
remoteuser = {ALICE}
remotepass = {PASSWORD}
ssl = yes
sslcacertfile = {ca}
""")

    def offlineimap():
        r = run([need("offlineimap"), "-c", str(rc), "-o"], home)
        assert "ERROR" not in r.output, str(r)
        return r

    offlineimap()
    with IMAP(server.port("imap")) as imap:
        remote_inbox, drafts = imap.messages("INBOX"), imap.messages("Entw&APw-rfe")
    local_inbox, local_drafts = local_maildir(mail / "INBOX"), local_maildir(mail / "Entwürfe")
    assert_same(local_inbox, remote_inbox)
    assert_same(local_drafts, drafts)
    assert local_inbox["inbox 2"][0] == "S" and local_drafts["draft"][0] == "D"

    set_local_flags(local_inbox["inbox 1"][2], "F")
    os.unlink(local_inbox["inbox 2"][2])
    note = wire_message(4, "note")
    make_local_folder(mail, "Ré", [("1.local", lf(note))])
    offlineimap()
    with IMAP(server.port("imap")) as imap:
        assert "R&AOk-" in imap.folders()
        assert imap.messages("R&AOk-")["note"][1] == note
        inbox = imap.messages("INBOX")
    assert {s: f for s, (f, _, _) in inbox.items()} == {"inbox 1": {"\\Flagged"}}
