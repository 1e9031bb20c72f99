"""One DKIM-Signature header field (RFC 6376 3.5, 3.7, 5.4-5.6) for a message in CRLF
wire form: relaxed/relaxed canonicalization, rsa-sha256 (RFC 8301) or ed25519-sha256
(RFC 8463 3: Ed25519 over the SHA-256 hash of the header data).  Pure: no I/O, no
clock (the caller gives the timestamp).

dkimpy does the DKIM parts that are easy to get subtly wrong: parsing the header
section (dkim.rfc822_parse), relaxed canonicalization (dkim.canonicalization) and the
selection and hashing of the signed fields, bottom-up, with the signature field itself
last and its b= empty (dkim.hash_headers).  What dkimpy's own sign() cannot do cheaply
is done here: a message is parsed and its body hashed once for all its signatures
(Message), keys are parsed once (keys.py), and RSA is computed by OpenSSL through
`cryptography` instead of dkimpy's pure-Python arithmetic (about 1 ms instead of 10-20
ms per signature on a small machine, during which the pure-Python form holds the GIL).

The signed fields are RFC 6376 5.4.1's set as dkimpy lists it (DKIM.SHOULD: From,
Reply-To, Subject, Date, To, Cc, Message-ID, MIME-Version, Content-*, Resent-*,
In-Reply-To, References, List-*), each occurrence present, and OVERSIGNED named once
more than it occurs (5.4.2): a field of that name added later, or a second From,
breaks the signature.
"""

import base64
import hashlib
import re

import dkim
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, utils
from dkim.canonicalization import Relaxed

SIGNED = frozenset(dkim.DKIM.SHOULD)
OVERSIGNED = (b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"mime-version",
              b"content-type")
ALGORITHM_TAG = {"rsa": b"rsa-sha256", "ed25519": b"ed25519-sha256"}
FIELD = b"DKIM-Signature"
LINE = 76                   # fold the field's lines at about this many octets


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
    if b" \r\n" in body or b"\t\r\n" in body:
        lines = body.split(b"\r\n")         # the last one has no CRLF: left as it is
        lines[:-1] = [line.rstrip(b" \t") for line in lines[:-1]]
        body = b"\r\n".join(lines)
    if b"\t" in body or b"  " in body:
        body = _WSP_RUN.sub(b" ", body)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    end = len(body) - 2
    while body.endswith(b"\r\n", 0, end):
        end -= 2
    body = body[:end + 2]
    return b"" if body == b"\r\n" else body


class _Relaxed:
    """dkim.hash_headers takes a policy object with canonicalize_headers()."""
    canonicalize_headers = staticmethod(Relaxed.canonicalize_headers)


class Message:
    """A message parsed once for all its signatures: its header fields (raw and
    canonical), the h= list and the body hash.  dkim.MessageFormatError if the header
    section cannot be parsed (then nothing is signed)."""

    __slots__ = ("headers", "canonical", "signed", "body_hash")

    def __init__(self, data):
        # Only the header section goes through dkimpy's line parser; the body of a
        # message in wire form is already what rfc822_parse would rebuild.
        if data.startswith(b"\r\n"):
            head, body = b"", data[2:]
        else:
            end = data.find(b"\r\n\r\n")
            head, body = (data, b"") if end < 0 else (data[:end + 2], data[end + 4:])
        self.headers = dkim.rfc822_parse(head)[0] if head else []
        self.canonical = Relaxed.canonicalize_headers(self.headers)
        names = [name for name, _ in self.canonical if name in SIGNED]
        self.signed = names + list(OVERSIGNED)
        self.body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest())

    def field_values(self, name):
        """The raw values of the header fields called `name` (lower-case bytes)."""
        return [value for field, value in self.headers if field.lower() == name]


def _fold(pieces, used):
    """Join tag pieces into a folded field value (" v=1; a=...\r\n\t..."); `used`
    octets of the first line are taken by the field name.  A piece never breaks."""
    lines, line, limit = [], b"", LINE - used
    for piece in pieces:
        glue = b"" if piece.startswith(b":") else b" "      # h= names: "from:to:..."
        if line.strip() and len(line) + len(glue) + len(piece) > limit:
            lines.append(line)
            line, limit = b"\t" + piece, LINE
        else:
            line += glue + piece
    lines.append(line)
    return b"\r\n".join(lines)


def sign(message, key, timestamp):
    """The header field 'DKIM-Signature: ...\\r\\n' that `key` (keys.Key) makes for
    `message` (a Message) at `timestamp` (seconds)."""
    selector = key.selector
    algorithm = ALGORITHM_TAG[selector.algorithm]
    names = [n.decode("ascii") for n in message.signed]
    pieces = [b"v=1;", b"a=" + algorithm + b";", b"c=relaxed/relaxed;",
              b"d=" + selector.domain.encode("ascii") + b";",
              b"s=" + selector.name.encode("ascii") + b";", b"t=%d;" % int(timestamp)]
    # h= may be folded before any colon (RFC 6376 3.5: FWS around ":")
    h = [f"h={names[0]}"] + [f":{n}" for n in names[1:]]
    h[-1] += ";"
    pieces += [p.encode("ascii") for p in h]
    pieces += [b"bh=" + message.body_hash + b";", b"b="]
    value = _fold(pieces, len(FIELD) + 1)
    hasher = hashlib.sha256()
    dkim.hash_headers(hasher, _Relaxed, message.canonical, list(message.signed),
                      (FIELD, value), None)
    digest = hasher.digest()
    if selector.algorithm == "rsa":
        raw = key.private.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    else:
        raw = key.private.sign(digest).signature
    # b= last, its value alone on the following lines: a verifier removes it (and its
    # folding) before hashing, so what was hashed above is what it will hash
    b64 = base64.b64encode(raw)
    chunks = [b64[i:i + LINE - 2] for i in range(0, len(b64), LINE - 2)]
    return FIELD + b":" + value + b"".join(b"\r\n\t" + c for c in chunks) + b"\r\n"
