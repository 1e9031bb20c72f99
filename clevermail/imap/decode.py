"""Header and body text of a parsed message, decoded for SEARCH string matching.

Owns turning the parts of mime.py's tree (the one MIME parser, shared with
FETCH, so that SEARCH and FETCH BODY[section] always see the same parts) into
text:
- header values: unfolded (RFC 5322 section 2.2), raw 8-bit as UTF-8
  (RFC 6532) else Latin-1, then RFC 2047 encoded words, a bad word left as
  written;
- body text: each leaf part holding text (text/*, message/* other than an
  encapsulated message, which is entered instead, a multipart without
  usable parts or nested too deeply for mime.py to parse, and a part without
  a usable Content-Type, which is text/plain by RFC 2045 section 5.2) with
  its RFC 2045
  Content-Transfer-Encoding (base64, quoted-printable) undone and its
  charset decoded.
header_fields(), body_text(), decode_header_value() and
decode_encoded_words() are the API.

Everything here reads sender-controlled input and never raises on it: an
unknown charset falls back to UTF-8 with replacement, bad base64 is decoded
as far as it goes.  search.py decides what matches; this module only turns
bytes into text.
"""

import base64
import binascii
import re

from clevermail.imap import mime
from clevermail.imap.envelope import parse_addresses
from clevermail.imap.params import ascii_lower, param, parse_content_transfer_encoding

__all__ = ["header_fields", "body_text", "decode_header_value", "decode_encoded_words"]

# What is left of base64 text once everything outside its alphabet is dropped
# (line breaks, stray characters), as RFC 2045 section 6.8 tells decoders to.
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]+")
# Leaves whose body is text (RFC 2045 5.2 default included); Dovecot searches
# text/* and message/* the same way (lib-mail/message-search.c).
_TEXT_TYPES = frozenset(("text", "message", "multipart"))


def header_fields(pm):
    """[(lower-case name, decoded value)] of the top-level header, in order."""
    top = pm.top()
    return [(f[0], decode_header_value(pm.field_bytes(f).strip())) for f in top.fields]


def body_text(pm):
    """Decoded text of every text leaf of the message, joined by newlines."""
    raw = pm.raw
    chunks = []
    for p in _leaves(pm.root):
        if not (p.unparsed or p.ctype is None or p.csub is None
                or ascii_lower(p.ctype) in _TEXT_TYPES):
            continue
        data = raw[p.bstart:p.end]
        encoding = parse_content_transfer_encoding(mime.content(pm, p).get("transfer-encoding", ()))
        encoding = ascii_lower(encoding)
        if encoding == "base64":
            data = _base64(data)
        elif encoding == "quoted-printable":
            data = binascii.a2b_qp(data)
        chunks.append(_to_text(data, param(p.params, "charset")))
    return "\n".join(chunks)


def address_text(value):
    """An address field as SEARCH matches it: each parsed address as
    `name <mailbox@host>` (or `mailbox@host`), groups as `name: ...;`, joined
    by ", ".  Comments, routes and quoting are gone, so `<user (c)@ (c) d.org>`
    reads `user@d.org`, as envelope.parse_addresses gives it to ENVELOPE (RFC 3501 6.4.4 matches "the
    structured field", as Dovecot does).  Names are RFC 2047-decoded after
    parsing, so an encoded comma or bracket cannot change the structure."""
    out = []
    for name, _route, mailbox, host in parse_addresses(value):
        if mailbox is None:             # end of a group
            out.append(";")
            continue
        if host is None:                # start of a group: its display name
            out.append(f"{decode_encoded_words(mailbox)}:")
            continue
        spec = "@".join(x for x in (mailbox, host) if not x.startswith("MISSING_"))
        out.append(f"{decode_encoded_words(name)} <{spec}>" if name else spec)
    return ", ".join(out)


def _leaves(root):
    """Parts that hold content, in message order: a multipart's parts and the
    message inside a message/rfc822 are entered, a multipart without parts is
    a leaf itself.  A loop, not recursion: mime.py bounds the depth, but the
    stack stays flat whatever a sender nests."""
    stack = [root]
    while stack:
        p = stack.pop()
        if p.kind == mime.RFC822:
            stack.append(p.children[0])
        elif p.kind == mime.MULTIPART and p.children:
            stack.extend(reversed(p.children))
        else:
            yield p


def _base64(data):
    data = _NOT_BASE64.sub(b"", data)
    if len(data) % 4 == 1:
        data = data[:-1]          # six lone bits make no octet
    return base64.b64decode(data + b"=" * (-len(data) % 4))


def decode_header_value(value: bytes) -> str:
    """Header bytes -> text: raw 8-bit as UTF-8 (else Latin-1), then RFC 2047."""
    return decode_encoded_words(header_text(value))


def header_text(value: bytes) -> str:
    """Header bytes -> text, encoded words left as they are: raw 8-bit as UTF-8
    (RFC 6532 allows UTF-8 headers), else Latin-1."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def decode_encoded_words(text: str) -> str:
    """Decode RFC 2047 encoded words; a word that fails to decode stays as is.

    Our own loop rather than email.header.decode_header: that one gives up on
    the whole value at the first bad base64 word, and searching needs the rest.
    """
    if "=?" not in text:
        return text
    out, last, after_word = [], 0, False
    for m in _ENCODED_WORD.finditer(text):
        gap = text[last:m.start()]
        decoded = _decode_word(*m.groups())
        # Whitespace between two encoded words is not part of the text (RFC 2047 6.2).
        if not (after_word and decoded is not None and not gap.strip(" \t\r\n")):
            out.append(gap)
        out.append(m.group(0) if decoded is None else decoded)
        after_word = decoded is not None
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def _decode_word(charset, encoding, data):
    try:
        encoded = data.encode("ascii")
        if encoding in "bB":
            raw = base64.b64decode(encoded + b"=" * (-len(encoded) % 4))
        else:
            raw = binascii.a2b_qp(encoded, header=True)  # "_" is a space in Q
    except ValueError:  # binascii.Error and UnicodeEncodeError are ValueErrors
        return None
    return _to_text(raw, charset.split("*", 1)[0])  # drop RFC 2231 "*lang"


def _to_text(data, charset):
    """Bytes in a charset named by the message; never raises."""
    try:
        return data.decode(charset or "utf-8", "replace")
    except Exception:
        # The name comes from the sender: unknown, or a non-text codec such as
        # "base64" (LookupError), or a codec that fails oddly.  Any failure here
        # is the message's problem and must not fail the SEARCH.
        return data.decode("utf-8", "replace")
