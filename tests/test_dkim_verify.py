"""Tests for clevermail.dkim.verify (with dkim/canon.py and dkim/pubkeys.py): every
signature is judged as dkimpy's own DKIM.verify judges it, on the same message and
key records -- valid, tampered body and header, an added From, wrong key, ed25519,
l=, expired and future signatures, a key below the minimum size, no key, and random damage -- and
inbound/dkimverify.py turns the outcomes into RFC 8601 results."""

import base64
import hashlib
import random
import re
import time

import dkim
import nacl.encoding
import nacl.signing
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from dkim.canonicalization import Relaxed
from dkim.util import InvalidTagValueList, parse_tag_value

from clevermail.dkim import canon
from clevermail.dkim.pubkeys import KeyCache
from clevermail.dkim.verify import NoKey, arc_verify, check_tags, signature_tags, strip_b, verify
from clevermail.inbound.dkimverify import verify_dkim
from clevermail.inbound.dnsclient import DnsClient
from clevermail.relay.mx import make_resolver
from clevermail.smtp.message import header_fields
from dns_server import DNSServer

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


def test_select_chooses_the_fields_dkimpy_chooses():
    rng = random.Random(6376)
    names = [b"from", b"to", b"subject", b"received", b"x-a"]
    for _ in range(2000):
        fields = [[rng.choice(names + [n.upper() for n in names]), b" v%d\r\n" % i]
                  for i in range(rng.randint(0, 8))]
        h = [rng.choice(names) for _ in range(rng.randint(0, 8))]
        assert canon.select(fields, h) == dkim.select_headers(fields, h)


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


def test_strip_b_empties_b_as_dkimpy_does():
    """verify.strip_b is dkimpy's RE_BTAG substitution (the b= value and its folding
    removed, and a final line end after it): the same bytes for real signature fields
    and 30,000 random ones."""
    rng = random.Random(3707)
    pieces = [b"b", b"=", b";", b" ", b"\t", b"\r\n", b"\n", b"\r", b"a", b"h", b"+/", b"x", b"b=", b"; b=", b"\v"]
    cases = [b" v=1; a=rsa-sha256; bh=abc=; b=AbC+/\r\n\tdef==\r\n", b" b=", b"; b=\r\n", b";b = x \r\n",
             b" bh=x; b=ab cd ; b=\n"]
    cases += [b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 30))) for _ in range(30000)]
    assert [c for c in cases if strip_b(c) != dkim.RE_BTAG.sub(b"\\1", c)] == []


def test_a_header_section_dkimpy_cannot_parse_is_a_result_not_a_crash(keys):
    class NoDNS:
        def dkim_txt(self, name, timeout=5):
            raise AssertionError("nothing to look up")

    broken = b"From: a@sign.test\r\nthis line has no colon\r\n\r\nbody\r\n"
    assert verify_dkim(broken, NoDNS()) == []
    [result] = verify_dkim(sign(keys).replace(b"To: bob", b"no colon here\r\nTo: bob"), NoDNS())
    assert result.result == "permerror" and result.reason.startswith("header section:")


def test_split_parses_as_rfc822_parse():
    """canon.split gives dkimpy's rfc822_parse result (header fields, body) for real
    messages and 20,000 random ones of field-like lines, folding, blank lines, mbox
    From_ lines and bare LFs; where dkimpy refuses the header section, so does split."""
    rng = random.Random(5322)
    pieces = [b"From: a", b"To:b", b"X-Y : z", b"From x", b" folded", b"\tfolded", b"bad line", b"",
              b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b"body", b":", b"a:b:c"]
    cases = [MESSAGE, b"", b"\r\n", b"A: b", b"A: b\r\n", b"A: b\r\n\r\n", b"\r\nbody"]
    cases += [b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 14))) for _ in range(20000)]
    for case in cases:
        try:
            theirs = dkim.rfc822_parse(case)
        except dkim.MessageFormatError:
            with pytest.raises(dkim.MessageFormatError):
                canon.split(case)
            continue
        except IndexError:
            continue                # dkimpy: a folded line before any field
        assert canon.split(case) == tuple(theirs), case


def test_field_start_reads_a_line_as_rfc822_parses_pattern():
    """canon.field_start ([name, value + CRLF] or None) is what dkimpy's field pattern
    makes of a line, on 30,000 random lines with colons first, last and doubled, white
    space, control, DEL and 8-bit octets before and after the first colon; and
    relaxed_headers is dkimpy's on those lines as values ending in CRLF (its fast cases)."""
    rng = random.Random(5324)
    pieces = [b"Subject", b"X-A", b":", b"::", b" ", b"\t", b"\x00", b"\x7f", b"\xe9", b"\x1f", b"a", b"~!",
              b"From", b"\r", b"\v", b"  ", b"\x0c", b"\r\n", b"\n", b"\r\n\t"]
    pattern = re.compile(rb"([\x21-\x7e]+?):")
    for _ in range(30000):
        line = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        match = pattern.match(line)
        theirs = None if match is None else [match.group(1), line[match.end():] + b"\r\n"]
        assert canon.field_start(line) == theirs, line
        value = line + b"\r\n"
        assert canon.relaxed_headers([(b"Subject", value)]) == Relaxed.canonicalize_headers(
            [(b"Subject", value)]), value


def test_split_grouped_is_split():
    """canon.split_grouped, on the fields smtp.message.header_fields split (the
    header split once for every check), gives split's fields, body and errors: the
    cases of test_split_parses_as_rfc822_parse and 20,000 random ones."""
    rng = random.Random(5323)
    pieces = [b"From: a", b"To:b", b"X-Y : z", b"From x", b" folded", b"\tfolded", b"bad line", b"",
              b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b"body", b":", b"a:b:c", b"\r\n\r\n"]
    cases = [MESSAGE, b"", b"\r\n", b"A: b", b"A: b\r\n", b"A: b\r\n\r\n", b"\r\nbody", b" x\r\nA: b\r\n\r\n",
             b"From x\r\n y\r\nA: b\r\n\r\n", b"A: b\r\nFrom x\r\n y\r\n\r\nz"]
    cases += [b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 14))) for _ in range(20000)]
    clean = 0
    for case in cases:
        groups = header_fields(case)[0]
        # the SMTP session's wire form has no bare LF: it may say so (crlf=True)
        ways = [{}] + ([{"crlf": True}] if case.count(b"\n") == case.count(b"\r\n") else [])
        clean += len(ways) - 1
        try:
            theirs = canon.split(case)
        except (dkim.MessageFormatError, IndexError) as exc:      # IndexError: dkimpy's, bare LFs
            for kw in ways:
                with pytest.raises(type(exc)) as info:
                    canon.split_grouped(case, groups, **kw)
                assert str(info.value) == str(exc), case
            continue
        for kw in ways:
            assert canon.split_grouped(case, groups, **kw) == theirs, case
    assert clean > 3000


def test_signature_tags_and_relaxed_headers_are_dkimpys():
    """verify.signature_tags is dkimpy's parse_tag_value (tags or the same error) and
    canon.relaxed_headers dkimpy's Relaxed.canonicalize_headers, on 30,000 random
    tag lists and header fields."""
    rng = random.Random(6377)
    pieces = [b"a", b"=", b";", b" ", b"\t", b"\r\n", b"\n", b"\r", b"\v", b"  ", b"b", b"1", b"_", b"-",
              b"v=1", b"d=x.test", b"\xe9", b"h=from:to", b"A", b"=="]
    for _ in range(30000):
        value = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 16)))
        try:
            theirs = parse_tag_value(value)
        except InvalidTagValueList as exc:
            with pytest.raises(dkim.MessageFormatError) as info:
                signature_tags(value)
            assert str(info.value) == str(exc) and type(info.value.args[0]) is type(exc), value
        else:
            assert signature_tags(value) == theirs, value
        name = b"".join(rng.choice([b"Subject", b" ", b"\t", b"X-A"]) for _ in range(rng.randint(1, 3)))
        assert canon.relaxed_headers([(name, value)]) == Relaxed.canonicalize_headers([(name, value)]), value


def test_check_tags_is_dkimpys_validate_signature_fields():
    """verify.check_tags raises what dkimpy's validate_signature_fields raises (or
    nothing) on 30,000 random signatures' tags: missing, bad or odd values of every
    tag it checks."""
    rng = random.Random(6378)
    now = int(time.time())
    choices = {
        b"v": [b"1", b"2", b""], b"a": [b"rsa-sha256", b"ed25519-sha256", b"rsa-sha1", b"rsa-md5"],
        b"b": [b"AbC+/dEf=", b"ab cd\r\n ef==", b"abc", b"a*b=", b"", b"abcd\n"],
        b"bh": [b"AbCd", b"abc", b"ab=c", b" ab cd"], b"d": [b"sign.test", b"a;b", b"\xe9.test", b"x[1]"],
        b"h": [b"from:to"], b"s": [b"sel"], b"i": [b"@sign.test", b"u@sub.sign.test", b"u@other.test",
                                                  b"sign.test", b"xsign.test", b"@SIGN.TEST"],
        b"l": [b"12", b"", b"x", b"1" * 80], b"q": [b"dns/txt", b"dns"], b"cv": [b"pass", b"maybe"],
        b"t": [str(now).encode(), str(now + 40000).encode(), b"12a", b"0"],
        b"x": [str(now + 100).encode(), str(now - 40000).encode(), b"5", b"x1"]}
    for _ in range(30000):
        tags = {name: rng.choice(values) for name, values in choices.items() if rng.random() < 0.85}
        try:
            dkim.validate_signature_fields(tags)
        except (dkim.ValidationError, IndexError) as exc:
            with pytest.raises(type(exc)) as info:
                check_tags(tags)
            assert str(info.value) == str(exc), tags
        else:
            check_tags(tags)
