"""Helpers for the interop tests (tests/test_interop*.py): real Debian mail clients
(swaks, fetchmail, mbsync, offlineimap, mutt) run as subprocesses against a real
clevermail.service.MailService on 127.0.0.1 port 0 in tmp_path.

- tls_files(folder): a trustme CA and a certificate for 127.0.0.1/localhost written as
  PEM files (cert, key, ca); skips when trustme is missing.
- Server: starts MailService with SMTP, POP3 and IMAP listeners (plain with
  STARTTLS/STLS, and the implicit-TLS ones) and alice/bob accounts; `stop()`.
- run(argv, home, ...): one client run with HOME=home, a bounded timeout, and the
  output kept for the assertion message; skips when the binary is not installed.
- strip_trace, subject, lf: message bytes helpers; local_maildir, set_local_flags,
  make_local_folder: a client's local Maildir; IMAP: imaplib for seeding and checking;
  delivered: what the server stored for an address, by subject.
- fixtures the test modules import: tls (module scope), server (skips when the client
  the test is named after is missing), home, ca.
"""

import os
import shutil
import subprocess

import pytest

from clevermail.service import MailService
from components import component_missing
from conftest import make_config
from imap_helpers import ALICE, BOB, PASSWORD, make_accounts

__all__ = ["ALICE", "BOB", "IMAP", "PASSWORD", "Server", "ca", "delivered", "home", "lf",
           "local_maildir", "make_local_folder", "need", "run", "server", "set_local_flags",
           "strip_trace", "subject", "tls", "tls_files"]

TIMEOUT = 30      # seconds for one client run


def need(binary):
    """The path of a client binary, or skip the test saying which one is missing."""
    path = shutil.which(binary)
    if path is None:
        component_missing(f"{binary} is not installed (apt-get install it to run this interop test)")
    return path


def tls_files(folder):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    # fetchmail (sslcertck) insists on a subject CN besides the SAN entries.
    cert = ca.issue_cert("127.0.0.1", "localhost", common_name="localhost")
    cert_path, key_path, ca_path = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    cert_path.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_path))
    ca.cert_pem.write_to_path(str(ca_path))
    return str(cert_path), str(key_path), str(ca_path)


class Server:
    """A running MailService with every listener on 127.0.0.1:0 and TLS."""

    def __init__(self, tmp_path, cert, key, **sections):
        tmp_path.mkdir(parents=True, exist_ok=True)
        local = ["127.0.0.1:0"]
        base = dict(
            tls={"certificate": cert, "key": key},
            smtp={"listen": local, "submission_listen": local, "submissions_listen": local},
            pop3={"listen": local, "tls_listen": local},
            imap={"listen": local, "tls_listen": local},
            limits={"auth_failure_delay": 0, "smtp_timeout": 30, "pop3_timeout": 30,
                    "imap_timeout": 30},
        )
        for section, values in sections.items():
            base.setdefault(section, {}).update(values)
        conf = make_config(tmp_path, **base)
        make_accounts(conf.server.users_file)
        self.data_dir = conf.server.data_dir
        self.service = MailService(conf).start()
        self.store = self.service.store

    def port(self, kind):
        return self.service.port(kind)

    def stop(self):
        self.service.stop()

    def maildir(self, address, folder="INBOX"):
        local, domain = address.split("@")
        root = os.path.join(self.data_dir, "mail", domain, local)
        return root if folder == "INBOX" else os.path.join(root, "." + folder)

    def messages(self, address, folder="INBOX"):
        """{file name: bytes} of every message file in a folder (new/ and cur/)."""
        out = {}
        root = self.maildir(address, folder)
        for sub in ("new", "cur"):
            d = os.path.join(root, sub)
            if os.path.isdir(d):
                for name in sorted(os.listdir(d)):
                    try:
                        with open(os.path.join(d, name), "rb") as f:
                            out[f"{sub}/{name}"] = f.read()
                    except FileNotFoundError:
                        continue        # expunged (or renamed) by the client since the listing
        return out


class Result:
    def __init__(self, argv, proc):
        self.argv, self.returncode = argv, proc.returncode
        self.stdout = proc.stdout.decode("utf-8", "replace")
        self.stderr = proc.stderr.decode("utf-8", "replace")

    @property
    def output(self):
        return self.stdout + self.stderr

    def __str__(self):
        return (f"$ {' '.join(self.argv)}\nexit {self.returncode}\n"
                f"--- stdout ---\n{self.stdout[-6000:]}\n--- stderr ---\n{self.stderr[-6000:]}")


def run(argv, home, *, stdin=None, timeout=TIMEOUT, check=True, env=None):
    """Run one client with HOME=home (so no user config leaks in) and a timeout."""
    need(argv[0])
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
                "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC"}
    full_env.update(env or {})
    try:
        proc = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout,
                              env=full_env, cwd=str(home))
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode("utf-8", "replace")[-4000:]
        err = (exc.stderr or b"").decode("utf-8", "replace")[-4000:]
        pytest.fail(f"{argv[0]} timed out after {timeout}s\n{out}\n{err}")
    result = Result(argv, proc)
    if check:
        assert result.returncode == 0, str(result)
    return result


# -- messages ------------------------------------------------------------------------------
def strip_trace(data):
    """(trace, rest): the leading Return-Path/Received fields (ours and fetchmail's)
    split from the message that follows them.  Works on LF or CRLF data."""
    lines = data.splitlines(keepends=True)
    i = 0
    while i < len(lines) and lines[i].split(b":", 1)[0].lower() in (b"return-path", b"received"):
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
    return b"".join(lines[:i]), b"".join(lines[i:])


def subject(data):
    for line in data.splitlines():
        if not line.strip():
            break
        if line.lower().startswith(b"subject:"):
            return line.split(b":", 1)[1].strip().decode()
    return None


def lf(data):
    return data.replace(b"\r\n", b"\n")


def local_maildir(path):
    """{subject: (flags, bytes, file path)} of a client's local Maildir folder."""
    out = {}
    for sub in ("new", "cur"):
        d = os.path.join(path, sub)
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else ():
            full = os.path.join(d, name)
            with open(full, "rb") as f:
                data = f.read()
            flags = name.partition(":2,")[2]
            out[subject(data)] = (flags, data, full)
    return out


def set_local_flags(path, flags):
    """Rename a local Maildir message to carry `flags` (moved to cur/, base kept)."""
    folder, name = os.path.split(os.path.dirname(path))[0], os.path.basename(path)
    target = os.path.join(folder, "cur", name.partition(":2,")[0] + ":2," + flags)
    os.rename(path, target)
    return target


def make_local_folder(root, name, messages):
    """A new Maildir folder under `root` with (file name, bytes) messages in new/."""
    path = os.path.join(root, name)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    for fname, data in messages:
        with open(os.path.join(path, "new", fname), "wb") as f:
            f.write(data)
    return path


# -- IMAP through imaplib (seeding and checking the server side) -----------------------------
class IMAP:
    """A small imaplib wrapper logged in as `user` on the plain IMAP port."""

    def __init__(self, port, user=ALICE, password=PASSWORD):
        import imaplib
        self.c = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        assert self.c.login(user, password)[0] == "OK"

    def close(self):
        try:
            self.c.logout()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def quote(name):
        return '"' + name + '"'

    def create(self, name):
        typ, data = self.c.create(self.quote(name))
        assert typ == "OK", data

    def append(self, folder, wire, flags=""):
        typ, data = self.c.append(self.quote(folder), f"({flags})" if flags else None, None, wire)
        assert typ == "OK", data

    def folders(self):
        typ, data = self.c.list()
        assert typ == "OK", data
        return {line.rsplit(b' "/" ', 1)[1].strip(b'"').decode() for line in data}

    def messages(self, folder):
        """{subject: (set of flags, wire bytes, uid)} read with EXAMINE (changes nothing)."""
        typ, data = self.c.select(self.quote(folder), readonly=True)
        assert typ == "OK", data
        out = {}
        if int(data[0]) == 0:
            return out
        typ, data = self.c.fetch("1:*", "(UID FLAGS BODY.PEEK[])")
        assert typ == "OK", data
        import imaplib
        for item in data:
            if isinstance(item, tuple):
                flags = {f.decode() for f in imaplib.ParseFlags(item[0])} - {"\\Recent"}
                uid = int(item[0].split(b"UID ", 1)[1].split()[0].rstrip(b")"))
                out[subject(item[1])] = (flags, item[1], uid)
        return out

    def uid_store(self, folder, uid, op, flags):
        assert self.c.select(self.quote(folder))[0] == "OK"
        typ, data = self.c.uid("STORE", str(uid), op, f"({flags})")
        assert typ == "OK", data

    def uid_expunge(self, folder, uid):
        self.uid_store(folder, uid, "+FLAGS", "\\Deleted")
        typ, data = self.c.expunge()
        assert typ == "OK", data


# -- fixtures (imported by the test modules) ------------------------------------------------
@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return tls_files(tmp_path_factory.mktemp("interop-tls"))


@pytest.fixture
def server(request, thread_guard, tmp_path, tls):
    # test_<client>_...: skip before starting anything when that client is missing
    need(request.function.__name__.split("_")[1])
    cert, key, _ = tls
    srv = Server(tmp_path / "srv", cert, key)
    yield srv
    srv.stop()


@pytest.fixture
def home(tmp_path):
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def ca(tls):
    return tls[2]


def delivered(server, address, folder="INBOX"):
    """{subject: (trace, message without trace)} of what the server stored (disk form)."""
    return {subject(data): strip_trace(data) for data in server.messages(address, folder).values()}


def wire_message(n, subj=None, body=None, to=ALICE):
    """Message n in wire form (CRLF), with lone-dot and dot-started lines in its body."""
    subj = subj or f"message {n}"
    body = body if body is not None else f"Body of message {n}.\r\n.\r\n..dots\r\n"
    if isinstance(body, str):
        body = body.encode()
    return (f"From: sender@remote.test\r\nTo: {to}\r\nSubject: {subj}\r\n"
            f"Message-ID: <m{n}.{subj.replace(' ', '-')}@remote.test>\r\n"
            f"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\n").encode() + body
