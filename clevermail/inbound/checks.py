"""The authentication checks of incoming mail and what follows from them: SPF (MAIL
FROM and HELO), DKIM, DMARC and ARC, one Authentication-Results field, and the
policy (RFC 7489 6.6, as configured in [inbound]).

They run at the end of DATA for an unauthenticated client outside trusted_networks
(loopback included: it is not trusted implicitly) on the MX listener; the session
asks `InboundChecks.check()` and gets a Verdict: refuse with a reply, or accept with
the header to prepend and the folder to deliver to (Junk for quarantine).

Policy, per outcome:
- DMARC fail, p=reject: `dmarc_reject` = reject (550 5.7.1) | quarantine | tag;
- DMARC fail, p=quarantine: `dmarc_quarantine` = quarantine (Junk) | tag;
- SPF fail and no DMARC policy: `spf_fail` = tag (the default) | reject;
- From: in a local domain without an aligned pass (only this server sends for it,
  signed): refused, 550 5.7.1;
- a temporary DNS error where the result decides (the DMARC record, or SPF/DKIM
  under a reject policy that did not pass otherwise): 451 4.4.3.
"Tag" means the message is delivered with its Authentication-Results only.
"""

import logging
from dataclasses import dataclass

from ..metrics import NO_METRICS
from ..smtp.message import Header
from ..smtp.sender_identity import from_addresses
from . import authres
from .dkimverify import verify_arc, verify_dkim
from .dmarc import DMARCChecker, aligned, load_suffix_list
from .dnsclient import DnsClient
from .spf import SPFChecker, valid_domain

log = logging.getLogger("clevermail.inbound")


@dataclass(frozen=True)
class InboundPolicy:
    """[inbound]: whether the checks run and what each failing outcome leads to."""

    checks: bool = True
    dmarc_reject: str = "reject"            # reject | quarantine | tag
    dmarc_quarantine: str = "quarantine"    # quarantine | tag
    spf_fail: str = "tag"                   # tag | reject


@dataclass(frozen=True)
class Verdict:
    action: str                 # accept | reject | tempfail
    header: bytes = b""         # the Authentication-Results field to prepend
    folder: str | None = None   # "Junk" for quarantined mail
    reason: str = ""            # for the reply text and the log


class InboundChecks:
    """Every result and verdict is counted in `metrics` (metrics.Metrics)."""

    def __init__(self, resolver, authserv_id, is_local_domain, policy=InboundPolicy(), metrics=NO_METRICS):
        self.dns = DnsClient(resolver)
        self.authserv_id = authserv_id
        self.is_local_domain = is_local_domain
        self.policy = policy
        self.metrics = metrics
        self.spf = SPFChecker(self.dns)
        self.dmarc = DMARCChecker(self.dns)
        load_suffix_list()              # now, not in the first message's time

    def strip(self, message):
        """The message without Authentication-Results fields claiming our id."""
        return authres.strip_ours(message, self.authserv_id)

    def strip_header(self, header):
        """strip() of a smtp.message.Header: the Header of the result."""
        return authres.strip_ours_header(header, self.authserv_id)

    def check(self, message, ip, helo, sender, header=None):
        """The Verdict for `message` (CRLF bytes, forged A-R fields already
        stripped; `header`: its smtp.message.Header, split once for every check)
        from `ip` that said HELO `helo` and MAIL FROM `sender`."""
        header = Header.of(message, header)
        spf = self.spf.check(ip, sender, helo)
        spf_helo = self.spf.check(ip, "", helo) if sender and valid_domain(helo) else None
        signatures = verify_dkim(message, self.dns, header=header)
        passed = [s.domain for s in signatures if s.result == "pass"]
        from_domains = {a.rpartition("@")[2].lower() for a in from_addresses(message, header) if "@" in a}
        from_domain = next(iter(from_domains)) if len(from_domains) == 1 else ""
        dmarc = self.dmarc.check(from_domain, spf.result, spf.domain if sender else "", passed)
        arc, arc_reason = verify_arc(message, self.dns)

        results = [("spf", spf.result, spf.reason if spf.result in ("permerror", "temperror") else "",
                    [("smtp.mailfrom", sender)] if sender else [("smtp.helo", helo)])]
        if spf_helo is not None:
            results.append(("spf", spf_helo.result, "", [("smtp.helo", helo)]))
        for sig in signatures:
            results.append(("dkim", sig.result, sig.reason[:80] if sig.result != "pass" else "",
                            [("header.d", sig.domain), ("header.s", sig.selector),
                             ("header.a", sig.algorithm)]))
        if not signatures:
            results.append(("dkim", "none", "", []))
        results.append(("dmarc", dmarc.result,
                        f"p={dmarc.published}" if dmarc.result in ("pass", "fail") else "",
                        [("header.from", dmarc.domain)]))
        results.append(("arc", arc, "", []))
        header = authres.field(self.authserv_id, results)
        verdict = self._decide(header, spf, signatures, dmarc, from_domain, sender)
        self._count(results, spf_helo is not None, verdict)
        return verdict

    def _count(self, results, helo_checked, verdict):
        metrics = self.metrics
        if not metrics.enabled:
            return
        for i, (method, result, _, _) in enumerate(results):
            metrics.auth_result("spf_helo" if method == "spf" and i == 1 and helo_checked else method, result)
        metrics.inbound_verdict("quarantine" if verdict.folder == "Junk" else verdict.action)

    # -- policy ------------------------------------------------------------------------------
    def _decide(self, header, spf, signatures, dmarc, from_domain, sender):
        policy = self.policy
        if dmarc.result == "temperror":
            return Verdict("tempfail", header, reason=f"DMARC policy of {from_domain} unavailable")
        if from_domain and self.is_local_domain(from_domain):
            ours = any(s.result == "pass" and aligned(s.domain, from_domain, False) for s in signatures) \
                or (spf.result == "pass" and sender and aligned(spf.domain, from_domain, False))
            if not ours:
                return Verdict("reject", header, reason=f"{from_domain} is a local domain; not sent by us")
        if dmarc.result == "fail":
            maybe = spf.result == "temperror" or any(s.result == "temperror" for s in signatures)
            if dmarc.policy == "reject":
                if maybe:
                    return Verdict("tempfail", header, reason="DNS trouble while checking DMARC")
                return self._apply(policy.dmarc_reject, header, f"DMARC policy of {from_domain}")
            if dmarc.policy == "quarantine":
                return self._apply(policy.dmarc_quarantine, header, f"DMARC policy of {from_domain}")
            return Verdict("accept", header)
        if dmarc.result == "none" and spf.result == "fail" and policy.spf_fail == "reject":
            return Verdict("reject", header, reason=f"SPF of {spf.domain} fails")
        if dmarc.result == "none" and spf.result == "temperror" and policy.spf_fail == "reject":
            return Verdict("tempfail", header, reason="DNS trouble while checking SPF")
        return Verdict("accept", header)

    @staticmethod
    def _apply(action, header, reason):
        if action == "reject":
            return Verdict("reject", header, reason=reason)
        if action == "quarantine":
            return Verdict("accept", header, folder="Junk", reason=f"quarantined: {reason}")
        return Verdict("accept", header, reason=f"tagged: {reason}")
