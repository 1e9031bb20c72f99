"""Relay test helpers: a scriptable sink SMTP server on 127.0.0.1, a fake resolver,
ServiceEnv (a real MailService relaying to a sink, for the end-to-end and CLI tests).
A worker or a sink in a process of its own: relay_procs.py; the MTA-STS policy
server: policy_server.py."""
from __future__ import annotations

import base64
import socket
import socketserver
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from waiting import wait_for

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Received:
    sender: str
    rcpts: list[str]
    data: bytes
    tls: bool
    auth: str | None
    helo: str
    mail_params: list[str] = field(default_factory=list)
    rcpt_params: dict[str, list[str]] = field(default_factory=dict)   # address -> params


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class Sink:
    """An SMTP server that records what it receives and answers as told.

    rcpt: address -> (code, text), or a dict address -> (code, text); default 250.
    greeting: (code, text). mail_reply / data_reply: (code, text) or a callable.
    drop: 'greeting' | 'mail' | 'rcpt' | 'dot' closes the connection at that point
    ('dot': after the message was read, before the reply).
    starttls / implicit: server SSLContexts. auth: (user, password) required for MAIL.
    size: advertised SIZE. on_data(Received): called before the reply (may block).
    requiretls: advertise REQUIRETLS (RFC 8689) once the session is encrypted.
    broken_tls: offer STARTTLS, answer 220, then send bytes that are not TLS and
    close (the client's handshake fails outright).
    dsn: advertise DSN (RFC 3461); the MAIL and RCPT parameters are recorded either way.
    """

    def __init__(self, *, rcpt=None, greeting=(220, "sink ESMTP"), mail_reply=(250, "2.1.0 ok"),
                 data_reply=(250, "2.0.0 queued"), drop: str | None = None, starttls=None,
                 implicit=None, auth: tuple[str, str] | None = None, size: int | None = None,
                 on_data: Callable[[Received], None] | None = None, smtputf8=True,
                 requiretls: bool = False, broken_tls: bool = False, dsn: bool = False):
        self.rcpt, self.greeting, self.mail_reply, self.data_reply = rcpt, greeting, mail_reply, data_reply
        self.drop, self.starttls, self.implicit, self.auth = drop, starttls, implicit, auth
        self.size, self.on_data, self.smtputf8 = size, on_data, smtputf8
        self.requiretls, self.broken_tls, self.dsn = requiretls, broken_tls, dsn
        self.messages: list[Received] = []
        self.sessions: list[dict] = []
        self.lock = threading.Lock()
        self._socks: list[socket.socket] = []
        sink = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                sink._handle(self.request)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            for s in self._socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _reply(self, spec, *args):
        return spec(*args) if callable(spec) else spec

    def _handle(self, sock: socket.socket) -> None:
        with self.lock:
            self._socks.append(sock)
        sock.settimeout(10)
        session = {"tls": False, "auth": None, "helo": None, "commands": []}
        with self.lock:
            self.sessions.append(session)
        try:
            if self.implicit is not None:
                sock = self.implicit.wrap_socket(sock, server_side=True)
                session["tls"] = True
            self._dialogue(sock, session)
        except (OSError, ValueError):
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def _dialogue(self, sock, session) -> None:
        f = sock.makefile("rb")

        def send(code, text):
            sock.sendall(f"{code} {text}\r\n".encode())

        if self.drop == "greeting":
            return
        code, text = self.greeting
        send(code, text)
        sender, rcpts, params, rcpt_params = None, [], [], {}
        while True:
            raw = f.readline(4096)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            session["commands"].append(verb)
            if verb == "QUIT":
                send(221, "bye")
                return
            if code != 220:
                send(503, "5.5.1 go away")
                continue
            if verb == "EHLO":
                session["helo"] = arg
                feats = ["8BITMIME"]
                if self.smtputf8:
                    feats.append("SMTPUTF8")
                if self.size is not None:
                    feats.append(f"SIZE {self.size}")
                if (self.starttls is not None or self.broken_tls) and not session["tls"]:
                    feats.append("STARTTLS")
                if self.requiretls and session["tls"]:
                    feats.append("REQUIRETLS")
                if self.auth is not None:
                    feats.append("AUTH PLAIN LOGIN")
                if self.dsn:
                    feats.append("DSN")
                lines = [arg] + feats
                sock.sendall("".join(f"250{'-' if i < len(lines) - 1 else ' '}{x}\r\n"
                                     for i, x in enumerate(lines)).encode())
            elif verb == "HELO":
                session["helo"] = arg
                send(250, "hello")
            elif verb == "STARTTLS" and self.broken_tls:
                send(220, "2.0.0 go ahead")
                sock.sendall(b"this is not a TLS server hello\r\n" * 4)
                return
            elif verb == "STARTTLS" and self.starttls is not None and not session["tls"]:
                send(220, "2.0.0 go ahead")
                sock = self.starttls.wrap_socket(sock, server_side=True)
                f = sock.makefile("rb")
                session["tls"] = True
            elif verb == "AUTH" and self.auth is not None:
                mech, _, initial = arg.partition(" ")
                if mech.upper() == "PLAIN":
                    if not initial:
                        send(334, "")
                        initial = f.readline(4096).decode().strip()
                    parts = base64.b64decode(initial).split(b"\0")
                    user, pw = parts[1].decode(), parts[2].decode()
                else:
                    send(334, base64.b64encode(b"Username:").decode())
                    user = base64.b64decode(f.readline(4096).strip()).decode()
                    send(334, base64.b64encode(b"Password:").decode())
                    pw = base64.b64decode(f.readline(4096).strip()).decode()
                if (user, pw) == self.auth:
                    session["auth"] = user
                    send(235, "2.7.0 authenticated")
                else:
                    send(535, "5.7.8 bad credentials")
            elif verb == "MAIL":
                if self.drop == "mail":
                    return
                if self.auth is not None and session["auth"] is None:
                    send(530, "5.7.0 authentication required")
                    continue
                addr, _, rest = arg[5:].partition(">")
                mcode, mtext = self._reply(self.mail_reply, addr.lstrip("<"))
                if 200 <= mcode < 300:
                    sender, rcpts, params, rcpt_params = addr.lstrip("<"), [], rest.split(), {}
                send(mcode, mtext)
            elif verb == "RCPT":
                if self.drop == "rcpt":
                    return
                addr, _, rest = arg[3:].strip().lstrip("<").partition(">")
                spec = self.rcpt
                if isinstance(spec, dict):
                    rc = spec.get(addr, (250, "2.1.5 ok"))
                elif callable(spec):
                    rc = spec(addr)
                else:
                    rc = (250, "2.1.5 ok")
                if 200 <= rc[0] < 300:
                    rcpts.append(addr)
                    rcpt_params[addr] = rest.split()
                send(*rc)
            elif verb == "DATA":
                if not rcpts:
                    send(503, "5.5.1 no recipients")
                    continue
                send(354, "go ahead")
                lines = []
                while True:
                    raw = f.readline(1 << 20)
                    if not raw:
                        return
                    if raw == b".\r\n":
                        break
                    lines.append(raw[1:] if raw.startswith(b".") else raw)
                msg = Received(sender, rcpts, b"".join(lines), session["tls"], session["auth"],
                               session["helo"], params, rcpt_params)
                if self.drop == "dot":
                    return
                if self.on_data is not None:
                    self.on_data(msg)
                dcode, dtext = self._reply(self.data_reply, msg)
                if 200 <= dcode < 300:
                    with self.lock:
                        self.messages.append(msg)
                send(dcode, dtext)
                sender, rcpts = None, []
            elif verb in ("RSET", "NOOP"):
                sender, rcpts = None, []
                send(250, "ok")
            else:
                send(502, "5.5.2 not implemented")


class FakeResolver:
    """dnspython-shaped resolver over a dict: {name: {rdtype: [rdata text] | exception}}.
    A name missing from the dict is NXDOMAIN; a missing type is NoAnswer."""

    def __init__(self, records: dict):
        self.records = {k.rstrip(".").lower(): v for k, v in records.items()}
        self.queries: list[tuple[str, str]] = []

    def resolve(self, qname, rdtype):
        name = str(qname).rstrip(".").lower()
        self.queries.append((name, rdtype))
        if name not in self.records:
            raise dns.resolver.NXDOMAIN()
        value = self.records[name].get(rdtype)
        if isinstance(value, type) and issubclass(value, BaseException):
            raise value()
        if isinstance(value, BaseException):
            raise value
        if not value:
            raise dns.resolver.NoAnswer()
        return [dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), t)
                for t in value]


def mx_zone(domains: dict[str, str] | list[str], address: str = "127.0.0.1") -> dict:
    """Records where each domain has 'MX 10 mx.<domain>' and that host `address`."""
    records = {}
    for d in domains:
        records[d] = {"MX": [f"10 mx.{d}."]}
        records[f"mx.{d}"] = {"A": [address]}
    return records


def message(n: int | str, subject: str = "test") -> bytes:
    return (f"From: a@here.test\r\nTo: b@there.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <m{n}@here.test>\r\nX-Test-Id: {n}\r\n\r\nbody {n}\r\n.dot line\r\n").encode()


class Replies:
    """A Sink `rcpt` callable whose answer the test changes on the fly:
    replies.set(451, "4.7.1 greylisted") ... replies.set(250, "2.1.5 ok")."""

    def __init__(self, code: int = 250, text: str = "2.1.5 ok"):
        self.reply = (code, text)

    def set(self, code: int, text: str) -> None:
        self.reply = (code, text)

    def __call__(self, address: str) -> tuple[int, str]:
        return self.reply


class ServiceEnv:
    """A real MailService on port 0 whose relay delivers to `sink`: the domains in
    `remote` get an MX on 127.0.0.1 from a FakeResolver and relay.mx_port is the
    sink's port (the caller builds `conf` with it). Clients: smtplib and poplib.

    Accounts: ALICE (the sender) and BOB (a second local user), passwords in USERS.
    """

    ALICE, BOB = "alice@example.test", "bob@example.test"
    USERS = {ALICE: "alice-secret", BOB: "bob-secret"}

    def __init__(self, settings, sink: Sink, remote=("there.test",)):
        self.settings, self.sink = settings, sink
        self.data_dir = settings.server.data_dir
        self.resolver = FakeResolver(mx_zone(list(remote)))
        self.service = None

    @classmethod
    def make_users(cls, path) -> None:
        """users.ini with ALICE and BOB (hashing is slow: copy one file per module)."""
        from clevermail.accounts import AccountStore
        accounts = AccountStore(str(path), ["example.test"])
        for user, password in cls.USERS.items():
            accounts.add(user, password)

    @property
    def queue(self):
        from clevermail.relay.queue import RelayQueue
        return RelayQueue(Path(self.data_dir) / "queue")

    def deferred(self):
        """The queue's only entry once all its recipients were tried and deferred,
        else None (for wait_for)."""
        entries = self.queue.list()
        if len(entries) == 1 and all(r.state == "deferred" for r in entries[0].recipients):
            return entries[0]
        return None

    def start(self) -> "ServiceEnv":
        from clevermail.service import MailService
        self.service = MailService(self.settings, resolver=self.resolver).start()
        return self

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None

    def send(self, rcpts, data: bytes, sender: str | None = None, login: str | None = ALICE):
        """One message over SMTP (AUTH PLAIN as `login` over loopback, unless None);
        returns smtplib's refused-recipients dict."""
        import smtplib
        with smtplib.SMTP("127.0.0.1", self.service.port("smtp"), timeout=10) as s:
            s.ehlo("client.example.test")
            if login is not None:
                s.user, s.password = login, self.USERS[login]
                code, _ = s.auth("PLAIN", s.auth_plain)
                assert code == 235
            return s.sendmail(sender or login or self.ALICE, list(rcpts), data)

    def inbox(self, address: str) -> list[bytes]:
        """Every message in the account's INBOX, read over POP3 (nothing deleted)."""
        import poplib
        pop = poplib.POP3("127.0.0.1", self.service.port("pop3"), timeout=10)
        try:
            pop.user(address)
            pop.pass_(self.USERS[address])
            count, _ = pop.stat()
            return [b"\r\n".join(pop.retr(i)[1]) + b"\r\n" for i in range(1, count + 1)]
        finally:
            pop.quit()

    def wait_inbox(self, address: str, n: int = 1, timeout: float = 10.0) -> list[bytes]:
        got: list[bytes] = []

        def enough() -> bool:
            got[:] = self.inbox(address)
            return len(got) >= n
        assert wait_for(enough, timeout), f"{address}: {len(got)} message(s) in INBOX, wanted {n}"
        return got
