"""Tests for clevermail.accounts' AccountStore over users.ini: add, lookup and
authenticate, the file (hashes only, private mode kept, durable atomic writes),
password changes and removal, the failure paths (no delay here, a verification for
unknown users, hand-edited and unparsable files), changes seen by a running server from
other instances, threads and processes, and one scrypt for the same credentials
arriving together.  Names are in test_accounts_names.py, hashing in test_passwords.py."""

import os
import stat
import subprocess
import sys
import threading
import time

import pytest

from clevermail import accounts as acc
from clevermail import accounts_file
from clevermail import passwords as pw
from clevermail.accounts import AccountError, AccountStore
from accounts_helpers import DOMAINS, store, users  # noqa: F401 (fixtures)


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


def test_the_same_credentials_arriving_together_are_hashed_once(store, monkeypatch):
    """Logins waiting for their turn at scrypt find the credentials verified by the one
    before them (IMAP clients open several connections at once) and run no scrypt."""
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
