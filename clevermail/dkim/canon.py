"""The parts of a message that DKIM hashes (RFC 6376 3.4, 3.7), parsed once for every
signature made or checked on it: the header fields as dkimpy parses them, their
canonical forms, and the canonical body and its hashes.  Pure: no I/O.

dkimpy's own verifier parses the whole message line by line (dkim.rfc822_parse,
about 0.2 ms for 4 KiB) and canonicalizes header section and body again for every
signature.  Here only the header section is parsed, by rfc822_parse's own loop
(_fields, compared with it in the tests): the body of a message in CRLF wire form
is already what rfc822_parse would rebuild.  A message
with a bare LF is the exception (dkimpy's parser turns every LF into CRLF): it is
parsed whole by dkimpy, so both give the same bytes to hash.

relaxed_body and relaxed_headers compute dkimpy's Relaxed.canonicalize_body and
canonicalize_headers at a fraction of the cost (compared with them in the tests); the
simple forms are dkimpy's own.

Substrings are looked for with bytes.find, not `in`: `x in data` first tries `x` as
an integer, and the TypeError it makes and clears costs more than the search in a
short field (about 1,500 instructions, 29 times per signed message).
"""

import hashlib
import re

import dkim
from dkim.canonicalization import Simple

# Relaxed body canonicalization (RFC 6376 3.4.4) as dkimpy's Relaxed.canonicalize_body
# computes it, at a fraction of the cost: its two regexes start a match at every
# space (about 10 ms per 100 KiB of text); here line ends are stripped with bytes
# methods, only runs that are not already one space are rewritten, and a body without
# such whitespace (base64) is not rewritten at all.  The tests compare both.
_WSP_RUN = re.compile(rb"(?: [ \t]|\t)[ \t]*")


def relaxed_body(body):
    """The relaxed canonical form of a body: WSP runs -> one space, none before a CRLF,
    no empty lines at the end, CRLF added to a last line without one, and an empty
    body for one of empty lines only (dkimpy's steps, in its order)."""
    if body.find(b" \r\n") >= 0 or body.find(b"\t\r\n") >= 0:
        lines = body.split(b"\r\n")         # the last one has no CRLF: left as it is
        lines[:-1] = [line.rstrip(b" \t") for line in lines[:-1]]
        body = b"\r\n".join(lines)
    if body.find(b"\t") >= 0 or body.find(b"  ") >= 0:
        body = _WSP_RUN.sub(b" ", body)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    end = len(body) - 2
    while body.endswith(b"\r\n", 0, end):
        end -= 2
    body = body[:end + 2]
    return b"" if body == b"\r\n" else body


_WSP = re.compile(rb"[\t ]+")


def relaxed_headers(fields):
    """dkimpy's Relaxed.canonicalize_headers (RFC 6376 3.4.2) of (name, value) pairs:
    the name lower-cased without trailing white space; the value unfolded, WSP runs
    made one space, stripped, CRLF added.  Its regexes run only on a value that has
    a line break, a tab or two spaces in a row: otherwise they change nothing.  A
    value whose only line break is the CRLF ending it (every parsed field ends so)
    loses that CRLF, which is all the first regex would do; other line breaks go by
    two replaces (each LF and a CR just before it, as the regex takes them); and
    where the only white space left is SP and HTAB, split() and join() make its runs
    one space and drop its ends, as the second regex and strip() do.  The regexes
    try a match at almost every octet (about 20 us for a folded signature field)."""
    out = []
    for name, value in fields:
        last = len(value) - 2
        if value.endswith(b"\r\n") and value.find(b"\n", 0, last) < 0:
            value = value[:last]
        elif value.find(b"\n") >= 0:
            value = value.replace(b"\r\n", b"").replace(b"\n", b"")
        if value.find(b"\t") >= 0 or value.find(b"  ") >= 0:
            if value.find(b"\r") < 0 and value.find(b"\x0b") < 0 and value.find(b"\x0c") < 0:
                value = b" ".join(value.split())
            else:
                value = _WSP.sub(b" ", value)
        out.append((name.lower().rstrip(), value.strip() + b"\r\n"))
    return out


def split(data):
    """(header fields as [name, value] lists, body) of `data`: what
    dkim.rfc822_parse(data) returns, for less.  dkim.MessageFormatError if the header
    section cannot be parsed."""
    if data.count(b"\n") != data.count(b"\r\n"):
        return dkim.rfc822_parse(data)      # bare LFs: dkimpy rewrites them all
    if not data or data.startswith(b"\r\n"):
        return [], data[2:]
    end = data.find(b"\r\n\r\n")
    if end < 0:                             # no body: the last line may end in CRLF
        return _fields(data[:-2] if data.endswith(b"\r\n") else data), b""
    return _fields(data[:end]), data[end + 4:]


_FIELD_NAME = re.compile(rb"([\x21-\x7e]+?):")
_VISIBLE = bytes(range(0x21, 0x7f))


def field_start(line):
    """[name, value + CRLF] of a field's first line as rfc822_parse's pattern
    _FIELD_NAME reads it, or None when it does not match.  The pattern's lazy name
    ends at the first colon when every octet before it is visible ASCII, which
    partition and translate see without the regex engine; any other line (no colon,
    a colon first, another octet before it) is left to the pattern itself."""
    name, colon, rest = line.partition(b":")
    if name and colon and not name.translate(None, _VISIBLE):
        return [name, rest + b"\r\n"]
    match = _FIELD_NAME.match(line)
    return None if match is None else [match.group(1), line[match.end():] + b"\r\n"]


def _fields(head):
    """dkim.rfc822_parse's loop over the header lines of `head` (CRLF only, no empty
    line), with its pattern compiled once: [name, value + CRLF] per field, folded
    lines appended to their field, an mbox "From " line skipped."""
    fields = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not fields:
                raise dkim.MessageFormatError("Unexpected continuation line before the first field")
            fields[-1][1] += line + b"\r\n"
            continue
        field = field_start(line)
        if field is not None:
            fields.append(field)
        elif not line.startswith(b"From "):
            raise dkim.MessageFormatError(f"Unexpected characters in RFC822 header: {line!r}")
    return fields


def split_grouped(data, groups, crlf=False):
    """split(data) when smtp.message.header_fields has split the header section of
    `data` already into `groups` (each field's raw lines, then the empty line's [b""]):
    the same fields, body and errors, without a second pass over the lines.  A
    message without a header section, or with a bare LF, is left to split(); `crlf`
    says the caller knows there is none (the SMTP session's wire form: the two
    counts cost 5 us per 4 KiB, 0.13 ms per 100 KiB)."""
    if not data or data.startswith(b"\r\n") or (
            not crlf and data.count(b"\n") != data.count(b"\r\n")):
        return split(data)
    end = data.find(b"\r\n\r\n")
    if groups and groups[-1] == [b""]:
        groups = groups[:-1]            # the empty line, or the CRLF ending the data
    fields = []
    for group in groups:
        first = group[0]
        if first[:1] in (b" ", b"\t"):                  # only a first group starts so
            raise dkim.MessageFormatError("Unexpected continuation line before the first field")
        field = field_start(first)
        if field is not None:
            fields.append(field)
        elif not first.startswith(b"From "):
            raise dkim.MessageFormatError(f"Unexpected characters in RFC822 header: {first!r}")
        elif len(group) > 1 and not fields:             # the From_ line's folding: to the field above
            raise dkim.MessageFormatError("Unexpected continuation line before the first field")
        if len(group) > 1:
            fields[-1][1] += b"".join([line + b"\r\n" for line in group[1:]])
    return fields, (b"" if end < 0 else data[end + 4:])


def select(fields, names):
    """The fields `names` (h=, lower-case) choose, in that order: for each name the
    last field of that name not chosen yet, bottom-up, and nothing once they are
    used up (RFC 6376 5.4.2).  dkim.select_headers's choice, without its scan of
    the whole header section for every name."""
    where = {}
    for i, field in enumerate(fields):
        where.setdefault(field[0].lower(), []).append(i)
    chosen = []
    for name in names:
        found = where.get(name)
        if found:
            chosen.append(fields[found.pop()])
    return chosen


# hashlib lets other threads run while it hashes 2048 octets or more (its
# HASHLIB_GIL_MINSIZE): for a message of a few KiB the hash takes a few microseconds,
# and giving the GIL away and taking it back from 20 busy sessions costs more (a
# context switch each way, a wait of up to the switch interval).  Up to HELD_LIMIT
# octets are fed in pieces below that size, so the hash runs without a handoff.
GIL_MINSIZE = 2048
HELD_LIMIT = 32768


def held_digest(hash_name, data):
    """hashlib.new(hash_name, data).digest(), without releasing the GIL for data of
    up to HELD_LIMIT octets."""
    if len(data) < GIL_MINSIZE or len(data) > HELD_LIMIT:
        return hashlib.new(hash_name, data).digest()
    hasher = hashlib.new(hash_name)
    view = memoryview(data)
    for i in range(0, len(data), GIL_MINSIZE - 1):
        hasher.update(view[i:i + GIL_MINSIZE - 1])
    return hasher.digest()


class Parsed:
    """A message parsed once for all its signatures: `headers` and `body` as
    split() gives them; a canonical body and its hashes are computed the first
    time a signature asks and kept for the next (an rsa-sha256 and an
    ed25519-sha256 signature with the same c= hash the body once)."""

    __slots__ = ("headers", "body", "_bodies", "_hashes")

    def __init__(self, data):
        self.headers, self.body = split(data)
        self._bodies = {}           # relaxed? -> canonical body
        self._hashes = {}           # (relaxed?, hash name, l=) -> digest

    @classmethod
    def of_groups(cls, data, groups, crlf=False):
        """A Parsed of `data` whose header section is split into `groups` already
        (split_grouped, and its `crlf`)."""
        return cls.of(*split_grouped(data, groups, crlf))

    @classmethod
    def of(cls, headers, body):
        """A Parsed of fields and body split already (dkimpy's ARC parses itself)."""
        parsed = cls.__new__(cls)
        parsed.headers, parsed.body = headers, body
        parsed._bodies, parsed._hashes = {}, {}
        return parsed

    def body_hash(self, relaxed, hash_name, length=None):
        """The digest of the canonical body (its first `length` octets when given)."""
        key = (relaxed, hash_name, length)
        digest = self._hashes.get(key)
        if digest is None:
            body = self._bodies.get(relaxed)
            if body is None:
                body = self._bodies[relaxed] = (relaxed_body(self.body) if relaxed
                                                else Simple.canonicalize_body(self.body))
            if length is not None:
                body = body[:length]
            digest = self._hashes[key] = held_digest(hash_name, body)
        return digest
