"""One delivery attempt of one message to one domain (or to the smarthost): which hosts
and addresses, in which TLS way, and the per-recipient results: 2xx delivered, 4xx
deferred, 5xx failed.  The SMTP dialogue of each connection is smtp_client.py's.

- MX mode: hosts from mx.resolve_mx, addresses from mx.resolve_addresses; at most
  MAX_ADDRESSES connections per attempt. A failure that concerns the whole session
  (no connection, greeting, EHLO, STARTTLS, MAIL 4xx, DATA 4xx, dropped connection)
  moves the affected recipients on to the next address/host; per-recipient RCPT
  replies and 5xx to MAIL or DATA are final for this attempt. A 5xx greeting is
  skipped like a 4xx one (Postfix's smtp_skip_5xx_greeting), so it defers.
- EHLO with our hostname (HELO if EHLO is refused), SIZE (RFC 1870) sent and
  respected, BODY=8BITMIME (RFC 6152) for 8-bit bodies, SMTPUTF8 (RFC 6531) when an
  address needs it.
- TLS: tls_policy.py decides per host what TLS must be (DANE, MTA-STS, REQUIRETLS,
  opportunistic "may") and judges each handshake; this module makes the connections.
  Opportunistic TLS encrypts even when the certificate does not verify: a verifying
  handshake first (to know "ca"), then, if the certificate was the problem, another
  connection encrypted without verification, never cleartext. Only a handshake that
  fails outright falls back to cleartext (a new connection without STARTTLS, logged
  as a warning), and only where no rule makes TLS mandatory. A refused STARTTLS
  command continues in cleartext likewise. Each Result says what TLS its session had
  (tls_policy.TLSInfo: version and verified = none, ca, mta-sts, dane, fingerprint).
- Smarthost mode: one connection for all recipients; TLS "starttls" (required, never
  a fallback to plaintext: the password must not travel in clear), "implicit"
  (RFC 8314) or "none"; verified with its own context (CA file) and/or pinned by
  fingerprint; AUTH (RFC 4954) when a user is set. Any session failure,
  authentication included, defers: it is a configuration problem, mail is kept.
- REQUIRETLS (RFC 8689): the MAIL FROM parameter is passed on; a host that cannot
  honour it is skipped with 550 5.7.30, so that the message bounces if no host can.
- DSN (RFC 3461 6.2.1): to a host that offers DSN, RET/ENVID and each recipient's
  NOTIFY/ORCPT (dsn.PassOn) are passed on, and its Results say so (`dsn`); to one
  that does not, they are dropped and the worker owes the "relayed" report.

Seams: `Transport.connect(address, port, timeout) -> socket` (tests map addresses to
sinks on 127.0.0.1) and the injected resolver.
"""
from __future__ import annotations

import smtplib
import ssl

from clevermail.dsn import PassOn
from clevermail.relay import dane
from clevermail.relay.mx import (PermanentDNSError, TemporaryDNSError, lookup_addresses,
                                 lookup_mx)
from clevermail.relay.smtp_client import Client, Result, Transport, transaction, way_context
from clevermail.relay.tls_policy import (NOVERIFY, PLAIN, HostPlan, Reconnect, SessionFailure,
                                         plan_for_mx)

MAX_ADDRESSES = 10             # connections tried per domain and attempt


def smarthost_context(ca_file: str | None) -> ssl.SSLContext | None:
    """The context that verifies the smarthost with its own CA file (None: none set)."""
    return ssl.create_default_context(cafile=ca_file) if ca_file else None


def _anchors(t: Transport, plan: HostPlan, host: str) -> list[bytes]:
    """DANE-TA certificates known before connecting: "2 0 0" records, and the one
    learnt from this host's chain earlier if a record still matches it."""
    if not plan.dane:
        return []
    anchors = dane.full_ta_certs(list(plan.dane))
    learnt = t.dane_anchors.get(host)
    if learnt is not None and learnt not in anchors and any(
            r.usage == dane.DANE_TA and dane.matches(r, learnt) for r in plan.dane):
        anchors.append(learnt)
    return anchors


MAX_WAYS = 4        # connections per address: verify -> unverified, anchor -> leaf, -> plain


def _attempt(t: Transport, address: str, server_name: str, port: int, sender: str,
             rcpts: list[str], data: bytes, *, plan: HostPlan, way: str | None = None,
             auth=None, implicit: bool = False, qid: str = "-",
             dsn: PassOn | None = None) -> dict[str, Result]:
    """One session to one address, made again (at most MAX_WAYS connections) when
    the TLS handshake must be done another way; session failures come back as
    retry=True results."""
    remote = f"{server_name}[{address}]:{port}"
    results: dict[str, Result] = {}
    failure = Result(451, f"4.7.5 TLS with {remote} failed", remote, retry=True)
    anchors: list[bytes] = []
    if way is None:
        way, anchors = plan.first_way(_anchors(t, plan, server_name))
    if plan.testing and plan.outside_policy:
        t.log.warning("%s: MTA-STS testing: %s is not an MX host the policy names; "
                      "enforce mode would not deliver to it", qid, remote)
    for _ in range(MAX_WAYS):
        client = Client(t, address, server_name,
                         way_context(t, plan, way, anchors) if implicit else None)
        try:
            transaction(t, client, port, sender, rcpts, data, results, plan=plan, way=way,
                     anchors=anchors, auth=auth, remote=remote, dsn=dsn)
            return results
        except Reconnect as e:
            if e.way == PLAIN:
                t.log.warning("%s: %s", qid, e.why)
            elif plan.testing and e.way == NOVERIFY:
                t.log.warning("%s: MTA-STS testing: %s; enforce mode would defer", qid, e.why)
            else:
                t.log.info("%s: %s", qid, e.why)
            way, anchors = e.way, e.anchors
        except SessionFailure as e:
            t.log.info("%s: %s: %s", qid, remote, e)
            failure = Result(e.code, e.text, remote, retry=True, tls=client.tls_info)
            break
        except (smtplib.SMTPException, OSError) as e:
            # Lost mid-dialogue; if it was after the final dot the message may have
            # arrived, so a retry may duplicate it (acceptable, a loss is not).
            t.log.info("%s: %s: connection lost: %s", qid, remote, e)
            failure = Result(451, f"4.4.2 connection to {remote} lost: {e}", remote, retry=True,
                             tls=client.tls_info)
            break
        finally:
            client.close()
    # Recipients the session did not settle (all of them, or the accepted ones when
    # the connection died during DATA) share the session's failure.
    return {r: results[r] if r in results and not results[r].retry else failure
            for r in rcpts}


def _unsafe(address: str) -> bool:
    # The SMTP side validated these, but the queue is on disk: never let an address
    # break a command line (smtplib would raise ValueError on CR/LF anyway).
    return any(c in "<>\r\n" or ord(c) < 32 or ord(c) == 127 for c in address)


def _screen(sender: str, rcpts: list[str]) -> dict[str, Result]:
    if _unsafe(sender):
        return {r: Result(553, "5.1.7 bad sender address syntax") for r in rcpts}
    return {r: Result(553, "5.1.3 bad recipient address syntax") for r in rcpts if _unsafe(r)}


def _policy(t: Transport, domain: str, qid: str):
    """The domain's MTA-STS policy when it is enforce or testing, else None."""
    if t.mta_sts is None:
        return None
    try:
        policy = t.mta_sts.get(domain)
    except Exception:       # a bug here must not stop delivery: as if no policy
        t.log.exception("%s: MTA-STS lookup for %s failed", qid, domain)
        return None
    return policy if policy is not None and policy.mode in ("enforce", "testing") else None


def deliver_mx(t: Transport, domain: str, sender: str, rcpts: list[str], data: bytes,
               qid: str = "-", requiretls: bool = False,
               dsn: PassOn | None = None) -> dict[str, Result]:
    """Deliver to every recipient of `domain` through its MX hosts."""
    screened = _screen(sender, rcpts)
    if screened:
        good = [r for r in rcpts if r not in screened]
        return {**screened, **(deliver_mx(t, domain, sender, good, data, qid, requiretls, dsn)
                               if good else {})}
    try:
        hosts, mx_secure = lookup_mx(domain, t.resolver, t.rng)
    except PermanentDNSError as e:
        return {r: Result(550, f"5.1.2 cannot deliver to {domain}: {e}") for r in rcpts}
    except TemporaryDNSError as e:
        return {r: Result(451, f"4.4.3 {e}") for r in rcpts}
    policy = _policy(t, domain, qid)
    own_name = domain.lower().rstrip(".")
    results: dict[str, Result] = {}
    remaining = list(rcpts)
    last = Result(451, f"4.4.4 no address found for the MX hosts of {domain}")
    tried = 0
    for host in hosts:
        try:
            addresses, address_secure = lookup_addresses(host, t.resolver)
        except (TemporaryDNSError, PermanentDNSError) as e:
            last = Result(451, f"4.4.3 MX host {host}: {e}")
            continue
        tlsa = None
        if t.dnssec and mx_secure and address_secure:
            # RFC 7672 2.2: only a host found securely can have TLSA records that count
            try:
                tlsa = dane.lookup_tlsa(host, t.resolver)
            except TemporaryDNSError as e:
                last = Result(451, f"4.7.5 MX host {host}: TLSA lookup failed: {e}")
                t.log.info("%s: %s", qid, last.text)
                continue
        if tlsa is None and policy is not None and policy.mode == "enforce" \
                and not policy.allows(host):
            last = Result(451, f"4.7.5 MX host {host} is not named by the MTA-STS policy "
                               f"of {domain}")
            t.log.info("%s: %s", qid, last.text)
            continue
        # The name a certificate must carry is known securely from a DNSSEC-validated
        # MX answer, or when there was no MX to forge (implicit MX, address literal).
        name_secure = (t.dnssec and mx_secure) or host == own_name or host in addresses
        plan = plan_for_mx(host, tlsa=tlsa, policy=policy, requiretls=requiretls,
                           name_secure=name_secure)
        for address in addresses:
            if tried >= MAX_ADDRESSES:
                break
            tried += 1
            for rcpt, res in _attempt(t, address, host, t.port, sender, remaining, data,
                                      plan=plan, qid=qid, dsn=dsn).items():
                results[rcpt] = res
            remaining = [r for r in remaining if results[r].retry]
            if not remaining:
                return results
        if tried >= MAX_ADDRESSES:
            break
    for rcpt in remaining:
        results.setdefault(rcpt, last)
    return results


def deliver_smarthost(t: Transport, sender: str, rcpts: list[str], data: bytes, *,
                      host: str, port: int = 587, tls: str = "starttls",
                      user: str | None = None, password: str | None = None,
                      qid: str = "-", context: ssl.SSLContext | None = None,
                      fingerprint: bytes | None = None,
                      requiretls: bool = False, dsn: PassOn | None = None) -> dict[str, Result]:
    """Deliver every recipient through the smarthost, in one connection. context:
    verifies its certificate (None: the transport's, the system CAs); fingerprint:
    the SHA-256 of its certificate, checked too (alone: instead of a CA)."""
    if tls not in ("starttls", "implicit", "none"):
        raise ValueError(f"smarthost TLS mode must be starttls, implicit or none, not {tls!r}")
    screened = _screen(sender, rcpts)
    if screened:
        good = [r for r in rcpts if r not in screened]
        return {**screened, **(deliver_smarthost(t, sender, good, data, host=host, port=port, tls=tls,
                                                 user=user, password=password, qid=qid,
                                                 context=context, fingerprint=fingerprint,
                                                 requiretls=requiretls, dsn=dsn)
                               if good else {})}
    if requiretls and tls == "none":
        return {r: Result(550, "5.7.30 REQUIRETLS: the smarthost is configured without TLS")
                for r in rcpts}
    secured = tls != "none"
    plan = HostPlan(mandatory=secured, verify=secured, context=context,
                    fingerprint=fingerprint if secured else None, requiretls=requiretls,
                    name_secure=True, why="smarthost")
    auth = (user, password or "") if user else None
    return _attempt(t, host, host, port, sender, rcpts, data, plan=plan,
                    way=None if secured else PLAIN, auth=auth, implicit=tls == "implicit",
                    qid=qid, dsn=dsn)
