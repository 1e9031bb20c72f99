"""The TLS rules for one delivery session, and what a session achieved.

Owns the decision "what must TLS to this host be" (a HostPlan, from DANE records,
the MTA-STS policy, the message's REQUIRETLS flag, the smarthost settings) and the
judgement of a finished handshake (check_handshake -> TLSInfo). delivery.py runs the
SMTP dialogue and reconnects as told; dane.py and mta_sts.py own their protocols.

Levels, strongest first (RFC 7672 2.2, RFC 8461 5, RFC 8689 4.2.1, Postfix's
"may"/"encrypt"/"dane"/"verify"):

- DANE: secure usable TLSA records at the host govern it, before MTA-STS: TLS is
  mandatory and must match a record (verified "dane"); secure records none of which
  is usable still make TLS mandatory, unauthenticated.
- MTA-STS enforce: only MX hosts the policy names are used; TLS is mandatory and the
  certificate must verify for the MX host name against the system CAs ("mta-sts").
  MTA-STS testing: delivered as "may", what enforce would have refused is logged.
- REQUIRETLS (a message flag): TLS verified ("dane", "mta-sts", or "ca" when the MX
  name itself is known securely: DNSSEC or no MX lookup) and the server advertises
  REQUIRETLS after STARTTLS; otherwise 550 5.7.30.
- may (no policy): STARTTLS whenever offered; a certificate that does not verify
  still gets TLS, unverified ("none"; a second handshake without verification); only
  a handshake that fails outright falls back to cleartext, and the log says so.
- The smarthost: TLS as configured, verified with its CA file (or the system CAs)
  and/or pinned by the SHA-256 fingerprint of its certificate ("fingerprint").

What was achieved is recorded per attempt as TLSInfo: the TLS version (None: no TLS)
and verified = none | ca | mta-sts | dane | fingerprint.
"""
from __future__ import annotations

import hashlib
import ssl
from dataclasses import dataclass

from clevermail.relay import dane
from clevermail.relay.dane import TLSA

NONE, CA, MTA_STS, DANE, FINGERPRINT = "none", "ca", "mta-sts", "dane", "fingerprint"
VERIFIED = (NONE, CA, MTA_STS, DANE, FINGERPRINT)

# Ways a connection's STARTTLS is made (delivery.py loops over them):
VERIFY = "verify"           # CA-verified with the host name (the plan's context)
NOVERIFY = "noverify"       # encrypted, the certificate judged after the handshake
ANCHOR = "anchor"           # DANE-TA: the TA certificate as the only trust anchor
PLAIN = "plain"             # no STARTTLS (the fallback of "may")


@dataclass(frozen=True)
class TLSInfo:
    version: str | None = None      # "TLSv1.3"; None = no TLS
    verified: str = NONE

    def __str__(self) -> str:
        return f"{self.version}/{self.verified}" if self.version else "no-tls"


NO_TLS = TLSInfo()


@dataclass(frozen=True)
class HostPlan:
    """What TLS a session with one host must have."""
    mandatory: bool = False         # no cleartext: a failed or missing STARTTLS skips the host
    verify: bool = False            # an unverified session skips the host
    label: str = CA                 # what a CA-verified session counts as (ca / mta-sts)
    dane: tuple[TLSA, ...] | None = None    # usable TLSA records that govern the host
    fingerprint: bytes | None = None        # smarthost pin: SHA-256 of its certificate
    context: ssl.SSLContext | None = None   # the verifying context (None: the transport's)
    requiretls: bool = False
    name_secure: bool = False       # the host name is known securely (DNSSEC, no MX lookup)
    testing: bool = False           # MTA-STS testing: log what enforce would refuse
    outside_policy: bool = False    # (testing) the policy does not name this host
    why: str = ""                   # for the log: which rule made TLS mandatory

    def first_way(self, anchors: list[bytes]) -> tuple[str, list[bytes]]:
        """How the first connection makes its handshake (anchors: DANE-TA
        certificates known beforehand)."""
        if self.dane:
            return (ANCHOR, anchors) if anchors else (NOVERIFY, [])
        if self.fingerprint is not None and self.context is None:
            return NOVERIFY, []
        return VERIFY, []


class SessionFailure(Exception):
    """The session failed as a whole: this host is skipped with code/text."""

    def __init__(self, code: int, text: str):
        super().__init__(f"{code} {text}")
        self.code, self.text = code, text


class Reconnect(Exception):
    """Make the session again, with the handshake done the other way."""

    def __init__(self, way: str, why: str, anchors: list[bytes] | None = None):
        super().__init__(why)
        self.way, self.why, self.anchors = way, why, anchors or []


def plan_for_mx(host: str, *, tlsa: list[TLSA] | None, policy, name_secure: bool,
                requiretls: bool) -> HostPlan:
    """The plan for an MX host. tlsa: dane.lookup_tlsa's result where DANE applies
    (else None); policy: the domain's MTA-STS Policy or None. The caller has already
    skipped hosts an enforced policy does not name."""
    extra = dict(requiretls=requiretls, name_secure=name_secure)
    if requiretls:
        extra.update(mandatory=True, verify=True)
    if tlsa:
        return HostPlan(mandatory=True, verify=True, dane=tuple(tlsa), why="DANE", **extra)
    if tlsa is not None:
        return HostPlan(**{"mandatory": True, "why": "DANE (no usable TLSA record)", **extra})
    if policy is not None and policy.mode == "enforce":
        return HostPlan(mandatory=True, verify=True, label=MTA_STS, why="MTA-STS enforce",
                        **{k: v for k, v in extra.items() if k not in ("mandatory", "verify")})
    if policy is not None and policy.mode == "testing":
        allowed = policy.allows(host)
        return HostPlan(label=MTA_STS if allowed else CA, why="REQUIRETLS" if requiretls else "",
                        testing=True, outside_policy=not allowed, **extra)
    return HostPlan(why="REQUIRETLS" if requiretls else "", **extra)


def requiretls_ok(plan: HostPlan, info: TLSInfo) -> bool:
    """RFC 8689 4.2.1: verified TLS to a host whose name is known securely."""
    return (info.verified in (MTA_STS, DANE, FINGERPRINT)
            or (info.verified == CA and plan.name_secure))


def check_handshake(plan: HostPlan, way: str, sock: ssl.SSLSocket, remote: str,
                    ta_cache: dict | None = None, host: str = "") -> TLSInfo:
    """Judge a finished handshake made `way`: the TLSInfo, or Reconnect / SessionFailure."""
    version = sock.version() or "TLS"
    leaf = sock.getpeercert(binary_form=True) or b""
    if plan.fingerprint is not None:
        if hashlib.sha256(leaf).digest() != plan.fingerprint:
            raise SessionFailure(451, f"4.7.5 the certificate of {remote} does not match the "
                                      "configured fingerprint")
        if way == NOVERIFY:
            return TLSInfo(version, FINGERPRINT)
    if way == VERIFY:
        return TLSInfo(version, plan.label)
    if way == ANCHOR:
        return TLSInfo(version, DANE)
    if plan.dane:
        if dane.match_ee(list(plan.dane), leaf) is not None:
            return TLSInfo(version, DANE)
        anchor = dane.find_ta(list(plan.dane), dane.peer_chain(sock))
        if anchor is not None:
            if ta_cache is not None:
                ta_cache[host] = anchor
            raise Reconnect(ANCHOR, f"DANE-TA trust anchor found in the chain of {remote}", [anchor])
        raise SessionFailure(451, f"4.7.5 no TLSA record of {remote} matches its certificate (DANE)")
    return TLSInfo(version, NONE)


def after_verify_failure(plan: HostPlan, way: str, remote: str, error) -> Reconnect:
    """A handshake failed because the certificate did not verify: the next way, or
    SessionFailure when the plan wants verification."""
    if way == ANCHOR:
        if any(r.usage == dane.DANE_EE or r.mtype != 0 for r in plan.dane or ()):
            return Reconnect(NOVERIFY, f"DANE-TA anchor did not verify {remote}: {error}")
        raise SessionFailure(451, f"4.7.5 the certificate of {remote} does not chain to its "
                                  f"DANE-TA trust anchor ({error})")
    if plan.verify:
        raise SessionFailure(451, f"4.7.5 the certificate of {remote} does not verify "
                                  f"({plan.why or 'verification required'}): {error}")
    return Reconnect(NOVERIFY, f"the certificate of {remote} does not verify ({error}); "
                               "encrypting without verification")
