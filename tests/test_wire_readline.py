"""Tests for clevermail.wire.LineReader.readline when the buffer is empty: a packet that is
exactly one line is returned as it came; every other packet (part of a line, several
lines, a line over the limit, EOF) gives what the buffered path gives.  The session
flushes its replies before each recv (`before_read`)."""

import socket

import pytest

from clevermail.wire import LineReader, LineTooLong


class Packets:
    """A socket stand-in whose recv returns the given packets one by one, then EOF."""

    def __init__(self, *packets):
        self.packets = list(packets)
        self.recvs = 0

    def recv(self, size):
        self.recvs += 1
        return self.packets.pop(0) if self.packets else b""


def reader(*packets, **kw):
    sock = Packets(*packets)
    return LineReader(sock, **kw), sock


def test_one_line_per_packet_comes_back_as_sent():
    flushed = []
    r, sock = reader(b"a1 NOOP\r\n", b"a2 NOOP\r\n", before_read=lambda: flushed.append(1))
    first = r.readline(100)
    assert first == b"a1 NOOP\r\n" and type(first) is bytes
    assert r.readline(100) == b"a2 NOOP\r\n"
    assert r.readline(100) == b""
    assert (sock.recvs, len(flushed)) == (3, 3)
    assert not r.has_buffered()


def test_several_lines_in_one_packet_are_read_one_at_a_time():
    r, sock = reader(b"a1 NOOP\r\na2 CHECK\r\na3 ", b"LOGOUT\r\n")
    assert r.readline(100) == b"a1 NOOP\r\n"
    assert r.has_buffered()
    assert r.readline(100) == b"a2 CHECK\r\n"
    assert r.readline(100) == b"a3 LOGOUT\r\n"
    assert sock.recvs == 2


def test_a_line_in_pieces_is_joined():
    r, _ = reader(b"a1 ", b"NO", b"OP\r\n")
    assert r.readline(100) == b"a1 NOOP\r\n"


@pytest.mark.parametrize("packets", [(b"x" * 20 + b"\r\n", b"ok\r\n"), (b"x" * 20, b"x\r\nok\r\n")])
def test_a_line_over_the_limit_is_dropped_and_the_next_one_read(packets):
    r, _ = reader(*packets)
    with pytest.raises(LineTooLong):
        r.readline(10)
    assert r.readline(10) == b"ok\r\n"


def test_the_limit_counts_the_line_ending():
    r, _ = reader(b"12345678\r\n", b"123456789\r\n")
    assert r.readline(10) == b"12345678\r\n"
    with pytest.raises(LineTooLong):
        r.readline(10)


def test_eof_and_a_last_line_without_its_end():
    r, _ = reader(b"partial")
    assert r.readline(100) == b"partial"
    assert r.readline(100) == b""


def test_a_real_socket_pipelined_and_one_by_one():
    ours, theirs = socket.socketpair()
    try:
        ours.settimeout(5)
        r = LineReader(ours)
        theirs.sendall(b"a1 NOOP\r\n")
        assert r.readline(100) == b"a1 NOOP\r\n"
        theirs.sendall(b"a2 X {3}\r\nabc\r\na3 NOOP\r\n")
        assert r.readline(100) == b"a2 X {3}\r\n"
        assert r.read(3) == b"abc"
        assert r.readline(100) == b"\r\n"
        assert r.readline(100) == b"a3 NOOP\r\n"
        theirs.shutdown(socket.SHUT_WR)
        assert r.readline(100) == b""
    finally:
        ours.close()
        theirs.close()
