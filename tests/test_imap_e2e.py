"""End-to-end IMAP: stdlib imaplib (and smtplib for delivery) against the real
IMAPServer listeners of clevermail.service.MailService on 127.0.0.1 port 0, in
tmp_path: a plain listener offering STARTTLS and an implicit-TLS one, with a trustme
certificate for 127.0.0.1.  IDLE waits are bounded by socket timeouts; there are no
timing assertions.
"""

import imaplib
import smtplib
import ssl

import pytest

from imap_helpers import ALICE, BOB, PASSWORD, make_accounts, message

from clevermail.service import MailService
from conftest import make_config
from fakes import RETURN_PATH

pytestmark = pytest.mark.e2e

WAIT = 5.0   # bound for anything awaited from the server (IDLE); never asserted on


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_path))
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return str(cert_path), str(key_path), client_ctx


class Env:
    """What a test needs: the store, the ports, a client TLS context."""

    store = None
    imap_port = imaps_port = smtp_port = None
    client_ctx = None


def _service(tmp_path, cert, key):
    conf = make_config(tmp_path, tls={"certificate": cert, "key": key},
                       imap={"listen": ["127.0.0.1:0"], "tls_listen": ["127.0.0.1:0"]},
                       limits={"auth_failure_delay": 0, "imap_timeout": 30})
    make_accounts(conf.server.users_file)
    service = MailService(conf).start()
    env = Env()
    env.store = service.store
    env.imap_port, env.imaps_port = service.port("imap"), service.port("imaps")
    env.smtp_port = service.port("smtp")
    return env, service.stop


@pytest.fixture
def env(thread_guard, tmp_path, tls_files):
    cert, key, client_ctx = tls_files
    env, stop = _service(tmp_path, cert, key)
    env.client_ctx = client_ctx
    clients = []
    env.clients = clients
    yield env
    for c in clients:
        try:
            c.shutdown()
        except OSError:
            pass
    stop()


def connect(env, tls=False):
    if tls:
        c = imaplib.IMAP4_SSL("127.0.0.1", env.imaps_port, ssl_context=env.client_ctx, timeout=10)
    else:
        c = imaplib.IMAP4("127.0.0.1", env.imap_port, timeout=10)
    env.clients.append(c)
    return c


@pytest.fixture
def imap(env):
    """An imaplib client logged in as alice with INBOX selected (2 messages)."""
    env.store.deliver_local("", [ALICE], message(1))
    env.store.deliver_local("", [ALICE], message(2))
    c = connect(env)
    assert c.login(ALICE, PASSWORD)[0] == "OK"
    assert c.select("INBOX") == ("OK", [b"2"])
    return c


# -- IDLE through imaplib's internals (imaplib has no idle() before Python 3.14) ------------
def idle_start(c):
    tag = c._new_tag()
    c.send(tag + b" IDLE\r\n")
    assert c.readline() == b"+ idling\r\n"
    return tag


def idle_until(c, wanted):
    """Lines until `wanted` arrives (each read bounded by WAIT seconds)."""
    c.sock.settimeout(WAIT)
    lines = []
    while True:
        line = c.readline()
        assert line, "connection closed during IDLE"
        lines.append(line)
        if line == wanted:
            return lines


def idle_done(c, tag):
    c.send(b"DONE\r\n")
    assert c._command_complete("IDLE", tag) == ("OK", [b"IDLE terminated"])


# -- connection, TLS, login ----------------------------------------------------------------
def test_capabilities_and_login(env):
    c = connect(env)
    assert "STARTTLS" in c.capabilities and "AUTH=PLAIN" in c.capabilities
    assert "IDLE" in c.capabilities and "UIDPLUS" in c.capabilities
    typ, data = c.login(ALICE, PASSWORD)
    assert typ == "OK" and data[0].endswith(b"Logged in")
    assert c.logout()[0] == "BYE"


def test_wrong_password(env):
    c = connect(env)
    with pytest.raises(imaplib.IMAP4.error, match=r"AUTHENTICATIONFAILED"):
        c.login(ALICE, "wrong")
    assert c.login(ALICE, PASSWORD)[0] == "OK"


def test_authenticate_plain(env):
    c = connect(env)
    typ, _ = c.authenticate("PLAIN", lambda _: f"\0{ALICE}\0{PASSWORD}".encode())
    assert typ == "OK"
    assert c.select("INBOX")[0] == "OK"


def test_starttls(env):
    c = connect(env)
    assert c.starttls(ssl_context=env.client_ctx)[0] == "OK"
    assert isinstance(c.sock, ssl.SSLSocket)
    typ, caps = c.capability()
    assert b"STARTTLS" not in caps[0].split() and b"AUTH=PLAIN" in caps[0].split()
    assert c.login(ALICE, PASSWORD)[0] == "OK"
    assert c.select("INBOX")[0] == "OK"


def test_implicit_tls(env):
    env.store.deliver_local("", [ALICE], message(1))
    c = connect(env, tls=True)
    assert "STARTTLS" not in c.capabilities and "AUTH=PLAIN" in c.capabilities
    assert c.login(ALICE, PASSWORD)[0] == "OK"
    assert c.select("INBOX") == ("OK", [b"1"])
    typ, data = c.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == RETURN_PATH + message(1)


# -- mail round trips with the logged-in fixture ------------------------------------------
def test_fetch_search_store(imap):
    typ, data = imap.fetch("1:2", "(UID FLAGS RFC822.SIZE)")
    assert data == [b"1 (UID 1 FLAGS (\\Recent) RFC822.SIZE %d)" % len(RETURN_PATH + message(1)),
                    b"2 (UID 2 FLAGS (\\Recent) RFC822.SIZE %d)" % len(RETURN_PATH + message(2))]
    typ, data = imap.fetch("2", "(BODY[])")
    stored = RETURN_PATH + message(2)
    assert data[0] == (b"2 (BODY[] {%d}" % len(stored), stored)
    assert data[1] == b" FLAGS (\\Seen \\Recent))"
    assert imap.search(None, "SEEN") == ("OK", [b"2"])
    assert imap.search(None, 'SUBJECT "message 1"') == ("OK", [b"1"])
    assert imap.uid("SEARCH", "ALL") == ("OK", [b"1 2"])
    assert imap.store("1", "+FLAGS", "(\\Flagged $Label1)") == \
        ("OK", [b"1 (FLAGS (\\Flagged $Label1 \\Recent))"])


def test_append_copy_move_expunge(imap, env):
    typ, data = imap.append("Drafts", "(\\Draft)", imaplib.Time2Internaldate(1_000_000_000), message(7))
    assert typ == "OK" and data[0].startswith(b"[APPENDUID ") and data[0].endswith(b" 1] APPEND completed")
    typ, data = imap.copy("1:2", "Archive")
    assert typ == "OK" and data[0].startswith(b"[COPYUID ") and b" 1:2 1:2]" in data[0]
    typ, data = imap.uid("MOVE", "1", "Trash")
    assert typ == "OK"
    assert imap.response("EXPUNGE") == ("EXPUNGE", [b"1"])
    assert imap.status("Trash", "(MESSAGES UIDNEXT)") == ("OK", [b'"Trash" (MESSAGES 1 UIDNEXT 2)'])
    imap.store("1", "+FLAGS", "\\Deleted")
    assert imap.expunge() == ("OK", [b"1"])
    assert imap.select("INBOX") == ("OK", [b"0"])
    assert imap.select("Drafts") == ("OK", [b"1"])
    typ, data = imap.fetch("1", "(FLAGS INTERNALDATE)")
    assert data == [b'1 (FLAGS (\\Draft \\Recent) INTERNALDATE "09-Sep-2001 01:46:40 +0000")']
    assert imap.close()[0] == "OK"


def test_append_to_missing_folder_trycreate(imap):
    typ, data = imap.append("Nope", None, None, message(1))
    assert (typ, data) == ("NO", [b"[TRYCREATE] Mailbox does not exist"])
    assert imap.create("Nope")[0] == "OK"
    assert imap.append("Nope", None, None, message(1))[0] == "OK"


def test_folders_list_rename_delete(imap):
    assert imap.create("Work/Projects")[0] == "OK"
    assert imap.create("Entw&APw-rfe")[0] == "OK"
    typ, data = imap.list()
    assert b'(\\HasChildren) "/" "Work"' in data
    assert b'(\\HasNoChildren) "/" "Work/Projects"' in data
    assert b'(\\HasNoChildren) "/" "Entw&APw-rfe"' in data
    assert b'(\\HasNoChildren \\Sent) "/" "Sent"' in data
    assert imap.rename("Work", "Job")[0] == "OK"
    assert imap.list('""', "Job/*") == ("OK", [b'(\\HasNoChildren) "/" "Job/Projects"'])
    assert imap.delete("Job/Projects")[0] == "OK"
    assert imap.subscribe("Job")[0] == "OK"
    assert b'() "/" "Job"' in imap.lsub()[1]
    assert imap.delete("INBOX") == ("NO", [b"[CANNOT] INBOX cannot be deleted"])
    typ, data = imap.create("../escape")
    assert typ == "NO" and data[0].startswith(b"[CANNOT] Invalid mailbox name")


def test_namespace_id_enable_unselect(imap):
    assert imap.namespace() == ("OK", [b'(("" "/")) NIL NIL'])
    typ, data = imap.xatom("ID", "NIL")
    assert typ == "OK"
    assert imap.response("ID")[1][0].startswith(b'("name" "CleverMail" "version" ')
    assert imap.unselect()[0] == "OK"
    assert imap.enable("CONDSTORE") == ("OK", [b"ENABLE completed"])
    assert imap.select("INBOX")[0] == "OK"      # the session is usable after UNSELECT


# -- IDLE and two sessions ---------------------------------------------------------------------
def test_idle_sees_store_delivery(imap, env):
    tag = idle_start(imap)
    env.store.deliver_local("", [ALICE], message(3))
    lines = idle_until(imap, b"* 3 EXISTS\r\n")
    assert lines == [b"* 3 EXISTS\r\n"]
    assert imap.readline() == b"* 3 RECENT\r\n"
    idle_done(imap, tag)
    typ, data = imap.fetch("3", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert data[0][1] == b"Subject: message 3\r\n\r\n"


def test_idle_sees_smtp_delivery(imap, env):
    tag = idle_start(imap)
    with smtplib.SMTP("127.0.0.1", env.smtp_port, timeout=10) as smtp:
        # an outside sender: on the MX port a local domain needs AUTH
        smtp.sendmail("carol@remote.test", [ALICE], message(3, sender="carol@remote.test"))
    idle_until(imap, b"* 3 EXISTS\r\n")
    idle_done(imap, tag)
    typ, data = imap.fetch("3", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert data[0][1] == b"Subject: message 3\r\n\r\n"


def test_idle_sees_changes_from_other_session(imap, env):
    other = connect(env)
    other.login(ALICE, PASSWORD)
    other.select("INBOX")
    tag = idle_start(imap)
    other.store("2", "+FLAGS", "(\\Deleted)")
    idle_until(imap, b"* 2 FETCH (UID 2 FLAGS (\\Deleted \\Recent))\r\n")
    other.expunge()
    idle_until(imap, b"* 2 EXPUNGE\r\n")
    idle_done(imap, tag)
    assert imap.fetch("1:*", "UID") == ("OK", [b"1 (UID 1)"])


def test_two_sessions_on_one_folder(imap, env):
    other = connect(env)
    other.login(ALICE, PASSWORD)
    assert other.select("INBOX") == ("OK", [b"2"])
    assert other.response("RECENT") == ("RECENT", [b"0"])      # imap took \Recent first
    assert other.fetch("1", "FLAGS") == ("OK", [b"1 (FLAGS ())"])
    other.store("1", "+FLAGS", "(\\Deleted)")
    other.expunge()
    # the EXPUNGE is held back during FETCH, and sent with the NOOP
    assert imap.fetch("2", "UID") == ("OK", [b"2 (UID 2)"])
    assert imap.noop()[0] == "OK"
    assert imap.response("EXPUNGE") == ("EXPUNGE", [b"1"])
    assert imap.fetch("1", "UID") == ("OK", [b"1 (UID 2)"])
    other.append("INBOX", None, None, message(3))
    imap.noop()
    assert imap.response("EXISTS")[1][-1] == b"2"


def test_idle_over_implicit_tls(env):
    c = connect(env, tls=True)
    c.login(ALICE, PASSWORD)
    assert c.select("INBOX") == ("OK", [b"0"])
    tag = idle_start(c)
    env.store.deliver_local("", [ALICE], message(1))
    idle_until(c, b"* 1 EXISTS\r\n")
    env.store.deliver_local("", [ALICE], message(2))
    idle_until(c, b"* 2 EXISTS\r\n")
    idle_done(c, tag)
    assert c.fetch("1:*", "UID") == ("OK", [b"1 (UID 1)", b"2 (UID 2)"])


def test_compress_over_implicit_tls(env):
    """COMPRESS DEFLATE (RFC 4978) inside TLS: a deflated dialogue on a real listener."""
    from test_imap_compress import Deflated
    c = connect(env, tls=True)
    c.login(ALICE, PASSWORD)
    assert "COMPRESS=DEFLATE" in c.capabilities or \
        "COMPRESS=DEFLATE" in c.capability()[1][0].decode()
    c.send(b"z0 COMPRESS DEFLATE\r\n")            # imaplib has no COMPRESS: by hand
    assert c.readline() == b"z0 OK DEFLATE active\r\n"
    z = Deflated(c.sock)
    z.send("z1 SELECT INBOX\r\nz2 NOOP\r\n")
    assert z.reply("z1")[-1].startswith("z1 OK [READ-WRITE]")
    assert z.reply("z2") == ["z2 OK NOOP completed"]
    z.send("z3 LOGOUT\r\n")
    assert z.reply("z3")[-1] == "z3 OK LOGOUT completed"
    c.shutdown()
