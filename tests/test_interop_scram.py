"""Interop: AUTHENTICATE SCRAM-SHA-256 with a SCRAM client that is not ours: mbsync
(isync) through Cyrus SASL's scram plugin (libsasl2-modules), over STARTTLS, against
a real MailService whose account got its SCRAM keys as `clevermail user passwd`
writes them.  A wrong password fails the same way; the server's log shows which
mechanism each login used.  Skips when mbsync or the plugin is missing (.ci/run
installs isync, whose libsasl2-modules carries the plugin)."""

import glob
import logging

import pytest

from clevermail.accounts import AccountStore
from interop_helpers import ALICE, IMAP, PASSWORD, Server, need, run, tls_files
from components import component_missing

pytestmark = pytest.mark.interop


@pytest.fixture
def server(thread_guard, tmp_path):
    need("mbsync")
    if not glob.glob("/usr/lib/*/sasl2/libscram.so*"):
        component_missing("Cyrus SASL's scram plugin is not installed (libsasl2-modules)")
    (tmp_path / "tls").mkdir()
    cert, key, ca = tls_files(tmp_path / "tls")
    srv = Server(tmp_path / "srv", cert, key)
    # the keys a password set through the CLI gets (accounts.set_password), for every
    # account: SCRAM is offered only once all have them
    accounts = AccountStore(str(tmp_path / "srv" / "users.ini"), ["example.test"])
    for address in accounts.list():
        accounts.set_password(address, PASSWORD)
    assert ALICE in accounts.list() and accounts.has_scram()
    srv.ca = ca
    yield srv
    srv.stop()


def mbsyncrc(home, server, password):
    mail = home / "Mail"
    mail.mkdir(exist_ok=True)
    rc = home / "mbsyncrc"
    rc.write_text(f"""\
IMAPAccount cm
Host localhost
Port {server.port("imap")}
User {ALICE}
Pass "{password}"
SSLType STARTTLS
CertificateFile {server.ca}
AuthMechs SCRAM-SHA-256

IMAPStore remote
Account cm

MaildirStore local
Path {mail}/
Inbox {mail}/INBOX

Channel cm
Far :remote:
Near :local:
Patterns INBOX
Create Near
SyncState *
""")
    return rc


def test_mbsync_logs_in_with_scram(server, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="clevermail")
    home = tmp_path / "home"
    home.mkdir()
    with IMAP(server.port("imap")) as imap:
        imap.append("INBOX", b"From: a@example.test\r\nSubject: over scram\r\n\r\nbody\r\n")
    r = run([need("mbsync"), "-c", str(mbsyncrc(home, server, PASSWORD)), "-V", "-a"], home)
    assert "Authenticating with SASL mechanism SCRAM-SHA-256" in r.output, r.output
    files = glob.glob(str(home / "Mail" / "INBOX" / "*" / "*"))
    assert len(files) == 1 and b"Subject: over scram" in open(files[0], "rb").read()
    assert f"auth ok user={ALICE} (SCRAM-SHA-256)" in caplog.text

    r = run([need("mbsync"), "-c", str(mbsyncrc(home, server, "not the password")), "-V", "-a"], home,
            check=False)
    assert r.returncode != 0
    assert f"auth failed user='{ALICE}' (SCRAM-SHA-256)" in caplog.text
    assert PASSWORD not in caplog.text
