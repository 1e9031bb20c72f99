"""End-to-end POP3: stdlib poplib against clevermail.service.MailService on port 0,
plain, STLS and implicit TLS, with the store shared with IMAP."""

import poplib
import socket
import ssl

import pytest

from clevermail.config import load_config
from clevermail.service import MailService
from pop3_helpers import ALICE, BOB, DOMAIN, PASSWORD, message, password_hash
from waiting import wait_for
from fakes import RETURN_PATH

pytestmark = pytest.mark.e2e

trustme = pytest.importorskip("trustme")


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def service(tmp_path, ca):
    cert = ca.issue_cert("mail.example.test", "127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(cert_file, append=True)
    cert.private_key_pem.write_to_path(key_file)
    users = tmp_path / "users.ini"
    users.write_text("".join(f"[{u}]\npassword = {password_hash()}\n" for u in (ALICE, BOB)))
    conf = load_config(overrides={
        "server": {"data_dir": str(tmp_path / "data"), "users_file": str(users),
                   "domains": [DOMAIN], "hostname": "mail.example.test"},
        "smtp": {"listen": ["127.0.0.1:0"]},
        "pop3": {"listen": ["127.0.0.1:0"], "tls_listen": ["127.0.0.1:0"]},
        "imap": {"listen": ["127.0.0.1:0"]},
        "tls": {"certificate": str(cert_file), "key": str(key_file)},
        "limits": {"auth_failure_delay": 0},
    })
    svc = MailService(conf).start()
    yield svc
    svc.stop()


@pytest.fixture
def client_ctx(ca):
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def connect(service):
    return poplib.POP3("127.0.0.1", service.port("pop3"), timeout=10)


def login(service, user=ALICE):
    pop = connect(service)
    pop.user(user)
    pop.pass_(PASSWORD)
    return pop


def pop3_handler(service):
    return next(srv for kind, srv in service.servers if kind == "pop3").handler


def wait_released(service, address=ALICE):
    """Wait (bounded) until the server noticed a dropped connection."""
    handler = pop3_handler(service)
    assert wait_for(lambda: address not in handler._held)


def test_collect_delete_quit(service):
    # the third spans several 64 KiB read chunks, every line starting with a dot
    big = "".join(f".{i:05d} " + "y" * (i % 90) + "\r\n" for i in range(4000))
    bodies = ["plain\r\n", ".leading dot\r\n..two\r\n.\r\nend\r\n", big]
    for i, body in enumerate(bodies, 1):
        service.store.deliver_local("", [ALICE], message(i, body))
    pop = login(service)
    sizes = [len(RETURN_PATH + message(i, b)) for i, b in enumerate(bodies, 1)]
    assert pop.stat() == (3, sum(sizes))
    resp, lines, _ = pop.list()
    assert lines == [f"{i} {s}".encode() for i, s in enumerate(sizes, 1)]
    for i, body in enumerate(bodies, 1):
        resp, lines, octets = pop.retr(i)
        assert resp == f"+OK {sizes[i - 1]} octets".encode()
        assert b"\r\n".join(lines) + b"\r\n" == RETURN_PATH + message(i, body)
        assert octets == sizes[i - 1]
    resp, lines, _ = pop.top(2, 0)
    assert lines == (RETURN_PATH + message(2, "")).split(b"\r\n")[:-1]
    pop.dele(1)
    pop.dele(3)
    with pytest.raises(poplib.error_proto, match="already deleted"):
        pop.retr(1)
    assert pop.quit().startswith(b"+OK")
    folder = service.store.open_folder(ALICE, "INBOX")
    try:
        assert len(folder) == 1
        assert "S" in folder.by_uid[folder.uids[0]].flags      # RETR marked it \Seen
    finally:
        service.store.release_folder(folder)


def test_capa_and_auth_failure(service):
    pop = connect(service)
    caps = pop.capa()
    for cap in ("TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "STLS"):
        assert cap in caps
    assert caps["SASL"] == ["PLAIN"] and caps["EXPIRE"] == ["NEVER"]
    pop.user(ALICE)
    with pytest.raises(poplib.error_proto) as info:
        pop.pass_("wrong")
    assert info.value.args[0] == b"-ERR [AUTH] authentication failed"
    pop.user("nobody")
    with pytest.raises(poplib.error_proto) as info:
        pop.pass_(PASSWORD)
    assert info.value.args[0] == b"-ERR [AUTH] authentication failed"
    pop.quit()


def test_stls(service, client_ctx):
    service.store.deliver_local("", [ALICE], message(1))
    pop = connect(service)
    pop.stls(client_ctx)
    assert "STLS" not in pop.capa()
    pop.user(ALICE)
    pop.pass_(PASSWORD)
    assert b"\r\n".join(pop.retr(1)[1]) + b"\r\n" == RETURN_PATH + message(1)
    pop.quit()


def test_implicit_tls(service, client_ctx):
    service.store.deliver_local("", [ALICE], message(1))
    pop = poplib.POP3_SSL("127.0.0.1", service.port("pop3s"), context=client_ctx, timeout=10)
    assert "STLS" not in pop.capa()
    pop.user(ALICE)
    pop.pass_(PASSWORD)
    assert pop.stat() == (1, len(RETURN_PATH + message(1)))
    pop.quit()


def test_second_session_in_use(service):
    first = login(service)
    second = connect(service)
    second.user(ALICE)
    with pytest.raises(poplib.error_proto) as info:
        second.pass_(PASSWORD)
    assert info.value.args[0].startswith(b"-ERR [IN-USE]")
    login(service, BOB).quit()
    first.quit()
    second.user(ALICE)
    second.pass_(PASSWORD)
    second.quit()


def test_dropped_connection_after_dele_removes_nothing(service):
    for i in range(2):
        service.store.deliver_local("", [ALICE], message(i))
    pop = login(service)
    pop.dele(1)
    pop.dele(2)
    pop.sock.shutdown(socket.SHUT_RDWR)   # vanish without QUIT
    pop.close()
    wait_released(service)
    pop = login(service)
    assert pop.stat()[0] == 2
    pop.quit()


def test_uidl_stable_across_sessions(service):
    for i in range(3):
        service.store.deliver_local("", [ALICE], message(i))
    pop = login(service)
    first = [line.split()[1] for line in pop.uidl()[1]]
    pop.dele(2)
    pop.quit()
    service.store.deliver_local("", [ALICE], message(9))
    pop = login(service)
    second = [line.split()[1] for line in pop.uidl()[1]]
    assert second[:2] == [first[0], first[2]]
    assert second[2] not in first and len(set(second)) == 3
    assert pop.uidl(3).split()[2] == second[2]
    pop.quit()


def test_imap_side_sees_pop3_changes(service):
    for i in range(4):
        service.store.deliver_local("", [ALICE], message(i))
    # another session (as IMAP holds it) with the INBOX open in the same store
    folder = service.store.open_folder(ALICE, "INBOX")
    try:
        uids, modseq = list(folder.uids), folder.modseq
        pop = login(service)
        pop.retr(1)
        pop.dele(2)
        pop.dele(3)
        service.store.deliver_local("", [ALICE], message(99))        # arrives during the session
        assert pop.stat()[0] == 2
        pop.quit()
        folder.sync()
        expunged, flagged = folder.changes_since(modseq)
        assert expunged == uids[1:3]
        assert uids[0] in flagged and "S" in folder.by_uid[uids[0]].flags
        assert folder.uids[:2] == [uids[0], uids[3]] and len(folder) == 3
        # the IMAP side expunges one: POP3 cannot retrieve it but commits the rest
        pop = login(service)
        folder.expunge([uids[0]])
        with pytest.raises(poplib.error_proto, match="deleted by another session"):
            pop.retr(1)
        pop.dele(2)
        pop.quit()
        assert len(folder) == 1
    finally:
        service.store.release_folder(folder)
