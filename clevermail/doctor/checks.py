"""The checks of `clevermail doctor`: for the host (its name, its addresses, their
reverse DNS, its TLS certificate) and for each local domain (MX, SPF, DKIM, DMARC,
MTA-STS, TLS-RPT, postmaster@ and abuse@), each a Check: ok, warn or fail, what was
found, and the zone-file lines that fix it (records.py).

Every lookup goes through the DnsClient the caller gives (the server's resolver,
`[relay] nameservers`); a lookup that cannot be answered now is a warning, never a
verdict.  SPF is evaluated (inbound/spf.py check_host for each of the host's
addresses, as a receiver would), not pattern-matched.  The rest are seams too: the
DKIM keys (domain -> [(selector, record, zone line, state)]: the selectors that sign, and
the pending ones `clevermail dkim activate` would look up), whether an address is
deliverable, the MTA-STS policy fetch, the clock.
"""

import ipaddress
import time
from dataclasses import asdict, dataclass

from ..dkim.keys import SUFFIX
from ..dkim.records import same_key, tags
from ..inbound.dnsclient import DnsTempError
from ..inbound.spf import SPFChecker
from ..relay import mta_sts
from . import records

OK, WARN, FAIL = "ok", "warn", "fail"
SIGNS, PENDING = "signs", "pending"     # a DKIM selector's state (dkim.keys.KeyStore.state)
CERT_MIN_DAYS = 14          # a certificate that expires sooner is a warning


@dataclass(frozen=True)
class Check:
    scope: str              # the hostname or a domain
    name: str               # hostname, address, ptr, tls, mx, spf, dkim, dmarc, mta-sts, tls-rpt, postmaster, abuse
    status: str             # ok | warn | fail
    detail: str
    fix: tuple = ()         # zone-file lines to publish (';' lines are instructions)

    def to_json(self):
        return {**asdict(self), "fix": list(self.fix)}


def _names(hosts):
    return {h.lower().rstrip(".") for h in hosts}


class Doctor:
    def __init__(self, dns, hostname, domains, *, addresses=(), dkim=None, certificate="",
                 deliverable=None, mta_sts_fetch=None, clock=time.time):
        self.dns = dns                          # inbound.dnsclient.DnsClient
        self.hostname = hostname.lower().rstrip(".")
        self.domains = list(domains)
        self.given = [ipaddress.ip_address(a) for a in addresses]   # --address
        # domain -> [(selector, record, zone line, "signs" | "pending")]; None: signing off
        self.dkim = dkim
        self.certificate = certificate
        self.deliverable = deliverable          # address -> None, or why not
        self.mta_sts_fetch = mta_sts_fetch      # domain -> policy text, or mta_sts.FetchError
        self.clock = clock
        self.addresses = []                     # the host's, found by host_checks

    def run(self):
        """Every check: the host's first, then each domain's."""
        out = self.host_checks()
        for domain in self.domains:
            out += self.domain_checks(domain)
        return out

    def _guard(self, scope, name, check):
        try:
            return check()
        except DnsTempError as exc:
            return [Check(scope, name, WARN, f"cannot tell now: DNS lookup failed ({exc})")]

    # -- the host ---------------------------------------------------------------------
    def host_checks(self):
        h = self.hostname
        out = []
        if "." not in h or h == "localhost" or h.endswith(".localhost"):
            out.append(Check(h, "hostname", FAIL, f"'{h}' is no public name: set [server] hostname "
                                                  "to the name the MX record points at"))
        else:
            out.append(Check(h, "hostname", OK, f"{h} is a fully qualified name"))
        out += self._guard(h, "address", self._address_check)
        out += self._guard(h, "ptr", self._ptr_checks)
        out.append(self._tls_check())
        return out

    def host_addresses(self, name):
        return self.dns.addresses(name, 4) + self.dns.addresses(name, 6)

    def _address_check(self):
        h = self.hostname
        found = self.host_addresses(h)
        # the public addresses: the operator's word (--address), else the hostname's
        self.addresses = list(self.given) or found
        if not found:
            fix = tuple(records.address_line(h, a) for a in self.given) or (
                f"{records.fqdn(h)} {records.TTL} IN A <this server's public IPv4 address>",)
            return [Check(h, "address", FAIL, f"{h} has no A or AAAA record", fix)]
        missing = [a for a in self.given if a not in found]
        if missing:
            return [Check(h, "address", FAIL, f"{h} resolves to {', '.join(map(str, found))}, "
                                              f"not to {', '.join(map(str, missing))}",
                          tuple(records.address_line(h, a) for a in missing))]
        return [Check(h, "address", OK, f"{h} has {', '.join(map(str, found))}")]

    def _ptr_checks(self):
        h, out = self.hostname, []
        for ip in self.addresses:
            names = _names(self.dns.ptr(ip))
            if h not in names:
                out.append(Check(h, "ptr", FAIL,
                                 f"{ip} has reverse name {', '.join(sorted(names)) or '(none)'}, not {h}: "
                                 "receivers distrust a host without forward-confirmed reverse DNS",
                                 (records.ptr_line(ip, h),
                                  "; the reverse zone belongs to the address holder: ask your provider")))
            elif ip not in self.host_addresses(h):
                out.append(Check(h, "ptr", FAIL, f"{ip} names {h}, but {h} does not resolve to {ip}",
                                 (records.address_line(h, ip),)))
            else:
                out.append(Check(h, "ptr", OK, f"{ip} -> {h} -> {ip} (forward-confirmed)"))
        return out

    def _tls_check(self):
        h = self.hostname
        if not self.certificate:
            return Check(h, "tls", WARN, "no [tls] certificate: STARTTLS is not offered, mail "
                                         "to this server travels in clear")
        try:
            from cryptography import x509
            with open(self.certificate, "rb") as f:
                cert = x509.load_pem_x509_certificates(f.read())[0]
        except (OSError, ValueError, IndexError) as exc:
            return Check(h, "tls", FAIL, f"{self.certificate}: cannot read the certificate ({exc})")
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = san.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            names = []
        if not any(_covers(n, h) for n in names):
            return Check(h, "tls", FAIL, f"the certificate names {', '.join(names) or 'nothing'}, "
                                         f"not {h}: verifying senders (MTA-STS, DANE) will not deliver")
        days = (cert.not_valid_after_utc.timestamp() - self.clock()) / 86400
        if days < 0:
            return Check(h, "tls", FAIL, f"the certificate for {h} expired {-days:.0f} days ago")
        if days < CERT_MIN_DAYS:
            return Check(h, "tls", WARN, f"the certificate for {h} expires in {days:.1f} days: renew it")
        return Check(h, "tls", OK, f"the certificate covers {h}, valid for {days:.0f} more days")

    # -- a domain -----------------------------------------------------------------------
    def domain_checks(self, domain):
        out = []
        mx_is_us = []

        def mx():
            hosts = _names(self.dns.mx(domain))
            mx_is_us.append(self.hostname in hosts)
            if not hosts:
                return [Check(domain, "mx", FAIL, f"{domain} has no MX record",
                              (records.mx_line(domain, self.hostname),))]
            if self.hostname not in hosts:
                return [Check(domain, "mx", FAIL, f"MX names {', '.join(sorted(hosts))}, not {self.hostname}",
                              (records.mx_line(domain, self.hostname),))]
            return [Check(domain, "mx", OK, f"MX {self.hostname}")]
        out += self._guard(domain, "mx", mx)
        out += self._guard(domain, "spf", lambda: self._spf(domain, bool(mx_is_us and mx_is_us[0])))
        out += self._guard(domain, "dkim", lambda: self._dkim(domain))
        out += self._guard(domain, "dmarc", lambda: self._dmarc(domain))
        sts = []
        out += self._guard(domain, "mta-sts", lambda: self._mta_sts(domain, sts))
        out += self._guard(domain, "tls-rpt", lambda: self._tlsrpt(domain, bool(sts)))
        for role in ("postmaster", "abuse"):
            out.append(self._role(domain, role))
        return out

    def _spf(self, domain, mx_is_us):
        fix = (records.spf_line(domain, self.hostname, mx_is_us, self.given),)
        spf = [r for r in self.dns.txt(domain) if r.lower() == "v=spf1" or r.lower().startswith("v=spf1 ")]
        if not spf:
            return [Check(domain, "spf", FAIL, f"{domain} publishes no SPF record", fix)]
        if len(spf) > 1:
            return [Check(domain, "spf", FAIL, f"{domain} publishes {len(spf)} SPF records (a permerror "
                                               "for every receiver): keep one", fix)]
        if not self.addresses:
            return [Check(domain, "spf", WARN, f"'{spf[0]}': no address of this host known to evaluate it")]
        checker = SPFChecker(self.dns)
        bad = []
        for ip in self.addresses:
            result = checker.check(ip, f"postmaster@{domain}", self.hostname)
            if result.result != "pass":
                bad.append(f"{ip}: {result.result}" + (f" ({result.reason})" if result.reason else ""))
        if bad:
            return [Check(domain, "spf", FAIL, f"'{spf[0]}' does not authorise this host: "
                                               + "; ".join(bad), fix)]
        return [Check(domain, "spf", OK, f"'{spf[0]}' passes for {', '.join(map(str, self.addresses))}")]

    def _dkim(self, domain):
        if self.dkim is None:
            return [Check(domain, "dkim", OK, "signing is off ([dkim] sign = no)")]
        try:
            keys = self.dkim(domain)
        except Exception as exc:       # a key file that cannot be read: the operator's to fix
            return [Check(domain, "dkim", FAIL, f"the keys cannot be loaded: {exc}")]
        if not any(state == SIGNS for _, _, _, state in keys):
            return [Check(domain, "dkim", WARN, f"no DKIM key: mail is not signed "
                                                f"(clevermail dkim keygen {domain})")]
        pending = {selector for selector, _, _, state in keys if state == PENDING}
        out = []
        for selector, record, line, state in keys:
            name = f"{selector}._domainkey.{domain}"
            published = [r for r in self.dns.txt(name) if "p=" in r]
            ours = any(same_key(record, r) for r in published)
            kind = tags(record).get("k", "rsa")
            if state == PENDING:
                out.append(self._pending(domain, name, kind, line, published, ours,
                                         _activate_name(selector, pending)))
            elif not published:
                out.append(Check(domain, "dkim", FAIL, f"{name} has no key record", (line,)))
            elif not ours:
                out.append(Check(domain, "dkim", FAIL, f"{name} publishes another key than ours", (line,)))
            else:
                out.append(Check(domain, "dkim", OK, f"{name} matches our {kind} key"))
        return out

    @staticmethod
    def _pending(domain, name, kind, line, published, ours, activate):
        """A pending selector (made beside the keys that sign, not used until
        `clevermail dkim activate`, which looks for its record first): whether that
        look will succeed.  A warning at worst: the keys that sign go on signing."""
        command = f"clevermail dkim activate {domain} {activate}"
        if ours:
            return Check(domain, "dkim", OK, f"pending {name} is published with our {kind} key: "
                                             f"`{command}` switches signing to it")
        if published:
            return Check(domain, "dkim", WARN, f"pending {name} publishes another key than ours: "
                                               f"publish ours before `{command}`", (line,))
        return Check(domain, "dkim", WARN, f"pending {name} is not published yet: publish it, "
                                           f"then `{command}`", (line,))

    def _dmarc(self, domain):
        fix = (records.dmarc_line(domain),)
        found = [r for r in self.dns.txt(f"_dmarc.{domain}") if r.startswith("v=DMARC1")]
        if not found:
            return [Check(domain, "dmarc", FAIL, f"_dmarc.{domain} has no DMARC record", fix)]
        if len(found) > 1:
            return [Check(domain, "dmarc", FAIL, f"_dmarc.{domain} has {len(found)} DMARC records: keep one", fix)]
        policy = tags(found[0]).get("p", "").lower()
        if policy not in ("none", "quarantine", "reject"):
            return [Check(domain, "dmarc", FAIL, f"'{found[0]}' has no valid p= policy", fix)]
        if policy == "none":
            return [Check(domain, "dmarc", WARN, "p=none: receivers only report, they do not act on "
                                                 "forged mail", fix)]
        return [Check(domain, "dmarc", OK, f"p={policy}")]

    def _mta_sts(self, domain, published):
        records_ = [r for r in self.dns.txt(f"_mta-sts.{domain}") if r.startswith("v=STSv1")]
        if not records_:
            return [Check(domain, "mta-sts", OK, "not published (optional)")]
        published.append(True)
        policy_id = mta_sts.parse_txt(records_)
        fix = tuple(records.mta_sts_lines(domain, self.hostname, policy_id or "1"))
        if policy_id is None:
            return [Check(domain, "mta-sts", FAIL, f"_mta-sts.{domain}: '{records_[0]}' is not one "
                                                   "valid v=STSv1 record with an id", fix)]
        if self.mta_sts_fetch is None:
            return [Check(domain, "mta-sts", WARN, f"id {policy_id}; the policy file was not fetched")]
        try:
            mode, patterns, _ = mta_sts.parse_policy(self.mta_sts_fetch(domain))
        except mta_sts.FetchError as exc:
            return [Check(domain, "mta-sts", FAIL, f"the policy is announced but not served: {exc}", fix)]
        except mta_sts.PolicyError as exc:
            return [Check(domain, "mta-sts", FAIL, f"the policy file is invalid: {exc}", fix)]
        if mode != "none" and not any(mta_sts.mx_matches(p, self.hostname) for p in patterns):
            return [Check(domain, "mta-sts", FAIL, f"the policy ({mode}) names {', '.join(patterns)}, "
                                                   f"not {self.hostname}: senders will not deliver", fix)]
        if mode != "enforce":
            return [Check(domain, "mta-sts", WARN, f"mode {mode}: senders are not held to TLS")]
        return [Check(domain, "mta-sts", OK, f"enforce, id {policy_id}, names {self.hostname}")]

    def _tlsrpt(self, domain, sts_published):
        found = [r for r in self.dns.txt(f"_smtp._tls.{domain}") if r.startswith("v=TLSRPTv1")]
        fix = (records.tlsrpt_line(domain),)
        if not found:
            if sts_published:
                return [Check(domain, "tls-rpt", WARN, "MTA-STS without TLS reports: failures go unseen", fix)]
            return [Check(domain, "tls-rpt", OK, "not published (optional)")]
        rua = tags(found[0]).get("rua", "")
        if len(found) > 1 or not all(u.startswith(("mailto:", "https:")) for u in rua.split(",") if u) or not rua:
            return [Check(domain, "tls-rpt", FAIL, f"_smtp._tls.{domain}: '{found[0]}' needs one record "
                                                   "with rua=mailto:... or https:...", fix)]
        return [Check(domain, "tls-rpt", OK, f"reports to {rua}")]

    def _role(self, domain, role):
        address = f"{role}@{domain}"
        why = self.deliverable(address) if self.deliverable is not None else "not checked"
        if why is None:
            return Check(domain, role, OK, f"{address} is delivered")
        return Check(domain, role, FAIL, f"{address} is not deliverable ({why}): RFC 2142 "
                                         "expects it; add an account or an alias")


def _covers(pattern, host):
    """A certificate DNS name covers `host` (RFC 6125 6.4.3: '*' as the whole leftmost label)."""
    pattern = pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        first, _, rest = host.partition(".")
        return bool(first) and rest == pattern[2:]
    return pattern == host



def _activate_name(selector, pending):
    """What `clevermail dkim activate` takes for a pending selector: the keygen base
    when its pair (<base>r and <base>e) is pending together, else the selector."""
    suffixes = set(SUFFIX.values())
    base = selector[:-1]
    return base if selector[-1:] in suffixes and {base + x for x in suffixes} <= pending else selector
