"""RelaySettings: everything the relay worker is configured with, as one frozen value.

config.py builds it from the [relay] section (and [server] hostname); tests build it
directly.  It replaces RelayWorker's former keyword list, so "what can the relay be
set to do" is answered here, and a misspelt setting is a TypeError at construction.
"""
from __future__ import annotations

from dataclasses import dataclass, field

SMARTHOST_TLS = ("starttls", "implicit", "none")


@dataclass(frozen=True)
class RelaySettings:
    # Our name: EHLO to MX hosts and smarthost, Reporting-MTA of our reports.
    hostname: str
    # Seconds between queue scans when nothing kicks the worker.
    interval: float = 60.0
    # Port of MX hosts (25 on the internet; tests and staging point it at sinks).
    mx_port: int = 25
    # (address, port) of the DNS servers for MX lookups; () = the system's resolver.
    nameservers: tuple[tuple[str, int], ...] = ()
    # Seconds between attempts, the last repeating (jitter is added: schedule.py).
    retry_schedule: tuple[float, ...] = (300, 600, 1200, 2400, 4800, 9600, 14400)
    # Seconds after arrival when an undelivered recipient fails and is bounced.
    queue_lifetime: float = 5 * 86400
    # Seconds after arrival when the sender is warned of a delay; None = never.
    delay_warning: float | None = None
    # (host, port) that all remote mail goes through instead of MX hosts; None = MX.
    smarthost: tuple[str, int] | None = None
    smarthost_user: str | None = None
    smarthost_password: str | None = field(default=None, repr=False)   # never logged
    # How the smarthost connection is protected; never opportunistic.
    smarthost_tls: str = "starttls"
    # Delivery threads: one slow or dead domain does not hold up the others.
    concurrency: int = 4
    # Seconds to wait for an MX host or the smarthost to answer a connection.
    connect_timeout: float = 30.0
    # The resolver validates DNSSEC: its AD bit is trusted, so DANE (RFC 7672) applies.
    dnssec: bool = False
    # Apply recipient domains' MTA-STS policies (RFC 8461); cached in this directory
    # (None: in memory only).
    mta_sts: bool = True
    mta_sts_cache: str | None = None
    # PEM CA file that verifies the smarthost (None: the system CAs).
    smarthost_ca_file: str | None = None
    # SHA-256 digest of the smarthost's certificate, checked when set.
    smarthost_fingerprint: bytes | None = None

    def __post_init__(self):
        if self.smarthost_tls not in SMARTHOST_TLS:
            raise ValueError(f"smarthost_tls must be one of {SMARTHOST_TLS}: {self.smarthost_tls!r}")
        if not self.retry_schedule:
            raise ValueError("retry_schedule needs at least one delay")
        if self.smarthost_fingerprint is not None and len(self.smarthost_fingerprint) != 32:
            raise ValueError("smarthost_fingerprint must be a SHA-256 digest (32 bytes)")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1: {self.concurrency!r}")
        # frozen: normalise through object.__setattr__, once, here
        object.__setattr__(self, "retry_schedule", tuple(float(x) for x in self.retry_schedule))
        object.__setattr__(self, "nameservers", tuple(tuple(n) for n in self.nameservers))
        if self.smarthost is not None:
            object.__setattr__(self, "smarthost", tuple(self.smarthost))
