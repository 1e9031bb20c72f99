"""The one login path of SMTP, POP3, IMAP and ManageSieve: SASL PLAIN, LOGIN and
SCRAM-SHA-256, the authorization identity policy, the failure delay, the per-address
throttle and peer normalisation.

SASL (RFC 4422) with PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login) and
SCRAM-SHA-256 (RFC 5802, RFC 7677: scram.py, the proof checked against the keys
accounts.py keeps; offered only once every account has them, which an account
written before SCRAM gets at its first login with a password mechanism here:
accounts_upgrade.py), framed as
RFC 4954 4 (SMTP), RFC 5034 4 (POP3) and RFC 3501 6.2.2 with RFC 4959 (IMAP) frame it
(ManageSieve, RFC 5804 2.1, frames challenges and answers as strings: its `ask`):
each continuation answer is one base64 line, "*" cancels the exchange, and "=" as an
initial response is an empty one.

Every protocol logs in the same way (Login.sasl, Login.password):

1. an address that failed too often is refused before any credential is read;
2. the credentials are verified (an unknown user costs the same scrypt as a known one);
3. there is no proxy authorization: an authzid naming another account fails exactly
   like a wrong password, after the same verification;
4. every failure waits the failure delay, counts toward the throttle and logs the same
   line, so neither the client nor the log tells a wrong password from a foreign authzid.

A session supplies only its continuation prompt and line limit, and maps the errors
below to its replies.  Credentials never reach a log: continuation lines are logged as
"C: ***" and the log names only the user.
"""

import base64
import binascii
import ipaddress
import threading
import time
from collections import deque

from . import scram
from .accounts import Account, AccountError
from .wire import LineTooLong

# Longest SASL line with its CRLF, per protocol.
SMTP_LINE_LIMIT = 12288 + 2      # RFC 4954 4: AUTH lines up to 12288 octets
POP3_LINE_LIMIT = 4096           # RFC 5034 4: answers are not bound by RFC 2449's 255


# -- errors a session maps to its replies ------------------------------------------------
class LoginError(Exception):
    """Base of what Login raises; each session turns it into its own reply."""


class Cancelled(LoginError):
    """The client answered a challenge with "*"."""


class Malformed(LoginError):
    """A response that is not what the mechanism expects; str(exc) says why."""


class ResponseTooLong(LoginError):
    """A continuation line over the protocol's SASL line limit."""


class Throttled(LoginError):
    """Too many recent failures from this client address: nothing was checked."""


class Failed(LoginError):
    """Credentials refused (unknown user, wrong password or a foreign authzid), after
    the failure delay.  `foreign_authzid` depends only on what the client asked for,
    never on whether the password was right, so a reply that uses it reveals nothing."""

    def __init__(self, foreign_authzid=False):
        super().__init__("authentication failed")
        self.foreign_authzid = foreign_authzid


# -- SASL, pure ---------------------------------------------------------------------------
def b64_text(text):
    """base64 of a str, as str (SASL challenges)."""
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def decode_b64_text(b64):
    """A base64 response -> str (UTF-8); Malformed on anything else."""
    try:
        return base64.b64decode(b64, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise Malformed("invalid base64") from None


def decode_sasl_plain(b64):
    """base64 'authzid NUL authcid NUL passwd' -> (authzid, authcid, password) as str.
    Raises Malformed on anything malformed (RFC 4616 2)."""
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise Malformed("invalid base64") from None
    parts = raw.split(b"\0")
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise Malformed("malformed PLAIN message")
    try:
        authzid, authcid, password = (p.decode("utf-8") for p in parts)
    except UnicodeDecodeError:
        raise Malformed("PLAIN message is not UTF-8") from None
    return authzid, authcid, password


MECHANISMS = ("PLAIN", "LOGIN")     # the password mechanisms Login.sasl runs


def offered(accounts, mechanisms=MECHANISMS):
    """The mechanisms to offer: SCRAM-SHA-256 once every account has its keys, then
    the protocol's password mechanisms (a subset of MECHANISMS)."""
    return ((scram.MECHANISM,) if accounts.has_scram() else ()) + tuple(mechanisms)


def exchange(mechanism, initial, ask):
    """Run one SASL exchange and return (authzid, authcid, password).

    `initial` is the initial response or None; ask(challenge) sends a base64 challenge
    and returns the client's answer as str.  "*" cancels (Cancelled), "=" as the
    initial response is an empty one (RFC 4954 4, RFC 5034 4, RFC 4959 3)."""
    if initial == "=":
        initial = ""

    def answer(challenge):
        text = ask(challenge)
        if text == "*":
            raise Cancelled("authentication cancelled")
        return text

    if initial == "*":
        raise Cancelled("authentication cancelled")
    if mechanism == "PLAIN":
        return decode_sasl_plain(initial if initial is not None else answer(""))
    if mechanism == "LOGIN":
        user = decode_b64_text(initial if initial is not None else answer(b64_text("Username:")))
        return "", user, decode_b64_text(answer(b64_text("Password:")))
    raise ValueError(f"unsupported SASL mechanism {mechanism!r}")


def same_identity(authzid, authcid, canonical):
    """True when `authzid` is empty or names the account `authcid` names.  Both are
    compared as canonical(name) spells them; names it refuses are compared as given,
    case-insensitively (they cannot log in anyway)."""
    if not authzid:
        return True

    def canon(name):
        try:
            return canonical(name)
        except AccountError:
            return name.strip().lower()

    return canon(authzid) == canon(authcid)


# -- peers and the throttle ----------------------------------------------------------------
def normalize_peer(address):
    """A client address as the session should see it: an IPv4 client of a dual-stack
    listener arrives as '::ffff:a.b.c.d' and becomes 'a.b.c.d' (so it has its own
    throttle bucket and 127.0.0.1 is loopback); anything else is returned as given."""
    if ":" not in address:
        return address
    if address[:7].lower() == "::ffff:":
        # the form the kernel reports: check the IPv4 part alone (a full IPv6 parse
        # costs about five times as much, once per connection)
        try:
            return str(ipaddress.IPv4Address(address[7:]))
        except ValueError:
            pass
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped) if mapped is not None else address


def in_networks(peer, nets):
    """Whether the client address `peer` (IPv4-mapped already unmapped) is in `nets`."""
    if not nets:
        return False
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(ip in net for net in nets)


class AuthThrottle:
    """Counts failed authentications per client address within a sliding window.

    Sessions ask `blocked(addr)` before checking credentials and call `failed(addr)`
    after a failure; loopback is throttled like anyone else.  One IPv6 user holds a
    whole /64, so IPv6 addresses count per /64; IPv4 addresses count alone.  The
    addresses are sessions' peers, normalised once at session start (normalize_peer:
    an IPv4-mapped address is its IPv4 address)."""

    def __init__(self, limit=10, window=300.0, clock=time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self._lock = threading.Lock()
        self._fails = {}

    def key(self, addr):
        """The bucket an address counts in.  `addr` is normalised already (a session's
        peer: line_session normalises it once, when the session starts), so an IPv4 client
        of a dual-stack listener counts as its IPv4 address."""
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return addr
        if ip.version == 6:
            return str(ipaddress.ip_network(f"{ip}/64", strict=False))
        return str(ip)

    def blocked(self, addr):
        now = self.clock()
        with self._lock:
            q = self._fails.get(self.key(addr))
            if not q:
                return False
            while q and q[0] < now - self.window:
                q.popleft()
            return len(q) >= self.limit

    def failed(self, addr):
        with self._lock:
            self._fails.setdefault(self.key(addr), deque()).append(self.clock())
            if len(self._fails) > 10000:  # bound memory under a distributed attack
                self._fails.pop(next(iter(self._fails)))


# -- a session's way in --------------------------------------------------------------------
class Login:
    """The login collaborator of one session.

    `session` is the channel: its send(), reader, log, debug, peer and server (whose
    handler verifies credentials, and whose throttle and limits.auth_failure_delay
    apply).  `prompt` is the protocol's continuation prefix ('334 ' or '+ ');
    `line_limit` bounds each continuation line."""

    def __init__(self, session, *, prompt, line_limit):
        self.session = session
        self.prompt = prompt
        self.line_limit = line_limit

    def sasl(self, mechanism, initial, ask=None):
        """AUTH/AUTHENTICATE: throttle check, the SASL exchange, then verification.
        Returns the account; raises a LoginError (EOFError if the client leaves).
        `ask` replaces the prompt-line framing of challenges where a protocol frames
        them otherwise (ManageSieve: strings, RFC 5804 2.1); as _ask, it returns the
        answer's text and never logs it."""
        self.check_throttle(mechanism)
        if mechanism == scram.MECHANISM:
            return self._scram(initial, ask or self._ask)
        authzid, user, password = exchange(mechanism, initial, ask or self._ask)
        return self.verify(user, password, authzid, mechanism)

    def _scram(self, initial, ask):
        """SCRAM-SHA-256 (scram.py): the proof is checked against the stored keys
        during the exchange; then the authzid policy and the failure path of every
        login.  A message that breaks the grammar fails like a wrong proof (its
        reason, never a secret, goes to the log line)."""
        accounts = self.session.server.handler.accounts

        def answer(challenge):
            text = ask(b64_text(challenge))
            if text == "*":
                raise Cancelled("authentication cancelled")
            return decode_b64_text(text)

        if initial == "*":
            raise Cancelled("authentication cancelled")
        first = None if initial is None else "" if initial == "=" else decode_b64_text(initial)
        outcome = scram.run(first, answer, accounts.scram_credentials, accounts.scram_secret())
        account = Account(outcome.address) if outcome.address is not None else None
        return self.decide(account, outcome.username, outcome.authzid, scram.MECHANISM, outcome.reason)

    def password(self, user, password, method):
        """USER/PASS or IMAP LOGIN: throttle check, then verification."""
        self.check_throttle(method)
        return self.verify(user, password, "", method)

    def check_throttle(self, method="-"):
        throttle = self.session.server.throttle
        if throttle is not None and throttle.blocked(self.session.peer):
            self.session.log.warning("auth refused: too many failures from this address")
            self.session.server.metrics.login(self.session.protocol, method, "throttled")
            raise Throttled("too many failed logins")

    def verify(self, user, password, authzid, method):
        """The account for good credentials whose authzid (if any) is the user; else
        the failure delay, a throttle count, one log line and Failed."""
        account = self.session.server.handler.authenticate(user, password)
        return self.decide(account, user, authzid, method)

    def decide(self, account, user, authzid, method, reason=""):
        """`account` (the credentials' or None) if the authzid is empty or names it;
        else the failure delay, a throttle count, one log line and Failed."""
        server = self.session.server
        foreign = not same_identity(authzid, user, server.handler.accounts.canonical)
        if account is not None and not foreign:
            self.session.log.info("auth ok user=%s (%s)", account.address, method)
            server.metrics.login(self.session.protocol, method, "ok")
            return account
        # A right password with a foreign authzid waits like a wrong one: the answer
        # time must not tell them apart.
        delay = server.limits.auth_failure_delay
        if delay:
            time.sleep(delay)
        if server.throttle is not None:
            server.throttle.failed(self.session.peer)
        self.session.log.info("auth failed user=%r (%s%s)", user[:64], method, f": {reason}" if reason else "")
        server.metrics.login(self.session.protocol, method, "failed")
        raise Failed(foreign)

    def _ask(self, challenge):
        """Send a challenge, read the answer line (never logged raw)."""
        session = self.session
        session.send(f"{self.prompt}{challenge}\r\n")
        try:
            line = session.reader.readline(self.line_limit)
        except LineTooLong:
            raise ResponseTooLong("SASL response too long") from None
        if not line:
            raise EOFError("connection closed inside a SASL exchange")
        if session.debug:
            session.log.debug("C: ***")
        try:
            return line.rstrip(b"\r\n").decode("ascii")
        except UnicodeDecodeError:
            raise Malformed("invalid base64") from None
