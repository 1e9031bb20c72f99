"""POP3 replies: status lines, RFC 3206 response codes, and multi-line bodies.

A single-line reply is "+OK text" or "-ERR [CODE] text" (RFC 1939 3, RFC 2449 8).
The extended response codes this server sends (RFC 3206, announced by CAPA
RESP-CODES and AUTH-RESP-CODE):

    [AUTH]      the credentials were refused (RFC 3206 5)
    [SYS/TEMP]  a temporary problem on our side; try again later (RFC 3206 4)
    [SYS/PERM]  a permanent problem on our side (RFC 3206 4)
    [IN-USE]    the maildrop is held by another POP3 session (RFC 2449 8.1.1)

POP3Error carries its whole reply so that the session writes it at one catch point.
Multi-line bodies are byte-stuffed (a line starting with '.' gets another '.') and
end with ".CRLF" (RFC 1939 3); `stuffed_chunks` streams a message file that way.
"""

AUTH = "AUTH"
SYS_TEMP = "SYS/TEMP"
SYS_PERM = "SYS/PERM"
IN_USE = "IN-USE"

TERMINATOR = b".\r\n"


def ok(text=""):
    """A single-line positive reply as bytes."""
    return b"+OK " + text.encode("utf-8") + b"\r\n" if text else b"+OK\r\n"


def err(text, code=None):
    """A single-line negative reply as bytes, with an optional RFC 3206 code."""
    prefix = f"-ERR [{code}] " if code else "-ERR "
    return (prefix + text).encode("utf-8") + b"\r\n"


class POP3Error(Exception):
    """A command failed; `reply` is the exact -ERR line to send.

    `counts` says whether the failure is a client error that counts toward the
    session's error limit (syntax, wrong state, bad credentials).  Failures the client
    cannot avoid, such as a message expunged by an IMAP session, do not count: a
    client retrieving a changing maildrop must never be cut off before its QUIT."""

    def __init__(self, text, code=None, counts=True):
        super().__init__(text)
        self.code = code
        self.counts = counts
        self.reply = err(text, code)


def multiline(first, lines):
    """'+OK first' followed by `lines` (str, no CRLF, never starting with '.') and the
    terminator, as one buffer: LIST, UIDL and CAPA send it with one sendall."""
    body = "\r\n".join(lines)
    if body:
        body += "\r\n"
    return ok(first) + body.encode("utf-8") + TERMINATOR


def stuff_block(data, at_line_start=True):
    """One piece of a disk-form (LF) message -> wire form (CRLF) with lines that start
    with '.' stuffed.  `at_line_start` says whether the previous piece ended a line:
    a chunk boundary may fall right before a '.' that opens a line."""
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
