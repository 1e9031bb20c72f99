"""Tests for clevermail.accounts: hashing, names, users.ini editing, reload."""

import os
import stat
import subprocess
import sys
import threading

import pytest

import base64

from clevermail import accounts as acc
from clevermail import accounts_file
from clevermail import passwords as pw
from clevermail.accounts import Account, AccountError, AccountStore, split_address
from clevermail.passwords import hash_password, verify_password

DOMAINS = ["example.test", "other.test"]


@pytest.fixture
def users(tmp_path):
    return str(tmp_path / "users.ini")


@pytest.fixture
def store(users):
    return AccountStore(users, DOMAINS)


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


# -- names ------------------------------------------------------------------------------
def test_canonical(store):
    assert store.canonical("alice") == "alice@example.test"
    assert store.canonical("  Alice ") == "alice@example.test"
    assert store.canonical("Bob@Other.TEST") == "bob@other.test"
    assert store.canonical("first.last") == "first.last@example.test"
    assert store.canonical("o'brien-x_y") == "o'brien-x_y@example.test"


@pytest.mark.parametrize("name, fragment", [
    ("", "empty account name"),
    ("   ", "empty account name"),
    ("../etc", "slashes"),
    ("a/b", "slashes"),
    ("a\\b", "slashes"),
    ("a b", "no spaces"),
    ("a\x00b", "control characters"),
    ("a\tb", "control characters"),
    ("a\x7fb", "control characters"),
    (".alice", "invalid local part"),
    ("alice.", "invalid local part"),
    ("a..b", "invalid local part"),
    ("..", "invalid local part"),
    ("a+b", "no '+'"),
    ("x" * 65, "invalid local part"),
    ("a@b@example.test", "invalid local part"),
    ("alice@", "invalid domain"),
    ("alice@bad_domain.test", "invalid domain"),
    ("alice@elsewhere.test", "is not a local domain"),
    ("@example.test", "invalid local part"),
])
def test_canonical_rejects(store, name, fragment):
    with pytest.raises(AccountError) as info:
        store.canonical(name)
    assert fragment in str(info.value)


def test_split_address_and_account():
    assert split_address(" Bob@Example.TEST ") == ("bob", "example.test")
    a = Account("bob@example.test")
    assert (a.address, a.local, a.domain) == ("bob@example.test", "bob", "example.test")


def test_is_local_domain(store):
    assert store.is_local_domain("EXAMPLE.test")
    assert store.is_local_domain("example.test.")
    assert not store.is_local_domain("example.org")


# -- international domains: one spelling, lower-case A-labels (IDNA 2008) -----------------------
IDN = "xn--bcher-kva.example"


@pytest.mark.parametrize("given, ascii_form", [
    ("bücher.example", IDN),
    ("Bücher.EXAMPLE.", IDN),          # UTS 46 mapping: case; the final dot goes
    (IDN.upper(), IDN),
    ("straße.de", "xn--strae-oqa.de"),  # IDNA 2008 keeps ß (IDNA 2003 made it "ss")
    ("Example.TEST", "example.test"),
])
def test_domain_to_ascii(given, ascii_form):
    assert acc.domain_to_ascii(given) == ascii_form


@pytest.mark.parametrize("bad", ["☃.example", "bü--cher.example", "-bü.example", "bü..example"])
def test_domain_to_ascii_refuses_what_is_no_idn(bad):
    # "☃.example" passes the stdlib's IDNA 2003 codec; IDNA 2008 disallows the symbol
    with pytest.raises(AccountError, match="invalid international domain name"):
        acc.domain_to_ascii(bad)


def test_u_label_and_a_label_name_the_same_account(users):
    store = AccountStore(users, ["example.test", "Bücher.example"])
    assert store.domains == ["example.test", IDN]
    account = store.add("Alice@bücher.example", "pw")
    assert account.address == f"alice@{IDN}"
    assert store.canonical("alice@BÜCHER.example") == f"alice@{IDN}"
    for spelling in ("alice@bücher.example", f"Alice+tag@{IDN}", "alice@Bücher.Example."):
        assert store.lookup(spelling).address == f"alice@{IDN}"
        assert store.is_local_domain(spelling.rpartition("@")[2])
    assert store.authenticate("alice@bücher.example", "pw").address == f"alice@{IDN}"
    assert store.lookup("alice@☃.example") is None
    assert not store.is_local_domain("☃.example")
    with pytest.raises(AccountError, match="invalid international domain name"):
        store.canonical("alice@☃.example")


# -- add / lookup / authenticate ---------------------------------------------------------------
def test_add_lookup_authenticate(store, users):
    account = store.add("Alice", "pw1")
    assert account.address == "alice@example.test"
    assert store.lookup("alice@example.test").address == "alice@example.test"
    assert store.lookup("ALICE@Example.Test").address == "alice@example.test"
    assert store.lookup("alice+tag@example.test").address == "alice@example.test"
    assert store.lookup("alice@other.test") is None
    assert store.lookup("alice@elsewhere.test") is None
    assert store.lookup("bob@example.test") is None
    assert store.lookup("") is None
    assert store.lookup("alice") is None          # lookup takes addresses, not bare names
    assert store.authenticate("alice", "pw1").address == "alice@example.test"
    assert store.authenticate("ALICE@EXAMPLE.TEST", "pw1").address == "alice@example.test"
    assert store.authenticate("alice", "PW1") is None
    assert store.authenticate("nobody", "pw1") is None
    assert store.authenticate("../x", "pw1") is None
    assert store.list() == ["alice@example.test"]



def test_lookup_ascii_is_lookup_for_a_normalised_domain(users):
    """RCPT TO normalises the domain once and hands the pieces to lookup_ascii: it must
    answer as lookup() does for the whole address (case, '+detail', leading blanks)."""
    store = AccountStore(users, ["example.test", "Bücher.example"])
    store.add("alice@example.test", "pw")
    store.add("alice@bücher.example", "pw")
    for address in ("alice@example.test", " ALICE+x@Example.Test.", "alice@bücher.example",
                    f"Alice@{IDN}", "bob@example.test", "+x@example.test", "alice@other.test"):
        local, _, domain = address.rpartition("@")
        found, expected = store.lookup_ascii(local, acc.domain_to_ascii(domain)), store.lookup(address)
        assert (found and found.address) == (expected and expected.address), address

def test_file_holds_only_hashes(store, users):
    store.add("alice", "clear-text-secret")
    text = open(users, encoding="utf-8").read()
    assert "clear-text-secret" not in text
    assert "[alice@example.test]" in text
    assert "password = scrypt$16384$8$1$" in text


def test_new_file_is_private_and_no_temp_left(store, users, tmp_path):
    store.add("alice", "pw")
    assert stat.S_IMODE(os.stat(users).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["users.ini", "users.ini.lock"]


def test_existing_mode_is_kept(store, users):
    store.add("alice", "pw")
    os.chmod(users, 0o640)
    store.add("bob", "pw")
    assert stat.S_IMODE(os.stat(users).st_mode) == 0o640


def test_edits_are_written_by_durable_atomic_write(store, users, monkeypatch):
    writes = []
    real = accounts_file.atomic_write
    monkeypatch.setattr(accounts_file, "atomic_write", lambda path, data, mode: writes.append((path, mode)) or real(path, data, mode))
    store.add("alice", "pw")
    store.set_password("alice", "pw2")
    assert writes == [(os.path.abspath(users), 0o600)] * 2
    assert store.authenticate("alice", "pw2") is not None


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


def test_add_duplicate_and_empty_password(store):
    store.add("alice", "pw")
    with pytest.raises(AccountError, match="already exists"):
        store.add("ALICE@example.test", "other")
    with pytest.raises(AccountError, match="empty password"):
        store.add("bob", "")
    assert store.list() == ["alice@example.test"]


def test_set_password(store):
    store.add("alice", "old")
    assert store.authenticate("alice", "old") is not None
    store.set_password("alice", "new")
    assert store.authenticate("alice", "old") is None
    assert store.authenticate("alice", "new") is not None
    with pytest.raises(AccountError, match="no such account"):
        store.set_password("bob", "x")
    with pytest.raises(AccountError, match="empty password"):
        store.set_password("alice", "")


def test_remove(store):
    store.add("alice", "pw")
    store.add("bob", "pw")
    assert store.authenticate("alice", "pw") is not None    # cached success
    store.remove("alice@EXAMPLE.test")
    assert store.lookup("alice@example.test") is None
    assert store.authenticate("alice", "pw") is None
    assert store.list() == ["bob@example.test"]
    with pytest.raises(AccountError, match="no such account"):
        store.remove("alice")


def test_failures_are_not_delayed_here(users, monkeypatch):
    # the failure delay is login.py's, applied once per failed login whatever its cause
    sleeps = []
    monkeypatch.setattr("time.sleep", sleeps.append)
    store = AccountStore(users, DOMAINS)
    store.add("alice", "pw")
    assert store.authenticate("alice", "wrong") is None
    assert store.authenticate("ghost", "pw") is None
    assert sleeps == []


def test_unknown_user_costs_a_verification(store, monkeypatch):
    store.add("alice", "pw")
    calls = []
    real = acc.verify_password
    monkeypatch.setattr(acc, "verify_password", lambda p, s: calls.append(s) or real(p, s))
    assert store.authenticate("ghost", "pw") is None
    assert store.authenticate("in valid", "pw") is None
    assert calls == [acc.dummy_hash(), acc.dummy_hash()]


def test_bad_hand_edited_section_does_not_hide_others(store, users):
    store.add("alice", "pw")
    with open(users, "a", encoding="utf-8") as f:
        f.write("\n[bad name/../x]\npassword = x\n[notlocal@elsewhere.test]\npassword = y\n")
    other = AccountStore(users, DOMAINS)
    assert other.list() == ["alice@example.test"]
    assert other.authenticate("alice", "pw") is not None


def test_missing_file_means_no_accounts(store):
    assert store.list() == []
    assert store.lookup("alice@example.test") is None
    assert store.authenticate("alice", "pw") is None


# -- a running server sees changes without restart -------------------------------------------
def test_other_instance_sees_add_change_and_remove(users):
    server = AccountStore(users, DOMAINS)
    cli = AccountStore(users, DOMAINS)
    assert server.lookup("alice@example.test") is None
    cli.add("alice", "one")
    assert server.lookup("alice@example.test").address == "alice@example.test"
    assert server.authenticate("alice", "one") is not None
    cli.set_password("alice", "two")
    assert server.authenticate("alice", "one") is None       # the cached success is void
    assert server.authenticate("alice", "two") is not None
    cli.remove("alice")
    assert server.lookup("alice@example.test") is None
    assert server.authenticate("alice", "two") is None


def test_other_process_add_is_seen(users, tmp_path):
    server = AccountStore(users, DOMAINS)
    assert server.list() == []
    code = ("import sys; from clevermail.accounts import AccountStore;"
            "s = AccountStore(sys.argv[1], ['example.test', 'other.test']);"
            "s.add('carol', 'from-child'); s.add('dave@other.test', 'x')")
    subprocess.run([sys.executable, "-c", code, users], check=True, timeout=60,
                   cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert server.list() == ["carol@example.test", "dave@other.test"]
    assert server.authenticate("carol", "from-child").address == "carol@example.test"


def test_concurrent_adds_from_threads_and_instances_lose_nothing(users, thread_guard):
    names = [f"user{i}" for i in range(12)]
    errors = []

    def add(name):
        try:
            AccountStore(users, DOMAINS).add(name, "pw")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert AccountStore(users, DOMAINS).list() == sorted(f"{n}@example.test" for n in names)


def test_concurrent_adds_from_processes_lose_nothing(users):
    code = ("import sys; from clevermail.accounts import AccountStore;"
            "s = AccountStore(sys.argv[1], ['example.test']);"
            "[s.add(f'{sys.argv[2]}{i}', 'pw') for i in range(4)]")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    procs = [subprocess.Popen([sys.executable, "-c", code, users, prefix], cwd=root) for prefix in ("p", "q", "r")]
    try:
        assert [p.wait(60) for p in procs] == [0, 0, 0]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    expected = sorted(f"{x}{i}@example.test" for x in "pqr" for i in range(4))
    assert AccountStore(users, DOMAINS).list() == expected


def test_unparsable_file_on_edit_leaves_store_usable(store, users):
    store.add("alice", "pw")
    with open(users, "a", encoding="utf-8") as f:
        f.write("this line is not ini\n")
    with pytest.raises(Exception):
        store.add("bob", "pw")
    # the lock taken for the failed edit was released: a repaired file can be edited again
    text = open(users, encoding="utf-8").read().replace("this line is not ini\n", "")
    with open(users, "w", encoding="utf-8") as f:
        f.write(text)
    done = []
    t = threading.Thread(target=lambda: done.append(store.add("bob", "pw")), daemon=True)
    t.start()
    t.join(10)
    assert [a.address for a in done] == ["bob@example.test"]


def test_unparsable_file_keeps_the_accounts_loaded_before(store, users, caplog):
    store.add("alice", "pw")
    server = AccountStore(users, DOMAINS)
    assert server.authenticate("alice", "pw") is not None
    with open(users, "a", encoding="utf-8") as f:
        f.write("this line is not ini\n")
    assert server.lookup("alice@example.test").address == "alice@example.test"
    assert server.list() == ["alice@example.test"]
    assert "cannot be read, keeping the accounts loaded before" in caplog.text


def test_scrypt_runs_at_most_once_per_core_at_once(monkeypatch):
    """Logins arriving together wait their turn for scrypt (16 MiB each) instead of all
    allocating at once; every one is still verified."""
    import threading
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
    import time
    deadline = time.monotonic() + 30
    while (running[0] < cores or len(waiters) < 2) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert running[0] == cores and len(waiters) == 2
    release.set()
    for t in threads:
        t.join(30)
    assert most[0] == cores
    assert results == [True] * (cores + 2)


def test_the_same_credentials_arriving_together_are_hashed_once(store, monkeypatch):
    """Logins waiting for their turn at scrypt find the credentials verified by the one
    before them (IMAP clients open several connections at once) and run no scrypt."""
    import threading
    import time
    store.add("alice", "pw")
    cores = pw._cores()
    release = threading.Event()
    calls = []
    real = pw.hashlib.scrypt

    def slow_scrypt(*args, **kwargs):
        calls.append(1)
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(pw.hashlib, "scrypt", slow_scrypt)
    results = []
    threads = [threading.Thread(target=lambda: results.append(store.authenticate("alice", "pw")))
               for _ in range(cores + 2)]
    for t in threads:
        t.start()
    waiters = pw._running._cond._waiters
    deadline = time.monotonic() + 30
    while (len(calls) < cores or len(waiters) < 2) and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for t in threads:
        t.join(30)
    assert [a.address for a in results] == ["alice@example.test"] * (cores + 2)
    assert len(calls) == cores          # the two that waited ran none
    # a wrong password waiting the same way is still checked, and fails
    assert store.authenticate("alice", "px") is None and len(calls) == cores + 1
