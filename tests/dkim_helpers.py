"""Helpers for the DKIM verification tests (test_dkim_verify.py, test_dkim_canon.py):
a signed test MESSAGE, the module-scoped `keys` fixture (rsa, another rsa, ed25519), their
key records, messages signed by dkimpy (also with x=/t= tags dkim.sign cannot add), and
one signature judged by dkimpy and by clevermail.dkim.verify in the same terms."""

import base64
import hashlib

import dkim
import nacl.encoding
import nacl.signing
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from clevermail.dkim import canon
from clevermail.dkim.pubkeys import KeyCache
from clevermail.dkim.verify import NoKey, signature_tags, verify

MESSAGE = (b"Received: from x by y; Thu, 3 Dec 2026 08:00:00 +0000\r\n"
           b"From: Alice  <alice@sign.test>\r\nTo: bob@example.test\r\n"
           b"Subject:  a\r\n  folded\tsubject \r\nDate: Thu, 3 Dec 2026 08:00:00 +0000\r\n"
           b"Message-ID: <1@sign.test>\r\n\r\n"
           b"Hello  Bob,\r\n\r\nthe  body\t with \t spaces  \r\nand lines.\r\n\r\n\r\n")
HEADERS = [b"from", b"to", b"subject", b"date", b"message-id"]


def rsa_key(bits=2048):
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


@pytest.fixture(scope="module")
def keys():
    rsa_main, rsa_pem, rsa_record = rsa_key()
    _, _, other_record = rsa_key()
    ed = nacl.signing.SigningKey.generate()
    ed_seed = base64.b64encode(bytes(ed))
    ed_record = b"v=DKIM1; k=ed25519; p=" + ed.verify_key.encode(encoder=nacl.encoding.Base64Encoder)
    return {"rsa": (rsa_main, rsa_pem, rsa_record), "other": other_record,
            "ed25519": (ed_seed, ed_record)}


def records_for(keys):
    return {b"rsa._domainkey.sign.test.": keys["rsa"][2],
            b"ed._domainkey.sign.test.": keys["ed25519"][1],
            b"wrong._domainkey.sign.test.": keys["other"],
            b"bad._domainkey.sign.test.": b"v=DKIM1; k=rsa; p=bm90IGEga2V5"}


def dkimpy_outcome(message, idx, records, minkey=1024):
    """dkimpy's judgement: True, False or the name of the exception it raised."""
    checker = dkim.DKIM(message, minkey=minkey)
    try:
        return checker.verify(idx=idx, dnsfunc=lambda name, timeout=5: records.get(name))
    except dkim.DKIMException as exc:
        return type(exc).__name__


def fast_outcome(message, idx, records, cache=None, minkey=1024):
    """Ours, in dkimpy's terms: a missing or unusable key record is dkimpy's False."""
    parsed = canon.Parsed(message)
    field = [f for f in parsed.headers if f[0].lower() == b"dkim-signature"][idx]
    try:
        tags = signature_tags(field[1])
        return verify(parsed, field, tags, records.get, cache or KeyCache(), minkey)
    except NoKey:
        return False
    except dkim.KeyFormatError as exc:
        return "KeyFormatError" if str(exc).startswith("public key too small") else False
    except dkim.DKIMException as exc:
        return type(exc).__name__


def sign(keys, message=MESSAGE, selector=b"rsa", c=(b"relaxed", b"relaxed"), length=False):
    if selector == b"ed":
        return dkim.sign(message, b"ed", b"sign.test", keys["ed25519"][0], canonicalize=c,
                         include_headers=HEADERS, length=length,
                         signature_algorithm=b"ed25519-sha256") + message
    return dkim.sign(message, selector, b"sign.test", keys["rsa"][1], canonicalize=c, include_headers=HEADERS,
                     length=length) + message


def sign_with_tags(keys, tags, message=MESSAGE):
    """An rsa-sha256 relaxed/relaxed signature carrying `tags` (x=, t= ...), which
    dkim.sign cannot add."""
    head, body = message.split(b"\r\n\r\n", 1)
    bh = base64.b64encode(hashlib.sha256(canon.relaxed_body(body)).digest())
    value = (b" v=1; a=rsa-sha256; c=relaxed/relaxed; d=sign.test; s=rsa; " + tags
             + b"; h=from:to:subject; bh=" + bh + b"; b=")
    headers, _ = dkim.rfc822_parse(message)
    hasher = hashlib.sha256()
    policy = dkim.CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
    dkim.hash_headers(hasher, policy, policy.canonicalize_headers(headers),
                      [b"from", b"to", b"subject"], (b"DKIM-Signature", value), None)
    raw = keys["rsa"][0].sign(hasher.digest(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    return b"DKIM-Signature:" + value + base64.b64encode(raw) + b"\r\n" + message
