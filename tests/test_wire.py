"""Tests for clevermail.wire: LineReader over a socketpair, dot-stuffing and streaming a
stored message, CRLF."""

import io
import random
import socket
import threading

import pytest

from clevermail.store.maildir import to_wire
from clevermail.wire import (DataTooLarge, LineReader, LineTooLong, dot_unstuff, has_bare_lf_or_cr,
                             normalize_crlf, stuff_block, stuffed_chunks, top_of)


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    server.settimeout(5)
    client.settimeout(5)
    yield LineReader(server, chunk=4096), client
    server.close()
    client.close()


def send_in_chunks(client, data, chunk):
    """Send from another thread so that large data cannot deadlock the socketpair."""
    def run():
        for i in range(0, len(data), chunk):
            client.sendall(data[i:i + chunk])
    t = threading.Thread(target=run)
    t.start()
    return t


# -- readline ----------------------------------------------------------------------
def test_readline_basic(pair):
    reader, client = pair
    client.sendall(b"HELO a\r\nNOOP\r\nlast")
    client.shutdown(socket.SHUT_WR)
    assert reader.readline(512) == b"HELO a\r\n"
    assert reader.readline(512) == b"NOOP\r\n"
    assert reader.readline(512) == b"last"
    assert reader.readline(512) == b""
    assert reader.readline(512) == b""


def test_readline_limit_is_inclusive(pair):
    reader, client = pair
    client.sendall(b"12345678\r\n" + b"123456789\r\n" + b"ok\r\n")
    assert reader.readline(10) == b"12345678\r\n"
    with pytest.raises(LineTooLong):
        reader.readline(10)
    assert reader.readline(10) == b"ok\r\n"


def test_line_too_long_across_chunks_then_session_continues(pair):
    reader, client = pair
    t = send_in_chunks(client, b"X" * 100_000 + b"\r\nNOOP\r\n", 1000)
    with pytest.raises(LineTooLong):
        reader.readline(512)
    assert reader.readline(512) == b"NOOP\r\n"
    t.join()
    assert len(reader.buf) < 4096 * 2


def test_line_too_long_at_eof(pair):
    reader, client = pair
    client.sendall(b"Y" * 2000)
    client.shutdown(socket.SHUT_WR)
    with pytest.raises(LineTooLong):
        reader.readline(100)
    assert reader.readline(100) == b""


def test_pipelining_visible_and_discardable(pair):
    reader, client = pair
    client.sendall(b"STARTTLS\r\nMAIL FROM:<evil@x>\r\n")
    assert reader.readline(512) == b"STARTTLS\r\n"
    assert reader.has_buffered()
    reader.discard_buffer()
    assert not reader.has_buffered()
    client.sendall(b"EHLO x\r\n")
    assert reader.readline(512) == b"EHLO x\r\n"


# -- read / skip ---------------------------------------------------------------------------
def test_read_exact_across_chunks(pair):
    reader, client = pair
    data = bytes(range(256)) * 100
    t = send_in_chunks(client, b"hdr\r\n" + data + b"tail\r\n", 777)
    assert reader.readline(512) == b"hdr\r\n"
    assert reader.read(len(data)) == data
    assert reader.readline(512) == b"tail\r\n"
    t.join()


def test_read_eof(pair):
    reader, client = pair
    client.sendall(b"abc")
    client.shutdown(socket.SHUT_WR)
    with pytest.raises(EOFError):
        reader.read(10)


def test_skip(pair):
    reader, client = pair
    t = send_in_chunks(client, b"Z" * 50_000 + b" rest\r\n", 3000)
    reader.skip(50_000)
    assert reader.readline(512) == b" rest\r\n"
    t.join()


def test_skip_eof(pair):
    reader, client = pair
    client.sendall(b"abc")
    client.shutdown(socket.SHUT_WR)
    with pytest.raises(EOFError):
        reader.skip(4)


def test_read_zero(pair):
    reader, _ = pair
    assert reader.read(0) == b""
    reader.skip(0)


# -- read_dot_terminated ------------------------------------------------------------------
def test_dot_terminated_basic(pair):
    reader, client = pair
    client.sendall(b"Subject: x\r\n\r\nbody\r\n..dot\r\n.\r\nQUIT\r\n")
    assert reader.read_dot_terminated(10_000) == b"Subject: x\r\n\r\nbody\r\n..dot\r\n"
    assert reader.readline(512) == b"QUIT\r\n"


def test_dot_terminated_empty_body_already_buffered(pair):
    reader, client = pair
    client.sendall(b".\r\nQUIT\r\n")
    reader.fill()
    assert reader.read_dot_terminated(1000) == b""
    assert reader.readline(512) == b"QUIT\r\n"


def test_dot_terminated_empty_body_arriving_later(pair):
    reader, client = pair
    result = []
    t = threading.Thread(target=lambda: result.append(reader.read_dot_terminated(1000)))
    t.start()
    client.sendall(b".")
    client.sendall(b"\r\n")
    t.join(5)
    assert result == [b""]


def test_dot_terminated_empty_line_body(pair):
    reader, client = pair
    client.sendall(b"\r\n.\r\n")
    assert reader.read_dot_terminated(1000) == b"\r\n"


@pytest.mark.parametrize("smuggle", [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\n.\r"])
def test_dot_terminated_smuggling_forms_do_not_end_data(pair, smuggle):
    reader, client = pair
    body = b"Subject: one\r\n\r\nfirst" + smuggle + b"MAIL FROM:<evil@x>\r\nRCPT TO:<v@y>\r\nDATA\r\nsecond\r\n"
    client.sendall(body + b".\r\nQUIT\r\n")
    assert reader.read_dot_terminated(10_000) == body
    assert reader.readline(512) == b"QUIT\r\n"


def test_dot_terminated_smuggling_at_start(pair):
    reader, client = pair
    client.sendall(b".\nMAIL FROM:<e@x>\r\n.\r\n")
    assert reader.read_dot_terminated(1000) == b".\nMAIL FROM:<e@x>\r\n"


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 4096])
def test_dot_terminated_terminator_split_across_recvs(pair, chunk):
    reader, client = pair
    body = b"line one\r\n.. stuffed\r\n" + b"x" * 50 + b"\r\n"
    reader.chunk = chunk
    t = send_in_chunks(client, body + b".\r\nNEXT\r\n", chunk)
    assert reader.read_dot_terminated(10_000) == body
    assert reader.readline(512) == b"NEXT\r\n"
    t.join()


def test_dot_terminated_each_split_point(pair):
    reader, client = pair
    body = b"a\r\nb\r\n"
    wire = body + b".\r\n"
    for split in range(1, len(wire)):
        result = []
        t = threading.Thread(target=lambda: result.append(reader.read_dot_terminated(100)))
        t.start()
        client.sendall(wire[:split])
        client.sendall(wire[split:])
        t.join(5)
        assert result == [body], split


def test_dot_terminated_exact_limit(pair):
    reader, client = pair
    body = b"x" * 98 + b"\r\n"           # 100 bytes including the final CRLF
    client.sendall(body + b".\r\n" + body[:-2] + b"y\r\n.\r\n")
    assert reader.read_dot_terminated(100) == body
    with pytest.raises(DataTooLarge):
        reader.read_dot_terminated(100)


def test_dot_terminated_oversize_drains_then_continues(pair):
    reader, client = pair
    big = (b"y" * 998 + b"\r\n") * 500     # 500 kB
    t = send_in_chunks(client, big + b".\r\nRSET\r\n", 8192)
    with pytest.raises(DataTooLarge):
        reader.read_dot_terminated(10_000)
    assert reader.readline(512) == b"RSET\r\n"
    t.join()
    assert len(reader.buf) == 0


def test_dot_terminated_oversize_terminator_split_at_drop_boundary(pair):
    reader, client = pair
    reader.chunk = 7
    t = send_in_chunks(client, b"z" * 200 + b"\r\n.\r\nNOOP\r\n", 7)
    with pytest.raises(DataTooLarge):
        reader.read_dot_terminated(50)
    assert reader.readline(512) == b"NOOP\r\n"
    t.join()


def test_dot_terminated_eof(pair):
    reader, client = pair
    client.sendall(b"body without end\r\n")
    client.shutdown(socket.SHUT_WR)
    with pytest.raises(EOFError):
        reader.read_dot_terminated(1000)


# -- dot stuffing / CRLF -------------------------------------------------------------------------
@pytest.mark.parametrize("disk, stuffed", [
    (b"", b""),
    (b"plain\n", b"plain\r\n"),
    (b".\n", b"..\r\n"),
    (b".lead\nmid\n.dot\n..two\n", b"..lead\r\nmid\r\n..dot\r\n...two\r\n"),
    (b"a\r.b\n", b"a\r.b\r\n"),          # only a newline starts a line
])
def test_stuff_block_examples(disk, stuffed):
    assert stuff_block(disk) == stuffed
    assert dot_unstuff(stuffed) == to_wire(disk)


def test_stuff_block_round_trip_random():
    rng = random.Random(1234)
    alphabet = [b".", b"\r", b"\n", b"a", b" ", b".."]
    for _ in range(2000):
        disk = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        stuffed = stuff_block(disk)
        assert dot_unstuff(stuffed) == disk.replace(b"\n", b"\r\n")
        # a stuffed body never holds the terminator, not even at its start
        assert b"\r\n.\r\n" not in b"\r\n" + stuffed


def _stream(disk, chunk_size):
    return b"".join(stuffed_chunks(io.BytesIO(disk), chunk_size))


def _stuffed_by_lines(wire):
    """The reference: stuff the whole wire form line by line (RFC 1939 3)."""
    return b"\r\n".join(b"." + line if line.startswith(b".") else line
                         for line in wire.split(b"\r\n"))


@pytest.mark.parametrize("disk", [
    b"",
    b"\n",
    b".\n",
    b"..\n",
    b"Subject: x\n\n.\n..\n.hidden\nend\n",
    b"a\n.b\n.\n\n.",
    b"no final newline",
    b".starts with a dot\nand\n.more dots\n",
    b"bare\rCR\n.\n",
])
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 64, 1 << 16])
def test_stuffed_chunks_equal_stuffing_the_whole_wire_form(disk, chunk_size):
    wire = to_wire(disk)
    if wire and not wire.endswith(b"\r\n"):
        wire += b"\r\n"         # the terminator must start a line
    assert _stream(disk, chunk_size) == _stuffed_by_lines(wire) + b".\r\n"


def test_chunk_boundary_before_a_leading_dot():
    # the second chunk starts a line with '.': it must be stuffed too
    disk = b"abc\n.def\n"
    assert _stream(disk, 4) == b"abc\r\n..def\r\n.\r\n"
    # a chunk that starts mid-line with '.' is not a line start
    assert _stream(b"ab.c\n", 2) == b"ab.c\r\n.\r\n"


def test_top_of():
    disk = b"Subject: x\nX: y\n\n.line1\nline2\nline3\n"
    assert top_of(io.BytesIO(disk), 0) == b"Subject: x\r\nX: y\r\n\r\n.\r\n"
    assert top_of(io.BytesIO(disk), 1) == b"Subject: x\r\nX: y\r\n\r\n..line1\r\n.\r\n"
    assert top_of(io.BytesIO(disk), 99) == b"Subject: x\r\nX: y\r\n\r\n..line1\r\nline2\r\nline3\r\n.\r\n"
    # no body separator: the whole message is header
    assert top_of(io.BytesIO(b"Subject: x\nY: z"), 5) == b"Subject: x\r\nY: z\r\n.\r\n"
    assert top_of(io.BytesIO(b""), 5) == b".\r\n"


def test_dot_unstuff_lenient_single_dot():
    assert dot_unstuff(b"line\r\n.x\r\n") == b"line\r\nx\r\n"


@pytest.mark.parametrize("body, expected", [
    (b"a\r\nb\r\n", b"a\r\nb\r\n"),
    (b"a\nb\n", b"a\r\nb\r\n"),
    (b"a\rb\r", b"a\r\nb\r\n"),
    (b"a\r\nb\nc\rd", b"a\r\nb\r\nc\r\nd"),
    (b"a\r\r\n", b"a\r\n\r\n"),
    (b"", b""),
])
def test_normalize_crlf(body, expected):
    assert normalize_crlf(body) == expected
    assert not has_bare_lf_or_cr(normalize_crlf(body))


def test_has_bare_lf_or_cr():
    assert not has_bare_lf_or_cr(b"a\r\nb\r\n")
    assert has_bare_lf_or_cr(b"a\nb")
    assert has_bare_lf_or_cr(b"a\rb")
    assert has_bare_lf_or_cr(b"a\n\r")


def test_normalize_returns_same_object_when_clean():
    body = b"x\r\n" * 10
    assert normalize_crlf(body) is body


@pytest.mark.parametrize("body, too_long", [
    (b"", False),
    (b"x" * 998 + b"\r\n", False),                       # 998 octets + CRLF = 1000
    (b"x" * 999 + b"\r\n", True),
    (b"a\r\n" + b"x" * 998 + b"\r\nb\r\n", False),        # in the middle
    (b"a\r\n" + b"x" * 999 + b"\r\nb\r\n", True),
    (b"a\r\n" * 700 + b"x" * 999 + b"\r\n", True),       # after many short lines
    (b"x" * 998, False),                                 # last line without CRLF: as if it had one
    (b"x" * 999, True),
    (b"a\r\n" + b"x" * 998, False),
    (b"a\r\n" + b"x" * 999, True),
    ((b"y" * 998 + b"\r\n") * 300, False),               # every line at the limit
    ((b"y" * 998 + b"\r\n") * 300 + b"z" * 999 + b"\r\n", True),
    (b"x" * 997 + b"\n", False),                          # an LF alone counts as the ending
    (b"x" * 1000 + b"\n", True),
])
def test_has_long_line_boundaries(body, too_long):
    from clevermail.wire import has_long_line
    assert has_long_line(body, 1000) is too_long
    # the same answer as the obvious per-line rule
    lines = body.split(b"\n")
    tail = lines.pop()
    obvious = any(len(line) + 1 > 1000 for line in lines) or (bool(tail) and len(tail) + 2 > 1000)
    assert obvious is too_long


def test_has_long_line_agrees_with_the_per_line_rule_on_random_bodies():
    import random
    from clevermail.wire import has_long_line
    rng = random.Random(5321)
    for _ in range(400):
        lines = [b"x" * rng.choice((0, 1, 500, 997, 998, 999, 1000, 1500)) for _ in range(rng.randint(0, 6))]
        body = b"\r\n".join(lines) + rng.choice((b"", b"\r\n"))
        parts = body.split(b"\n")
        tail = parts.pop()
        obvious = any(len(p) + 1 > 1000 for p in parts) or (bool(tail) and len(tail) + 2 > 1000)
        assert has_long_line(body, 1000) is obvious, body[:40]
