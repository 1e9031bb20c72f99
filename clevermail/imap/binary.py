"""IMAP BINARY (RFC 3516): section content with its Content-Transfer-Encoding undone,
and binary messages made storable.

- `decoded(pm, nums)`: the bytes of FETCH BINARY[section] and the size of
  BINARY.SIZE[section] (RFC 3516 4.2, 4.3): base64 and quoted-printable leaf parts
  decoded, 7bit/8bit/binary ones as they are; a multipart or message/rfc822 part and
  BINARY[] (the whole message) with every leaf inside decoded and its
  Content-Transfer-Encoding field saying "binary", as Dovecot answers (RFC 3516 leaves
  it open); any other encoding raises UnknownCTE, which
  the FETCH answers with NO [UNKNOWN-CTE] (RFC 3516 4.2).  Decoding is lenient as
  Dovecot's is: whitespace and stray characters in base64 are skipped, trailing
  whitespace of quoted-printable lines dropped (RFC 2045 6.7 rule 3).
- `literal(data)`: a literal, or a literal8 (`~{n}`) when the data holds a NUL, which
  a plain literal may not carry (RFC 3516 4.1).
- `storable(raw)`: a message APPENDed as a literal8 (RFC 3516 4.4) may hold NULs and
  bare CRs and LFs; the store keeps messages as lines (CRLF on the wire, LF on disk,
  store/maildir.py), which would not give such bytes back.  Every leaf part whose body
  holds them is re-encoded as base64 (as Dovecot does), so BINARY[part] still returns
  the exact bytes that were appended.
"""

import base64
import binascii
import re

from clevermail.imap import mime
from clevermail.imap.bodystructure import part_structure

__all__ = ["UnknownCTE", "decoded", "decoded_structure", "literal", "storable"]

_IDENTITY = frozenset(("", "7bit", "8bit", "binary"))
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
_QP_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_LINE_END = re.compile(rb"\r\n|\n")
# Bytes a line-based store cannot give back: NUL, a CR not before LF, an LF not after CR.
_NOT_LINES = re.compile(rb"\0|\r(?!\n)|(?<!\r)\n")


class UnknownCTE(Exception):
    """A part's Content-Transfer-Encoding is none this server can decode."""


def decoded(pm, nums):
    """The content of BINARY[nums] of a mime.ParsedMessage: b"" for a part that does
    not exist (as BODY[] answers)."""
    if not nums:
        return _tree(pm, pm.root, 0, len(pm.raw))
    part = mime.find_part(pm.root, nums)
    if part is None:
        return b""
    if part.kind == mime.LEAF:
        return _leaf(pm, part)
    return _tree(pm, part, part.bstart, part.end)


def _leaf(pm, part):
    body = pm.raw[part.bstart:part.end]
    encoding = _encoding(pm, part)
    if encoding in _IDENTITY:
        return body
    if encoding == "base64":
        return _base64(body)
    if encoding == "quoted-printable":
        return _quoted_printable(body)
    raise UnknownCTE(encoding)


def _tree(pm, part, start, end):
    """raw[start:end] of a multipart or message with every leaf part inside decoded and
    its Content-Transfer-Encoding said "binary" (Dovecot's BINARY of such a part)."""
    edits = []
    _decode_leaves(pm, part, edits)
    return _apply(pm.raw, start, end, edits)


def _decode_leaves(pm, part, edits, relabel=True):
    if part.kind != mime.LEAF:
        for child in part.children:
            _decode_leaves(pm, child, edits, relabel)
        return
    if _encoding(pm, part) in _IDENTITY:
        return
    if not relabel:
        try:
            edits.append((part.bstart, part.end, _leaf(pm, part)))
        except UnknownCTE:
            pass                # left as it is
        return
    edits.append((part.bstart, part.end, _leaf(pm, part)))
    first = True
    for f in part.fields:
        if f[0] == "content-transfer-encoding":
            edits.append((f[1], _field_end(pm.raw, f), b"Content-Transfer-Encoding: binary\r\n" if first else b""))
            first = False


def decoded_structure(pm, nums):
    """The BODYSTRUCTURE of part `nums` after decoding, as Dovecot answers URLFETCH's
    BODYPARTSTRUCTURE when BINARY is asked with it (RFC 5524): sizes and line counts
    of the decoded content, encodings as the message names them; None: no such part."""
    edits = []
    _decode_leaves(pm, pm.root, edits, relabel=False)
    return part_structure(mime.ParsedMessage(_apply(pm.raw, 0, len(pm.raw), edits), repair=False), nums)


def _apply(raw, start, end, edits):
    """raw[start:end] with the (start, end, replacement) edits inside it made."""
    out, pos = [], start
    for a, b, replacement in sorted(edits, key=lambda e: (e[0], e[1])):
        out.append(raw[pos:a])
        out.append(replacement)
        pos = b
    out.append(raw[pos:end])
    return b"".join(out)


def _encoding(pm, part):
    values = mime.content(pm, part).get("transfer-encoding")
    return values[0].strip().lower() if values else ""


def _base64(body):
    data = _NOT_BASE64.sub(b"", body.split(b"=", 1)[0])
    data = data[:len(data) - len(data) % 4] if len(data) % 4 == 1 else data + b"=" * (-len(data) % 4)
    try:
        return base64.b64decode(data)
    except (binascii.Error, ValueError):
        return b""


def _unescape(m):
    return bytes((int(m.group(1), 16),))


def _quoted_printable(body):
    out = []
    lines = _LINE_END.split(body)
    last = len(lines) - 1
    for i, line in enumerate(lines):
        line = line.rstrip(b" \t")
        soft = line.endswith(b"=")
        if soft:
            line = line[:-1]
        out.append(_QP_ESCAPE.sub(_unescape, line))
        if not soft and i < last:
            out.append(b"\r\n")
    return b"".join(out)


def literal(data):
    """Section data as a string: "" when empty, a literal, or a literal8 when the
    data holds a NUL."""
    if not data:
        return b'""'
    return (b"~{%d}\r\n" if 0 in data else b"{%d}\r\n") % len(data) + data


def storable(raw):
    """`raw` with every leaf part that a line-based store would alter re-encoded as
    base64 (its Content-Transfer-Encoding field replaced or added); `raw` itself
    when nothing needs it."""
    if not _NOT_LINES.search(raw):
        return raw
    pm = mime.ParsedMessage(raw, repair=False)
    edits = []
    _collect(pm, pm.root, edits)
    return _apply(raw, 0, len(raw), edits)


def _collect(pm, part, edits):
    if part.kind != mime.LEAF:
        for child in part.children:
            _collect(pm, child, edits)
        return
    body = pm.raw[part.bstart:part.end]
    if not _NOT_LINES.search(body):
        return
    encoded = base64.encodebytes(body).replace(b"\n", b"\r\n")
    edits.append((part.bstart, part.end, encoded))
    added = b"Content-Transfer-Encoding: base64\r\n"
    if not part.mime:       # Content-* fields count only in a MIME message (mime.py)
        added = b"MIME-Version: 1.0\r\n" + added
    for f in part.fields:
        if f[0] == "content-transfer-encoding":
            edits.append((f[1], _field_end(pm.raw, f), b""))
    # the new fields go where the header ends (before its blank line)
    end = _field_end(pm.raw, part.fields[-1]) if part.fields else part.hstart
    edits.append((end, end, added))


def _field_end(raw, f):
    """The end of header field `f` (mime.Part.fields) including its line end."""
    end = f[3]
    if raw[f[1]:end].endswith(b"\n"):
        return end
    if raw.startswith(b"\r\n", end):
        return end + 2
    if raw.startswith(b"\n", end):
        return end + 1
    return end
