"""MTA-STS (RFC 8461): a recipient domain's published TLS policy, found, fetched,
parsed and cached.

Owns policy discovery and the policy itself; delivery.py applies it to MX hosts
(tls_policy.py says how):

- Discovery (RFC 8461 3.1): the TXT records at ``_mta-sts.<domain>``; exactly one of
  them must start with ``v=STSv1`` and carry ``id=<1-32 alphanumerics>``, or the
  domain has no policy.
- Fetch (3.3): ``https://mta-sts.<domain>/.well-known/mta-sts.txt`` over HTTPS with
  the certificate verified for that name, HTTP 200 with text/plain only (a redirect
  is a failure), at most MAX_POLICY bytes, within `timeout` seconds in all.
- Parse (3.2): ``version: STSv1``, ``mode: enforce|testing|none``, ``max_age``
  (seconds, capped at one year), ``mx`` patterns (``*.example.net`` matches exactly
  one more leftmost label, 4.1); unknown keys are ignored.
- Cache (5.1): by domain, in memory and as JSON under the cache directory (normally
  ``<data_dir>/mta-sts/``). A cached policy is used until max_age runs out while the
  TXT id is unchanged, when the TXT record is gone or its lookup fails, and when a
  refetch fails; a new id is fetched at once. A failed fetch is not tried again for
  RETRY_FETCH seconds (one dead web server must not cost every delivery a timeout).

Seams for tests, never the internet: Fetcher(resolve=host -> (ip, port), cafile or
cadata = the test CA); PolicyCache takes the dnspython-shaped resolver and a clock.
"""
from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import ssl
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import dns.resolver

from clevermail.durable import atomic_write
from clevermail.relay.mx import DNSError, TemporaryDNSError, query, resolve_addresses

__all__ = ["MAX_POLICY", "FetchError", "Fetcher", "Policy", "PolicyCache", "PolicyError",
           "mx_matches", "parse_policy", "parse_txt"]

MAX_POLICY = 64 * 1024          # RFC 8461 3.3 suggests 64 KiB
MAX_AGE_CAP = 31557600          # RFC 8461 3.2: at most one year
RETRY_FETCH = 300.0
_ID = re.compile(r"[A-Za-z0-9]{1,32}\Z")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PATTERN = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})+\Z")
_SAFE_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\Z")


class PolicyError(ValueError):
    """A TXT record or policy file that does not follow RFC 8461."""


class FetchError(Exception):
    """The policy file could not be fetched (HTTP, TLS, size, time)."""


@dataclass(frozen=True)
class Policy:
    id: str
    mode: str                   # enforce | testing | none
    mx: tuple[str, ...]
    max_age: int
    fetched: float

    def expired(self, now: float) -> bool:
        return now >= self.fetched + self.max_age

    def allows(self, host: str) -> bool:
        """The MX host is one the policy names (RFC 8461 4.1)."""
        return any(mx_matches(p, host) for p in self.mx)


def mx_matches(pattern: str, host: str) -> bool:
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        first, _, rest = host.partition(".")
        return bool(first) and rest == pattern[2:]
    return host == pattern


def parse_txt(records: list[str]) -> str | None:
    """The policy id of the ``_mta-sts`` TXT records (each record's strings joined),
    or None when the domain has no (valid) policy record."""
    sts = [r for r in records if r.startswith("v=STSv1")]
    if len(sts) != 1:
        return None
    fields = {}
    for part in sts[0].split(";"):
        key, eq, value = part.strip().partition("=")
        if not part.strip():
            continue
        if not eq:
            return None
        fields.setdefault(key.strip(), value.strip())
    if fields.get("v") != "STSv1" or not _ID.match(fields.get("id", "")):
        return None
    return fields["id"]


def parse_policy(text: str) -> tuple[str, tuple[str, ...], int]:
    """(mode, mx patterns, max_age) of a policy file; PolicyError if invalid."""
    fields: dict[str, str] = {}
    mx: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        key, colon, value = line.partition(":")
        if not colon:
            raise PolicyError(f"policy line without ':': {line[:60]!r}")
        key, value = key.strip().lower(), value.strip()
        if key == "mx":
            pattern = value.lower().rstrip(".")
            if not _PATTERN.match(pattern):
                raise PolicyError(f"bad mx pattern {value[:60]!r}")
            mx.append(pattern)
        else:
            fields.setdefault(key, value)        # the first of a repeated key counts
    if fields.get("version") != "STSv1":
        raise PolicyError("version is not STSv1")
    mode = fields.get("mode", "").lower()
    if mode not in ("enforce", "testing", "none"):
        raise PolicyError(f"bad mode {fields.get('mode')!r}")
    max_age = fields.get("max_age", "")
    if not (max_age.isascii() and max_age.isdigit() and len(max_age) <= 10):
        raise PolicyError(f"bad max_age {max_age[:20]!r}")
    if mode != "none" and not mx:
        raise PolicyError("no mx pattern")
    return mode, tuple(mx), min(int(max_age), MAX_AGE_CAP)


class _Connection(http.client.HTTPSConnection):
    """HTTPS to `host` (SNI, certificate name, Host header) at a chosen address."""

    def __init__(self, host: str, address: str, port: int, context: ssl.SSLContext, timeout: float):
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        try:
            self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


class Fetcher:
    """Fetches policy files. resolve(host) -> (address, port): where mta-sts.<domain>
    is reached (default: its first address from `resolver`, at `port`, 443 as RFC
    8461 3.3 says; another port only for a test's server on loopback); cafile/cadata:
    the trust anchors (default: the system's)."""

    def __init__(self, resolve: Callable[[str], tuple[str, int]] | None = None, *,
                 resolver=None, cafile: str | None = None, cadata=None,
                 timeout: float = 30.0, max_size: int = MAX_POLICY, port: int = 443):
        self._resolve, self.resolver, self.port = resolve, resolver, port
        self.context = ssl.create_default_context(cafile=cafile, cadata=cadata)
        self.timeout, self.max_size = timeout, max_size

    def _where(self, host: str) -> tuple[str, int]:
        if self._resolve is not None:
            return self._resolve(host)
        if self.resolver is None:
            raise FetchError("no resolver to find the policy host")
        try:
            addresses = resolve_addresses(host, self.resolver)
        except DNSError as e:
            raise FetchError(str(e)) from e
        if not addresses:
            raise FetchError(f"{host} has no address")
        return addresses[0], self.port

    def fetch(self, domain: str) -> str:
        host = f"mta-sts.{domain}"
        deadline = time.monotonic() + self.timeout
        try:
            address, port = self._where(host)
            conn = _Connection(host, address, port, self.context, self.timeout)
            try:
                conn.request("GET", "/.well-known/mta-sts.txt",
                             headers={"User-Agent": "CleverMail MTA-STS", "Accept": "text/plain"})
                resp = conn.getresponse()
                if resp.status != 200:        # 3xx too: RFC 8461 3.3 forbids following
                    raise FetchError(f"{host}: HTTP {resp.status} {resp.reason}")
                ctype = (resp.getheader("Content-Type") or "").split(";")[0].strip().lower()
                if ctype != "text/plain":
                    raise FetchError(f"{host}: Content-Type {ctype or 'missing'}, not text/plain")
                body = b""
                while True:
                    if time.monotonic() > deadline:
                        raise FetchError(f"{host}: too slow (more than {self.timeout}s)")
                    chunk = resp.read(min(8192, self.max_size + 1 - len(body)))
                    if not chunk:
                        break
                    body += chunk
                    if len(body) > self.max_size:
                        raise FetchError(f"{host}: policy larger than {self.max_size} bytes")
            finally:
                conn.close()
        except FetchError:
            raise
        except (OSError, ssl.SSLError, http.client.HTTPException, ValueError) as e:
            raise FetchError(f"{host}: {e}") from e
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise FetchError(f"{host}: the policy is not UTF-8") from e


class PolicyCache:
    """The policies of recipient domains (see the module doc); get() is the one call."""

    def __init__(self, resolver, cache_dir: str | Path | None, fetcher: Fetcher | None = None, *,
                 clock: Callable[[], float] = time.time, log: logging.Logger | None = None):
        self.resolver = resolver
        self.dir = Path(cache_dir) if cache_dir else None
        self.fetcher = fetcher or Fetcher(resolver=resolver)
        self.clock = clock
        self.log = log or logging.getLogger("clevermail.relay")
        self._lock = threading.Lock()
        self._mem: dict[str, Policy] = {}
        self._failed: dict[str, tuple[str, float]] = {}     # domain -> (id, retry after)

    def get(self, domain: str) -> Policy | None:
        """The domain's policy in force (mode none included), or None."""
        domain = domain.lower().rstrip(".")
        if not domain or domain.startswith("["):
            return None
        now = self.clock()
        cached = self._cached(domain, now)
        try:
            strings, _ = query(self.resolver, f"_mta-sts.{domain}", "TXT")
            txt_id = parse_txt([b"".join(r.strings).decode("ascii", "replace") for r in strings])
        except dns.resolver.NoAnswer:
            txt_id = None
        except TemporaryDNSError as e:
            self.log.info("-: MTA-STS %s: TXT lookup failed (%s); %s", domain, e,
                          "using the cached policy" if cached else "no policy")
            return cached
        except DNSError:
            txt_id = None
        if txt_id is None or (cached is not None and cached.id == txt_id):
            return cached           # RFC 8461 5.1: a cached policy outlives its TXT record
        with self._lock:
            failed = self._failed.get(domain)
        if failed is not None and failed[0] == txt_id and now < failed[1]:
            return cached
        try:
            mode, mx, max_age = parse_policy(self.fetcher.fetch(domain))
        except (FetchError, PolicyError) as e:
            with self._lock:
                self._failed[domain] = (txt_id, now + RETRY_FETCH)
            self.log.warning("-: MTA-STS %s: policy id %s not fetched (%s); %s", domain, txt_id, e,
                             "using the cached policy" if cached else "no policy")
            return cached
        policy = Policy(txt_id, mode, mx, max_age, now)
        self._store(domain, policy)
        self.log.info("-: MTA-STS %s: policy id %s, mode %s, mx %s, max_age %d", domain,
                      txt_id, mode, ",".join(mx) or "-", max_age)
        return policy

    # -- the cache ------------------------------------------------------------------
    def _path(self, domain: str) -> Path | None:
        if self.dir is None or not _SAFE_NAME.match(domain):
            return None
        return self.dir / f"{domain}.json"

    def _cached(self, domain: str, now: float) -> Policy | None:
        with self._lock:
            policy = self._mem.get(domain)
        if policy is None:
            path = self._path(domain)
            if path is not None:
                try:
                    d = json.loads(path.read_bytes())
                    policy = Policy(str(d["id"]), str(d["mode"]), tuple(map(str, d["mx"])),
                                    int(d["max_age"]), float(d["fetched"]))
                except FileNotFoundError:
                    policy = None
                except (OSError, ValueError, KeyError, TypeError) as e:
                    self.log.warning("-: MTA-STS %s: cached policy %s unreadable (%s)", domain, path, e)
                    policy = None
            if policy is not None:
                with self._lock:
                    self._mem[domain] = policy
        if policy is not None and policy.expired(now):
            return None
        return policy

    def _store(self, domain: str, policy: Policy) -> None:
        with self._lock:
            self._mem[domain] = policy
            self._failed.pop(domain, None)
        path = self._path(domain)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write(path, json.dumps(asdict(policy)).encode())
        except OSError as e:        # only a speed-up across restarts: log, go on
            self.log.warning("-: MTA-STS %s: cannot cache the policy in %s (%s)", domain, path, e)
