"""A session's output, gathered: what the line session (line_session.py) and its
protocol subclasses send, written with one sendall at the points where it must go.

send() adds to the session's buffer and flush() writes it, which happens before
anything that may wait for the client (the LineReader's every recv, wire.py; the wait
for a command; IMAP IDLE's and NOTIFY's waits), once OUTPUT_BOUND bytes are gathered,
and at the session's end.  So the untagged replies, the updates and the tagged reply of
a command go out in one write, and a client's pipelined commands (RFC 2920 for SMTP)
are answered together, while a reply never waits for the client's next input (a
literal's `+`, an AUTHENTICATE challenge, IDLE's `+ idling`, SMTP's 354 are on the wire
before the server reads).  Each write is a system call that lets the GIL go, and taking
it back waits behind the other session threads: two to four writes per command were
most of a busy server's hand-offs.
"""

from .logs import redact_tokens

# bytes gathered before a write that does not wait for the command's end: a long
# listing goes out as it is made, a reply of a few lines waits for its tagged line
OUTPUT_BOUND = 1 << 16


class GatheredOutput:
    """The output half of LineSession (a mixin: it uses the session's `connection`,
    `debug` and `log`); gather_output() starts it."""

    def gather_output(self):
        self._out = []              # what send() gathered, written by flush()
        self._out_size = 0

    def send(self, data):
        """Gather `data` (bytes or str) for the next write (see the module doc)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        if self.debug:
            self.log.debug("S: %s", redact_tokens(data[:200].decode("utf-8", "replace").rstrip()))
        self._out.append(data)
        self._out_size += len(data)
        if self._out_size >= OUTPUT_BOUND:
            self.flush()

    def flush(self):
        """Write what send() gathered, in one sendall.  Called before anything that
        waits for the client: the LineReader calls it before each recv."""
        out = self._out
        if out:
            data = out[0] if len(out) == 1 else b"".join(out)
            out.clear()             # a write that fails leaves nothing to send again
            self._out_size = 0
            self.connection.sendall(data)

    def _flush_last(self):
        # the session ends: its last replies (LOGOUT's, a shutdown or timeout reply)
        # still go out where the connection takes them
        try:
            self.flush()
        except (OSError, ValueError):       # gone, or a TLS state a cut broke
            self._out.clear()

    def send_many(self, chunks):
        """Send a long run of response lines (bytes) in large writes: gathered as
        send() gathers, joined once per OUTPUT_BOUND bytes."""
        buf, size = [], 0
        for chunk in chunks:
            buf.append(chunk)
            size += len(chunk)
            if size >= OUTPUT_BOUND:
                self.send(b"".join(buf))
                buf, size = [], 0
        if buf:
            self.send(b"".join(buf))
