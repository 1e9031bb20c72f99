"""Protocol-neutral bytes on the wire: buffered line reading with hard limits, CRLF and
dot-stuffing rules (RFC 5321 4.5.2, RFC 1939 3), and streaming a stored message as a
byte-stuffed multi-line block (POP3 RETR and TOP).  SASL lives in login.py.

LineReader is the only thing that reads from a session's socket.  It keeps its own
buffer (rather than a BufferedReader) so that a session can tell whether the client
pipelined bytes (STARTTLS must discard them) and so that SMTP DATA can be scanned for
its terminator with one C-level `find` per received chunk instead of a loop per line.
"""

import socket

END_OF_DATA = b"\r\n.\r\n"
# The line that ends a multi-line block (RFC 1939 3, RFC 5321 4.1.1.4).
TERMINATOR = b".\r\n"


class LineTooLong(Exception):
    """A line longer than the limit; the rest of it has been read and discarded."""


class DataTooLarge(Exception):
    """A dot-terminated body over the size limit; it was read to its end and dropped."""


class LineReader:
    """`before_read`, when given, is called before each recv: the session's flush of
    the replies it gathered (line_session.py), so none waits for the client's input."""

    def __init__(self, sock, before_read=None, chunk=65536):
        self.sock = sock
        self.chunk = chunk
        self.buf = bytearray()
        self.before_read = before_read

    def fill(self):
        """One recv into the buffer; returns the number of bytes read (0 at EOF)."""
        data = self._recv()
        self.buf += data
        return len(data)

    def _recv(self):
        if self.before_read is not None:
            self.before_read()
        try:
            return self.sock.recv(self.chunk)
        except BlockingIOError:
            # a blocking socket whose kernel receive timeout (SO_RCVTIMEO) expired
            raise socket.timeout("timed out") from None

    def has_buffered(self):
        """Bytes read ahead here, or decrypted and waiting in a TLS socket."""
        if self.buf:
            return True
        pending = getattr(self.sock, "pending", None)
        return pending is not None and pending() > 0

    def take_buffer(self):
        """What was read ahead of the last line, handed over (and cleared)."""
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def discard_buffer(self):
        """Drop whatever the client sent ahead (RFC 3207 5: no STARTTLS injection)."""
        self.buf.clear()

    def readline(self, limit):
        """One line including its LF, at most `limit` bytes; b'' at EOF (a final line
        without LF is returned as is).  Raises LineTooLong after consuming the line."""
        if not self.buf:
            # a client waiting for each reply sends one command per packet: a recv that
            # brings exactly one line is that line, without a trip through the buffer
            data = self._recv()
            if data.find(b"\n") == len(data) - 1 and len(data) <= limit:
                return data             # (also b"" at EOF)
            self.buf += data
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i >= 0:
                if i + 1 > limit:
                    del self.buf[:i + 1]
                    raise LineTooLong()
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if len(self.buf) > limit:
                self._discard_line()
                raise LineTooLong()
            start = len(self.buf)
            if not self.fill():
                line = bytes(self.buf)
                self.buf.clear()
                return line

    def _discard_line(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                del self.buf[:i + 1]
                return
            self.buf.clear()
            if not self.fill():
                return

    def read(self, n, kind=bytes):
        """Exactly n bytes, as a `kind` (bytes or a subclass: IMAP's Literal, made in
        the one copy out of the buffer); raises EOFError if the peer closes first."""
        while len(self.buf) < n:
            if not self.fill():
                raise EOFError("connection closed inside a literal")
        with memoryview(self.buf) as view:
            data = kind(view[:n])       # one copy (a bytearray slice is two)
        del self.buf[:n]
        return data

    def skip(self, n):
        """Read and drop n bytes without keeping them (an unwanted literal)."""
        while n > 0:
            if not self.buf and not self.fill():
                raise EOFError("connection closed inside a literal")
            take = min(n, len(self.buf))
            del self.buf[:take]
            n -= take

    def read_dot_terminated(self, max_size):
        """The body of an SMTP DATA / POP3-style multi-line block: everything up to
        CRLF.CRLF, still dot-stuffed, ending with its own CRLF (b'' for an empty body).

        Only CRLF '.' CRLF ends it: a bare LF or CR never does, so '\\n.\\n' inside the
        data cannot split one message into two (SMTP smuggling).  Over `max_size` the
        rest is read and dropped and DataTooLarge raised.  EOF raises EOFError."""
        scanned = 0
        dropped = 0
        while True:
            # empty body: the terminator opens the data (checked after every recv too,
            # since the '.' line usually arrives after this call began; until something
            # is dropped the buffer still starts at the start of the data)
            if not dropped and self.buf[:3] == b".\r\n":
                del self.buf[:3]
                return b""
            i = self.buf.find(END_OF_DATA, max(0, scanned - 4))
            if i >= 0:
                if dropped or i + 2 > max_size:
                    del self.buf[:i + 5]
                    raise DataTooLarge()
                with memoryview(self.buf) as view:
                    body = bytes(view[:i + 2])     # one copy (a bytearray slice is two)
                del self.buf[:i + 5]
                return body
            if len(self.buf) > max_size + 4:
                # keep the tail that may hold the start of the terminator
                keep = self.buf[-4:]
                dropped += len(self.buf) - 4
                self.buf[:] = keep
            scanned = len(self.buf)
            if not self.fill():
                raise EOFError("connection closed inside DATA")


def dot_unstuff(body):
    """Remove the stuffed dot at the start of every line (RFC 5321 4.5.2)."""
    if body.startswith(b"."):
        body = body[1:]
    return body.replace(b"\r\n.", b"\r\n")


def stuff_block(data, at_line_start=True):
    """One piece of a disk-form (LF) message -> wire form (CRLF) with lines that start
    with '.' stuffed (RFC 1939 3).  `at_line_start` says whether the previous piece
    ended a line: a chunk boundary may fall right before a '.' that opens a line."""
    if at_line_start and data[:1] == b".":
        data = b"." + data
    # stuff on the LF form, then widen: '\n..' becomes '\r\n..' in one pass each
    return data.replace(b"\n.", b"\n..").replace(b"\n", b"\r\n")


def stuffed_chunks(f, chunk_size=1 << 16):
    """Yield a message file (disk form) as wire-form, byte-stuffed chunks, then the
    terminator.  A message without a final newline gets a CRLF before '.' (the
    terminator must start a line); every other byte is what to_wire() gives."""
    at_start = True
    while True:
        data = f.read(chunk_size)
        if not data:
            break
        yield stuff_block(data, at_start)
        at_start = data[-1:] == b"\n"
    yield TERMINATOR if at_start else b"\r\n" + TERMINATOR


def top_of(f, lines):
    """The header, the blank line and the first `lines` body lines of a message file
    (disk form), as one wire-form, byte-stuffed block with its terminator (RFC 1939 7
    TOP).  A message without a blank line is all header."""
    out = []
    for line in f:
        out.append(line)
        if line == b"\n" or line == b"\r\n":
            break
    else:
        lines = 0
    for _ in range(lines):
        line = f.readline()
        if not line:
            break
        out.append(line)
    data = b"".join(out)
    body = stuff_block(data)
    return body + (TERMINATOR if not data or data.endswith(b"\n") else b"\r\n" + TERMINATOR)


def has_long_line(body, limit):
    """True when a line of `body`, counted with its line ending, is longer than `limit`
    octets; a last line without one counts as if it had its CRLF.

    Each step jumps to the last LF within the next `limit` octets, so a 100 kB message
    takes about a hundred C-level searches (a regex over every octet took twice as long)."""
    start = 0
    end = len(body) if body.endswith(b"\n") else len(body) + 2
    while end - start > limit:
        lf = body.rfind(b"\n", start, start + limit)
        if lf < 0:
            return True
        start = lf + 1
    return False


def has_bare_lf_or_cr(body):
    """True when `body` holds an LF not preceded by CR or a CR not followed by LF."""
    crlf = body.count(b"\r\n")            # the slow count (a two-byte pattern): once
    return body.count(b"\n") != crlf or body.count(b"\r") != crlf


def normalize_crlf(body):
    """Every bare LF or bare CR becomes CRLF (for messages from lax clients)."""
    if not has_bare_lf_or_cr(body):
        return body
    return body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
