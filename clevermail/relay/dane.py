"""DANE for SMTP (RFC 7672, on RFC 6698/7671): TLSA records and matching certificates.

Owns the TLSA lookup at ``_25._tcp.<mx host>`` and the matching of the certificates a
server presented against the records; delivery.py and tls_policy.py decide what the
outcome does to a session.

- Only a secure answer counts (the AD bit of a validating resolver, see mx.py), and
  only for a host whose MX and address lookups were secure too (RFC 7672 2.2).
- Usable records (RFC 7672 3.1): DANE-TA(2) and DANE-EE(3), selector Cert(0) or
  SPKI(1), matching Full(0), SHA2-256(1) or SHA2-512(2). PKIX-TA(0) and PKIX-EE(1) are
  not usable for SMTP; a secure RRset with no usable record still makes TLS mandatory
  (RFC 7672 2.2, "encrypt" without authentication).
- DANE-EE: the leaf certificate matches; names and dates are ignored (RFC 7672 3.1.1).
- DANE-TA: a trust anchor matches, the chain from the leaf to it verifies, and the
  leaf carries the MX host name (RFC 7672 3.1.2, 3.2). We cannot verify signatures
  without a crypto library, so OpenSSL does it in a handshake whose only trust anchor
  is the TA certificate (VERIFY_X509_PARTIAL_CHAIN: the TA need not be self-signed):
  a "2 0 0" record gives the certificate itself; for a digest record the certificate
  is found in the chain the server presents (SSLSocket.get_unverified_chain(),
  public from Python 3.13, the same method of the private _sslobj on 3.10-3.12) and
  the session is made again with it as the anchor (tls_context_for_ta).
- Not covered: a "2 1 0" record (a bare public key as trust anchor) unless the server
  presents the certificate holding that key; TLSA base domains reached through CNAMEs
  (RFC 7672 2.2.3) are not followed: the MX host name is the base domain and the name
  checked.

The SubjectPublicKeyInfo of a certificate (selector 1) is cut out of its DER with the
small reader below (X.509, RFC 5280 4.1): no dependency beyond the standard library.
"""
from __future__ import annotations

import hashlib
import ssl
from dataclasses import dataclass

import dns.resolver

from clevermail.relay.mx import DNSError, TemporaryDNSError, query

__all__ = ["TLSA", "lookup_tlsa", "matches", "match_ee", "find_ta", "full_ta_certs",
           "peer_chain", "spki", "tls_context_for_ta"]

DANE_TA, DANE_EE = 2, 3
_HASH = {1: hashlib.sha256, 2: hashlib.sha512}


@dataclass(frozen=True)
class TLSA:
    usage: int
    selector: int
    mtype: int
    data: bytes

    @property
    def usable(self) -> bool:
        return (self.usage in (DANE_TA, DANE_EE) and self.selector in (0, 1)
                and self.mtype in (0, 1, 2))

    def __str__(self) -> str:
        return f"{self.usage} {self.selector} {self.mtype} {self.data.hex()[:16]}..."


def lookup_tlsa(host: str, resolver, port: int = 25) -> list[TLSA] | None:
    """The TLSA records of `host` when the answer is secure: their usable ones ([] =
    secure but none usable, TLS without authentication). None when DANE does not
    apply (no records, or an insecure answer). A failed lookup raises
    TemporaryDNSError: RFC 7672 2.2 says the host may not be used then."""
    try:
        records, secure = query(resolver, f"_{port}._tcp.{host.rstrip('.')}", "TLSA")
    except dns.resolver.NoAnswer:
        return None
    except TemporaryDNSError:
        raise
    except DNSError:            # NXDOMAIN, bad name: no TLSA records
        return None
    if not secure or not records:
        return None
    found = [TLSA(r.usage, r.selector, r.mtype, bytes(r.cert)) for r in records]
    return [t for t in found if t.usable]


# -- matching ---------------------------------------------------------------------------
def _selected(selector: int, der: bytes) -> bytes:
    return der if selector == 0 else spki(der)


def matches(record: TLSA, der: bytes) -> bool:
    """The certificate (DER) matches the record's selector and matching type."""
    try:
        data = _selected(record.selector, der)
    except ValueError:
        return False
    if record.mtype == 0:
        return data == record.data
    return _HASH[record.mtype](data).digest() == record.data


def match_ee(records: list[TLSA], leaf: bytes) -> TLSA | None:
    """The DANE-EE record the leaf certificate matches, if any."""
    return next((r for r in records if r.usage == DANE_EE and matches(r, leaf)), None)


def find_ta(records: list[TLSA], chain: list[bytes]) -> bytes | None:
    """A certificate of the presented chain (the leaf excluded) that a DANE-TA record
    matches: the trust anchor to verify the chain against."""
    for der in chain[1:]:
        if any(r.usage == DANE_TA and matches(r, der) for r in records):
            return der
    return None


def full_ta_certs(records: list[TLSA]) -> list[bytes]:
    """The trust anchors that "2 0 0" records carry whole."""
    return [r.data for r in records if r.usage == DANE_TA and r.selector == 0 and r.mtype == 0]


def tls_context_for_ta(anchors: list[bytes]) -> ssl.SSLContext:
    """A client context whose only trust anchors are `anchors` (DER), checking the
    chain and the host name (given as server_hostname) as RFC 7672 3.2 wants."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)       # CERT_REQUIRED, check_hostname
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    for der in anchors:
        ctx.load_verify_locations(cadata=der)
    return ctx


def peer_chain(sock: ssl.SSLSocket) -> list[bytes]:
    """The certificates the server presented (leaf first, DER), unverified; just the
    leaf where this Python offers no chain."""
    get = getattr(sock, "get_unverified_chain", None)
    if get is None:
        get = getattr(getattr(sock, "_sslobj", None), "get_unverified_chain", None)
    chain = []
    if get is not None:
        try:
            for cert in get() or ():
                chain.append(cert if isinstance(cert, bytes)
                             else cert.public_bytes(ssl._ssl.ENCODING_DER))
        except (AttributeError, ValueError, ssl.SSLError):
            chain = []
    if not chain:
        leaf = sock.getpeercert(binary_form=True)
        chain = [leaf] if leaf else []
    return chain


# -- a small DER reader: the SubjectPublicKeyInfo of an X.509 certificate -----------
def _tlv(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the element at pos."""
    if pos + 2 > len(der):
        raise ValueError("truncated DER")
    tag, first = der[pos], der[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > len(der):
            raise ValueError("bad DER length")
        length = int.from_bytes(der[pos:pos + n], "big")
        pos += n
    if pos + length > len(der):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def spki(der: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo of a DER certificate (RFC 5280 4.1: Certificate ->
    tbsCertificate -> [0] version?, serial, signature, issuer, validity, subject,
    subjectPublicKeyInfo). ValueError if it is not a certificate."""
    tag, start, _ = _tlv(der, 0)
    if tag != 0x30:
        raise ValueError("not a certificate")
    tag, pos, tbs_end = _tlv(der, start)
    if tag != 0x30:
        raise ValueError("no tbsCertificate")
    tag, _, end = _tlv(der, pos)
    if tag == 0xA0:             # explicit version
        pos = end
    for _ in range(5):          # serial, signature, issuer, validity, subject
        _, _, pos = _tlv(der, pos)
    tag, _, end = _tlv(der, pos)
    if tag != 0x30 or end > tbs_end:
        raise ValueError("no subjectPublicKeyInfo")
    return der[pos:end]
