"""One delivery attempt of one message to one domain (or to the smarthost), via smtplib.

Owns the SMTP client dialogue (RFC 5321) and the classification of its outcome into
per-recipient results: 2xx delivered, 4xx deferred, 5xx failed.

- MX mode: hosts from mx.resolve_mx, addresses from mx.resolve_addresses; at most
  MAX_ADDRESSES connections per attempt. A failure that concerns the whole session
  (no connection, greeting, EHLO, STARTTLS, MAIL 4xx, DATA 4xx, dropped connection)
  moves the affected recipients on to the next address/host; per-recipient RCPT
  replies and 5xx to MAIL or DATA are final for this attempt. A 5xx greeting is
  skipped like a 4xx one (Postfix's smtp_skip_5xx_greeting), so it defers.
- EHLO with our hostname (HELO if EHLO is refused), SIZE (RFC 1870) sent and
  respected, BODY=8BITMIME (RFC 6152) for 8-bit bodies, SMTPUTF8 (RFC 6531) when an
  address needs it.
- TLS to MX hosts is opportunistic (RFC 3207; Postfix's "may" level): STARTTLS when
  offered, verified with the given context; if the handshake fails (a certificate
  that does not verify, or no common protocol) we reconnect and deliver in
  plaintext, logging a warning. A refused STARTTLS command continues in plaintext.
- Smarthost mode: one connection for all recipients; TLS "starttls" (required, never
  a fallback to plaintext: the password must not travel in clear), "implicit"
  (RFC 8314) or "none"; AUTH (RFC 4954) when a user is set. Any session failure,
  authentication included, defers: it is a configuration problem, mail is kept.

Seams: `Transport.connect(address, port, timeout) -> socket` (tests map addresses to
sinks on 127.0.0.1) and the injected resolver.
"""
from __future__ import annotations

import logging
import random
import re
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from typing import Callable

from clevermail.relay.mx import (PermanentDNSError, TemporaryDNSError, resolve_addresses,
                                 resolve_mx)

MAX_ADDRESSES = 10             # connections tried per domain and attempt
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")


def default_connect(address: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((address, port), timeout)


@dataclass(frozen=True)
class Result:
    code: int
    text: str
    remote: str | None = None
    retry: bool = False         # a session-level failure: another host may do better

    @property
    def state(self) -> str:
        if 200 <= self.code < 300:
            return "delivered"
        return "failed" if 500 <= self.code < 600 else "deferred"

    @property
    def reply(self) -> str:
        return f"{self.code} {self.text}"


def enhanced_status(reply: str) -> str | None:
    """The RFC 3463 code in a reply such as '550 5.1.1 no such user', if any."""
    parts = reply.split(None, 1)
    m = _ENHANCED.match(parts[1] if len(parts) == 2 and parts[0].isdigit() else reply)
    return m.group(0) if m else None


@dataclass
class Transport:
    """What every attempt shares; built once by the worker."""
    hostname: str
    resolver: object = None
    port: int = 25
    connect: Callable[[str, int, float], socket.socket] = default_connect
    tls_context: ssl.SSLContext | None = None
    timeout: float = 30.0             # connecting
    command_timeout: float = 300.0    # each reply; RFC 5321 4.5.3.2 suggests minutes
    rng: random.Random = field(default_factory=random.Random)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("clevermail.relay"))


class _SessionError(Exception):
    """The session failed as a whole (see module doc)."""

    def __init__(self, code: int, text: str):
        super().__init__(f"{code} {text}")
        self.code, self.text = code, text


class _TLSFailed(Exception):
    pass


class _Client(smtplib.SMTP):
    """smtplib.SMTP that connects through the Transport seam to a chosen address while
    naming the host by its name (SNI and certificate checks use the name)."""

    def __init__(self, t: Transport, address: str, server_name: str,
                 implicit: ssl.SSLContext | None = None):
        super().__init__(local_hostname=t.hostname, timeout=t.timeout)
        self._host = server_name            # smtplib uses it as server_hostname
        self._t, self._address, self._implicit = t, address, implicit

    def _get_socket(self, host, port, timeout):
        sock = self._t.connect(self._address, port, timeout)
        sock.settimeout(self._t.command_timeout)
        if self._implicit is not None:
            sock = self._implicit.wrap_socket(sock, server_hostname=self._host)
        return sock


def _text(msg) -> str:
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    return " ".join(str(msg).split())


def _cmd(client: _Client, cmd: str, args: str) -> tuple[int, str]:
    # putcmd/getreply instead of smtplib.mail/rcpt: quoteaddr() re-parses addresses
    # with email.utils and can mangle quoted local parts.
    client.putcmd(cmd, args)
    code, msg = client.getreply()
    return code, _text(msg)


def _hello(client: _Client) -> None:
    code, msg = client.ehlo()
    if not 200 <= code < 300:
        code, msg = client.helo()
        if not 200 <= code < 300:
            raise _SessionError(451, f"4.4.0 HELO refused: {code} {_text(msg)}")


def _session(t: Transport, client: _Client, port: int, sender: str, rcpts: list[str],
             data: bytes, results: dict[str, Result], *, tls: str,
             auth: tuple[str, str] | None, remote: str) -> None:
    """One SMTP transaction, filling `results` as replies come in (so that a lost
    connection keeps the per-recipient answers already given). tls: 'may',
    'require' or 'none'."""
    try:
        code, msg = client.connect(client._host, port)
    except (OSError, smtplib.SMTPException) as e:
        raise _SessionError(451, f"4.4.1 connection to {remote} failed: {e}") from e
    if code != 220:
        raise _SessionError(451, f"4.4.0 {remote} greeted with: {code} {_text(msg)}")
    _hello(client)
    if tls in ("may", "require") and client.has_extn("starttls"):
        try:
            code, msg = client.starttls(context=t.tls_context or ssl.create_default_context())
        except (ssl.SSLError, ssl.CertificateError, OSError) as e:
            if tls == "may":
                raise _TLSFailed(str(e)) from e
            raise _SessionError(451, f"4.7.0 TLS with {remote} failed: {e}") from e
        if code == 220:
            _hello(client)
        elif tls == "require":
            raise _SessionError(451, f"4.7.0 {remote} refused STARTTLS: {code} {_text(msg)}")
    elif tls == "require":
        raise _SessionError(451, f"4.7.0 {remote} does not offer STARTTLS")
    if auth is not None:
        try:
            client.login(*auth)
        except smtplib.SMTPAuthenticationError as e:
            raise _SessionError(451, f"4.7.0 authentication to {remote} failed: "
                                     f"{e.smtp_code} {_text(e.smtp_error)}") from e
        except smtplib.SMTPException as e:   # no AUTH offered, no usable mechanism
            raise _SessionError(451, f"4.7.0 authentication to {remote} impossible: {e}") from e

    def all_(code: int, text: str) -> None:
        results.update({r: Result(code, text, remote) for r in rcpts})

    opts = []
    if client.has_extn("size"):
        limit = client.esmtp_features["size"].strip()
        if limit.isdigit() and 0 < int(limit) < len(data):
            return all_(552, f"5.3.4 message size {len(data)} exceeds the limit {limit} of {remote}")
        opts.append(f"SIZE={len(data)}")
    if client.has_extn("8bitmime") and not data.isascii():
        opts.append("BODY=8BITMIME")
    if not all(a.isascii() for a in [sender, *rcpts]):
        if not client.has_extn("smtputf8"):
            return all_(553, f"5.6.7 {remote} does not support SMTPUTF8 addresses")
        opts.append("SMTPUTF8")
        client.command_encoding = "utf-8"
    code, text = _cmd(client, "mail", f"FROM:<{sender}>" + "".join(" " + o for o in opts))
    if not 200 <= code < 300:
        if 500 <= code < 600:
            return all_(code, text)
        raise _SessionError(code if 400 <= code < 500 else 451, text)
    accepted = []
    for rcpt in rcpts:
        code, text = _cmd(client, "rcpt", f"TO:<{rcpt}>")
        if 200 <= code < 300:
            accepted.append(rcpt)
        else:
            results[rcpt] = Result(code if 400 <= code < 600 else 451, text, remote)
    if not accepted:
        return _quit(client)
    try:
        code, msg = client.data(data)
    except smtplib.SMTPDataError as e:                 # DATA itself refused
        code, msg = e.smtp_code, e.smtp_error
    text = _text(msg)
    if 400 <= code < 500 or not 200 <= code < 600:
        for rcpt in accepted:
            results[rcpt] = Result(code if 400 <= code < 500 else 451, text, remote, retry=True)
    else:
        for rcpt in accepted:
            results[rcpt] = Result(code, text, remote)
    _quit(client)


def _quit(client: _Client) -> None:
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()


def _attempt(t: Transport, address: str, server_name: str, port: int, sender: str,
             rcpts: list[str], data: bytes, *, tls: str, auth=None, implicit=None,
             qid: str = "-") -> dict[str, Result]:
    """One connection (two if opportunistic TLS must fall back); session failures
    come back as retry=True results."""
    remote = f"{server_name}[{address}]:{port}"
    results: dict[str, Result] = {}
    failure = Result(451, f"4.7.0 TLS with {remote} failed", remote, retry=True)
    for mode in (tls, "none") if tls == "may" else (tls,):
        client = _Client(t, address, server_name, implicit)
        try:
            _session(t, client, port, sender, rcpts, data, results, tls=mode, auth=auth,
                     remote=remote)
            return results
        except _TLSFailed as e:
            t.log.warning("%s: STARTTLS with %s failed (%s); delivering without TLS",
                          qid, remote, e)
        except _SessionError as e:
            t.log.info("%s: %s: %s", qid, remote, e)
            failure = Result(e.code, e.text, remote, retry=True)
            break
        except (smtplib.SMTPException, OSError) as e:
            # Lost mid-dialogue; if it was after the final dot the message may have
            # arrived, so a retry may duplicate it (acceptable, a loss is not).
            t.log.info("%s: %s: connection lost: %s", qid, remote, e)
            failure = Result(451, f"4.4.2 connection to {remote} lost: {e}", remote, retry=True)
            break
        finally:
            client.close()
    # Recipients the session did not settle (all of them, or the accepted ones when
    # the connection died during DATA) share the session's failure.
    return {r: results[r] if r in results and not results[r].retry else failure
            for r in rcpts}


def _unsafe(address: str) -> bool:
    # The SMTP side validated these, but the queue is on disk: never let an address
    # break a command line (smtplib would raise ValueError on CR/LF anyway).
    return any(c in "<>\r\n" or ord(c) < 32 or ord(c) == 127 for c in address)


def _screen(sender: str, rcpts: list[str]) -> dict[str, Result]:
    if _unsafe(sender):
        return {r: Result(553, "5.1.7 bad sender address syntax") for r in rcpts}
    return {r: Result(553, "5.1.3 bad recipient address syntax") for r in rcpts if _unsafe(r)}


def deliver_mx(t: Transport, domain: str, sender: str, rcpts: list[str], data: bytes,
               qid: str = "-") -> dict[str, Result]:
    """Deliver to every recipient of `domain` through its MX hosts."""
    screened = _screen(sender, rcpts)
    if screened:
        good = [r for r in rcpts if r not in screened]
        return {**screened, **(deliver_mx(t, domain, sender, good, data, qid) if good else {})}
    try:
        hosts = resolve_mx(domain, t.resolver, t.rng)
    except PermanentDNSError as e:
        return {r: Result(550, f"5.1.2 cannot deliver to {domain}: {e}") for r in rcpts}
    except TemporaryDNSError as e:
        return {r: Result(451, f"4.4.3 {e}") for r in rcpts}
    results: dict[str, Result] = {}
    remaining = list(rcpts)
    last = Result(451, f"4.4.4 no address found for the MX hosts of {domain}")
    tried = 0
    for host in hosts:
        try:
            addresses = resolve_addresses(host, t.resolver)
        except (TemporaryDNSError, PermanentDNSError) as e:
            last = Result(451, f"4.4.3 MX host {host}: {e}")
            continue
        for address in addresses:
            if tried >= MAX_ADDRESSES:
                break
            tried += 1
            for rcpt, res in _attempt(t, address, host, t.port, sender, remaining, data,
                                      tls="may", qid=qid).items():
                results[rcpt] = res
            remaining = [r for r in remaining if results[r].retry]
            if not remaining:
                return results
        if tried >= MAX_ADDRESSES:
            break
    for rcpt in remaining:
        results.setdefault(rcpt, last)
    return results


def deliver_smarthost(t: Transport, sender: str, rcpts: list[str], data: bytes, *,
                      host: str, port: int = 587, tls: str = "starttls",
                      user: str | None = None, password: str | None = None,
                      qid: str = "-") -> dict[str, Result]:
    """Deliver every recipient through the smarthost, in one connection."""
    if tls not in ("starttls", "implicit", "none"):
        raise ValueError(f"smarthost TLS mode must be starttls, implicit or none, not {tls!r}")
    screened = _screen(sender, rcpts)
    if screened:
        good = [r for r in rcpts if r not in screened]
        return {**screened, **(deliver_smarthost(t, sender, good, data, host=host, port=port, tls=tls,
                                                 user=user, password=password, qid=qid)
                               if good else {})}
    implicit = (t.tls_context or ssl.create_default_context()) if tls == "implicit" else None
    auth = (user, password or "") if user else None
    return _attempt(t, host, host, port, sender, rcpts, data,
                    tls="require" if tls == "starttls" else "none", auth=auth,
                    implicit=implicit, qid=qid)
