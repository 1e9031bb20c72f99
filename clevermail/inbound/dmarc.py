"""DMARC, RFC 7489: the From domain's policy and whether SPF or DKIM passed for an
identifier aligned with it.

Policy discovery (6.6.3): the TXT record at _dmarc.<From domain>, else at
_dmarc.<organizational domain>; exactly one record starting "v=DMARC1" counts.  The
organizational domain is the public suffix plus one label, from the Public Suffix
List that the `publicsuffixlist` package ships (offline; updated with the package).
Alignment (3.1): relaxed = same organizational domain, strict = the same name;
adkim/aspf choose per method.  The result is pass when one aligned identifier
passed, else fail; the policy is p (or sp for a subdomain of the organizational
domain), "none" when the record says nothing usable.  pct is honoured as 6.6.4
says: a message not sampled has its policy lowered one step (reject -> quarantine
-> none).
"""

import functools
import random
from dataclasses import dataclass

from publicsuffixlist import PublicSuffixList

from .dnsclient import DnsTempError

POLICIES = ("none", "quarantine", "reject")
_psl = None


def load_suffix_list():
    """The Public Suffix List, parsed once per process (tens of ms of CPU): done when
    the checks are built, so that the first message does not wait for it."""
    global _psl
    if _psl is None:
        _psl = PublicSuffixList()
    return _psl


@functools.lru_cache(maxsize=4096)
def organizational_domain(domain):
    """example.co.uk for mail.example.co.uk (RFC 7489 3.2); kept per name (a
    message asks it up to three times, and the same domains write again and again)."""
    domain = domain.lower().rstrip(".")
    return load_suffix_list().privatesuffix(domain) or domain


def aligned(identifier, from_domain, strict):
    identifier, from_domain = identifier.lower().rstrip("."), from_domain.lower().rstrip(".")
    if strict:
        return identifier == from_domain
    return organizational_domain(identifier) == organizational_domain(from_domain)


@dataclass(frozen=True)
class DMARCResult:
    result: str                 # pass, fail, none (no policy), temperror, permerror
    domain: str                 # the From domain
    policy: str = "none"        # what the domain asks for a failing message (after pct)
    published: str = "none"     # what the record says (p or sp), for the A-R comment
    reason: str = ""


@functools.lru_cache(maxsize=4096)
def parse_record(text):
    """The tags of a DMARC record as a dict (shared: read it, never change it), or
    None if it is not one; kept per record text, as the same domains write again."""
    if not text.replace(" ", "").lower().startswith("v=dmarc1"):
        return None
    tags = {}
    for part in text.split(";"):
        name, eq, value = part.strip().partition("=")
        if eq:
            tags.setdefault(name.strip().lower(), value.strip())
    return tags


class DMARCChecker:
    def __init__(self, dns, sample=random.random):
        self.dns = dns
        self.sample = sample

    def _record(self, from_domain):
        org = organizational_domain(from_domain)
        for name in dict.fromkeys((from_domain, org)):
            records = [r for r in (parse_record(t) for t in self.dns.txt(f"_dmarc.{name}")) if r]
            if len(records) == 1:
                return records[0], name != from_domain
            if len(records) > 1:
                return None, False              # more than one record: as if none (6.6.3)
        return None, False

    def check(self, from_domain, spf_result, spf_domain, dkim_passes):
        """`dkim_passes`: the d= domains of the signatures that verified."""
        if not from_domain:
            return DMARCResult("permerror", "", reason="no single From domain")
        try:
            record, inherited = self._record(from_domain)
        except DnsTempError as exc:
            return DMARCResult("temperror", from_domain, reason=str(exc))
        if record is None:
            return DMARCResult("none", from_domain, reason="no DMARC record")
        published = record.get("p", "").lower()
        if inherited and record.get("sp", "").lower() in POLICIES:
            published = record["sp"].lower()
        if published not in POLICIES:
            published = "none"
        strict_dkim = record.get("adkim", "r").lower() == "s"
        strict_spf = record.get("aspf", "r").lower() == "s"
        if any(aligned(d, from_domain, strict_dkim) for d in dkim_passes):
            return DMARCResult("pass", from_domain, published, published, "DKIM aligned")
        if spf_result == "pass" and spf_domain and aligned(spf_domain, from_domain, strict_spf):
            return DMARCResult("pass", from_domain, published, published, "SPF aligned")
        policy = published
        try:
            pct = int(record.get("pct", "100"))
        except ValueError:
            pct = 100
        if pct < 100 and self.sample() * 100 >= pct:
            policy = POLICIES[max(0, POLICIES.index(policy) - 1)]
        return DMARCResult("fail", from_domain, policy, published, "no aligned identifier passed")
