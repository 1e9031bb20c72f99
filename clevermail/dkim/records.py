"""The DNS side of a DKIM key: the TXT record of its public key (RFC 6376 3.6.1; k=ed25519
of RFC 8463 4) and the zone-file line that publishes it at <selector>._domainkey.<domain>.
Pure: bytes in, text out; and whether a published record carries our key.

A TXT record is a list of character-strings of at most 255 octets each (RFC 1035
3.3.14); a 2048-bit RSA key needs about 410, so the record is split into several
strings, which a verifier joins without separators (RFC 6376 3.6.2.2).
"""

import base64

# The TTL written in the zone-file lines: an hour, so that a rotation or a fix takes
# effect the same day.
TTL = 3600
STRING_LIMIT = 255


def key_record(algorithm, public):
    """The TXT record text: 'v=DKIM1; k=rsa; p=<base64>'.  `public` is the DER
    SubjectPublicKeyInfo of an RSA key or the 32 raw bytes of an Ed25519 key."""
    if algorithm not in ("rsa", "ed25519"):
        raise ValueError(f"unknown DKIM key algorithm {algorithm!r}")
    return f"v=DKIM1; k={algorithm}; p={base64.b64encode(public).decode('ascii')}"


def record_name(selector, domain):
    """The fully qualified owner name of a selector's record (domain in A-labels)."""
    return f"{selector}._domainkey.{domain.rstrip('.')}."


def txt_strings(text):
    """`text` cut into character-strings of at most 255 octets (the record text is
    ASCII, so octets and characters are the same)."""
    data = text.encode("ascii")
    return [data[i:i + STRING_LIMIT].decode("ascii") for i in range(0, len(data), STRING_LIMIT)] or [""]


def zone_line(selector, domain, record, ttl=TTL):
    """One zone-file line: '<selector>._domainkey.<domain>. 3600 IN TXT "..." "..."'."""
    strings = " ".join(f'"{s}"' for s in txt_strings(record))
    return f"{record_name(selector, domain)} {ttl} IN TXT {strings}"


def tags(record):
    """'v=DKIM1; k=rsa; p=AB CD' -> {'v': 'DKIM1', 'k': 'rsa', 'p': 'ABCD'} (RFC 6376 3.2
    tag=value list, also DMARC's, RFC 7489 6.4; whitespace inside a value dropped, as
    base64 allows)."""
    out = {}
    for part in record.split(";"):
        key, eq, value = part.partition("=")
        if eq:
            out.setdefault(key.strip().lower(), "".join(value.split()))
    return out


def same_key(ours, published):
    """Whether a published TXT record carries the key of our record (p=, and k=, rsa
    when absent, RFC 6376 3.6.1)."""
    a, b = tags(ours), tags(published)
    return bool(b.get("p")) and (a.get("p"), a.get("k", "rsa")) == (b.get("p"), b.get("k", "rsa"))
