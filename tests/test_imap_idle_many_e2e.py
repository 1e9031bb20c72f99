"""End-to-end IDLE with many sessions on one folder (issue 18): the sessions share the
folder's one wake-up descriptor (store/waiters.py), so a session holds no descriptor
beyond its socket; each is woken by mail delivered over SMTP and by another IMAP
session's APPEND, each by its own DONE, and a server stop wakes them all with BYE,
or, stopped during a mass close, ends them all without waiting for its drain time.
Real MailService on 127.0.0.1 port 0, raw sockets; no timing assertions."""

import os
import smtplib
import socket
import threading

import pytest

from clevermail.service import MailService
from conftest import make_config
from imap_helpers import ALICE, PASSWORD, make_accounts, message
from waiting import wait_for

pytestmark = pytest.mark.e2e

WAIT = 10.0     # bound for anything awaited from the server; never asserted on
SESSIONS = 40


class Idler:
    """One raw IMAP connection: LOGIN, SELECT INBOX, IDLE."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.file = self.sock.makefile("rb")
        assert self.line().startswith("* OK")
        self.command("a LOGIN", f'"{ALICE}" "{PASSWORD}"')
        self.command("b SELECT", "INBOX")

    def line(self):
        return self.file.readline().decode().rstrip("\r\n")

    def command(self, tagged, args):
        tag = tagged.split()[0]
        if isinstance(args, str):
            args = args.encode()
        self.sock.sendall(tagged.encode() + b" " + args + b"\r\n")
        lines = []
        while True:
            line = self.line()
            assert line, f"connection closed during {tagged}"
            if line.startswith(tag + " "):
                assert line.startswith(tag + " OK"), line
                return lines
            lines.append(line)

    def idle(self):
        self.sock.sendall(b"i IDLE\r\n")
        assert self.line() == "+ idling"

    def done(self):
        self.sock.sendall(b"DONE\r\n")
        assert self.line().startswith("i OK")

    def close(self):
        self.file.close()
        self.sock.close()


def open_fds():
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def service(thread_guard, tmp_path):
    conf = make_config(tmp_path, limits={"auth_failure_delay": 0, "imap_timeout": 60,
                                         "connections_per_client": SESSIONS + 10})
    make_accounts(conf.server.users_file)
    service = MailService(conf).start()
    service.store.deliver_local("", [ALICE], message(1))
    idlers = []
    yield service, idlers
    for idler in idlers:
        idler.close()
    service.stop(drain=0)


def idling_on_inbox(service, count):
    """`count` sessions in IDLE on Alice's INBOX, once each is registered as a waiter."""
    folder = service.store.folders.lookup(service.store.folder_path(ALICE, "INBOX"))
    assert folder is not None and wait_for(lambda: len(folder.waiters) == count, timeout=WAIT)
    return folder


def test_many_idle_sessions_share_one_wake_up(service):
    service, idlers = service
    before = open_fds()
    for _ in range(SESSIONS):
        idlers.append(Idler(service.port("imap")))
    for idler in idlers:
        idler.idle()
    idling_on_inbox(service, SESSIONS)
    # the test process holds both ends: each session is its client socket and the
    # server's; beyond that a few in all (the folder's wake-up, the IdleHub's epoll and
    # its dups), where a descriptor per session (an eventfd each) would be 40 more
    added = open_fds() - before
    assert added - 2 * SESSIONS <= 8, added

    with smtplib.SMTP("127.0.0.1", service.port("smtp"), timeout=WAIT) as smtp:
        smtp.sendmail("carol@remote.test", [ALICE], message(2, sender="carol@remote.test"))
    for idler in idlers:
        assert idler.line() == "* 2 EXISTS"
        assert idler.line().endswith(" RECENT")

    other = Idler(service.port("imap"))
    idlers.append(other)
    data = message(3)
    other.command("c APPEND", b"INBOX {%d+}\r\n%s" % (len(data), data))
    for idler in idlers[:SESSIONS]:
        assert idler.line() == "* 3 EXISTS"
        assert idler.line().endswith(" RECENT")

    # each by its own line: one DONE ends that session's IDLE and no other
    first, rest = idlers[0], idlers[1:SESSIONS]
    first.done()
    assert first.command("n NOOP", "") == []
    for idler in rest:
        idler.done()
    folder = service.store.folders.lookup(service.store.folder_path(ALICE, "INBOX"))
    assert wait_for(lambda: len(folder.waiters) == 0, timeout=WAIT)


def test_a_stop_wakes_every_idle_session(service):
    service, idlers = service
    for _ in range(SESSIONS):
        idlers.append(Idler(service.port("imap")))
        idlers[-1].idle()
    folder = idling_on_inbox(service, SESSIONS)
    service.stop(drain=WAIT)
    for idler in idlers:
        assert idler.line().startswith("* BYE")
        assert idler.line() == ""               # and the connection closed
    assert len(folder.waiters) == 0


def test_a_stop_during_a_mass_close_waits_for_no_drain_time(service):
    """Every client gone at once, the server stopped meanwhile with a drain time of an
    hour: each session ends (paced by the IdleHub, parked sessions woken by their
    closed socket or by the drain) and the stop returns without waiting for it (a
    session left parked would hold it the hour; the join is bounded)."""
    service, idlers = service
    for _ in range(SESSIONS):
        idlers.append(Idler(service.port("imap")))
        idlers[-1].idle()
    folder = idling_on_inbox(service, SESSIONS)
    for idler in idlers:
        idler.close()                           # the mass close...
    idlers.clear()
    stopper = threading.Thread(target=service.stop, kwargs={"drain": 3600})
    stopper.start()                             # ...and SIGTERM's stop in the middle of it
    stopper.join(60)
    assert not stopper.is_alive()
    assert len(folder.waiters) == 0
    imap = [srv for kind, srv in service.servers if kind == "imap"]
    assert imap == [] or all(not srv.sessions for srv in imap)
