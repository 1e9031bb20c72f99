"""The DNS records a mail domain served by this host should publish, as zone-file lines
with fully qualified names (the form `clevermail dkim` prints): MX (RFC 5321 5.1),
SPF (RFC 7208), DMARC (RFC 7489), TLS-RPT (RFC 8460), MTA-STS (RFC 8461), the host's
A/AAAA and the PTR its addresses need (FCrDNS).  Pure: names and addresses in, text out.
"""

import ipaddress

import dns.reversename

TTL = 3600          # as dkim/records.py: a fix takes effect the same day


def fqdn(name):
    return name.rstrip(".") + "."


def txt(name, text):
    return f'{fqdn(name)} {TTL} IN TXT "{text}"'


def mx_line(domain, hostname):
    return f"{fqdn(domain)} {TTL} IN MX 10 {fqdn(hostname)}"


def address_line(hostname, address):
    ip = ipaddress.ip_address(address)
    return f"{fqdn(hostname)} {TTL} IN {'A' if ip.version == 4 else 'AAAA'} {ip}"


def ptr_line(address, hostname):
    """The reverse record; it lives in the zone of whoever holds the address block
    (the hosting provider, usually), not in the domain's."""
    return f"{dns.reversename.from_address(str(address))} {TTL} IN PTR {fqdn(hostname)}"


def spf_record(hostname, mx_is_us, addresses=()):
    """'v=spf1 mx -all' when the domain's MX is this host, else 'a:<hostname>'; the
    addresses an operator named go in as ip4:/ip6: (no lookup needed for them)."""
    terms = ["mx" if mx_is_us else f"a:{hostname.rstrip('.')}"]
    for address in addresses:
        ip = ipaddress.ip_address(address)
        terms.append(f"ip{ip.version}:{ip}")
    return "v=spf1 " + " ".join(terms) + " -all"


def spf_line(domain, hostname, mx_is_us, addresses=()):
    return txt(domain, spf_record(hostname, mx_is_us, addresses))


def dmarc_line(domain):
    return txt(f"_dmarc.{domain}", f"v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}")


def tlsrpt_line(domain):
    return txt(f"_smtp._tls.{domain}", f"v=TLSRPTv1; rua=mailto:postmaster@{domain}")


def mta_sts_lines(domain, hostname, policy_id):
    """The TXT record and, as comments, the policy file it announces."""
    return [txt(f"_mta-sts.{domain}", f"v=STSv1; id={policy_id}"),
            f"; and serve https://mta-sts.{domain}/.well-known/mta-sts.txt (text/plain):",
            ";   version: STSv1",
            ";   mode: enforce",
            f";   mx: {hostname.rstrip('.')}",
            ";   max_age: 604800"]


def domain_records(domain, hostname, *, addresses=(), spf_ips=(), dkim_lines=(), policy_id="1"):
    """Everything `doctor --records DOMAIN` prints, the optional records last:
    `addresses` are the host's (A/AAAA and PTR lines), `spf_ips` the ones the
    operator named (--address), listed in SPF beside "mx"."""
    lines = [f"; mail for {domain}, served by {hostname}", mx_line(domain, hostname),
             spf_line(domain, hostname, True, spf_ips), *dkim_lines, dmarc_line(domain)]
    if addresses:
        lines.append("; the host (in its own zone) and the reverse records (at the address holder):")
        lines += [address_line(hostname, a) for a in addresses]
        lines += [ptr_line(a, hostname) for a in addresses]
    lines.append("; optional: TLS reports and MTA-STS")
    lines.append(tlsrpt_line(domain))
    lines += mta_sts_lines(domain, hostname, policy_id)
    return lines
