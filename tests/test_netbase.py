"""Tests for clevermail.netbase: MailServer's accept loop (a backlog taken per wake-up, up
to ACCEPT_BATCH; accept failures pause and warn once), admission limits in total and per
client with the protocol's busy reply, and close_all ending live sessions.

The protocol is a small echo dialogue (EchoSession) on 127.0.0.1 port 0.  Accept-loop
tests call MailServer._handle_request_noblock (the socketserver private method it
overrides) directly, once serve_forever is shown to call it; they wait until the
kernel holds every connection in the listen backlog before they look."""

import errno
import logging
import os
import socket
import struct
import threading
import types

import pytest

from clevermail import netbase
from clevermail.line_session import LineSession, SessionClosed
from clevermail.netbase import ACCEPT_BATCH, MailServer
from waiting import wait_for


class EchoSession(LineSession):
    protocol = "echo"

    def greet(self):
        self.send(f"+ hello {self.peer}\r\n")

    def handle_line(self, line):
        if line.strip().upper() == b"QUIT":
            self.send("+ bye\r\n")
            raise SessionClosed()
        self.send(b"= " + line)

    def line_too_long(self):
        self.send("- too long\r\n")

    def busy_reply(self):
        return "- busy\r\n"

    def timeout_reply(self):
        return "- timeout\r\n"

    def internal_error_reply(self):
        return "- internal error\r\n"

    def too_many_errors_reply(self):
        return "- too many errors\r\n"

    def shutdown_reply(self):
        return "- shutting down\r\n"


def limits(**values):
    return netbase.Limits(**{"timeout": 10.0, **values})


@pytest.fixture
def servers(thread_guard):
    """make(serve=True, **limit_values) -> an echo MailServer on 127.0.0.1:0, serving
    in a thread if `serve`; all are stopped, closed and their threads joined at the end."""
    made = []

    def make(serve=True, **limit_values):
        server = MailServer(("127.0.0.1", 0), EchoSession, None, protocol="echo",
                            hostname="echo.test", limits=limits(**limit_values),
                            policy=netbase.SessionPolicy())
        thread = None
        if serve:
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                      name="echo-serve", daemon=True)
            thread.start()
        made.append((server, thread))
        return server
    yield make
    stop_servers(made)


def stop_servers(made):
    """Stop, close and join each (server, serving thread or None) of `made`."""
    for server, thread in made:
        if thread is not None:
            server.shutdown()
            thread.join(10)
        server.close_all()
        server.server_close()
        server.threads.join(10)


def backlog(server):
    """Connections waiting in the listen socket's accept queue (Linux TCP_INFO: for a
    listening socket tcpi_unacked is the accept-queue length)."""
    info = server.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("I", info, 24)[0]


def wait_backlog(server, n):
    assert wait_for(lambda: backlog(server) == n), f"backlog {backlog(server)}, wanted {n}"


def connect(server, source="127.0.0.1"):
    sock = socket.create_connection(server.server_address, timeout=10, source_address=(source, 0))
    return sock, sock.makefile("rb")


def close(*clients):
    for sock, f in clients:
        f.close()
        sock.close()


# -- accepting ------------------------------------------------------------------------------
def test_serve_forever_takes_the_whole_backlog_in_one_wake_up(servers):
    server = servers(serve=False)
    clients = [connect(server) for _ in range(5)]
    wait_backlog(server, 5)
    taken, per_wake_up = [], []
    real_process, real_noblock = server.process_request, server._handle_request_noblock

    def noblock():
        before = len(taken)
        real_noblock()
        per_wake_up.append(len(taken) - before)

    def process_request(request, address):
        taken.append(address)
        real_process(request, address)
    server.process_request, server._handle_request_noblock = process_request, noblock
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        for _, f in clients:
            assert f.readline().startswith(b"+ hello 127.0.0.1")
    finally:
        server.shutdown()
        thread.join(10)
        close(*clients)
    assert per_wake_up[0] == 5


def test_one_wake_up_takes_at_most_accept_batch(servers, monkeypatch):
    server = servers(serve=False)
    taken = []
    monkeypatch.setattr(server, "process_request",
                        lambda request, address: (taken.append(address), server.shutdown_request(request)))
    clients = [connect(server) for _ in range(ACCEPT_BATCH + 2)]
    try:
        wait_backlog(server, ACCEPT_BATCH + 2)
        server._handle_request_noblock()
        assert len(taken) == ACCEPT_BATCH           # bounded: serve_forever sees a shutdown
        server._handle_request_noblock()
        assert len(taken) == ACCEPT_BATCH + 2
        server._handle_request_noblock()            # an empty backlog: back at once
        assert len(taken) == ACCEPT_BATCH + 2
    finally:
        close(*clients)


def test_accept_failure_pauses_and_warns_once_per_interval(servers, monkeypatch, caplog):
    """Out of descriptors the connection stays in the backlog: every wake-up pauses
    (no spinning) and the warning is logged once per ACCEPT_ERROR_LOG_INTERVAL."""
    server = servers(serve=False)
    now, pauses = [1000.0], []
    monkeypatch.setattr(netbase, "time", types.SimpleNamespace(monotonic=lambda: now[0],
                                                               sleep=pauses.append))
    real_get_request = server.get_request

    def emfile():
        raise OSError(errno.EMFILE, "Too many open files")
    monkeypatch.setattr(server, "get_request", emfile)
    client = connect(server)
    try:
        with caplog.at_level(logging.WARNING, logger="clevermail.echo"):
            for _ in range(5):
                server._handle_request_noblock()
            now[0] += netbase.ACCEPT_ERROR_LOG_INTERVAL / 2
            server._handle_request_noblock()
            warned = [r.getMessage() for r in caplog.records]
            assert warned == ["cannot accept connections: [Errno 24] Too many open files"]
            now[0] += netbase.ACCEPT_ERROR_LOG_INTERVAL / 2 + 0.1
            server._handle_request_noblock()
            assert len(caplog.records) == 2
        assert pauses == [netbase.ACCEPT_ERROR_PAUSE] * 7
        # descriptors are back: the waiting client is served
        monkeypatch.setattr(server, "get_request", real_get_request)
        wait_backlog(server, 1)
        server._handle_request_noblock()
        assert client[1].readline().startswith(b"+ hello")
    finally:
        close(client)


# -- admission ---------------------------------------------------------------------------------
def greeted(client):
    return client[1].readline().startswith(b"+ hello")


def refused(client):
    """The busy reply, then the server closes the connection."""
    return client[1].readline() == b"- busy\r\n" and client[1].readline() == b""


def test_admission_limits_in_total_and_per_client(servers, caplog):
    server = servers(connections=3, connections_per_client=2)
    clients = []
    try:
        with caplog.at_level(logging.WARNING, logger="clevermail.echo"):
            # one at a time: each is admitted or refused before the next arrives
            a1 = connect(server)
            clients.append(a1)
            assert greeted(a1)
            a2 = connect(server)
            clients.append(a2)
            assert greeted(a2)
            a3 = connect(server)
            clients.append(a3)
            assert refused(a3)                          # a third from 127.0.0.1
            b1 = connect(server, "127.0.0.2")
            clients.append(b1)
            assert greeted(b1)                          # another client: three in all
            c1 = connect(server, "127.0.0.3")
            clients.append(c1)
            assert refused(c1)                          # over the total
        warned = [r.getMessage() for r in caplog.records]
        assert len(warned) == 2
        assert all(w.endswith("connection refused: too many connections") for w in warned)
        assert " 127.0.0.1]" in warned[0] and " 127.0.0.3]" in warned[1]
        # the session that ends is counted out before its socket closes
        a1[0].sendall(b"QUIT\r\n")
        assert a1[1].readline() == b"+ bye\r\n" and a1[1].readline() == b""
        c2 = connect(server, "127.0.0.3")
        clients.append(c2)
        assert greeted(c2)
        a4 = connect(server)
        clients.append(a4)
        assert refused(a4)                              # full again
        a2[0].sendall(b"ping\r\n")
        assert a2[1].readline() == b"= ping\r\n"         # the admitted sessions go on
        assert len(server.sessions) == 3
    finally:
        close(*clients)


def test_close_all_ends_live_sessions(servers):
    server = servers()
    clients = [connect(server) for _ in range(3)]
    try:
        assert all(greeted(c) for c in clients)
        assert len(server.sessions) == 3
        server.close_all()
        for _, f in clients:
            assert f.readline() == b""                  # closed without a client's move
        server.threads.join(10)
        assert server.threads.size == 0 and server.sessions == set()
        late = connect(server)                          # still listening, no longer serving
        clients.append(late)
        assert late[1].readline() == b""
    finally:
        close(*clients)


def test_a_drain_after_the_drain_fd_was_closed_writes_nowhere(servers):
    """A second stop drains again: the eventfd's number, closed by the first, may by
    then belong to another file of the process, which must not get the write."""
    server = servers(serve=False)
    server.start_drain()
    server.close_drain_fd()
    reused = os.eventfd(0, os.EFD_NONBLOCK)       # takes the freed number, most likely
    try:
        server.start_drain()
        with pytest.raises(BlockingIOError):
            os.eventfd_read(reused)                # nothing was written to it
    finally:
        os.close(reused)
    assert server.draining and server.drain_fd is None


# -- what a session gets from the listener --------------------------------------------------------
def kernel_timeout(sock):
    seconds, micro = struct.unpack("ll", sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16))
    return seconds + micro / 1e6


def test_sessions_get_timeouts_and_nodelay_from_the_listener_until_a_reload_changes_them(
        servers, monkeypatch):
    from clevermail import line_session
    calls = []
    real = line_session.set_blocking_timeout
    monkeypatch.setattr(line_session, "set_blocking_timeout",
                        lambda sock, seconds: calls.append(seconds) or real(sock, seconds))
    server = servers(timeout=9.5)
    assert server.socket.gettimeout() == 0.0            # the accept loop's listener stays non-blocking
    first = connect(server)
    try:
        assert greeted(first)
        [session] = server.sessions
        sock = session.connection
        assert kernel_timeout(sock) == 9.5 and sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert sock.gettimeout() is None and calls == []        # blocking, nothing set by the session
        server.limits = limits(timeout=4.0)                     # what a reload does
        second = connect(server)
        assert greeted(second)
        [new] = server.sessions - {session}
        assert kernel_timeout(new.connection) == 4.0 and calls == [4.0]
        close(second)
    finally:
        close(first)
