"""A SCRAM-SHA-256 client for the tests, written from RFC 5802 (sections 3, 5 and 7)
and RFC 7677, independent of the server's clevermail/scram.py: it shares no code
with it, so a test that logs in with it checks the server against the RFC, not
against itself.  ASCII passwords only (SASLprep maps printable ASCII to itself).

    client = ScramClient("alice@example.test", "secret")
    first = client.first()                   # n,,n=...,r=...
    final = client.final(server_first)       # c=...,r=...,p=...
    client.check(server_final)               # v=... must be the server's signature

`imaplib_auth(client)` is the callable imaplib.IMAP4.authenticate takes (bytes in,
bytes out); `smtplib_auth(client)` the one smtplib.SMTP.auth takes.
"""

import base64
import hashlib
import hmac
import secrets


def _h(data):
    return hashlib.sha256(data).digest()


def _hmac(key, data):
    return hmac.new(key, data, "sha256").digest()


def _xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


class ScramClient:
    def __init__(self, user, password, nonce=None, authzid="", flag="n"):
        self.user, self.password = user, password
        self.nonce = nonce or base64.b64encode(secrets.token_bytes(18)).decode()
        self.authzid, self.flag = authzid, flag
        self.server_signature = None

    @staticmethod
    def _name(text):        # RFC 5802 5.1: ',' and '=' escaped
        return text.replace("=", "=3D").replace(",", "=2C")

    def first(self):
        authzid = f"a={self._name(self.authzid)}" if self.authzid else ""
        self.gs2 = f"{self.flag},{authzid},"
        self.first_bare = f"n={self._name(self.user)},r={self.nonce}"
        return self.gs2 + self.first_bare

    def final(self, server_first):
        attrs = dict(part.split("=", 1) for part in server_first.split(","))
        assert attrs["r"].startswith(self.nonce), "the server's nonce must extend ours"
        salt, iterations = base64.b64decode(attrs["s"]), int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, iterations)
        client_key = _hmac(salted, b"Client Key")
        stored_key = _h(client_key)
        without_proof = "c=" + base64.b64encode(self.gs2.encode()).decode() + ",r=" + attrs["r"]
        auth_message = ",".join((self.first_bare, server_first, without_proof)).encode()
        proof = _xor(client_key, _hmac(stored_key, auth_message))
        self.server_signature = _hmac(_hmac(salted, b"Server Key"), auth_message)
        return without_proof + ",p=" + base64.b64encode(proof).decode()

    def check(self, server_final):
        assert server_final == "v=" + base64.b64encode(self.server_signature).decode(), server_final
        return True


def imaplib_auth(client):
    """imaplib's authobject: each challenge (decoded bytes) -> the answer (bytes)."""
    steps = iter((lambda _: client.first(), client.final, lambda v: client.check(v) and ""))

    def answer(challenge):
        return next(steps)(challenge.decode()).encode()
    return answer


def smtplib_auth(client):
    """smtplib's authobject: called with no challenge for the initial response."""
    steps = iter((client.final, lambda v: client.check(v) and ""))

    def answer(challenge=None):
        if challenge is None:
            return client.first()
        return next(steps)(challenge.decode())
    return answer
