"""The DNS questions the inbound checks ask (SPF, DKIM, DMARC, ARC), over the one
resolver the server uses for everything (`[relay] nameservers`; its LRUCache keeps
answers for their TTL, so a warm cache costs no packet).

Answers come back in the three shapes the RFCs distinguish: records; nothing
(NXDOMAIN or no records of that type: a "void" lookup, RFC 7208 4.6.4); or
DnsTempError (timeout, SERVFAIL, unreachable servers), which the checks turn into
a temporary result rather than a verdict.

The records are also kept here, already converted, until their TTL runs out
(negative answers for NEGATIVE_TTL): a message asks four to eight questions and the
same senders come again and again, and even a hit in dnspython's own cache costs a
resolution object and the conversion each time.  Errors are never kept.  A caller
that keeps something derived from answers (spf.py keeps results) passes `until`, a
list to which each answer's expiry time (on `clock`) is appended.
"""

import ipaddress
import time

import dns.exception
import dns.name
import dns.resolver
import dns.reversename


NEGATIVE_TTL = 60.0         # seconds a "no such record" answer is kept
MAX_ENTRIES = 10000         # the cache is cleared beyond this (bounded memory)


class DnsTempError(Exception):
    """The question could not be answered now; asking again later may work."""


class DnsClient:
    def __init__(self, resolver, clock=time.monotonic):
        self.resolver = resolver            # dnspython-like: resolve(qname, rdtype)
        self.clock = clock
        self._cache = {}                    # (name, rdtype, kind) -> (expires, value)

    def _cached(self, name, rdtype, kind, convert, until=None):
        """convert(records) of the answer to (name, rdtype), from the cache while its
        TTL lasts; its expiry appended to `until` when given.  Dict reads and writes
        are atomic: sessions share it without a lock."""
        key = (str(name).lower().rstrip("."), rdtype, kind)
        hit = self._cache.get(key)
        now = self.clock()
        if hit is None or hit[0] <= now:
            records, ttl = self._resolve_ttl(name, rdtype)
            hit = (now + ttl, convert(records))
            if len(self._cache) >= MAX_ENTRIES:
                self._cache.clear()
            self._cache[key] = hit
        if until is not None:
            until.append(hit[0])
        return hit[1]

    def _resolve_ttl(self, name, rdtype):
        try:
            answer = self.resolver.resolve(name, rdtype)
            records = list(answer)
            rrset = getattr(answer, "rrset", None)
            return records, float(rrset.ttl) if rrset is not None else NEGATIVE_TTL
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.YXDOMAIN):
            return [], NEGATIVE_TTL
        except (dns.name.NameTooLong, dns.name.LabelTooLong, dns.name.EmptyLabel,
                dns.name.BadEscape, UnicodeError, ValueError):
            return [], NEGATIVE_TTL         # no such name can exist
        except (dns.resolver.NoNameservers, dns.exception.Timeout, dns.resolver.LifetimeTimeout,
                dns.resolver.NoResolverConfiguration, OSError) as exc:
            raise DnsTempError(f"{name} {rdtype}: {exc.__class__.__name__}") from None

    def txt(self, name, until=None):
        """Every TXT record of `name`, its strings joined (RFC 7208 3.3), as text."""
        return self._cached(name, "TXT", "text", lambda records: [
            b"".join(r.strings).decode("utf-8", "replace") for r in records], until)

    def addresses(self, name, version, until=None):
        """The A (version 4) or AAAA (version 6) addresses of `name`, as ip_address."""
        rdtype = "A" if version == 4 else "AAAA"
        return self._cached(name, rdtype, "ip", lambda records: [
            ipaddress.ip_address(r.address) for r in records], until)

    def mx(self, name, until=None):
        """The MX host names of `name`, lowest preference first (no implicit MX)."""
        return self._cached(name, "MX", "names", lambda records: [
            r.exchange.to_text(omit_final_dot=True) for r in sorted(records, key=lambda r: r.preference)],
            until)

    def ptr(self, ip, until=None):
        """The PTR names of an address."""
        name = dns.reversename.from_address(str(ip))
        return self._cached(name, "PTR", "names", lambda records: [
            r.target.to_text(omit_final_dot=True) for r in records], until)

    def dkim_txt(self, name, timeout=5):
        """dkimpy's dnsfunc: the first TXT record of `name` as bytes, or None; a
        temporary failure is dkimpy's DnsTimeoutError (a temperror, not a fail)."""
        import dkim

        name = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        try:
            return self._cached(name, "TXT", "dkim", lambda records:
                                b"".join(records[0].strings) if records else None)
        except DnsTempError as exc:
            raise dkim.DnsTimeoutError(str(exc)) from None
