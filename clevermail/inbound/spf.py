"""SPF, RFC 7208: check_host() for the MAIL FROM and HELO identities.

Everything of section 4 and 5 that decides a result: record selection (exactly one
"v=spf1" TXT record, 4.5), the mechanisms all, include, a, mx, ptr, ip4, ip6, exists
and the modifiers redirect and exp (exp is parsed, not fetched: the explanation is
for the sender's 5xx, which we phrase ourselves), qualifiers, CIDR lengths, macros
(section 7, letters s l o d i p h v with digits, reversal and delimiters; %{p} is
"unknown", as 7.3 allows, to spare the PTR lookups), and the processing limits of
4.6.4: at most 10 DNS-querying terms per evaluation, 10 MX or PTR names per term, 2
void lookups; beyond them permerror.  DNS trouble is temperror.

Results are kept (SPFChecker's cache) until the first DNS answer the evaluation read
expires: check_host is a function of the client address, the domain, the sender's
local part, the HELO name and those answers, so a result found again is the same
result.  An evaluation that expanded no macro reading the local part or the HELO name
(%{s}, %{l}, %{h}) is kept per (address, domain) for every sender of the domain; one
that did, per (address, domain, local part, HELO name).  temperror is never kept.

Pure over a DnsClient (dnsclient.py); no I/O of its own.
"""

import functools
import ipaddress
import re
import urllib.parse
from dataclasses import dataclass

from .dnsclient import DnsTempError

MAX_DNS_TERMS = 10
MAX_VOID_LOOKUPS = 2
MAX_NAMES = 10              # MX or PTR names one term looks at
NO_DNS_TTL = 60.0           # seconds a result that read no DNS answer is kept (not a domain)
MAX_RESULTS = 10000         # results kept; the cache is cleared beyond this (bounded memory)

RESULTS = ("pass", "fail", "softfail", "neutral", "none", "permerror", "temperror")
_QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
_MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
_MACRO = re.compile(r"%\{([slodiphvSLODIPHV])(\d*)(r?)([.\-+,/_=]*)\}|%%|%_|%-|%")
_DOMAIN_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


@functools.lru_cache(maxsize=4096)
def _network(text):
    """ipaddress.ip_network(text, strict=False), parsed once: the same records' ip4 and
    ip6 terms are evaluated for every message of a sender (ValueError is not kept)."""
    return ipaddress.ip_network(text, strict=False)


@functools.lru_cache(maxsize=4096)
def _parse_term(term, domain):
    """(qualifier, mechanism, argument, cidr) of one directive, or PermError (not
    kept); kept per (term, domain): a sender's record is evaluated for every message."""
    qualifier = "+"
    if term[:1] in _QUALIFIERS:
        qualifier, term = term[0], term[1:]
    match = re.match(r"^([A-Za-z0-9]+)(?::([^/]+))?((?:/\d+)?(?://\d+)?)$", term)
    if not match or match.group(1).lower() not in _MECHANISMS:
        raise PermError(f"{domain}: unknown term {term!r}")
    mechanism, arg, cidr = match.group(1).lower(), match.group(2), match.group(3)
    if mechanism in ("include", "exists") and not arg:
        raise PermError(f"{domain}: {mechanism} needs a domain")
    if mechanism in ("ip4", "ip6") and not arg:
        raise PermError(f"{domain}: {mechanism} needs an address")
    if mechanism == "all" and (arg or cidr):
        raise PermError(f"{domain}: all takes no argument")
    return qualifier, mechanism, arg, cidr


class PermError(Exception):
    """The published policy cannot be evaluated (RFC 7208 2.6.7)."""


@dataclass(frozen=True)
class SPFResult:
    result: str                 # one of RESULTS
    domain: str                 # the domain whose policy was evaluated
    reason: str = ""            # what matched or what went wrong (for the log and A-R)


def valid_domain(domain):
    """RFC 7208 4.3: a fully qualified domain of valid labels."""
    labels = domain.rstrip(".").split(".")
    return (len(labels) > 1 and len(domain) <= 253
            and all(_DOMAIN_LABEL.match(label) for label in labels))


class SPFChecker:
    def __init__(self, dns):
        self.dns = dns                  # a DnsClient; its clock dates the kept results
        self._results = {}              # (ip, domain[, local, helo]) -> (expires, SPFResult)

    def check(self, ip, sender, helo):
        """check_host() for one identity: `sender` (MAIL FROM, maybe empty) and
        `helo`; with a null sender the HELO identity is checked as postmaster@helo
        (RFC 7208 2.4)."""
        if not sender:
            sender = f"postmaster@{helo}"
        local, _, domain = sender.rpartition("@")
        if not local:
            local = "postmaster"
        now = self.dns.clock()
        for key in ((ip, domain), (ip, domain, local, helo)):
            hit = self._results.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        address = ipaddress.ip_address(ip)
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        ctx = _Evaluation(self.dns, address, local, domain, helo)
        try:
            result, reason = ctx.check_host(domain, depth=0)
            outcome = SPFResult(result, domain, reason)
        except PermError as exc:
            outcome = SPFResult("permerror", domain, str(exc))
        except DnsTempError as exc:
            return SPFResult("temperror", domain, str(exc))
        if len(self._results) >= MAX_RESULTS:
            self._results.clear()
        key = (ip, domain, local, helo) if ctx.read_sender else (ip, domain)
        self._results[key] = (min(ctx.until, default=now + NO_DNS_TTL), outcome)
        return outcome


class _Evaluation:
    """One check_host() with its shared limits (they count across include and redirect)."""

    def __init__(self, dns, ip, local, sender_domain, helo):
        self.dns, self.ip = dns, ip
        self.local, self.sender_domain, self.helo = local, sender_domain, helo
        self.dns_terms = 0
        self.void = 0
        self.until = []             # expiry of every DNS answer read
        self.read_sender = False    # a macro read the local part or the HELO name

    # -- the record ---------------------------------------------------------------------
    def check_host(self, domain, depth):
        if not valid_domain(domain):
            return "none", f"{domain!r} is no domain"
        records = [r for r in self.dns.txt(domain, self.until)
                   if r[:6].lower() == "v=spf1" and (len(r) == 6 or r[6] == " ")]
        if not records:
            return "none", f"no SPF record at {domain}"
        if len(records) > 1:
            raise PermError(f"{domain} has {len(records)} SPF records")
        return self._evaluate(records[0], domain, depth)

    def _evaluate(self, record, domain, depth):
        directives, redirect = [], None
        modifiers = set()
        for term in record.split()[1:]:
            name, eq, value = term.partition("=")
            if eq and re.match(r"^[A-Za-z][A-Za-z0-9_.-]*$", name):
                name = name.lower()
                if name in ("redirect", "exp"):
                    if name in modifiers:
                        raise PermError(f"{domain}: {name}= given twice")
                    modifiers.add(name)
                    if name == "redirect":
                        redirect = value
                    self._expand(value, domain)         # a bad macro is a permerror
                continue                                # unknown modifiers are ignored
            directives.append(_parse_term(term, domain))
        for qualifier, mechanism, arg, cidr in directives:
            if self._matches(mechanism, arg, cidr, domain, depth):
                return _QUALIFIERS[qualifier], f"{qualifier}{mechanism} matched at {domain}"
        if redirect is not None:
            self._count_dns_term()
            target = self._expand(redirect, domain)
            result, reason = self.check_host(target, depth + 1)
            if result == "none":
                raise PermError(f"{domain}: redirect to {target}, which has no SPF record")
            return result, reason
        return "neutral", f"nothing matched at {domain}"

    # -- the mechanisms -------------------------------------------------------------------
    def _matches(self, mechanism, arg, cidr, domain, depth):
        if mechanism == "all":
            return True
        if mechanism in ("ip4", "ip6"):
            return self._ip_match(mechanism, arg + (cidr or ""), domain)
        self._count_dns_term()
        target = self._expand(arg, domain) if arg else domain
        if mechanism == "include":
            result, _ = self.check_host(target, depth + 1)
            if result in ("none", "permerror"):
                raise PermError(f"{domain}: include:{target} has no usable SPF record")
            return result == "pass"
        if mechanism == "exists":
            return bool(self._void_counted(self.dns.addresses(target, 4, self.until)))
        v4, v6 = self._cidr(cidr, domain)
        if mechanism == "a":
            return self._in_addresses(target, v4, v6)
        if mechanism == "mx":
            names = self._void_counted(self.dns.mx(target, self.until))
            if len(names) > MAX_NAMES:
                raise PermError(f"{target} has more than {MAX_NAMES} MX records")
            return any(self._in_addresses(name, v4, v6) for name in names)
        if mechanism == "ptr":
            return self._ptr_match(target)
        raise PermError(f"unknown mechanism {mechanism}")       # _parse let nothing else by

    def _ip_match(self, mechanism, text, domain):
        try:
            network = _network(text)
        except ValueError:
            raise PermError(f"{domain}: bad {mechanism} network {text!r}") from None
        if (mechanism == "ip4") != (network.version == 4):
            raise PermError(f"{domain}: {mechanism}:{text} is the wrong address family")
        return self.ip.version == network.version and self.ip in network

    def _cidr(self, cidr, domain):
        v4, v6 = 32, 128
        if cidr:
            parts = cidr.split("//")
            if parts[0]:
                v4 = int(parts[0].lstrip("/"))
            if len(parts) > 1:
                v6 = int(parts[1])
        if v4 > 32 or v6 > 128:
            raise PermError(f"{domain}: bad CIDR length {cidr}")
        return v4, v6

    def _in_addresses(self, name, v4, v6):
        prefix = v4 if self.ip.version == 4 else v6
        addresses = self._void_counted(self.dns.addresses(name, self.ip.version, self.until))
        return any(self.ip in ipaddress.ip_network(f"{a}/{prefix}", strict=False) for a in addresses)

    def _ptr_match(self, target):
        names = self.dns.ptr(self.ip, self.until)[:MAX_NAMES]
        target = target.lower().rstrip(".")
        for name in names:
            name = name.lower().rstrip(".")
            if name == target or name.endswith("." + target):
                if self.ip in self.dns.addresses(name, self.ip.version, self.until):
                    return True
        return False

    def _count_dns_term(self):
        self.dns_terms += 1
        if self.dns_terms > MAX_DNS_TERMS:
            raise PermError(f"more than {MAX_DNS_TERMS} DNS-querying terms")

    def _void_counted(self, answer):
        if not answer:
            self.void += 1
            if self.void > MAX_VOID_LOOKUPS:
                raise PermError(f"more than {MAX_VOID_LOOKUPS} void lookups")
        return answer

    # -- macros (section 7) -----------------------------------------------------------------
    def _expand(self, spec, domain):
        def one(match):
            token = match.group(0)
            if token == "%%":
                return "%"
            if token == "%_":
                return " "
            if token == "%-":
                return "%20"
            if token == "%":
                raise PermError(f"bad macro in {spec!r}")
            letter, digits, reverse, delimiters = match.groups()
            value = self._macro_value(letter.lower(), domain)
            parts = re.split("[" + re.escape(delimiters or ".") + "]", value)
            if reverse:
                parts.reverse()
            if digits:
                if int(digits) == 0:
                    raise PermError(f"bad macro in {spec!r}")
                parts = parts[-int(digits):]
            out = ".".join(parts)
            return urllib.parse.quote(out, safe="") if letter.isupper() else out

        text = _MACRO.sub(one, spec)
        while len(text) > 253 and "." in text:        # RFC 7208 7.3: drop left labels
            text = text.split(".", 1)[1]
        return text

    def _macro_value(self, letter, domain):
        if letter in "slh":
            self.read_sender = True
        if letter == "s":
            return f"{self.local}@{self.sender_domain}"
        if letter == "l":
            return self.local
        if letter == "o":
            return self.sender_domain
        if letter == "d":
            return domain
        if letter == "i":
            if self.ip.version == 4:
                return str(self.ip)
            return ".".join(self.ip.exploded.replace(":", ""))
        if letter == "p":
            return "unknown"
        if letter == "v":
            return "in-addr" if self.ip.version == 4 else "ip6"
        return self.helo                                 # h
