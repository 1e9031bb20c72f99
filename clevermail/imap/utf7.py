"""Modified UTF-7 for IMAP mailbox names (RFC 3501 section 5.1.3).

This module owns the conversion between the names users and the store see
(ordinary Python str) and the names that travel on the IMAP wire when the
client has not enabled UTF8=ACCEPT (RFC 6855).

The rules, in short:
- printable US-ASCII (0x20-0x7e) stands for itself, except "&", which is "&-";
- every other run of characters is UTF-16BE, base64-encoded with "," in place
  of "/", without "=" padding, between "&" and "-".

`decode` is strict because it handles client input: anything that a correct
encoder could not have produced raises ValueError, so that two different wire
spellings can never name the same mailbox.
"""

import base64
import binascii

# The modified base64 alphabet (RFC 3501 5.1.3 / RFC 2152 with "," for "/").
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")


def _printable(ch):
    return "\x20" <= ch <= "\x7e"


def _encode_run(run):
    """The shift sequence ("&...-") for a run of non-printable-ASCII characters."""
    # surrogatepass is deliberately not used: a lone surrogate in a Python str
    # cannot be a real character, and encoding it would produce a name that our
    # own strict decoder rejects.  str.encode raises UnicodeEncodeError, a ValueError.
    raw = run.encode("utf-16-be")
    b64 = base64.b64encode(raw).rstrip(b"=").replace(b"/", b",")
    return "&" + b64.decode("ascii") + "-"


def encode(name: str) -> str:
    """Encode a mailbox name into modified UTF-7.

    Raises ValueError for a str holding a lone surrogate (not a character).
    """
    out = []
    run = []
    for ch in name:
        if _printable(ch):
            if run:
                out.append(_encode_run("".join(run)))
                run = []
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    if run:
        out.append(_encode_run("".join(run)))
    return "".join(out)


def decode(wire: str) -> str:
    """Decode a modified UTF-7 mailbox name; ValueError if it is malformed."""
    if "&" not in wire and wire.isascii() and wire.isprintable():
        return wire         # printable US-ASCII without a shift ("INBOX"): itself
    out = []
    i = 0
    n = len(wire)
    while i < n:
        ch = wire[i]
        if not _printable(ch):
            # Raw 8-bit or control characters are not allowed on the wire
            # without UTF8=ACCEPT; the caller decides what to do with those.
            raise ValueError(f"invalid character {ch!r} in mailbox name")
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = wire.find("-", i + 1)
        if end < 0:
            raise ValueError("unterminated modified UTF-7 shift")
        segment = wire[i + 1:end]
        if not segment:
            out.append("&")
        else:
            out.append(_decode_segment(segment))
        i = end + 1
    return "".join(out)


def _decode_segment(segment):
    """Decode the base64 part of one shift (between "&" and "-")."""
    if not set(segment) <= _B64_CHARS:
        raise ValueError(f"invalid base64 in mailbox name shift {segment!r}")
    padded = segment.replace(",", "/") + "=" * (-len(segment) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
    except binascii.Error:
        raise ValueError(f"invalid base64 length in shift {segment!r}") from None
    if len(raw) % 2:
        raise ValueError(f"odd number of UTF-16 bytes in shift {segment!r}")
    try:
        text = raw.decode("utf-16-be")
    except UnicodeDecodeError:
        raise ValueError(f"unpaired surrogate in shift {segment!r}") from None
    if any(_printable(c) for c in text):
        # RFC 3501: printable ASCII "MUST NOT" be base64-encoded.
        raise ValueError(f"shift {segment!r} encodes printable ASCII")
    # Reject non-zero padding bits and similar non-canonical spellings: the
    # only accepted form is the one encode() produces.
    if _encode_run(text) != "&" + segment + "-":
        raise ValueError(f"non-canonical base64 in shift {segment!r}")
    return text
