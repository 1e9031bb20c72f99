"""A session's connection with both directions deflated: IMAP COMPRESS=DEFLATE (RFC 4978).

`DeflateSocket` wraps the session's socket (plain or TLS) once the server said OK to
COMPRESS DEFLATE: what the session sends is compressed as raw DEFLATE (RFC 1951, no
zlib header, RFC 4978 3) and flushed with Z_SYNC_FLUSH after every write, so the
client can decode each reply as soon as it arrives; what it reads is inflated.

Inflating is bounded: one recv() gives at most the number of bytes asked for, the
rest of an input chunk waits in `unconsumed_tail`, so a small compressed chunk that
inflates to gigabytes (a "zip bomb") is never expanded in one piece.  Everything
else (fileno for poll, timeouts, shutdown, close) is the wrapped socket's.
"""

import zlib

# zlib's default: compression gains little past it and costs CPU per reply
LEVEL = 6
RECV_CHUNK = 65536


class DeflateSocket:
    """The socket-like object a LineReader and the session's send() use after COMPRESS."""

    def __init__(self, sock, buffered=b""):
        """`buffered`: bytes the client sent after its COMPRESS command that were
        already read (they are compressed data: RFC 4978 4)."""
        self.raw_socket = getattr(sock, "raw_socket", sock)     # what cut() shuts down
        self._sock = sock
        self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
        self._deflate = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        self._tail = bytes(buffered)

    def recv(self, size):
        """Up to `size` inflated bytes; b"" at EOF.  Raises OSError on a corrupt stream."""
        while True:
            if self._tail:
                try:
                    out = self._inflate.decompress(self._tail, size)
                except zlib.error as exc:
                    raise ConnectionError(f"bad compressed data: {exc}") from None
                self._tail = self._inflate.unconsumed_tail
                if out:
                    return out
                if self._inflate.eof:
                    return b""          # the client ended the DEFLATE stream: no more input
            data = self._sock.recv(RECV_CHUNK)
            if not data:
                return b""
            self._tail = data

    def sendall(self, data):
        self._sock.sendall(self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH))

    def send(self, data):
        self.sendall(data)
        return len(data)

    def pending(self):
        """Input already received but not yet handed out (what poll cannot see)."""
        return len(self._tail) + getattr(self._sock, "pending", lambda: 0)()

    def __getattr__(self, name):
        return getattr(self._sock, name)
