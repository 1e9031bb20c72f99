"""DNS block and allow lists for the client address (RFC 5782).

A client address is listed in a zone when <reversed address>.<zone> has an A record
(IPv4: 4.3.2.1.zone for 1.2.3.4; IPv6: the 32 nibbles reversed).  The first allow
list (DNSWL) that lists the client wins over every block list; a block list's TXT
record, when it has one, is the reason given in the 554 5.7.1 reply (as Postfix's
reject_rbl_client does).  Answers in 127.0.0.0/8 only count: anything else is a zone
misbehaving (RFC 5782 2.1), and 127.255.255.252-255 are the error codes some lists
return to resolvers they refuse (open resolvers, too many queries), never a listing.
DNS trouble lists nobody: a block list must not stop mail when it is down.
"""

import ipaddress
from dataclasses import dataclass

from .dnsclient import DnsTempError

_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
_ERROR_CODES = {ipaddress.ip_address(f"127.255.255.{n}") for n in range(252, 256)}


def query_name(ip, zone):
    ip = ipaddress.ip_address(ip)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.version == 4:
        reversed_ = ".".join(reversed(str(ip).split(".")))
    else:
        reversed_ = ".".join(reversed(ip.exploded.replace(":", "")))
    return f"{reversed_}.{zone.strip('.')}"


@dataclass(frozen=True)
class Listing:
    zone: str
    reason: str


class DNSLists:
    def __init__(self, dns, block=(), allow=()):
        self.dns = dns
        self.block = tuple(block)
        self.allow = tuple(allow)

    def _listed(self, ip, zone):
        name = query_name(ip, zone)
        try:
            answers = self.dns.addresses(name, 4)
        except DnsTempError:
            return False
        return any(a in _LOOPBACK and a not in _ERROR_CODES for a in answers)

    def check(self, ip):
        """The Listing that refuses `ip`, or None (allowed, or on no block list)."""
        if any(self._listed(ip, zone) for zone in self.allow):
            return None
        for zone in self.block:
            if self._listed(ip, zone):
                try:
                    texts = self.dns.txt(query_name(ip, zone))
                except DnsTempError:
                    texts = []
                reason = texts[0] if texts else f"listed by {zone}"
                return Listing(zone, reason[:200])
        return None
