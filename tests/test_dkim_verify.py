"""Tests for clevermail.dkim.verify (with dkim/canon.py and dkim/pubkeys.py): every
signature is judged as dkimpy's own DKIM.verify judges it, on the same message and
key records -- valid, tampered body and header, an added From, wrong key, ed25519,
l=, expired and future signatures, a key below the minimum size, no key, and random damage --
ARC chains as dkimpy's arc_verify judges them, and inbound/dkimverify.py turns the outcomes
into RFC 8601 results.  The parsers underneath, against dkimpy's, are in test_dkim_canon.py."""

import base64
import random
import time

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from clevermail.dkim import canon
from clevermail.dkim.pubkeys import KeyCache
from clevermail.dkim.verify import arc_verify, signature_tags, verify
from clevermail.inbound.dkimverify import verify_dkim
from clevermail.inbound.dnsclient import DnsClient
from clevermail.relay.mx import make_resolver
from dkim_helpers import MESSAGE, dkimpy_outcome, fast_outcome, keys, records_for, sign, sign_with_tags  # noqa: F401 (fixture)
from dns_server import DNSServer


def cases(keys):
    now = int(time.time())
    valid = sign(keys)
    length = sign(keys, length=True)
    return {
        "valid relaxed": (valid, True),
        "valid simple": (sign(keys, c=(b"simple", b"simple")), True),
        "valid relaxed/simple": (sign(keys, c=(b"relaxed", b"simple")), True),
        "body tampered": (valid.replace(b"the  body", b"the  b0dy"), "ValidationError"),
        "body whitespace (relaxed)": (valid.replace(b"the  body", b"the body"), True),
        "header tampered": (valid.replace(b"Subject:  a", b"Subject:  b"), False),
        "header refolded (relaxed)": (valid.replace(b"folded\tsubject", b"folded subject"), True),
        "second From added": (valid.replace(b"To: bob", b"From: eve@evil.test\r\nTo: bob"), False),
        "unsigned field added": (valid.replace(b"To: bob", b"X-Added: 1\r\nTo: bob"), True),
        "wrong key": (valid.replace(b"s=rsa;", b"s=wrong;"), False),
        "no key": (valid.replace(b"s=rsa;", b"s=nokey;"), False),
        "unusable key": (valid.replace(b"s=rsa;", b"s=bad;"), False),
        "ed25519": (sign(keys, selector=b"ed"), True),
        "ed25519 tampered": (sign(keys, selector=b"ed").replace(b"Subject:  a", b"Subject:  c"), False),
        "ed25519 simple": (sign(keys, selector=b"ed", c=(b"simple", b"simple")), True),
        "l= with text appended": (length + b"-- \r\nlist footer\r\n", True),
        "l= with the signed part changed": (length.replace(b"Hello", b"Jello"), "ValidationError"),
        "expired": (sign_with_tags(keys, b"t=%d; x=%d" % (now - 90000, now - 86400)), "ValidationError"),
        "not expired": (sign_with_tags(keys, b"t=%d; x=%d" % (now - 60, now + 86400)), True),
        "from the future": (sign_with_tags(keys, b"t=%d" % (now + 86400)), "ValidationError"),
        "unknown algorithm": (valid.replace(b"a=rsa-sha256", b"a=rsa-sha512"), "ValidationError"),
        "bad c=": (valid.replace(b"c=relaxed/relaxed", b"c=loose/relaxed"), "MessageFormatError"),
        "missing h=": (valid.replace(b"h=", b"hh="), "ValidationError"),
    }


def test_every_case_is_judged_as_dkimpy_judges_it(keys):
    records = records_for(keys)
    cache = KeyCache()
    for name, (message, expected) in cases(keys).items():
        theirs = dkimpy_outcome(message, 0, records)
        assert theirs == expected, name             # the case is what it says
        assert fast_outcome(message, 0, records, cache) == theirs, name
        assert fast_outcome(message, 0, records, cache) == theirs, name     # cached key
    # a key below the minimum size: a valid signature is refused, an invalid one fails
    valid = cases(keys)["valid relaxed"][0]
    for message, expected in ((valid, "KeyFormatError"), (valid.replace(b"To: bob", b"To: eve"), False)):
        assert dkimpy_outcome(message, 0, records, minkey=4096) == expected
        assert fast_outcome(message, 0, records, minkey=4096) == expected


def test_random_damage_is_judged_as_dkimpy_judges_it(keys):
    """Bytes of signed messages flipped, dropped or duplicated at random places:
    whatever dkimpy makes of the result, so do we."""
    records = records_for(keys)
    rng = random.Random(8463)
    originals = [sign(keys), sign(keys, c=(b"simple", b"simple")), sign(keys, selector=b"ed"),
                 sign(keys, length=True)]
    seen = set()
    for _ in range(400):
        message = bytearray(rng.choice(originals))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(message))
            action = rng.randrange(3)
            if action == 0:
                message[at] = rng.choice(b" \tabcAB=;:\r\n-0")
            elif action == 1:
                del message[at]
            else:
                message[at:at] = message[at:at + rng.randint(1, 8)]
        message = bytes(message)
        try:
            theirs = dkimpy_outcome(message, 0, records)
        except (dkim.DKIMException, IndexError, ValueError):
            continue        # dkimpy cannot even parse it or find the signature
        try:
            ours = fast_outcome(message, 0, records)
        except IndexError:
            continue        # the damaged field is no longer a DKIM-Signature
        assert ours == theirs, message
        seen.add(theirs)
    assert {True, False, "ValidationError"} <= seen      # the damage reached every outcome


def test_a_body_is_hashed_once_for_two_signatures_and_headers_parsed_once(keys):
    message = sign(keys, selector=b"ed", message=sign(keys))
    parsed = canon.Parsed(message)
    fields = [f for f in parsed.headers if f[0].lower() == b"dkim-signature"]
    cache = KeyCache()
    records = records_for(keys)
    assert [verify(parsed, f, signature_tags(f[1]), records.get, cache) for f in fields] == [True, True]
    assert list(parsed._hashes) == [(True, "sha256", None)]


def test_key_cache_parses_a_record_once_and_keeps_its_error():
    cache = KeyCache(max_entries=2)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(rsa.generate_private_key(
        public_exponent=65537, key_size=1024).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    assert cache.get(record) is cache.get(record)
    for bad in (b"v=DKIM1; k=rsa; p=bm90IGEga2V5", b"v=DKIM1; k=rsa; p=!!!", b"v=DKIM2; p=x", b""):
        with pytest.raises(dkim.KeyFormatError):
            cache.get(bad)
        with pytest.raises(dkim.KeyFormatError):
            cache.get(bad)                          # from the cache this time
    assert len(cache._keys) <= 2                    # bounded


def test_a_bare_lf_message_is_parsed_as_dkimpy_parses_it(keys):
    message = sign(keys).replace(b"\r\nand lines.", b"\nand lines.")
    assert canon.split(message) == tuple(dkim.rfc822_parse(message))
    assert fast_outcome(message, 0, records_for(keys)) == dkimpy_outcome(message, 0, records_for(keys))


# -- RFC 8601 results over DNS ----------------------------------------------------------------
def test_results_over_dns(keys):
    zone = "\n".join([
        f'rsa._domainkey.sign.test. 300 IN TXT "{keys["rsa"][2][:200].decode()}" "{keys["rsa"][2][200:].decode()}"',
        f'ed._domainkey.sign.test. 300 IN TXT "{keys["ed25519"][1].decode()}"',
        'bad._domainkey.sign.test. 300 IN TXT "v=DKIM1; k=rsa; p=bm90IGEga2V5"',
    ])
    valid = sign(keys)
    both = sign(keys, selector=b"ed", message=valid)
    with DNSServer(zone, servfail={"flaky._domainkey.sign.test."}) as server:
        dns = DnsClient(make_resolver([server.nameserver]))

        def results(message):
            return [(r.result, r.selector, r.algorithm) for r in verify_dkim(message, dns)]

        assert results(both) == [("pass", "ed", "ed25519-sha256"), ("pass", "rsa", "rsa-sha256")]
        assert results(valid.replace(b"the  body", b"the  b0dy")) == [("fail", "rsa", "rsa-sha256")]
        assert results(valid.replace(b"Subject:  a", b"Subject:  b")) == [("fail", "rsa", "rsa-sha256")]
        assert results(valid.replace(b"s=rsa;", b"s=nokey;")) == [("permerror", "nokey", "rsa-sha256")]
        assert results(valid.replace(b"s=rsa;", b"s=bad;")) == [("permerror", "bad", "rsa-sha256")]
        assert results(valid.replace(b"s=rsa;", b"s=flaky;")) == [("temperror", "flaky", "rsa-sha256")]
        assert results(valid.replace(b"a=rsa-sha256", b"a=rsa-sha512")) == [("neutral", "rsa", "rsa-sha512")]
        assert results(MESSAGE) == []


def test_arc_chains_are_judged_as_dkimpy_judges_them(keys):
    """dkimpy seals one and two ARC sets; dkimpy's arc_verify and ours (each set's
    signatures through verify_signed) agree on the chain, intact and damaged."""
    records = {**records_for(keys), b"arc._domainkey.sign.test.": keys["rsa"][2]}
    base = (b"From: a@origin.test\r\nTo: list@sign.test\r\nSubject: arc\r\n"
            b"Authentication-Results: sign.test; spf=pass smtp.mailfrom=a@origin.test\r\n\r\nbody\r\n")

    def seal(message):
        return b"".join(dkim.arc_sign(message, b"arc", b"sign.test", keys["rsa"][1], b"sign.test",
                                      include_headers=[b"from", b"to", b"subject"])) + message

    one = seal(base)
    two = seal(b"Authentication-Results: sign.test; arc=pass\r\n" + one)
    messages = {
        "one set": one, "two sets": two,
        "body changed": one.replace(b"body", b"b0dy"),
        "seal changed": one.replace(b"cv=none", b"cv=pass"),
        "older set changed": two.replace(b"Subject: arc", b"Subject: arc!"),
        "no key": one.replace(b"s=arc;", b"s=nokey;"),
        "unusable key": one.replace(b"s=arc;", b"s=bad;"),
    }
    seen, cache = set(), KeyCache()
    for name, message in messages.items():
        theirs = dkim.arc_verify(message, dnsfunc=lambda n, timeout=5: records.get(n))
        ours = arc_verify(message, lambda n, timeout=5: records.get(n), cache)
        assert (ours[0], ours[2]) == (theirs[0], theirs[2]), name
        seen.add(theirs[0])
    assert seen == {dkim.CV_Pass, dkim.CV_Fail}
    assert keys["rsa"][2] in cache._keys        # the keys went through ours


def test_a_header_section_dkimpy_cannot_parse_is_a_result_not_a_crash(keys):
    class NoDNS:
        def dkim_txt(self, name, timeout=5):
            raise AssertionError("nothing to look up")

    broken = b"From: a@sign.test\r\nthis line has no colon\r\n\r\nbody\r\n"
    assert verify_dkim(broken, NoDNS()) == []
    [result] = verify_dkim(sign(keys).replace(b"To: bob", b"no colon here\r\nTo: bob"), NoDNS())
    assert result.result == "permerror" and result.reason.startswith("header section:")
