"""DKIM verification of one DKIM-Signature field (RFC 6376 6.1; ed25519-sha256 of
RFC 8463): the steps of dkimpy's DKIM.verify (verify_headerprep, verify_sig,
verify_sig_process), in its order, with its tag parser, tag checks,
canonicalization and header hashing, and its exceptions; pure but for the key
lookup the caller passes.  arc_verify is dkimpy's ARC chain validation (RFC 8617)
with each ARC-Message-Signature and ARC-Seal checked the same way.

What differs is the cost: the message is parsed and canonicalized once for all its
signatures (canon.Parsed: an rsa-sha256 and an ed25519-sha256 signature over the
same body hash it once), a key record is parsed once (pubkeys.KeyCache), and RSA is
checked by OpenSSL.  dkimpy did all of it again per signature, in pure Python:
about 1.5 ms of CPU holding the GIL per 4 KiB message on a small machine.  The tests
compare the outcome with dkimpy's verify() on the same messages.

Outcomes, as dkimpy gives them: True (the signature verifies), False (it does not),
or one of dkimpy's exceptions: dkim.ValidationError (tags dkimpy refuses: missing,
malformed, expired, from the future; "body hash mismatch"), dkim.MessageFormatError
(an unparsable tag list, c= or base64), dkim.KeyFormatError (an unusable key record,
or a key shorter than `minkey` bits), dkim.DnsTimeoutError from the lookup.  Two
answers are sharper than dkimpy's, which says False for both: NoKey when no key
record is published, and the KeyFormatError of a record that cannot be used.
"""

import base64
import binascii
import re
import time

import dkim
from dkim.canonicalization import CanonicalizationPolicy, InvalidCanonicalizationPolicyError, Relaxed
from dkim.crypto import HASH_ALGORITHMS
from dkim.util import DuplicateTag, InvalidTagSpec

from .canon import Parsed, relaxed_headers, select

MINKEY = 1024               # bits: a smaller RSA key does not count (RFC 8301 3.2)
# what a bytes pattern's \s matches: deleted with bytes.translate, not a regex pass
_WHITESPACE = b" \t\n\r\f\v"
_H_SEP = re.compile(rb"\s*:\s*")


class NoKey(dkim.DKIMException):
    """No key record at the selector (RFC 6376 6.1.2: PERMFAIL, no key for signature)."""


def signature_tags(value):
    """The tags of a DKIM-Signature field value (RFC 6376 3.2): {b"d": ..., ...};
    dkim.MessageFormatError if it is not a tag list.  dkimpy's parse_tag_value,
    without its regex (compared with it in the tests): a tag-spec without "=", a
    name that does not start with a letter, and a repeated name are errors, a
    trailing ";" is not."""
    tags = {}
    specs = value.strip().split(b";")
    if not specs[-1]:
        specs.pop()
    for spec in specs:
        name, eq, tag_value = spec.partition(b"=")
        name = name.strip()
        if not eq or not name[:1].isalpha():        # bytes: ASCII letters only
            raise dkim.MessageFormatError(InvalidTagSpec(spec))
        if name in tags:
            raise dkim.MessageFormatError(DuplicateTag(name))
        tags[name] = tag_value.strip()
    return tags


_MANDATORY = (b"v", b"a", b"b", b"bh", b"d", b"h", b"s")
_BASE64ISH = re.compile(rb"[\s0-9A-Za-z+/]+[\s=]*$")
_SPECIALS = re.compile(rb"[\(\)<>\[\]:;@\\,]")
_DIGITS = re.compile(rb"\d+$")
_LENGTH = re.compile(rb"\d{,76}$")
SLOP = 36000                # dkimpy's 10 hours of leeway for signers' clocks


def check_tags(sig):
    """dkimpy's validate_signature_fields(sig) for a DKIM-Signature, with its
    patterns compiled once (the same checks in its order and the same
    dkim.ValidationError texts; compared with it in the tests)."""
    for name in _MANDATORY:
        if name not in sig:
            raise dkim.ValidationError("missing %s=" % name)
    if sig[b"a"] not in HASH_ALGORITHMS:
        raise dkim.ValidationError("unknown signature algorithm: %s" % sig[b"a"])
    b = sig[b"b"]
    if _BASE64ISH.match(b) is None or len(b.translate(None, _WHITESPACE)) % 4 != 0:
        raise dkim.ValidationError("b= value is not valid base64 (%s)" % b)
    # dkimpy checks the b= value's characters again here, for bh= (they passed above)
    if len(sig[b"bh"].translate(None, _WHITESPACE)) % 4 != 0:
        raise dkim.ValidationError("bh= value is not valid base64 (%s)" % sig[b"bh"])
    if b"cv" in sig and sig[b"cv"] not in (dkim.CV_Pass, dkim.CV_Fail, dkim.CV_None):
        raise dkim.ValidationError("cv= value is not valid (%s)" % sig[b"cv"])
    d = sig[b"d"]
    if d.isascii() and _SPECIALS.search(d):
        raise dkim.ValidationError("d= value is not valid (%s)" % d)
    i = sig.get(b"i")
    if i is not None and (not i.lower().endswith(d.lower()) or i[-len(d) - 1] not in (64, 46)):
        raise dkim.ValidationError("i= domain is not a subdomain of d= (i=%s d=%s)" % (i, d))
    if b"l" in sig and _LENGTH.match(sig[b"l"]) is None:
        raise dkim.ValidationError("l= value is not a decimal integer (%s)" % sig[b"l"])
    if b"q" in sig and sig[b"q"] != b"dns/txt":
        raise dkim.ValidationError("q= value is not dns/txt (%s)" % sig[b"q"])
    t_sign = None
    if b"t" in sig:
        if _DIGITS.match(sig[b"t"]) is None:
            raise dkim.ValidationError("t= value is not a decimal integer (%s)" % sig[b"t"])
        t_sign = int(sig[b"t"])
        if t_sign > int(time.time()) + SLOP:
            raise dkim.ValidationError("t= value is in the future (%s)" % sig[b"t"])
    if sig[b"v"] != b"1":
        raise dkim.ValidationError("v= value is not 1 (%s)" % sig[b"v"])
    if b"x" in sig:
        if _DIGITS.match(sig[b"x"]) is None:
            raise dkim.ValidationError("x= value is not a decimal integer (%s)" % sig[b"x"])
        x_sign = int(sig[b"x"])
        if x_sign < int(time.time()) - SLOP:
            raise dkim.ValidationError("x= value is past (%s)" % sig[b"x"])
        if t_sign and x_sign < t_sign:
            raise dkim.ValidationError("x= value is less than t= value (x=%s t=%s)" % (sig[b"x"], sig[b"t"]))


def verify(parsed, field, tags, lookup, keys, minkey=MINKEY):
    """Whether `field` ([name, value], one of parsed.headers), whose tags are `tags`,
    is a valid signature of `parsed` (a canon.Parsed).  `lookup(name)` returns the
    key record at `name` (bytes, None when there is none) as dkimpy's dnsfunc does;
    `keys` is a pubkeys.KeyCache."""
    check_tags(tags)
    include = [name.lower() for name in _H_SEP.split(tags[b"h"])]
    return verify_signed(parsed, field, tags, include, lookup, keys, minkey)


def verify_signed(parsed, field, tags, include, lookup, keys, minkey=MINKEY):
    """dkimpy's verify_sig and verify_sig_process for a signature whose tags were
    checked already: `include` names the fields it signs (h=, or an ARC-Seal's
    chain); the rest as verify()."""
    record = lookup(tags[b"s"] + b"._domainkey." + tags[b"d"] + b".")
    if not record:
        raise NoKey("no key published")
    key = keys.get(record)
    if key.tlsrpt:          # RFC 8460 3: a key only for TLS reports
        raise dkim.ValidationError("Message is not tlsrpt and Service Type is tlsrpt")
    policy = _policy(tags.get(b"c", b"simple/simple"))
    hasher = HASH_ALGORITHMS[tags[b"a"]]

    if b"bh" in tags:           # an ARC-Seal signs no body
        _check_body(parsed, tags, policy, hasher)

    # dkimpy hashes every From field, whatever h= says (its bug #644046): a second
    # From added to a signed message breaks the signature
    if b"from" in include:
        include = include + [b"from"]
    header_hash = hasher()
    _hash_fields(header_hash, policy, parsed.headers, include, field)
    try:
        signature = binascii.a2b_base64(tags[b"b"].translate(None, _WHITESPACE))
    except (TypeError, binascii.Error) as exc:
        raise dkim.MessageFormatError(str(exc)) from None
    ok = key.verify(header_hash, signature)
    if ok and key.kind == b"rsa" and key.keysize < minkey:
        raise dkim.KeyFormatError(f"public key too small: {key.keysize}")
    return ok


# c= value -> dkimpy's CanonicalizationPolicy (kept: the same few values come again)
_POLICIES = {}
# a= value -> hashlib's name of its hash
_HASH_NAMES = {name: make().name for name, make in HASH_ALGORITHMS.items()}


def _policy(c_value):
    """CanonicalizationPolicy.from_c_value(c_value), kept per value; an invalid one
    is dkim.MessageFormatError (never kept)."""
    policy = _POLICIES.get(c_value)
    if policy is None:
        try:
            policy = CanonicalizationPolicy.from_c_value(c_value)
        except InvalidCanonicalizationPolicyError as exc:
            raise dkim.MessageFormatError(f"invalid c= value: {exc.args[0]}") from None
        if len(_POLICIES) < 64:
            _POLICIES[c_value] = policy
    return policy


def _check_body(parsed, tags, policy, hasher):
    """dkim.ValidationError unless bh= is the hash of the canonical body (its first
    l= octets when given)."""
    length = tags.get(b"l")
    if length is not None:
        if not length:          # dkimpy's check lets "l=" pass, and then int() fails
            raise dkim.ValidationError("l= value is empty")
        length = int(length)
    body_hash = parsed.body_hash(policy.body_algorithm is Relaxed, _HASH_NAMES[tags[b"a"]], length)
    try:
        expected = binascii.a2b_base64(tags[b"bh"].translate(None, _WHITESPACE))
    except (TypeError, binascii.Error) as exc:
        raise dkim.MessageFormatError(str(exc)) from None
    if body_hash != expected:
        raise dkim.ValidationError(f"body hash mismatch (got {base64.b64encode(body_hash)}, "
                                   f"expected {tags[b'bh']})")


class _ARC(dkim.ARC):
    """dkimpy's ARC chain validation (RFC 8617 5.2: sets, instances, cv=, the
    oldest-pass rules), each ARC-Message-Signature and ARC-Seal checked by
    verify_signed on the message dkimpy parsed, keys from a KeyCache."""

    def __init__(self, message, keys, minkey):
        super().__init__(message, minkey=minkey, timeout=5)
        self._parsed = Parsed.of(self.headers, self.body)
        self._keys = keys

    def verify_sig(self, sig, include_headers, sig_header, dnsfunc):
        try:
            return verify_signed(self._parsed, sig_header, sig, include_headers,
                                 lambda name: dnsfunc(name, timeout=self.timeout), self._keys, self.minkey)
        except (NoKey, dkim.KeyFormatError, dkim.DnsTimeoutError):
            return False            # dkimpy's verify_sig: no usable key, no valid signature


def arc_verify(message, lookup, keys, minkey=MINKEY):
    """dkim.arc_verify(message, dnsfunc=lookup): (cv, per-instance results, reason),
    cv one of dkim.CV_Pass, CV_Fail, CV_None."""
    try:
        return _ARC(message, keys, minkey).verify(dnsfunc=lookup)
    except dkim.DKIMException as exc:
        return dkim.CV_Fail, [], str(exc)


# dkim.RE_BTAG is "([;\s]b FWS =)(?:FWS [a-zA-Z0-9+/=])*(?:\r?\n\Z)?": the b= tag's value
# with its folding, and a CRLF ending the field.  Python's re walks its repeated group
# a character at a time (about 50 us for a 2048-bit signature on a small machine);
# here one character class takes the run of base64 and white space, and the white
# space after its last base64 character is given back, as the group's backtracking
# gives it back.
_B_TAG = re.compile(rb"([;\s]b(?:(?:\s*\r?\n)?\s+)?=)([a-zA-Z0-9+/=\s]*)")


def strip_b(value):
    """dkim.RE_BTAG.sub(b"\\1", value): `value` with every b= tag's value emptied
    (RFC 6376 3.7: the signature field is hashed with b= empty)."""
    def emptied(match):
        run = match.group(2)
        rest = run[len(run.rstrip(_WHITESPACE)):]     # white space after the last base64
        if match.end() == len(value) and rest in (b"\r\n", b"\n"):
            rest = b""                                  # the field's own line end
        return match.group(1) + rest
    return _B_TAG.sub(emptied, value)


def _hash_fields(hasher, policy, fields, include, signature_field):
    """dkim.hash_headers, with the fields chosen (canon.select) before they are
    canonicalized (the same choice: a parsed field name has no white space to lose,
    so relaxed's lower-casing is what the choice compares anyway) rather than every
    field of the message canonicalized for a few; the signature field last, its b= emptied and
    without its CRLF (RFC 6376 3.7)."""
    canonical = relaxed_headers if policy.header_algorithm is Relaxed else policy.canonicalize_headers
    chosen = canonical(select(fields, include))
    chosen += canonical([(signature_field[0], strip_b(signature_field[1]))])
    name, value = chosen[-1]
    chosen[-1] = name, value.rstrip()
    # one update: the same octets as one per name, colon and value
    hasher.update(b"".join([name + b":" + value for name, value in chosen]))
