"""DKIM public keys for verification (RFC 6376 3.6.1, RFC 8463 4): a key record's
text -> a key that checks signatures, parsed once.

dkimpy parses the record (dkim.evaluate_pk: tags, v=, k=, s=, the RSA key's ASN.1 in
pure Python, about 0.2 ms) and checks RSA signatures with Python integers, holding
the GIL for the whole modular exponentiation.  Here the record is parsed by dkimpy
once, the RSA key is handed to OpenSSL through `cryptography`, and the result is kept
per record text: the DNS answer itself is cached for its TTL by the resolver
(inbound/dnsclient.py), so a record that changes is new text, parsed again, and a
record gone from DNS is no longer asked for.

A signature OpenSSL would judge differently from dkimpy's arithmetic is left to
dkimpy's own code: one whose length is not the modulus's (dkimpy pads a short one),
one not below the modulus (dkimpy reduces it), and a key OpenSSL will not load.
Everything else is the same RSASSA-PKCS1-v1_5 check of RFC 8017 8.2.2: the same
bytes compared.
"""

import threading

import dkim
import nacl.exceptions
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from dkim.crypto import DigestTooLargeError, RSASSA_PKCS1_v1_5_verify

MAX_ENTRIES = 1000          # records kept; the cache is cleared beyond this (bounded memory)
# made once (each construction runs isinstance checks against abstract classes)
_PKCS1 = padding.PKCS1v15()
_PREHASHED = {"sha256": utils.Prehashed(hashes.SHA256()), "sha1": utils.Prehashed(hashes.SHA1())}


class PublicKey:
    """One parsed key record: `kind` (b"rsa" or b"ed25519", dkimpy's k= tag),
    `keysize` in bits, `tlsrpt` (s=tlsrpt, RFC 8460)."""

    __slots__ = ("kind", "keysize", "tlsrpt", "_dkimpy", "_openssl", "_modulus", "_modlen")

    def __init__(self, record):
        pk, self.keysize, self.kind, self.tlsrpt = dkim.evaluate_pk(b"", record)
        self._dkimpy = pk           # dkimpy's form: a dict for RSA, a nacl VerifyKey for ed25519
        self._openssl = self._modulus = None
        if self.kind == b"rsa":
            self._modulus = pk["modulus"]
            self._modlen = (self._modulus.bit_length() + 7) // 8
            try:
                self._openssl = rsa.RSAPublicNumbers(pk["publicExponent"], self._modulus).public_key()
            except (ValueError, TypeError):
                pass                # left to dkimpy (an even modulus, e = 1, ...)

    def verify(self, hasher, signature):
        """True if `signature` (bytes) signs the digest in `hasher` (a hashlib object
        with the header data hashed); dkim.KeyFormatError as dkimpy raises it, and
        dkim.UnknownKeyTypeError for a record of an unknown service (s=)."""
        if self.kind not in (b"rsa", b"ed25519"):
            raise dkim.UnknownKeyTypeError(self.kind)
        if self.kind == b"ed25519":
            try:
                self._dkimpy.verify(hasher.digest(), signature)
                return True
            except (nacl.exceptions.BadSignatureError, ValueError):
                return False        # ValueError: not 64 octets (dkimpy lets it escape)
        if (self._openssl is not None and len(signature) == self._modlen
                and int.from_bytes(signature, "big") < self._modulus):
            try:
                self._openssl.verify(signature, hasher.digest(), _PKCS1, _PREHASHED[hasher.name])
                return True
            except InvalidSignature:
                return False
        try:
            return RSASSA_PKCS1_v1_5_verify(hasher, signature, self._dkimpy)
        except (TypeError, DigestTooLargeError) as exc:
            raise dkim.KeyFormatError(f"digest too large for modulus: {exc}") from None


class KeyCache:
    """record text -> PublicKey, or the KeyFormatError it raises (kept too: the same
    text fails the same way).  Shared by the sessions; one lock for the dict."""

    def __init__(self, max_entries=MAX_ENTRIES):
        self.max_entries = max_entries
        self._keys = {}
        self._lock = threading.Lock()

    def get(self, record):
        """The PublicKey of `record` (bytes); dkim.KeyFormatError if unusable."""
        hit = self._keys.get(record)
        if hit is None:
            try:
                hit = PublicKey(record)
            except dkim.KeyFormatError as exc:
                hit = str(exc)
            except (ValueError, TypeError) as exc:      # binascii.Error: bad base64 in p=
                hit = f"could not parse the public key: {exc}"
            with self._lock:
                if len(self._keys) >= self.max_entries:
                    self._keys.clear()
                self._keys[record] = hit
        if isinstance(hit, str):
            raise dkim.KeyFormatError(hit)
        return hit
