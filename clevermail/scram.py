"""SCRAM-SHA-256 (RFC 5802 with RFC 7677's hash), the server side, and the keys it is
checked against: a SASL mechanism in which the password never crosses the wire and
the server holds no password, only keys derived from it.

What users.ini keeps for an account (accounts.py, the `scram` key), written whenever
a password is set (`clevermail user add`, `user passwd`) and, for an account written
before SCRAM, at its first login that proves the password (accounts_upgrade.py), in
PostgreSQL's notation:

    SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>

    SaltedPassword = PBKDF2-HMAC-SHA-256(SASLprep(password), salt, iterations)
    StoredKey      = SHA-256(HMAC(SaltedPassword, "Client Key"))
    ServerKey      = HMAC(SaltedPassword, "Server Key")

A password that SASLprep (RFC 4013, stored-string rules) refuses gets no keys: that
user logs in with PLAIN or LOGIN only.  The iteration count travels with the keys,
so it can be raised without breaking older entries (RFC 7677 4: at least 4096).

The exchange (`run`): client-first (gs2 header, n=user, r=nonce) -> server-first
(r=nonce+ours, s=salt, i=iterations) -> client-final (c=gs2 header again, r=, p=proof)
-> server-final (v=ServerSignature), which the client acknowledges with an empty
answer.  Channel binding is not offered (no -PLUS mechanism: Python's ssl gives no
tls-exporter value, and tls-server-end-point would need the certificate a handshake
used): a client that requires it (gs2 flag "p=") fails, "n" and "y" are accepted
(5.1: "y" says the client thinks the server does not bind, which is true).

An unknown user, or one without keys, gets a server-first message like any other (a
salt derived from the users file's secret and the name, the default iterations) and
fails at the proof: the exchange tells no one whether the name exists.  A nonce is
fresh per exchange, so a replayed client-final fails.  Messages that break the
grammar raise `Invalid` (its text names the rule, never a secret).
"""

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import stringprep
import unicodedata
from typing import NamedTuple, Optional

MECHANISM = "SCRAM-SHA-256"
ITERATIONS = 10000          # RFC 7677 4: at least 4096
MIN_ITERATIONS = 4096       # stored keys with fewer are ignored
MAX_ITERATIONS = 10_000_000  # a hand-edited entry must not make clients spin for ever
PREFIX = "SCRAM-SHA-256$"
SALT_BYTES = 16
NONCE_BYTES = 24


class Invalid(ValueError):
    """A client message that breaks RFC 5802's grammar or rules; str(exc) says which
    (it never quotes a secret)."""


class StoredKeys(NamedTuple):
    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    def encode(self):
        b64 = _b64
        return f"{PREFIX}{self.iterations}:{b64(self.salt)}${b64(self.stored_key)}:{b64(self.server_key)}"

    @classmethod
    def parse(cls, text):
        """The keys of a users.ini `scram` value; ValueError when it is not one."""
        if not text.startswith(PREFIX):
            raise ValueError("not SCRAM-SHA-256 keys")
        try:
            params, keys = text[len(PREFIX):].split("$")
            iterations, salt = params.split(":")
            stored, server = keys.split(":")
            out = cls(int(iterations), _unb64(salt), _unb64(stored), _unb64(server))
        except (ValueError, binascii.Error):
            raise ValueError("malformed SCRAM-SHA-256 keys") from None
        if not (MIN_ITERATIONS <= out.iterations <= MAX_ITERATIONS) or not out.salt \
                or len(out.stored_key) != 32 or len(out.server_key) != 32:
            raise ValueError("SCRAM-SHA-256 keys out of range")
        return out


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _unb64(text):
    return base64.b64decode(text, validate=True)


def _hmac(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


# -- keys ----------------------------------------------------------------------------------
def derive(password, salt=None, iterations=ITERATIONS):
    """The StoredKeys of `password` (a new random salt unless given), or None when
    SASLprep refuses the password (then no SCRAM for that user)."""
    try:
        prepared = saslprep(password)
    except ValueError:
        return None
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", prepared.encode("utf-8"), salt, iterations)
    stored = hashlib.sha256(_hmac(salted, b"Client Key")).digest()
    return StoredKeys(iterations, salt, stored, _hmac(salted, b"Server Key"))


def stand_in(secret, username):
    """Keys for a name without any (unknown, or no SCRAM keys): the same salt for the
    same name every time (derived from `secret`, the users file's), random keys that
    no proof matches."""
    salt = _hmac(secret, b"scram salt\0" + username.encode("utf-8", "surrogateescape"))[:SALT_BYTES]
    return StoredKeys(ITERATIONS, salt, secrets.token_bytes(32), secrets.token_bytes(32))


# -- SASLprep (RFC 4013, the stringprep profile RFC 5802 2.2 asks of passwords) -------------
_PROHIBITED = (stringprep.in_table_c12, stringprep.in_table_c21_c22, stringprep.in_table_c3,
               stringprep.in_table_c4, stringprep.in_table_c5, stringprep.in_table_c6,
               stringprep.in_table_c7, stringprep.in_table_c8, stringprep.in_table_c9)


def saslprep(text, stored=True):
    """`text` prepared by SASLprep; ValueError for a prohibited character, broken
    bidirectional text, or (`stored`: RFC 3454 7) an unassigned code point."""
    if text.isascii() and all(" " <= c <= "~" for c in text):
        return text             # printable ASCII maps to itself: the common case
    mapped = "".join(" " if stringprep.in_table_c12(c) else c
                     for c in text if not stringprep.in_table_b1(c))
    out = unicodedata.normalize("NFKC", mapped)
    for c in out:
        if any(table(c) for table in _PROHIBITED):
            raise ValueError("a prohibited character")
        if stored and stringprep.in_table_a1(c):
            raise ValueError("an unassigned code point")
    if any(stringprep.in_table_d1(c) for c in out):
        if any(stringprep.in_table_d2(c) for c in out) or not (
                stringprep.in_table_d1(out[0]) and stringprep.in_table_d1(out[-1])):
            raise ValueError("broken bidirectional text")
    return out


# -- the exchange ---------------------------------------------------------------------------
_PRINTABLE = re.compile(r"[\x21-\x2b\x2d-\x7e]+\Z")     # RFC 5802 7: nonce characters
_SASLNAME = re.compile(r"(?:[^,=]|=2C|=3D)+\Z")


def _saslname(value, what):
    if not _SASLNAME.match(value):
        raise Invalid(f"malformed {what}")
    return value.replace("=2C", ",").replace("=3D", "=")


def _attributes(text, names, what):
    """`text` split at commas into its attributes, which must be `names` in order
    (a trailing '...' in names: any extensions may follow; RFC 5802 7)."""
    parts = text.split(",")
    extensible = names[-1] == "..."
    names = names[:-1] if extensible else names
    if len(parts) < len(names) or (not extensible and len(parts) > len(names)):
        raise Invalid(f"malformed {what}")
    values = []
    for name, part in zip(names, parts):
        if not part.startswith(name + "="):
            raise Invalid(f"malformed {what}: {name}= expected")
        values.append(part[len(name) + 1:])
    for part in parts[len(names):]:
        if len(part) < 2 or part[1] != "=" or not part[0].isalpha():
            raise Invalid(f"malformed {what}")
    return values


class Outcome(NamedTuple):
    username: str               # as the client gave it ('' before it was read)
    authzid: str
    address: Optional[str]      # the account proved, or None
    reason: str = ""            # why it failed, when that may be said (no secret)


class ServerExchange:
    """One SCRAM-SHA-256 exchange on the server side (see the module doc).
    `credentials(username)` -> (canonical address or None, StoredKeys or None);
    `secret`: the users file's, for stand-in salts."""

    def __init__(self, credentials, secret, nonce=None):
        self._credentials, self._secret = credentials, secret
        self._nonce = nonce if nonce is not None else base64.b64encode(
            secrets.token_bytes(NONCE_BYTES)).decode("ascii")
        self.username, self.authzid = "", ""
        self._address = self._keys = None
        self._gs2 = self._nonce_all = self._first_bare = self._server_first = ""

    def first(self, message):
        """client-first-message -> server-first-message."""
        flag, sep, rest = message.partition(",")
        if not sep:
            raise Invalid("malformed client-first message")
        if flag.startswith("p="):
            raise Invalid("channel binding is not offered (no SCRAM-SHA-256-PLUS)")
        if flag not in ("n", "y"):
            raise Invalid("malformed gs2 channel binding flag")
        authzid, sep, bare = rest.partition(",")
        if not sep:
            raise Invalid("malformed gs2 header")
        if authzid:
            if not authzid.startswith("a="):
                raise Invalid("malformed authzid")
            self.authzid = _saslname(authzid[2:], "authzid")
        self._gs2 = f"{flag},{authzid},"
        if bare.startswith("m="):
            raise Invalid("mandatory extension not supported")
        user, nonce = _attributes(bare, ("n", "r", "..."), "client-first message")
        self.username = _saslname(user, "username")
        if not _PRINTABLE.match(nonce):
            raise Invalid("malformed client nonce")
        self._first_bare = bare
        self._address, keys = self._credentials(self.username)
        if keys is None:
            self._address, keys = None, stand_in(self._secret, self.username)
        self._keys = keys
        self._nonce_all = nonce + self._nonce
        self._server_first = f"r={self._nonce_all},s={_b64(keys.salt)},i={keys.iterations}"
        return self._server_first

    def final(self, message):
        """client-final-message -> (server-final-message or None, Outcome).  None: the
        proof is wrong (or the name had no keys): the exchange failed."""
        without_proof, sep, proof = message.rpartition(",p=")
        if not sep or not without_proof:
            raise Invalid("malformed client-final message: no proof")
        binding, nonce = _attributes(without_proof, ("c", "r", "..."), "client-final message")
        try:
            binding, proof = base64.b64decode(binding, validate=True), base64.b64decode(proof, validate=True)
        except (binascii.Error, ValueError):
            raise Invalid("malformed client-final message: bad base64") from None
        if binding != self._gs2.encode("utf-8"):
            raise Invalid("channel binding data does not match the gs2 header")
        if not hmac.compare_digest(nonce.encode("ascii", "replace"), self._nonce_all.encode("ascii")):
            raise Invalid("nonce mismatch")
        if len(proof) != 32:
            raise Invalid("malformed proof")
        auth_message = ",".join((self._first_bare, self._server_first, without_proof)).encode("utf-8")
        keys = self._keys
        signature = _hmac(keys.stored_key, auth_message)
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), keys.stored_key) or self._address is None:
            return None, Outcome(self.username, self.authzid, None)
        server_final = "v=" + _b64(_hmac(keys.server_key, auth_message))
        return server_final, Outcome(self.username, self.authzid, self._address)


def run(initial, answer, credentials, secret, nonce=None):
    """One exchange: `initial` is the client-first message (str, or None: ask for it
    with an empty challenge); answer(challenge) sends a challenge (str) and returns
    the client's next message (str, decoded).  The Outcome; an Invalid message gives
    an Outcome with its reason (the exchange failed)."""
    exchange = ServerExchange(credentials, secret, nonce)
    try:
        first = initial if initial is not None else answer("")
        final = answer(exchange.first(first))
        server_final, outcome = exchange.final(final)
        if server_final is None:
            return outcome
        if answer(server_final) != "":
            raise Invalid("no empty answer to the server-final message")
        return outcome
    except Invalid as exc:
        return Outcome(exchange.username, exchange.authzid, None, str(exc))
