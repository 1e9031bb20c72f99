"""The DNS questions the inbound checks ask (SPF, DKIM, DMARC, ARC), over the one
resolver the server uses for everything (`[relay] nameservers`; its LRUCache keeps
answers for their TTL, so a warm cache costs no packet).

Answers come back in the three shapes the RFCs distinguish: records; nothing
(NXDOMAIN or no records of that type: a "void" lookup, RFC 7208 4.6.4); or
DnsTempError (timeout, SERVFAIL, unreachable servers), which the checks turn into
a temporary result rather than a verdict.
"""

import ipaddress

import dns.exception
import dns.name
import dns.resolver
import dns.reversename


class DnsTempError(Exception):
    """The question could not be answered now; asking again later may work."""


class DnsClient:
    def __init__(self, resolver):
        self.resolver = resolver            # dnspython-like: resolve(qname, rdtype)

    def _resolve(self, name, rdtype):
        try:
            return list(self.resolver.resolve(name, rdtype))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.YXDOMAIN):
            return []
        except (dns.name.NameTooLong, dns.name.LabelTooLong, dns.name.EmptyLabel,
                dns.name.BadEscape, UnicodeError, ValueError):
            return []                       # no such name can exist
        except (dns.resolver.NoNameservers, dns.exception.Timeout, dns.resolver.LifetimeTimeout,
                dns.resolver.NoResolverConfiguration, OSError) as exc:
            raise DnsTempError(f"{name} {rdtype}: {exc.__class__.__name__}") from None

    def txt(self, name):
        """Every TXT record of `name`, its strings joined (RFC 7208 3.3), as text."""
        return [b"".join(r.strings).decode("utf-8", "replace") for r in self._resolve(name, "TXT")]

    def addresses(self, name, version):
        """The A (version 4) or AAAA (version 6) addresses of `name`, as ip_address."""
        rdtype = "A" if version == 4 else "AAAA"
        return [ipaddress.ip_address(r.address) for r in self._resolve(name, rdtype)]

    def mx(self, name):
        """The MX host names of `name`, lowest preference first (no implicit MX)."""
        records = sorted(self._resolve(name, "MX"), key=lambda r: r.preference)
        return [r.exchange.to_text(omit_final_dot=True) for r in records]

    def ptr(self, ip):
        """The PTR names of an address."""
        name = dns.reversename.from_address(str(ip))
        return [r.target.to_text(omit_final_dot=True) for r in self._resolve(name, "PTR")]

    def dkim_txt(self, name, timeout=5):
        """dkimpy's dnsfunc: the first TXT record of `name` as bytes, or None; a
        temporary failure is dkimpy's DnsTimeoutError (a temperror, not a fail)."""
        import dkim

        name = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        try:
            records = self._resolve(name, "TXT")
        except DnsTempError as exc:
            raise dkim.DnsTimeoutError(str(exc)) from None
        return b"".join(records[0].strings) if records else None
