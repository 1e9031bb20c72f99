"""Header and body text of a raw message, decoded for SEARCH string matching.

Owns:
- splitting the header section into unfolded fields (RFC 5322 section 2.2);
- header values to text: raw 8-bit as UTF-8 (RFC 6532) else Latin-1, then
  RFC 2047 encoded words, a bad word left as written;
- body text: each text/* leaf part with its RFC 2045
  Content-Transfer-Encoding (base64, quoted-printable) undone and its
  charset decoded.
decode_header_value() and decode_encoded_words() are the public API;
_split_headers() and _body_text() serve search.py's per-message view.

Everything here reads sender-controlled input and never raises on it: an
unknown charset falls back to UTF-8 with replacement, malformed MIME to the
raw body.  search.py decides what matches; this module only turns bytes into
text.
"""

import base64
import binascii
import email
import email.policy
import re

__all__ = ["decode_header_value", "decode_encoded_words"]

# A field name is printable US-ASCII except ":" (RFC 5322 section 2.2).
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+")


def _split_headers(raw):
    """Header fields [(name bytes, unfolded value bytes)] and the body offset.

    The header section ends at the first empty line, or at the first line that
    is not a field or a continuation (then that line begins the body).
    """
    fields = []
    pos, end = 0, len(raw)
    while pos < end:
        nl = raw.find(b"\n", pos)
        nxt = end if nl < 0 else nl + 1
        line = raw[pos:nxt].rstrip(b"\r\n")
        if not line:
            return _joined(fields), nxt
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1].append(line)  # unfolding = dropping the CRLF (RFC 5322 2.2.3)
        else:
            name, colon, value = line.partition(b":")
            name = name.rstrip(b" \t")  # obsolete "Subject : x" (RFC 5322 4.5)
            if not colon or not _FIELD_NAME.fullmatch(name):
                return _joined(fields), pos
            fields.append((name, [value]))
        pos = nxt
    return _joined(fields), end


def _joined(fields):
    return [(name, b"".join(parts).strip()) for name, parts in fields]


def decode_header_value(value: bytes) -> str:
    """Header bytes -> text: raw 8-bit as UTF-8 (else Latin-1), then RFC 2047."""
    try:
        text = value.decode("utf-8")  # RFC 6532 allows UTF-8 headers
    except UnicodeDecodeError:
        text = value.decode("latin-1")
    return decode_encoded_words(text)


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


def _body_text(raw, body_at):
    """Decoded text of every text/* leaf part; raw body if MIME parsing fails."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        chunks = []
        for part in message.walk():
            if part.is_multipart():
                continue
            # A "multipart" leaf is a multipart without a usable boundary:
            # its payload is still text the user may be looking for.
            if part.get_content_maintype() not in ("text", "multipart"):
                continue
            payload = part.get_payload(decode=True)  # undoes base64 / QP
            if isinstance(payload, bytes):
                chunks.append(_to_text(payload, part.get_content_charset()))
        return "\n".join(chunks)
    except Exception:
        # Malformed MIME (or a nesting deep enough to exhaust recursion in
        # walk()) must not fail the SEARCH: fall back to the raw body.
        return raw[body_at:].decode("utf-8", "replace")
