"""DKIM (RFC 6376, RFC 8463) and ARC (RFC 8617) verification of a received message,
with dkimpy over the server's resolver (dnsclient.DnsClient.dkim_txt).

Every DKIM-Signature is verified, not only the first: DMARC needs to know each
domain that signed successfully.  Per signature the outcome is one of RFC 8601's
dkim results: pass, fail (a bad signature or body hash), neutral (a signature that
cannot be checked: malformed tags, unknown algorithm), temperror (DNS trouble) or
permerror (no usable key).  ARC gives one chain validation result: none, pass, fail.
"""

from dataclasses import dataclass

import dkim

MAX_SIGNATURES = 10         # signatures verified per message; more are "neutral"


@dataclass(frozen=True)
class DKIMSignatureResult:
    result: str                 # pass, fail, neutral, temperror, permerror
    domain: str                 # d=
    selector: str               # s=
    algorithm: str              # a=
    reason: str = ""


def verify_dkim(message, dns):
    """One DKIMSignatureResult per DKIM-Signature header of `message` (CRLF bytes)."""
    checker = dkim.DKIM(message, minkey=1024, timeout=5)
    count = sum(1 for name, _ in checker.headers if name.lower() == b"dkim-signature")
    results = []
    for idx in range(count):
        if idx >= MAX_SIGNATURES:
            results.append(DKIMSignatureResult("neutral", "", "", "", "too many signatures"))
            continue
        if idx:                 # a fresh verifier per signature (it keeps per-signature state)
            checker = dkim.DKIM(message, minkey=1024, timeout=5)
        reason = ""
        try:
            ok = checker.verify(idx=idx, dnsfunc=dns.dkim_txt)
            result = "pass" if ok else "fail"
            if not ok and _key_missing(checker, dns):
                # dkimpy says False for a missing key too: no key is a permerror
                # (RFC 6376 6.1.2), not a signature that failed
                result, reason = "permerror", "no key published"
        except dkim.DnsTimeoutError as exc:
            result, reason = "temperror", str(exc)
        except dkim.KeyFormatError as exc:
            result, reason = "permerror", str(exc)
        except dkim.ValidationError as exc:
            # a body that changed is a failed verification; anything else dkimpy
            # refuses (malformed tags, unknown algorithm) cannot be processed: neutral
            result = "fail" if "body hash mismatch" in str(exc) else "neutral"
            reason = str(exc)
        except dkim.DKIMException as exc:
            result, reason = "permerror", str(exc)
        fields = getattr(checker, "signature_fields", None) or {}
        results.append(DKIMSignatureResult(
            result, _text(fields.get(b"d")), _text(fields.get(b"s")), _text(fields.get(b"a")),
            reason))
    return results


def verify_arc(message, dns):
    """The ARC chain validation: ('none'|'pass'|'fail', reason)."""
    end = message.find(b"\r\n\r\n")
    if b"arc-seal:" not in (message if end < 0 else message[:end + 2]).lower():
        return "none", "no ARC sets"
    try:
        cv, _, reason = dkim.arc_verify(message, dnsfunc=dns.dkim_txt, minkey=1024, timeout=5)
    except dkim.DnsTimeoutError as exc:
        return "fail", f"DNS: {exc}"
    except dkim.DKIMException as exc:
        return "fail", str(exc)
    return _text(cv) or "none", _text(reason)


def _key_missing(checker, dns):
    fields = getattr(checker, "signature_fields", None) or {}
    selector, domain = fields.get(b"s"), fields.get(b"d")
    if not selector or not domain:
        return False
    try:
        return dns.dkim_txt(selector + b"._domainkey." + domain) is None
    except dkim.DnsTimeoutError:
        return False


def _text(value):
    if value is None:
        return ""
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
