"""Tests for COMPRESS=DEFLATE (RFC 4978: clevermail/deflate.py and IMAP's COMPRESS):
the command's answers, a whole dialogue deflated both ways (commands, literals, IDLE),
and hostile compressed input (a zip bomb line, a corrupt stream), in sessions over
socketpair.  The end-to-end test over TLS is in test_imap_e2e.py."""

import socket
import zlib

from clevermail import deflate
from imap_helpers import client, deliver, handler, open_session, store  # noqa: F401 (fixtures)


class Deflated:
    """The client's side of a compressed IMAP connection over a socket."""

    def __init__(self, sock, leftover=b""):
        self.sock = sock
        self.out = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inflate = zlib.decompressobj(-15)
        self.buf = self.inflate.decompress(leftover)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(self.out.compress(data) + self.out.flush(zlib.Z_SYNC_FLUSH))

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += self.inflate.decompress(data)
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line.decode("utf-8", "replace")

    def reply(self, tag):
        lines = []
        while True:
            line = self.line()
            assert line is not None, f"EOF before {tag}: {lines}"
            lines.append(line)
            if line.startswith(tag + " "):
                return lines


def compress(c):
    """COMPRESS DEFLATE on an imap_helpers Client; the Deflated side of it."""
    c.send("z1 COMPRESS DEFLATE\r\n")
    assert c.line() == "z1 OK DEFLATE active"
    return Deflated(c.sock)      # the server sent nothing after the OK: c.file holds nothing


# -- the command --------------------------------------------------------------------------
def test_compress_is_offered_after_login_only_and_checks_its_argument(open_session):
    c = open_session()
    assert "COMPRESS=DEFLATE" not in c.greeting
    c.expect("COMPRESS DEFLATE", "BAD")                 # not authenticated
    r = c.login()
    assert "COMPRESS=DEFLATE" in r.tagged
    c.expect("COMPRESS", "BAD")
    c.expect("COMPRESS (DEFLATE)", "BAD")
    c.expect("COMPRESS GZIP", "NO", "", "Unknown compression mechanism")
    z = compress(c)
    z.send("a1 COMPRESS DEFLATE\r\n")
    assert z.reply("a1") == ["a1 NO [COMPRESSIONACTIVE] DEFLATE active via COMPRESS"]
    z.send("a2 CAPABILITY\r\n")
    caps, done = z.reply("a2")
    assert "COMPRESS=DEFLATE" not in caps and done == "a2 OK CAPABILITY completed"


def test_a_whole_dialogue_deflated(client, store):
    deliver(store, 2)
    z = compress(client)
    z.send("a1 SELECT INBOX\r\n")
    assert z.reply("a1")[-1].startswith("a1 OK [READ-WRITE]")
    body = b"Subject: compressed\r\n\r\n" + b"x" * 100000 + b"\r\n"
    z.send(f"a2 APPEND INBOX {{{len(body)}+}}\r\n".encode() + body + b"\r\n")
    assert z.reply("a2")[-1].startswith("a2 OK [APPENDUID")
    z.send("a3 FETCH 3 (BODY.PEEK[HEADER.FIELDS (SUBJECT)] RFC822.SIZE)\r\n")
    lines = z.reply("a3")
    assert lines[-5:] == ["* 3 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {23}", "Subject: compressed", "",
                          f" RFC822.SIZE {len(body)})", "a3 OK FETCH completed"]
    z.send("a4 IDLE\r\n")
    assert z.line() == "+ idling"
    z.send("DONE\r\n")
    assert z.reply("a4")[-1] == "a4 OK IDLE terminated"
    z.send("a5 LOGOUT\r\n")
    assert z.reply("a5")[-1] == "a5 OK LOGOUT completed"


# -- hostile input --------------------------------------------------------------------------
def test_a_zip_bomb_line_is_refused_and_the_session_goes_on(client):
    z = compress(client)
    # 50 MB of "a" without a line end: a few dozen KB compressed
    chunk = z.out.compress(b"a" * (1 << 20))
    for _ in range(50):
        z.sock.sendall(chunk)
        chunk = z.out.compress(b"a" * (1 << 20))
    z.send(b"\r\na1 NOOP\r\n")
    lines = z.reply("a1")
    assert any("BAD" in l and "too long" in l.lower() for l in lines), lines
    assert lines[-1] == "a1 OK NOOP completed"


def test_a_corrupt_stream_ends_the_session_not_the_server(client, open_session):
    compress(client)
    client.sock.sendall(b"\xff" * 64 + b"not deflate at all\r\n")
    client.sock.settimeout(10)
    assert client.sock.recv(100) == b""           # the server closed it
    other = open_session()                         # and still serves others
    other.login()


def test_deflate_socket_bounds_each_read():
    a, b = socket.socketpair()
    try:
        z = zlib.compressobj(6, zlib.DEFLATED, -15)
        a.sendall(z.compress(b"\0" * 1_000_000) + z.flush(zlib.Z_SYNC_FLUSH))
        d = deflate.DeflateSocket(b)
        got = d.recv(4096)
        assert got == b"\0" * 4096 and d.pending() > 0
        total = len(got)
        while total < 1_000_000:
            total += len(d.recv(65536))
        assert total == 1_000_000
    finally:
        a.close()
        b.close()
