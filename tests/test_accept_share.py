"""Tests for clevermail.accept_share: the board of connections open in each process of
[server] workers, and MailServer's accept loop sharing new connections out by it.

Two processes are stood in for by two echo MailServers in this process on one listening
socket, each with its own view (slot) of one board; a long wait (defer) makes the
outcome independent of timing: the server ahead waits, the other takes the connection.
End to end with `clevermail start` and a worker: tests/test_workers.py."""

import os
import threading

import pytest

from clevermail import netbase
from clevermail.accept_share import ABSENT, ENV, NO_BOARD, LoadBoard
from clevermail.netbase import MailServer
from test_netbase import EchoSession, close, connect, greeted, limits, stop_servers
from waiting import wait_for


@pytest.fixture
def board():
    made = []

    def make(slots=2, defer=30.0):
        main = LoadBoard.create(slots, defer=defer)
        made.append(main)
        return main
    yield make
    for main in made:
        os.close(main.fd)


def view(main, index, defer=30.0):
    """Process `index`'s view of the main process's board, as a worker gets it."""
    environ = {ENV: f"{os.dup(main.fd)}:{main.slots}"}
    mine = LoadBoard.inherited(index, environ, defer=defer)
    assert ENV not in environ           # nothing the worker starts inherits it
    return mine


# -- the board ---------------------------------------------------------------------------------
def test_each_process_writes_its_own_slot_and_reads_the_others(board):
    main = board(3)
    assert [main.count(i) for i in range(3)] == [0, ABSENT, ABSENT]   # workers not started yet
    worker = view(main, 2)
    assert main.count(2) == 0
    worker.opened()
    worker.opened()
    main.opened()
    assert [main.count(i) for i in range(3)] == [1, ABSENT, 2]
    assert [worker.count(i) for i in range(3)] == [1, ABSENT, 2]
    worker.closed()
    assert main.count(2) == 1


def test_ahead_means_more_connections_than_another_running_process(board):
    main = board(3)
    worker = view(main, 1)
    assert not main.ahead() and not worker.ahead()      # equal
    main.opened()
    assert main.ahead() and not worker.ahead()
    worker.opened()
    worker.opened()
    assert worker.ahead() and not main.ahead()
    main.gone(1)                                        # the worker died: its slot no longer counts
    assert not main.ahead()


def test_a_single_process_has_no_board():
    assert not NO_BOARD.ahead()
    NO_BOARD.opened()
    NO_BOARD.closed()
    assert not NO_BOARD.ahead()


@pytest.mark.parametrize("value", ["", "x:2", "5", "1:2:3"])
def test_a_malformed_board_variable_means_no_board(value):
    assert LoadBoard.inherited(1, {ENV: value}) is NO_BOARD


def test_a_board_too_small_for_the_worker_means_no_board(board):
    main = board(2)
    fd = os.dup(main.fd)
    assert LoadBoard.inherited(2, {ENV: f"{fd}:2"}) is NO_BOARD
    with pytest.raises(OSError):
        os.fstat(fd)                    # its descriptor is closed all the same
    assert LoadBoard.inherited(1, {}) is NO_BOARD


# -- the accept loop ----------------------------------------------------------------------------
@pytest.fixture
def pair(thread_guard, board):
    """Two echo servers on one listening socket, serving, with views 0 and 1 of a board."""
    made = []

    def make(defer=30.0, serve_second=True, **limit_values):
        main = board(2, defer)
        first = MailServer(("127.0.0.1", 0), EchoSession, None, protocol="echo", hostname="echo.test",
                           limits=limits(**limit_values), policy=netbase.SessionPolicy())
        second = MailServer(first.server_address, EchoSession, None, protocol="echo", hostname="echo.test",
                            limits=limits(**limit_values), policy=netbase.SessionPolicy(),
                            sock=first.socket.dup())
        first.board, second.board = main, view(main, 1, defer)
        for server in (first, second) if serve_second else (first,):
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                      daemon=True)
            thread.start()
            made.append((server, thread))
        if not serve_second:
            made.append((second, None))
        return first, second
    yield make
    stop_servers(made)


def test_connections_are_shared_out_one_each_in_turn(pair):
    first, second = pair()
    clients = []
    try:
        for n in range(1, 7):
            clients.append(connect(first))
            assert greeted(clients[-1])
            # the one ahead waited (30 s): the other took it, whichever was first
            counts = sorted((first.board.count(0), first.board.count(1)))
            assert counts == [n // 2, n - n // 2]
        assert len(first.sessions) == len(second.sessions) == 3
    finally:
        close(*clients)
    # every ended session is counted out
    assert wait_for(lambda: (first.board.count(0), first.board.count(1)) == (0, 0))


def test_new_connections_go_to_the_process_with_fewer_open(pair):
    first, second = pair()
    for _ in range(6):
        first.board.opened()            # as if the first had 6 sessions already
    clients = []
    try:
        for _ in range(6):
            clients.append(connect(first))
            assert greeted(clients[-1])
        assert (len(first.sessions), len(second.sessions)) == (0, 6)
        assert (first.board.count(0), first.board.count(1)) == (6, 6)
        clients.append(connect(first))  # even now: whichever
        assert greeted(clients[-1])
        assert len(first.sessions) + len(second.sessions) == 7
    finally:
        close(*clients)
        for _ in range(6):
            first.board.closed()


def test_a_process_marked_gone_is_not_waited_for(pair):
    first, second = pair(serve_second=False)
    first.board.gone(1)
    clients = [connect(first) for _ in range(3)]
    try:
        # a wait for the absent one would outlast the client's 10 s
        assert all(greeted(c) for c in clients)
        assert first.board.count(0) == 3
    finally:
        close(*clients)


def test_a_running_process_that_does_not_accept_is_waited_for_only_so_long(pair):
    first, second = pair(defer=0.05, serve_second=False)    # the second never accepts
    clients = [connect(first) for _ in range(3)]
    try:
        assert all(greeted(c) for c in clients)
        assert (first.board.count(0), first.board.count(1)) == (3, 0)
    finally:
        close(*clients)


def test_refused_sessions_are_counted_out(pair):
    first, second = pair(connections=1)
    clients = [connect(first) for _ in range(4)]
    try:
        replies = [c[1].readline() for c in clients]
        assert replies.count(b"- busy\r\n") == 2        # one admitted per server
    finally:
        close(*clients)
    assert wait_for(lambda: (first.board.count(0), first.board.count(1)) == (0, 0))


def test_only_imap_listeners_share_connections_out(board, tmp_path, make_config, thread_guard):
    """IMAP's sessions live for hours and pile up on the quickest process, so only its
    listeners defer to a less loaded one; SMTP's and POP3's new sessions last a moment
    and are taken by whoever is quickest (a deferred accept cut their rate 5x)."""
    from clevermail.service import MailService
    main = board()
    service = MailService(make_config(tmp_path), board=main)
    service.start()
    try:
        boards = {kind: srv.board for kind, srv in service.servers}
        assert boards["imap"] is main
        assert {kind for kind in boards if kind != "imap"} >= {"smtp", "pop3"}
        assert all(b is NO_BOARD for kind, b in boards.items() if kind != "imap")
    finally:
        service.stop()
