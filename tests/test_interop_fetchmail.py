"""Interop: fetchmail (Debian) against the real server: POP3 with STLS and POP3S,
keep/no-keep, UIDL; IMAP over TLS, keep/no-keep, and as a daemon in IDLE.

Run as subprocesses against clevermail.service.MailService on 127.0.0.1 port 0 with
HOME=tmp_path/home, the trustme CA passed to it and a 30 s timeout (interop_helpers.py).
fetchmail does not match IP addresses in certificates, so it checks the name
"localhost" (in the certificate's SAN and CN) through sslcommonname.  A test skips,
saying why, when fetchmail is not installed (`.ci/run` installs it on Debian).
"""

import getpass
import os
import signal
import subprocess
import time

import pytest

from interop_helpers import (ALICE, BOB, IMAP, PASSWORD, lf, need, run, strip_trace,  # noqa: F401
                             subject, wire_message,
                             ca, home, server, tls)         # (the last four: fixtures)

pytestmark = pytest.mark.interop


def fetchmail_rc(home, server, ca, *, protocol="pop3", kind="pop3", user=BOB, options=""):
    """A fetchmailrc (mode 0600) polling `kind` with certificate checks against the
    trustme CA; the server name checked is "localhost" (in the certificate's SAN and CN)."""
    ssl = "ssl " if kind in ("pop3s", "imaps") else ""
    rc = home / f"fetchmailrc-{kind}"
    rc.write_text(
        "set no bouncemail\n"
        f"poll 127.0.0.1 service {server.port(kind)} protocol {protocol}\n"
        f'  user "{user}" there with password "{PASSWORD}" is "{getpass.getuser()}" here\n'
        f'  {ssl}sslproto "tls1.2+" sslcertck sslcommonname "localhost" sslcertfile "{ca}"\n'
        f"  {options}\n")
    rc.chmod(0o600)
    return str(rc)


def per_message_mda(home, name="out"):
    """An MDA writing each message to its own numbered file in home/<name>/."""
    out = home / name
    out.mkdir(exist_ok=True)
    script = home / "mda.sh"
    script.write_text('#!/bin/sh\nn=$(ls "$1" | wc -l)\nexec cat > "$1/$(printf %03d "$n")"\n')
    script.chmod(0o755)
    return f"{script} {out}", out


def fetched(out):
    return [strip_trace((out / name).read_bytes()) for name in sorted(os.listdir(out))]


def fetchmail(rc, home, *args, check_status=(0,)):
    r = run([need("fetchmail"), "-f", rc, "-v", "--nosyslog", *args], home, check=False)
    assert r.returncode in check_status, str(r)
    return r


def test_fetchmail_pop3_stls_keep_uidl(server, home, ca):
    for n in (1, 2, 3):
        server.store.deliver_local("", [BOB], wire_message(n, to=BOB))
    # as stored, less our Return-Path (fetchmail's trace is split off the same way)
    stored = {subject(d): strip_trace(d)[1] for d in server.messages(BOB).values()}
    mda, out = per_message_mda(home)
    rc = fetchmail_rc(home, server, ca)
    r = fetchmail(rc, home, "--keep", "--uidl", "--mda", mda)
    assert "POP3> STLS" in r.output and "upgrade to TLS succeeded" in r.output
    assert "POP3> UIDL" in r.output
    got = fetched(out)
    assert [subject(m) for _, m in got] == ["message 1", "message 2", "message 3"]
    for trace, message in got:
        assert b"with POP3 (fetchmail" in trace
        assert message == stored[subject(message)]     # byte for byte, lone '.' included
    assert len(server.messages(BOB)) == 3              # --keep left them on the server

    # UIDL: a second run finds nothing new (fetchmail exit 1 = no mail)
    fetchmail(rc, home, "--keep", "--uidl", "--mda", mda, check_status=(1,))
    assert len(os.listdir(out)) == 3
    # message 1 deleted elsewhere, message 4 arrives: only 4 is fetched, positions shifted
    with IMAP(server.port("imap"), BOB) as imap:
        imap.uid_expunge("INBOX", imap.messages("INBOX")["message 1"][2])
    server.store.deliver_local("", [BOB], wire_message(4, to=BOB))
    fetchmail(rc, home, "--keep", "--uidl", "--mda", mda)
    got = fetched(out)
    assert [subject(m) for _, m in got] == ["message 1", "message 2", "message 3", "message 4"]


def test_fetchmail_pop3s_nokeep_into_one_file(server, home, ca):
    """POP3S (implicit TLS), --mda 'cat >> file', --nokeep: mailbox emptied."""
    sent = [wire_message(n, to=BOB) for n in (1, 2)]
    for wire in sent:
        server.store.deliver_local("", [BOB], wire)
    rc = fetchmail_rc(home, server, ca, kind="pop3s")
    mbox = home / "mbox"
    r = fetchmail(rc, home, "--nokeep", "--mda", f"cat >> {mbox}")
    assert "POP3> DELE 2" in r.output and "POP3> QUIT" in r.output
    data = mbox.read_bytes()
    # two messages appended one after the other, each behind fetchmail's Received
    parts = data.split(b"Received: from 127.0.0.1")
    assert len(parts) == 3 and parts[0] == b""
    assert [strip_trace(b"Received:" + p)[1] for p in parts[1:]] == [lf(w) for w in sent]
    assert server.messages(BOB) == {}


def test_fetchmail_imap_keep_then_nokeep(server, home, ca):
    for n in (1, 2):
        server.store.deliver_local("", [ALICE], wire_message(n))
    stored = {subject(d): strip_trace(d)[1] for d in server.messages(ALICE).values()}
    mda, out = per_message_mda(home)
    rc = fetchmail_rc(home, server, ca, protocol="imap", kind="imap", user=ALICE)
    r = fetchmail(rc, home, "--keep", "--mda", mda)
    assert "IMAP> A0001 STARTTLS" in r.output and "upgrade to TLS succeeded" in r.output
    got = fetched(out)
    assert [m for _, m in got] == [stored["message 1"], stored["message 2"]]
    assert all(b"with IMAP (fetchmail" in t for t, _ in got)
    with IMAP(server.port("imap")) as imap:
        assert {s: f for s, (f, _, _) in imap.messages("INBOX").items()} == {
            "message 1": {"\\Seen"}, "message 2": {"\\Seen"}}
    fetchmail(rc, home, "--keep", "--mda", mda, check_status=(1,))   # all seen: nothing new
    # --nokeep --all: fetched again, then flagged \Deleted and expunged
    fetchmail(rc, home, "--nokeep", "--all", "--mda", mda)
    assert [m for _, m in fetched(out)][2:] == [stored["message 1"], stored["message 2"]]
    assert server.messages(ALICE) == {}


def test_fetchmail_imap_idle(server, home, ca):
    """fetchmail as a daemon in IMAP IDLE: a message sent by SMTP is fetched at once."""
    need("fetchmail")
    mda, out = per_message_mda(home)
    rc = fetchmail_rc(home, server, ca, protocol="imap", kind="imaps", user=ALICE,
                      options=f'nokeep idle mda "{mda}"')
    log = open(home / "fetchmail.log", "wb")
    proc = subprocess.Popen(["fetchmail", "-f", rc, "-N", "-d", "60", "-v", "--nosyslog"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=str(home),
                            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                 "HOME": str(home), "LC_ALL": "C.UTF-8"})
    try:
        def wait_for(pred, what, limit=15):
            deadline = time.monotonic() + limit
            while not pred():
                assert proc.poll() is None, (home / "fetchmail.log").read_text()
                assert time.monotonic() < deadline, f"waiting for {what}:\n" + \
                    (home / "fetchmail.log").read_text(errors="replace")
                time.sleep(0.05)

        wait_for(lambda: b"+ idling" in (home / "fetchmail.log").read_bytes(), "IDLE")
        import smtplib
        with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as s:
            s.sendmail("sender@remote.test", [ALICE], wire_message(7, "pushed"))
        wait_for(lambda: len(os.listdir(out)) == 1 and server.messages(ALICE) == {},
                 "the message to be fetched and expunged")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    (trace, message), = fetched(out)
    assert message == lf(wire_message(7, "pushed"))
    assert b"with IMAP (fetchmail" in trace and b"with ESMTP" in trace
