"""DKIM (RFC 6376, RFC 8463) and ARC (RFC 8617) verification of a received message
over the server's resolver (dnsclient.DnsClient.dkim_txt), with dkimpy, through
dkim/verify.py: each DKIM signature with dkimpy's steps on a message parsed once,
the ARC chain with dkimpy's ARC validation; keys parsed once per record and RSA
checked by OpenSSL for both.

Every DKIM-Signature is verified, not only the first: DMARC needs to know each
domain that signed successfully.  Per signature the outcome is one of RFC 8601's
dkim results: pass, fail (a bad signature or body hash), neutral (a signature that
cannot be checked: malformed tags, unknown algorithm, expired), temperror (DNS
trouble) or permerror (no key published, or none usable: RFC 6376 6.1.2).  ARC
gives one chain validation result: none, pass, fail.
"""

from dataclasses import dataclass

import dkim

from ..dkim.canon import Parsed
from ..dkim.pubkeys import KeyCache
from ..dkim.verify import NoKey, arc_verify, signature_tags, verify

MAX_SIGNATURES = 10         # signatures verified per message; more are "neutral"
KEYS = KeyCache()           # key record text -> key, shared by every session


@dataclass(frozen=True)
class DKIMSignatureResult:
    result: str                 # pass, fail, neutral, temperror, permerror
    domain: str                 # d=
    selector: str               # s=
    algorithm: str              # a=
    reason: str = ""


def verify_dkim(message, dns, keys=KEYS, header=None):
    """One DKIMSignatureResult per DKIM-Signature header of `message` (CRLF bytes;
    `header`: its smtp.message.Header when split already, which the SMTP session
    makes of its wire form: CRLF only, no bare LF to look for)."""
    try:
        parsed = Parsed(message) if header is None else Parsed.of_groups(message, header.fields, crlf=True)
    except dkim.MessageFormatError as exc:
        # no field can be trusted to be a signature: one result says so when the
        # message seems to carry one
        end = message.find(b"\r\n\r\n")
        if b"dkim-signature" not in (message if end < 0 else message[:end + 2]).lower():
            return []
        return [DKIMSignatureResult("permerror", "", "", "", f"header section: {exc}")]
    fields = [field for field in parsed.headers if field[0].lower() == b"dkim-signature"]
    results = []
    for idx, field in enumerate(fields):
        if idx >= MAX_SIGNATURES:
            results.append(DKIMSignatureResult("neutral", "", "", "", "too many signatures"))
            continue
        tags, reason = {}, ""
        try:
            tags = signature_tags(field[1])
            result = "pass" if verify(parsed, field, tags, dns.dkim_txt, keys) else "fail"
        except NoKey as exc:
            result, reason = "permerror", str(exc)
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
        results.append(DKIMSignatureResult(
            result, _text(tags.get(b"d")), _text(tags.get(b"s")), _text(tags.get(b"a")), reason))
    return results


def verify_arc(message, dns, keys=KEYS):
    """The ARC chain validation: ('none'|'pass'|'fail', reason)."""
    end = message.find(b"\r\n\r\n")
    if (message if end < 0 else message[:end + 2]).lower().find(b"arc-seal:") < 0:
        return "none", "no ARC sets"
    try:
        cv, _, reason = arc_verify(message, dns.dkim_txt, keys)
    except dkim.DnsTimeoutError as exc:
        return "fail", f"DNS: {exc}"
    except dkim.DKIMException as exc:
        return "fail", str(exc)
    return _text(cv) or "none", _text(reason)


def _text(value):
    if value is None:
        return ""
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
