"""SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms, as a mixin
of SMTPSession.

Credentials only travel where LineSession.plaintext_auth_ok allows (TLS, loopback,
or configured); unknown users and wrong passwords get the same 535 after the same
delay (AccountStore.authenticate sleeps); failures are counted per client address by
the server's AuthThrottle, which ends the session with 421 once it says "blocked".
SASL continuation lines are read here, never by the session loop, so they are never
logged (only "C: ***").
"""

import base64
import binascii
import time

from ..wire import LineTooLong, b64_text, decode_sasl_plain
from . import parser
from . import replies as R
from .replies import SMTPReplyError

SASL_LINE_LIMIT = 12288 + 2      # RFC 4954 4: AUTH lines up to 12288 octets


def _err(reply):
    return SMTPReplyError(reply)


class AuthMixin:
    """cmd_AUTH and its SASL exchange; needs the SMTPSession attributes esmtp,
    auth_user, reader, server, peer, log and send()."""

    def cmd_AUTH(self, arg):
        """AUTH PLAIN|LOGIN [initial-response]: authenticate (then relaying is allowed).
        States: ready (after EHLO, outside a transaction).
        RFC 4954 4, RFC 4616 (PLAIN)."""
        if not self.esmtp:
            raise _err(R.R503_EHLO_FIRST)
        if self.auth_user is not None:
            raise _err(R.R503_ALREADY_AUTH)
        if not self.plaintext_auth_ok:
            raise _err(R.R538_ENCRYPTION_REQUIRED)
        mech, initial = parser.parse_auth(arg)
        if mech not in ("PLAIN", "LOGIN"):
            raise _err(R.R504_AUTH_MECH)
        throttle = self.server.throttle
        if throttle is not None and throttle.blocked(self.peer):
            self.log.warning("auth refused: too many failures from %s", self.peer)
            raise _err(R.R421_AUTH_THROTTLED.format(self.server.hostname))
        if mech == "PLAIN":
            response = initial if initial is not None else self._sasl_challenge("")
            try:
                authzid, user, password = decode_sasl_plain("" if response == "=" else response)
            except ValueError:
                raise _err(R.R501_AUTH_DECODE) from None
            # No proxy authorization: a foreign authzid fails like a bad password,
            # after the same check and delay.
            proxy = bool(authzid) and authzid.lower() != user.lower()
        else:
            if initial is None:
                initial = self._sasl_challenge(b64_text("Username:"))
            user = self._b64_text(initial)
            password = self._b64_text(self._sasl_challenge(b64_text("Password:")))
            proxy = False
        address = self.server.handler.authenticate(user, password)
        if proxy and address is not None:
            # a right password must not answer faster than a wrong one
            time.sleep(self.server.limits.auth_failure_delay)
            address = None
        if address is None:
            if throttle is not None:
                throttle.failed(self.peer)
            self.log.info("auth failed (%s)", mech)
            raise _err(R.R535_AUTH_FAILED)
        self.auth_user = address
        self.log.info("auth ok user=%s (%s)", address, mech)
        self.send(R.R235_AUTH_OK.wire)

    def _sasl_challenge(self, challenge):
        """Send '334 <challenge>' and return the client's line; never logged raw."""
        self.send(f"334 {challenge}\r\n")
        try:
            line = self.reader.readline(SASL_LINE_LIMIT)
        except LineTooLong:
            raise _err(R.R500_AUTH_LINE_TOO_LONG) from None
        if not line:
            raise EOFError("connection closed inside AUTH")
        self.log.debug("C: ***")
        text = line.rstrip(b"\r\n")
        if text == b"*":
            raise _err(R.R501_AUTH_CANCELLED)
        try:
            return text.decode("ascii")
        except UnicodeDecodeError:
            raise _err(R.R501_AUTH_DECODE) from None

    @staticmethod
    def _b64_text(data):
        try:
            return base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise _err(R.R501_AUTH_DECODE) from None
