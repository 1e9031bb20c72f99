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
each signature copies that hash and adds its own field), the signature field's text
and its canonical form are made once per key and h= list (_template: only t=, bh=
and b= change from message to message), keys are parsed once (keys.py), and RSA is
computed by OpenSSL through `cryptography` (about 0.3 ms a 2048-bit signature, with
the GIL released: other sessions' Python runs meanwhile) instead of dkimpy's
pure-Python arithmetic (10-20 ms holding the GIL).

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
from .canon import held_digest, relaxed_body, relaxed_headers, select, split, split_grouped

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

    def __init__(self, data, groups=None):
        """`groups`: the header section of `data` split already by
        smtp.message.header_fields, when `data` is the SMTP session's wire form (CRLF
        only): canon.split_grouped takes the fields from it."""
        self.headers, body = split(data) if groups is None else split_grouped(data, groups, crlf=True)
        # a parsed field name has no white space: lower() is its relaxed form
        self.signed = tuple([name.lower() for name, _ in self.headers
                             if name.lower() in SIGNED]) + OVERSIGNED
        self.body_hash = base64.b64encode(held_digest("sha256", relaxed_body(body)))
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


# What a signature field is made of apart from t=, bh= and b=, per signing key and h=
# list: the field text around a hole for "t=...; bh=...;", and its relaxed canonical
# form (RFC 6376 3.4.2) around the same hole.  Messages from one client carry the same
# fields, so a few entries serve them all; the field is folded and canonicalized once.
_TEMPLATES = {}
MAX_TEMPLATES = 1024
_HOLE = b"\x00"            # no field text has it; relaxed canonicalization leaves it be


def _template(selector, names):
    """(before, after, canonical before, canonical after) of the field for `selector`
    (keys.Selector) signing the fields `names` (h=, a tuple)."""
    found = _TEMPLATES.get((selector, names))
    if found is not None:
        return found
    head = _fold([b"v=1;", b"a=" + ALGORITHM_TAG[selector.algorithm] + b";", b"c=relaxed/relaxed;",
                  b"d=" + selector.domain.encode("ascii") + b";",
                  b"s=" + selector.name.encode("ascii") + b";"], len(FIELD) + 1)
    # h= may be folded before any colon (RFC 6376 3.5: FWS around ":")
    h = [b"h=" + names[0]] + [b":" + n for n in names[1:]]
    h[-1] += b";"
    # the hole on a line of its own ("t=1796244000; bh=<44 octets>;", 62 octets), h=
    # below it, b= last with its value alone on the following lines: a verifier removes
    # it (and its folding) before hashing, so what is hashed here is what it will hash
    before, after = FIELD + b":" + head + b"\r\n\t", b"\r\n\t" + _fold(h, 1)[1:] + b"\r\n\tb="
    # the field as dkim.hash_headers adds it: relaxed, without its CRLF, b= empty
    [(name, canonical)] = relaxed_headers([(FIELD, head + b"\r\n\t" + _HOLE + after)])
    cbefore, _, cafter = (name + b":" + canonical.rstrip()).partition(_HOLE)
    found = (before, after, cbefore, cafter)
    if len(_TEMPLATES) >= MAX_TEMPLATES:
        _TEMPLATES.clear()
    _TEMPLATES[(selector, names)] = found
    return found


# made once: each construction runs isinstance checks against abstract classes
_PKCS1 = padding.PKCS1v15()
_SHA256 = utils.Prehashed(hashes.SHA256())


def sign(message, key, timestamp):
    """The header field 'DKIM-Signature: ...\\r\\n' that `key` (keys.Key) makes for
    `message` (a Message) at `timestamp` (seconds)."""
    before, after, cbefore, cafter = _template(key.selector, message.signed)
    tags = b"t=%d; bh=%s;" % (int(timestamp), message.body_hash)
    # the signature field last (RFC 6376 3.7), as dkim.hash_headers adds it
    hasher = message.fields_hash.copy()
    hasher.update(cbefore + tags + cafter)
    digest = hasher.digest()
    if key.selector.algorithm == "rsa":
        raw = key.private.sign(digest, _PKCS1, _SHA256)
    else:
        raw = key.private.sign(digest)
    b64 = base64.b64encode(raw)
    return (before + tags + after
            + b"".join([b"\r\n\t" + b64[i:i + LINE - 2] for i in range(0, len(b64), LINE - 2)]) + b"\r\n")
