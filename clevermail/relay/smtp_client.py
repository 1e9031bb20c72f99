"""One SMTP client transaction to a next hop, over smtplib (RFC 5321): connect through
the Transport seam, EHLO (HELO if refused), STARTTLS as the TLS plan says (RFC 3207;
tls_policy.py judges each handshake), AUTH for a smarthost (RFC 4954), MAIL with SIZE
(RFC 1870), BODY=8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), REQUIRETLS (RFC 8689) and
DSN parameters (RFC 3461), RCPT per recipient, DATA, QUIT; each reply becomes a
per-recipient Result as it comes, so a lost connection keeps the answers given.

delivery.py decides which hosts and addresses to try and in which TLS "way"; this
module is one attempt at one of them.  A failure of the whole session is raised as
tls_policy.SessionFailure (or Reconnect: try again another way).
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

from clevermail.dsn import PassOn
from clevermail.relay import dane
from clevermail.relay.tls_policy import (ANCHOR, NO_TLS, NOVERIFY, PLAIN, HostPlan, Reconnect,
                                         SessionFailure, TLSInfo, after_verify_failure,
                                         check_handshake, requiretls_ok)

_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")


def default_connect(address: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((address, port), timeout)


def unverified_context() -> ssl.SSLContext:
    """Encryption without authentication (opportunistic TLS, DANE-EE): the
    certificate is judged after the handshake, if at all."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@dataclass(frozen=True)
class Result:
    code: int
    text: str
    remote: str | None = None
    retry: bool = False         # a session-level failure: another host may do better
    tls: TLSInfo | None = None  # what TLS the session had (None: no session)
    dsn: bool = False           # the next hop offered DSN and took our parameters
    expanded: bool = False      # delivered here to an alias or list of several targets

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
    tls_context: ssl.SSLContext | None = None      # verifying (system CAs when None)
    noverify_context: ssl.SSLContext = field(default_factory=unverified_context)
    dnssec: bool = False              # the resolver validates: its AD bit is trusted (DANE)
    mta_sts: object = None            # mta_sts.PolicyCache, or None: MTA-STS off
    dane_anchors: dict = field(default_factory=dict)   # MX host -> DANE-TA cert from its chain
    timeout: float = 30.0             # connecting
    command_timeout: float = 300.0    # each reply; RFC 5321 4.5.3.2 suggests minutes
    rng: random.Random = field(default_factory=random.Random)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("clevermail.relay"))


class Client(smtplib.SMTP):
    """smtplib.SMTP that connects through the Transport seam to a chosen address while
    naming the host by its name (SNI and certificate checks use the name)."""

    def __init__(self, t: Transport, address: str, server_name: str,
                 implicit: ssl.SSLContext | None = None):
        super().__init__(local_hostname=t.hostname, timeout=t.timeout)
        self._host = server_name            # smtplib uses it as server_hostname
        self._t, self._address, self._implicit = t, address, implicit
        self.tls_info = NO_TLS

    def _get_socket(self, host, port, timeout):
        sock = self._t.connect(self._address, port, timeout)
        sock.settimeout(self._t.command_timeout)
        if self._implicit is not None:
            try:
                sock = self._implicit.wrap_socket(sock, server_hostname=self._host)
            except BaseException:
                sock.close()
                raise
        return sock


def _text(msg) -> str:
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    return " ".join(str(msg).split())


def _cmd(client: Client, cmd: str, args: str) -> tuple[int, str]:
    # putcmd/getreply instead of smtplib.mail/rcpt: quoteaddr() re-parses addresses
    # with email.utils and can mangle quoted local parts.
    client.putcmd(cmd, args)
    code, msg = client.getreply()
    return code, _text(msg)


def _hello(client: Client) -> None:
    code, msg = client.ehlo()
    if not 200 <= code < 300:
        code, msg = client.helo()
        if not 200 <= code < 300:
            raise SessionFailure(451, f"4.4.0 HELO refused: {code} {_text(msg)}")


def way_context(t: Transport, plan: HostPlan, way: str, anchors: list[bytes]) -> ssl.SSLContext:
    if way == NOVERIFY:
        return t.noverify_context
    if way == ANCHOR:
        return dane.tls_context_for_ta(anchors)
    return plan.context or t.tls_context or ssl.create_default_context()


def _starttls(t: Transport, client: Client, plan: HostPlan, way: str, anchors: list[bytes],
              remote: str) -> None:
    """STARTTLS as the plan and `way` say; sets client.tls_info. Raises Reconnect
    (make the session again another way) or SessionFailure."""
    offered = client.has_extn("starttls")
    if way != PLAIN and offered:
        try:
            code, msg = client.starttls(context=way_context(t, plan, way, anchors))
        except ssl.SSLCertVerificationError as e:
            raise after_verify_failure(plan, way, remote, e.verify_message or e) from e
        except (ssl.SSLError, OSError) as e:
            if plan.mandatory:
                raise SessionFailure(451, f"4.7.5 TLS with {remote} failed ({plan.why}): {e}") from e
            raise Reconnect(PLAIN, f"STARTTLS with {remote} failed ({e}); delivering without TLS") from e
        if code == 220:
            client.tls_info = check_handshake(plan, way, client.sock, remote, t.dane_anchors,
                                              client._host)
            _hello(client)
        elif plan.mandatory:
            raise SessionFailure(451, f"4.7.0 {remote} refused STARTTLS ({plan.why}): "
                                      f"{code} {_text(msg)}")
    elif plan.mandatory:
        raise SessionFailure(451, f"4.7.0 {remote} does not offer STARTTLS ({plan.why})")


def transaction(t: Transport, client: Client, port: int, sender: str, rcpts: list[str],
             data: bytes, results: dict[str, Result], *, plan: HostPlan, way: str,
             anchors: list[bytes], auth: tuple[str, str] | None, remote: str,
             dsn: PassOn | None = None) -> None:
    """One SMTP transaction, filling `results` as replies come in (so that a lost
    connection keeps the per-recipient answers already given)."""
    try:
        code, msg = client.connect(client._host, port)
    except ssl.SSLCertVerificationError as e:       # implicit TLS
        raise SessionFailure(451, f"4.7.5 the certificate of {remote} does not verify: "
                                  f"{e.verify_message or e}") from e
    except (OSError, smtplib.SMTPException) as e:
        raise SessionFailure(451, f"4.4.1 connection to {remote} failed: {e}") from e
    if client._implicit is not None:
        client.tls_info = check_handshake(plan, way, client.sock, remote)
    if code != 220:
        raise SessionFailure(451, f"4.4.0 {remote} greeted with: {code} {_text(msg)}")
    _hello(client)
    if client._implicit is None:
        _starttls(t, client, plan, way, anchors, remote)
    info = client.tls_info
    if plan.requiretls:
        if not requiretls_ok(plan, info):
            raise SessionFailure(550, f"5.7.30 REQUIRETLS: the session with {remote} is not "
                                      f"verified TLS to a securely known name (tls {info})")
        if not client.has_extn("requiretls"):
            raise SessionFailure(550, f"5.7.30 REQUIRETLS: {remote} does not support REQUIRETLS")
    if auth is not None:
        try:
            client.login(*auth)
        except smtplib.SMTPAuthenticationError as e:
            raise SessionFailure(451, f"4.7.0 authentication to {remote} failed: "
                                      f"{e.smtp_code} {_text(e.smtp_error)}") from e
        except smtplib.SMTPException as e:   # no AUTH offered, no usable mechanism
            raise SessionFailure(451, f"4.7.0 authentication to {remote} impossible: {e}") from e

    def all_(code: int, text: str) -> None:
        results.update({r: Result(code, text, remote, tls=info) for r in rcpts})

    opts = []
    if client.has_extn("size"):
        limit = client.esmtp_features["size"].strip()
        if limit.isascii() and limit.isdigit() and 0 < int(limit) < len(data):
            return all_(552, f"5.3.4 message size {len(data)} exceeds the limit {limit} of {remote}")
        opts.append(f"SIZE={len(data)}")
    if client.has_extn("8bitmime") and not data.isascii():
        opts.append("BODY=8BITMIME")
    if not all(a.isascii() for a in [sender, *rcpts]):
        if not client.has_extn("smtputf8"):
            return all_(553, f"5.6.7 {remote} does not support SMTPUTF8 addresses")
        opts.append("SMTPUTF8")
        client.command_encoding = "utf-8"
    if plan.requiretls:
        opts.append("REQUIRETLS")
    passed = dsn is not None and client.has_extn("dsn")
    if passed:
        opts.extend(dsn.mail)
    code, text = _cmd(client, "mail", f"FROM:<{sender}>" + "".join(" " + o for o in opts))
    if not 200 <= code < 300:
        if 500 <= code < 600:
            return all_(code, text)
        raise SessionFailure(code if 400 <= code < 500 else 451, text)
    accepted = []
    for rcpt in rcpts:
        code, text = _cmd(client, "rcpt", f"TO:<{rcpt}>" + "".join(
            " " + o for o in (dsn.rcpt.get(rcpt, ()) if passed else ())))
        if 200 <= code < 300:
            accepted.append(rcpt)
        else:
            results[rcpt] = Result(code if 400 <= code < 600 else 451, text, remote, tls=info)
    if not accepted:
        return _quit(client)
    try:
        code, msg = client.data(data)
    except smtplib.SMTPDataError as e:                 # DATA itself refused
        code, msg = e.smtp_code, e.smtp_error
    text = _text(msg)
    if 400 <= code < 500 or not 200 <= code < 600:
        for rcpt in accepted:
            results[rcpt] = Result(code if 400 <= code < 500 else 451, text, remote, retry=True,
                                   tls=info)
    else:
        for rcpt in accepted:
            results[rcpt] = Result(code, text, remote, tls=info, dsn=passed)
    _quit(client)


def _quit(client: Client) -> None:
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()
