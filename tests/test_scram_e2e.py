"""AUTHENTICATE SCRAM-SHA-256 (RFC 5802, RFC 7677) end to end against a real
MailService on loopback: imaplib and smtplib with tests/scram_client.py (written from
the RFC, apart from the server's code), POP3 and ManageSieve over raw sockets, the
users the CLI's `user add` writes (with SCRAM keys) beside an account of older
users.ini (a scrypt hash only), hostile clients, the throttle, and the log."""

import base64
import imaplib
import logging
import smtplib
import socket

import pytest

from clevermail.accounts import AccountStore
from clevermail.service import MailService
from conftest import make_config
from fakes import PASSWORD, password_hash
from scram_client import ScramClient, imaplib_auth, smtplib_auth

pytestmark = pytest.mark.e2e

ALICE, ALICE_PW = "alice@example.test", "correct horse battery"     # with SCRAM keys
BOB, BOB_PW = "bob@example.test", PASSWORD                          # keys too (SCRAM is offered
                                                                    # only once every account has them)


def b64(text):
    return base64.b64encode(text.encode()).decode()


def unb64(text):
    return base64.b64decode(text).decode()


@pytest.fixture
def svc(thread_guard, tmp_path):
    conf = make_config(tmp_path, smtp={"submission_listen": ["127.0.0.1:0"]},
                       managesieve={"listen": ["127.0.0.1:0"]},
                       limits={"auth_failure_delay": 0, "auth_failures_per_client": 6})
    users = conf.server.users_file
    accounts = AccountStore(users, ["example.test"])
    accounts.add(ALICE, ALICE_PW)
    accounts.add(BOB, BOB_PW)
    service = MailService(conf).start()
    yield service
    if service.started:
        service.stop()


class Raw:
    """A line-at-a-time client of any of the protocols."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def line(self):
        return self.file.readline().decode().rstrip("\r\n")

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def close(self):
        self.sock.close()


# -- IMAP --------------------------------------------------------------------------------------
def test_imaplib_logs_in_with_scram(svc):
    with imaplib.IMAP4("127.0.0.1", svc.port("imap")) as imap:
        assert "AUTH=SCRAM-SHA-256" in imap.capabilities and "AUTH=PLAIN" in imap.capabilities
        client = ScramClient(ALICE, ALICE_PW)
        typ, _ = imap.authenticate("SCRAM-SHA-256", imaplib_auth(client))
        assert typ == "OK" and imap.state == "AUTH"
        assert client.server_signature is not None       # and check() accepted the server's
        assert imap.select("INBOX")[0] == "OK"


def test_an_account_without_keys_keeps_scram_from_being_offered(tmp_path, thread_guard):
    """An entry written before SCRAM (no keys) beside one with keys: SCRAM is neither
    offered nor run (a client picking it would lock that user out); once its password
    is set again, the running server offers it and the user logs in with it."""
    conf = make_config(tmp_path, limits={"auth_failure_delay": 0})
    users = conf.server.users_file
    with open(users, "w") as f:
        f.write(f"[{BOB}]\npassword = {password_hash()}\n")
    accounts = AccountStore(users, ["example.test"])
    accounts.add(ALICE, ALICE_PW)
    service = MailService(conf).start()
    try:
        with imaplib.IMAP4("127.0.0.1", service.port("imap")) as imap:
            assert "AUTH=SCRAM-SHA-256" not in imap.capabilities
            with pytest.raises(imaplib.IMAP4.error, match="Unsupported authentication mechanism"):
                imap.authenticate("SCRAM-SHA-256", imaplib_auth(ScramClient(ALICE, ALICE_PW)))
            assert imap.login(BOB, BOB_PW)[0] == "OK"
        accounts.set_password(BOB, BOB_PW)
        with imaplib.IMAP4("127.0.0.1", service.port("imap")) as imap:
            assert "AUTH=SCRAM-SHA-256" in imap.capabilities
            assert imap.authenticate("SCRAM-SHA-256", imaplib_auth(ScramClient(BOB, BOB_PW)))[0] == "OK"
    finally:
        service.stop()


def test_no_scram_offered_without_any_keys(tmp_path, thread_guard):
    conf = make_config(tmp_path, limits={"auth_failure_delay": 0})
    with open(conf.server.users_file, "w") as f:
        f.write(f"[{BOB}]\npassword = {password_hash()}\n")
    service = MailService(conf).start()
    try:
        with imaplib.IMAP4("127.0.0.1", service.port("imap")) as imap:
            assert "AUTH=SCRAM-SHA-256" not in imap.capabilities
            with pytest.raises(imaplib.IMAP4.error, match="Unsupported authentication mechanism"):
                imap.authenticate("SCRAM-SHA-256", imaplib_auth(ScramClient(BOB, BOB_PW)))
    finally:
        service.stop()


def imap_exchange(c, first, final_for=None, tag="a"):
    """AUTHENTICATE SCRAM-SHA-256 with `first` as the initial response (SASL-IR); the
    server-first message, then (with final_for) the client-final sent: the lines after."""
    c.send(f"{tag} AUTHENTICATE SCRAM-SHA-256 {b64(first)}")
    line = c.line()
    if not line.startswith("+ "):
        return [line]
    server_first = unb64(line[2:])
    if final_for is None:
        return [server_first]
    c.send(b64(final_for(server_first)))
    return [c.line()]


@pytest.mark.parametrize("first, reply", [
    ("n,,r=abc", "a NO [AUTHENTICATIONFAILED] Authentication failed"),
    ("p=tls-exporter,,n=alice@example.test,r=abc", "a NO [AUTHENTICATIONFAILED] Authentication failed"),
    ("n,,m=x,n=alice@example.test,r=abc", "a NO [AUTHENTICATIONFAILED] Authentication failed"),
    ("\u00e9\u00e9", "a NO [AUTHENTICATIONFAILED] Authentication failed"),
])
def test_malformed_client_first_is_a_clean_no_and_the_session_lives(svc, first, reply):
    c = Raw(svc.port("imap"))
    try:
        c.line()
        assert imap_exchange(c, first) == [reply]
        c.send(f'b LOGIN "{ALICE}" "{ALICE_PW}"')
        assert c.line().startswith("b OK")
    finally:
        c.close()


def test_hostile_client_final_messages(svc, caplog):
    caplog.set_level(logging.INFO, logger="clevermail")
    c = Raw(svc.port("imap"))
    try:
        c.line()
        good = ScramClient(ALICE, ALICE_PW)
        # a wrong password: NO, no server signature
        wrong = ScramClient(ALICE, "wrong")
        assert imap_exchange(c, wrong.first(), wrong.final) == ["a NO [AUTHENTICATIONFAILED] Authentication failed"]
        # the server's nonce changed by the client
        assert imap_exchange(c, good.first(), lambda sf: good.final(sf).replace(",r=", ",r=x", 1)) == [
            "a NO [AUTHENTICATIONFAILED] Authentication failed"]
        # not base64 at all: BAD, as for PLAIN
        assert imap_exchange(c, good.first(), lambda sf: "***" and "")[0].startswith("a ")
        c.send("b AUTHENTICATE SCRAM-SHA-256")
        assert c.line() == "+ "
        c.send("!!!")
        assert c.line() == "b BAD Invalid SASL response: invalid base64"
        # cancelled
        c.send(f"c AUTHENTICATE SCRAM-SHA-256 {b64(good.first())}")
        assert c.line().startswith("+ ")
        c.send("*")
        assert c.line().startswith("c BAD")
        # and still a session: a good exchange now
        assert imap_exchange(c, good.first(), good.final, tag="d")[0].startswith("+ ")
    finally:
        c.close()
    assert ALICE_PW not in caplog.text
    failed = [r.getMessage().split("] ", 1)[1] for r in caplog.records if "auth failed" in r.getMessage()]
    assert f"auth failed user='{ALICE}' (SCRAM-SHA-256)" in failed
    assert f"auth failed user='{ALICE}' (SCRAM-SHA-256: nonce mismatch)" in failed


def test_a_full_exchange_by_hand_and_a_replay(svc, caplog):
    """The server-final message is a last challenge, answered with an empty line; a
    client-final message replayed in another session fails (a new server nonce)."""
    caplog.set_level(logging.DEBUG, logger="clevermail")
    c = Raw(svc.port("imap"))
    try:
        c.line()
        client = ScramClient(ALICE, ALICE_PW)
        c.send("a AUTHENTICATE SCRAM-SHA-256")
        assert c.line() == "+ "
        c.send(b64(client.first()))
        line = c.line()
        server_first = unb64(line[2:])
        assert server_first.startswith("r=" + client.nonce) and ",i=10000" in server_first
        final = client.final(server_first)
        c.send(b64(final))
        line = c.line()
        assert line.startswith("+ ") and client.check(unb64(line[2:]))
        c.send("")
        assert c.line().startswith("a OK [CAPABILITY")
    finally:
        c.close()
    again = Raw(svc.port("imap"))
    try:
        again.line()
        replayed = ScramClient(ALICE, "unknown to the attacker", nonce=client.nonce)
        assert imap_exchange(again, replayed.first(), lambda _: final) == [
            "a NO [AUTHENTICATIONFAILED] Authentication failed"]
    finally:
        again.close()
    for secret in (ALICE_PW, b64(final), final.rsplit(",p=", 1)[1]):
        assert secret not in caplog.text


def test_failures_count_toward_the_throttle(svc):
    c = Raw(svc.port("imap"))
    try:
        c.line()
        for n in range(6):
            wrong = ScramClient(ALICE, "wrong")
            assert imap_exchange(c, wrong.first(), wrong.final, tag=f"t{n}") == [
                f"t{n} NO [AUTHENTICATIONFAILED] Authentication failed"]
        good = ScramClient(ALICE, ALICE_PW)
        reply = imap_exchange(c, good.first(), good.final, tag="u")
        assert reply[0].startswith("u NO") and "AUTHENTICATIONFAILED" not in reply[0], reply
    finally:
        c.close()


# -- SMTP, POP3, ManageSieve: the same mechanism through login.py ---------------------------------
def test_smtplib_auth_scram(svc):
    with smtplib.SMTP("127.0.0.1", svc.port("submission"), timeout=10) as s:
        s.ehlo()
        assert "SCRAM-SHA-256" in s.esmtp_features["auth"].split()
        code, _ = s.auth("SCRAM-SHA-256", smtplib_auth(ScramClient(ALICE, ALICE_PW)))
        assert code == 235
        assert s.sendmail(ALICE, [BOB], b"Subject: hi\r\n\r\nhi\r\n") == {}
    with smtplib.SMTP("127.0.0.1", svc.port("submission"), timeout=10) as s:
        s.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            s.auth("SCRAM-SHA-256", smtplib_auth(ScramClient(ALICE, "wrong")))
        assert info.value.smtp_code == 535
        # malformed: 535 too, and the session goes on
        code, _ = s.docmd("AUTH", "SCRAM-SHA-256 " + b64("x,,n=a,r=b"))
        assert code == 535
        s.login(BOB, BOB_PW)


def test_pop3_auth_scram(svc):
    c = Raw(svc.port("pop3"))
    try:
        assert c.line().startswith("+OK")
        c.send("CAPA")
        caps = []
        while (line := c.line()) != ".":
            caps.append(line)
        assert "SASL SCRAM-SHA-256 PLAIN" in caps
        client = ScramClient(ALICE, ALICE_PW)
        c.send("AUTH SCRAM-SHA-256 " + b64(client.first()))
        c.send(b64(client.final(unb64(c.line()[2:]))))
        line = c.line()
        assert client.check(unb64(line[2:]))
        c.send("")
        assert c.line().startswith("+OK")
        c.send("STAT")
        assert c.line().startswith("+OK 0 0")
    finally:
        c.close()


def test_managesieve_authenticate_scram(svc):
    c = Raw(svc.port("managesieve"))
    try:
        caps = []
        while not (line := c.line()).startswith("OK"):
            caps.append(line)
        assert '"SASL" "SCRAM-SHA-256 PLAIN LOGIN"' in caps
        client = ScramClient(ALICE, ALICE_PW)
        c.send(f'AUTHENTICATE "SCRAM-SHA-256" "{b64(client.first())}"')
        c.send('"' + b64(client.final(unb64(c.line().strip('"')))) + '"')
        assert client.check(unb64(c.line().strip('"')))
        c.send('""')
        assert c.line().startswith("OK")
        c.send("LISTSCRIPTS")
        assert c.line().startswith("OK")
    finally:
        c.close()
