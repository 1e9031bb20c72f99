"""End-to-end: sessions quiet between two commands wait in the server's IdleHub
(idle_hub.wait_readable, issue 18), so that closing thousands of them at once, or a
stop, wakes them a few at a time rather than every thread together.  Each parked
session is still woken by its own next command (IMAP and SMTP), by its client leaving
and by a stop (BYE).  Real MailService on 127.0.0.1 port 0, raw sockets and smtplib;
no timing assertions."""

import smtplib

import pytest

from clevermail import idle_hub
from clevermail.service import MailService
from conftest import make_config
from imap_helpers import ALICE, make_accounts, message
from test_imap_idle_many_e2e import Idler
from waiting import wait_for

pytestmark = pytest.mark.e2e

WAIT = 10.0     # bound for anything awaited from the server; never asserted on
SESSIONS = 20


@pytest.fixture
def service(thread_guard, tmp_path, monkeypatch):
    # park after 50 ms of quiet rather than a second: the test need not wait
    monkeypatch.setattr(idle_hub, "COMMAND_QUIET", 0.05)
    conf = make_config(tmp_path, limits={"auth_failure_delay": 0, "imap_timeout": 60,
                                         "connections_per_client": SESSIONS + 10})
    make_accounts(conf.server.users_file)
    service = MailService(conf).start()
    service.store.deliver_local("", [ALICE], message(1))
    clients = []
    yield service, clients
    for client in clients:
        client.close()
    service.stop(drain=0)


def server_of(service, kind):
    return next(srv for k, srv in service.servers if k == kind)


def test_quiet_sessions_wait_in_the_hub_and_wake_by_their_line_and_their_end(service):
    service, clients = service
    imap = server_of(service, "imap")
    for _ in range(SESSIONS):
        clients.append(Idler(service.port("imap")))     # LOGIN, SELECT: then quiet
    assert wait_for(lambda: imap.hub.parked == SESSIONS, timeout=WAIT)
    for client in clients:
        assert client.command("n NOOP", "") == []       # each woken by its own line
    assert wait_for(lambda: imap.hub.parked == SESSIONS, timeout=WAIT)
    assert imap.hub._count == 0         # each came back: no activation left counted
    for client in clients:
        client.close()                  # every client gone at once
    clients.clear()
    assert wait_for(lambda: not imap.sessions, timeout=WAIT)
    assert imap.hub.parked == 0 and imap.hub._count == 0 and not imap.hub._runnable


def test_a_stop_says_bye_to_quiet_sessions(service):
    service, clients = service
    imap = server_of(service, "imap")
    for _ in range(SESSIONS):
        clients.append(Idler(service.port("imap")))
    assert wait_for(lambda: imap.hub.parked == SESSIONS, timeout=WAIT)
    service.stop(drain=WAIT)
    for client in clients:
        assert client.line().startswith("* BYE")
        assert client.line() == ""      # and the connection closed


def test_a_quiet_smtp_session_parks_and_answers_its_next_command(service):
    service, _ = service
    smtp_server = server_of(service, "smtp")
    with smtplib.SMTP("127.0.0.1", service.port("smtp"), timeout=WAIT) as smtp:
        smtp.ehlo("client.test")
        assert wait_for(lambda: smtp_server.hub.parked == 1, timeout=WAIT)
        assert smtp.noop()[0] == 250
        assert smtp.mail("carol@remote.test")[0] == 250
    assert wait_for(lambda: not smtp_server.sessions, timeout=WAIT)
    assert smtp_server.hub._count == 0
