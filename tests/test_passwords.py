"""Tests for clevermail.passwords: the scrypt hash format and its parameters, salting,
verification (constant-time, parameters read from the stored string, garbage refused),
no scrypt at import and one dummy hash, and at most one scrypt per core at once.
Accounts built on it are in test_accounts.py."""

import base64
import subprocess
import sys
import threading
import time

import pytest

from clevermail import passwords as pw
from clevermail.passwords import hash_password, verify_password


# -- hashing -------------------------------------------------------------------------
def test_hash_format_carries_parameters():
    h = hash_password("s3cret")
    scheme, n, r, p, salt, digest = h.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt)) == 16
    assert len(base64.b64decode(digest)) == 32
    assert "s3cret" not in h


def test_hash_is_salted():
    assert hash_password("same") != hash_password("same")


def test_verify_password():
    h = hash_password("pässword")
    assert verify_password("pässword", h) is True
    assert verify_password("password", h) is False
    assert verify_password("", h) is False


def test_verify_uses_parameters_from_the_string():
    salt = b"0123456789abcdef"
    digest = pw.hashlib.scrypt(b"pw", salt=salt, n=1024, r=4, p=2, dklen=24)
    b64 = lambda b: pw.base64.b64encode(b).decode()  # noqa: E731
    stored = f"scrypt$1024$4$2${b64(salt)}${b64(digest)}"
    assert verify_password("pw", stored) is True
    assert verify_password("px", stored) is False


@pytest.mark.parametrize("stored", ["", "plain", "md5$1$2$3$4$5", "scrypt$x$8$1$AAAA$AAAA",
                                    "scrypt$16384$8$1$!!!$AAAA", "scrypt$16384$8$1"])
def test_verify_rejects_garbage(stored):
    assert verify_password("pw", stored) is False


def test_verify_compares_in_constant_time(monkeypatch):
    calls = []
    real = pw.hmac.compare_digest
    monkeypatch.setattr(pw.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    h = hash_password("pw")
    assert verify_password("pw", h) and not verify_password("px", h)
    assert len(calls) == 2


def test_import_makes_no_scrypt_and_dummy_hash_is_made_once():
    # a fresh interpreter: importing the package must not run the dummy scrypt
    code = ("import hashlib, clevermail.passwords as a, clevermail.service;"
            "assert a._dummy_hash is None, 'hashed at import';"
            "calls = [];"
            "real = hashlib.scrypt;"
            "hashlib.scrypt = lambda *x, **k: calls.append(1) or real(*x, **k);"
            "import threading;"
            "ts = [threading.Thread(target=a.dummy_hash) for _ in range(8)];"
            "[t.start() for t in ts]; [t.join() for t in ts];"
            "assert len(calls) == 1, calls;"
            "assert a.verify_password('x', a.dummy_hash()) is False")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_scrypt_runs_at_most_once_per_core_at_once(monkeypatch):
    """Logins arriving together wait their turn for scrypt (16 MiB each) instead of all
    allocating at once; every one is still verified."""
    cores = pw._cores()
    release = threading.Event()
    lock = threading.Lock()
    running = [0]
    most = [0]
    real = pw.hashlib.scrypt

    def slow_scrypt(*args, **kwargs):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        release.wait(30)
        with lock:
            running[0] -= 1
        return real(*args, **kwargs)

    stored = hash_password("pw")
    monkeypatch.setattr(pw.hashlib, "scrypt", slow_scrypt)
    results = []
    threads = [threading.Thread(target=lambda: results.append(verify_password("pw", stored)))
               for _ in range(cores + 2)]
    for t in threads:
        t.start()
    waiters = pw._running._cond._waiters        # threads asleep on the semaphore
    deadline = time.monotonic() + 30
    while (running[0] < cores or len(waiters) < 2) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert running[0] == cores and len(waiters) == 2
    release.set()
    for t in threads:
        t.join(30)
    assert most[0] == cores
    assert results == [True] * (cores + 2)
