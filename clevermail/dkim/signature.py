"""One DKIM-Signature header field (RFC 6376 3.5, 3.7, 5.4-5.6) for a message in CRLF
wire form: relaxed/relaxed canonicalization, rsa-sha256 (RFC 8301) or ed25519-sha256
(RFC 8463 3: Ed25519 over the SHA-256 hash of the header data).  Pure: no I/O, no
clock (the caller gives the timestamp).

dkimpy decides the DKIM parts that are easy to get subtly wrong: parsing the header
section (dkim.rfc822_parse's loop, through canon.split) and relaxed canonicalization
(dkim.canonicalization's, in canon's faster forms compared with it).  The signed
fields are chosen bottom-up as dkim.select_headers chooses them (canon.select,
compared in the tests) and hashed in h= order, the signature field itself last with
its b= empty, as dkim.hash_headers does.  What dkimpy's own sign() cannot do cheaply is done here: a message is parsed,
its body hashed and its signed fields hashed once for all its signatures (Message;
each signature copies that hash and adds its own field), keys are parsed once
(keys.py), and RSA is computed by OpenSSL through `cryptography` (about 0.3 ms a
2048-bit signature, with the GIL released) instead of dkimpy's pure-Python
arithmetic (10-20 ms holding the GIL).

The signed fields are RFC 6376 5.4.1's set as dkimpy lists it (DKIM.SHOULD: From,
Reply-To, Subject, Date, To, Cc, Message-ID, MIME-Version, Content-*, Resent-*,
In-Reply-To, References, List-*), each occurrence present, and OVERSIGNED named once
more than it occurs (5.4.2): a field of that name added later, or a second From,
breaks the signature.
"""

import base64
import hashlib

import dkim
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, utils
from .canon import relaxed_body, relaxed_headers, select, split

SIGNED = frozenset(dkim.DKIM.SHOULD)
OVERSIGNED = (b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"mime-version",
              b"content-type")
ALGORITHM_TAG = {"rsa": b"rsa-sha256", "ed25519": b"ed25519-sha256"}
FIELD = b"DKIM-Signature"
LINE = 76                   # fold the field's lines at about this many octets


class Message:
    """A message parsed once for all its signatures: its header fields, the h= list,
    the body hash, and the hash of the signed fields (`fields_hash`, a sha256 object
    each signature copies before it adds its own field: the rsa and the ed25519
    signature sign the same fields).  dkim.MessageFormatError if the header section
    cannot be parsed (then nothing is signed)."""

    __slots__ = ("headers", "signed", "body_hash", "fields_hash")

    def __init__(self, data):
        self.headers, body = split(data)
        # a parsed field name has no white space: lower() is its relaxed form
        self.signed = [name.lower() for name, _ in self.headers if name.lower() in SIGNED]
        self.signed += OVERSIGNED
        self.body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest())
        self.fields_hash = hasher = hashlib.sha256()
        for name, value in relaxed_headers(select(self.headers, self.signed)):
            hasher.update(name + b":" + value)

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
    # the signature field last, without its CRLF and b= empty (it is: the value
    # ends in "b="), as dkim.hash_headers adds it (RFC 6376 3.7)
    hasher = message.fields_hash.copy()
    [(name, canonical)] = relaxed_headers([(FIELD, value)])
    hasher.update(name + b":" + canonical.rstrip())
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
