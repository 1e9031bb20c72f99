"""Where to deliver a domain's mail: MX lookup and host addresses, with dnspython.

Owns the DNS side of relaying (RFC 5321 section 5.1, RFC 7505 null MX) and the
classification of DNS outcomes into permanent and temporary failures:

- MX records are tried by preference, in random order among equal preferences.
- No MX records (NoAnswer) means the implicit MX: the domain itself, if it has an A
  or AAAA record (RFC 5321 5.1); neither means a permanent failure.
- A null MX (a single "0 ." record, RFC 7505) or NXDOMAIN fails permanently.
- Timeouts, SERVFAIL (dnspython's NoNameservers) and other resolver trouble defer.
- An address literal domain ("[192.0.2.1]", "[IPv6:2001:db8::1]") is its own host.

The resolver is injected (anything with dnspython's ``resolve(qname, rdtype)``) so that
tests point MX records at sinks on 127.0.0.1; make_resolver() builds the real one.

DNSSEC (for DANE, RFC 7672 2.1): lookup_mx/lookup_addresses/query also say whether the
answer was secure, i.e. came with the AD bit. We validate nothing ourselves: the AD bit
means something only when the configured resolver validates and the path to it is
trusted ([relay] dnssec = yes, as Postfix's smtp_dns_support_level = dnssec), and
make_resolver(dnssec=True) asks for it (AD and DO set in queries, RFC 6840 5.7-5.8).
A resolver without dnspython's Answer (a test fake returning a list) is never secure.
"""
from __future__ import annotations

import ipaddress
import random

import dns.exception
import dns.flags
import dns.name
import dns.nameserver
import dns.resolver

__all__ = ["DNSError", "PermanentDNSError", "TemporaryDNSError", "resolve_mx",
           "resolve_addresses", "lookup_mx", "lookup_addresses", "query", "make_resolver"]


class DNSError(Exception):
    """A DNS outcome that prevents delivery to a domain."""


class PermanentDNSError(DNSError):
    """The domain cannot receive mail (NXDOMAIN, null MX, no address at all)."""


class TemporaryDNSError(DNSError):
    """Try again later (timeout, SERVFAIL, unreachable nameservers)."""


def _secure(answer) -> bool:
    response = getattr(answer, "response", None)
    return bool(response is not None and response.flags & dns.flags.AD)


def query(resolver, qname: str, rdtype: str) -> tuple[list, bool]:
    """(records, secure): resolver.resolve() with its exceptions classified (see
    _resolve); secure = the answer carried the AD bit."""
    answer = _resolve(resolver, qname, rdtype)
    return list(answer), _secure(answer)


def _resolve(resolver, qname: str, rdtype: str):
    """resolver.resolve() with its exceptions classified; NoAnswer passes through."""
    try:
        return resolver.resolve(qname, rdtype)
    except dns.resolver.NoAnswer:
        raise
    except (dns.resolver.NXDOMAIN, dns.resolver.YXDOMAIN) as e:
        raise PermanentDNSError(f"{qname}: domain does not exist") from e
    except (dns.name.NameTooLong, dns.name.LabelTooLong, dns.name.EmptyLabel,
            dns.exception.SyntaxError) as e:
        raise PermanentDNSError(f"{qname}: invalid domain name ({e})") from e
    except dns.resolver.NoNameservers as e:
        raise TemporaryDNSError(f"{qname} {rdtype}: no nameserver answered (SERVFAIL)") from e
    except dns.exception.Timeout as e:             # includes LifetimeTimeout
        raise TemporaryDNSError(f"{qname} {rdtype}: DNS timeout") from e
    except (dns.exception.DNSException, OSError) as e:
        raise TemporaryDNSError(f"{qname} {rdtype}: DNS error: {e}") from e


def _literal(host: str) -> str | None:
    """The IP address of an address literal or bare IP, else None."""
    h = host
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
        if h[:5].lower() == "ipv6:":
            h = h[5:]
    try:
        return str(ipaddress.ip_address(h))
    except ValueError:
        return None


def resolve_mx(domain: str, resolver, rng: random.Random | None = None) -> list[str]:
    """Host names (or IP addresses, for literals) to try, in order."""
    return lookup_mx(domain, resolver, rng)[0]


def lookup_mx(domain: str, resolver, rng: random.Random | None = None) -> tuple[list[str], bool]:
    """(hosts, secure): resolve_mx's hosts, and whether the host names are known
    securely: the MX answer had the AD bit, or there was no MX lookup to forge (an
    address literal; the implicit MX, which is the domain's own name)."""
    literal = _literal(domain)
    if literal is not None:
        return [literal], True
    domain = domain.rstrip(".")
    if not domain:
        raise PermanentDNSError("empty domain")
    try:
        answer = _resolve(resolver, domain, "MX")
    except dns.resolver.NoAnswer:
        # RFC 5321 5.1: no MX records -> the domain itself is the implicit MX.
        if not resolve_addresses(domain, resolver):
            raise PermanentDNSError(f"{domain}: no MX and no A/AAAA record") from None
        return [domain], True
    secure = _secure(answer)
    records = [(r.preference, r.exchange) for r in answer]
    real = [(p, x) for p, x in records if x != dns.name.root]
    if not real:
        # RFC 7505: "0 ." says the domain accepts no mail at all.
        raise PermanentDNSError(f"{domain}: null MX, the domain accepts no mail")
    # A null MX beside real ones violates RFC 7505 3; the real ones are the useful part.
    rng = rng or random
    by_pref: dict[int, list[str]] = {}
    for pref, exchange in real:
        by_pref.setdefault(pref, []).append(exchange.to_text(omit_final_dot=True).lower())
    hosts: list[str] = []
    for pref in sorted(by_pref):
        group = by_pref[pref]
        rng.shuffle(group)                          # spread load among equals
        hosts.extend(h for h in group if h not in hosts)
    return hosts, secure


def resolve_addresses(host: str, resolver) -> list[str]:
    """IPv4 then IPv6 addresses of an MX host. [] if it has none; raises
    TemporaryDNSError only when nothing was found and a lookup failed temporarily."""
    return lookup_addresses(host, resolver)[0]


def lookup_addresses(host: str, resolver) -> tuple[list[str], bool]:
    """(addresses, secure): resolve_addresses's, and whether every address answer
    had the AD bit (RFC 7672 2.2.2: TLSA records count only for a secure host)."""
    literal = _literal(host)
    if literal is not None:
        return [literal], False
    found: list[str] = []
    secure = True
    temporary: TemporaryDNSError | None = None
    for rdtype in ("A", "AAAA"):
        try:
            answer = _resolve(resolver, host, rdtype)
        except dns.resolver.NoAnswer:
            continue
        except TemporaryDNSError as e:
            temporary = e
            continue
        secure = secure and _secure(answer)
        found.extend(r.address for r in answer if r.address not in found)
    if not found and temporary is not None:
        raise temporary
    return found, secure and bool(found)


def make_resolver(nameservers, *, timeout: float = 5.0, lifetime: float = 15.0,
                  dnssec: bool = False) -> dns.resolver.Resolver:
    """A dnspython Resolver using `nameservers`, (address, port) pairs as config.py
    parses them ([] = the system's resolv.conf); with dnssec, queries ask for the
    AD bit (see the module doc)."""
    if nameservers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(address, port)
                                for address, port in nameservers]
    else:
        resolver = dns.resolver.Resolver()
    resolver.timeout = timeout                  # per nameserver try
    resolver.lifetime = lifetime                # whole query; beyond it we defer
    resolver.cache = dns.resolver.LRUCache()    # a queue run asks about the same domains
    if dnssec:
        resolver.use_edns(0, dns.flags.DO, 1232)
        resolver.flags = dns.flags.RD | dns.flags.AD
    return resolver
