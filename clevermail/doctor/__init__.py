"""`clevermail doctor`: what this server's domains should publish in DNS and what is
wrong with what they publish, asked through the server's own resolver (`[relay]
nameservers`, as every lookup the server makes).

records.py   the zone-file lines a domain and the hostname should publish (pure)
checks.py    Doctor: the checks (hostname, addresses, FCrDNS, TLS certificate, MX,
             SPF evaluated, DKIM keys, DMARC, MTA-STS, TLS-RPT, postmaster@/abuse@),
             each a Check with ok/warn/fail, what was found and the line to publish

cli/doctor.py prints them (text or --json) and exits 1 when a check fails.
"""

from .checks import Check, Doctor

__all__ = ["Check", "Doctor"]
