"""SCRAM-SHA-256 keys made at a login for accounts written before SCRAM
(accounts_upgrade.py): a login with the right password stores them (never the
password), a failed one writes nothing; a password set meanwhile, an account deleted
meanwhile or keys another process wrote first are left alone; a password SASLprep
refuses and an unwritable users file are settled with one log line; end to end, an
account without keys logs in with IMAP LOGIN on one MailService and then with SCRAM
on another on the same data dir (as a `[server] workers` process), and POP3 USER/PASS
and SMTP AUTH PLAIN store keys the same way."""

import imaplib
import logging
import poplib
import smtplib

import pytest

from clevermail import accounts_file, scram
from clevermail.accounts import AccountStore
from clevermail.passwords import hash_password
from clevermail.service import MailService
from conftest import make_config
from scram_client import ScramClient, imaplib_auth

DOMAINS = ["example.test"]
BOB, BOB_PW = "bob@example.test", "bob's old password"


def write_users(path, *entries):
    """users.ini as written before SCRAM: (address, password) -> a scrypt hash only."""
    path.write_text("".join(f"[{address}]\npassword = {hash_password(pw)}\n" for address, pw in entries))


@pytest.fixture
def users(tmp_path):
    path = tmp_path / "users.ini"
    write_users(path, (BOB, BOB_PW))
    return path


def keys_in(path, address):
    return AccountStore(str(path), DOMAINS).scram_credentials(address)[1]


# -- the store -----------------------------------------------------------------------------
def test_a_login_stores_keys_and_a_failed_one_writes_nothing(users, caplog, thread_guard):
    accounts = AccountStore(str(users), DOMAINS)
    before = users.read_bytes()
    with caplog.at_level(logging.DEBUG, logger="clevermail"):
        assert accounts.authenticate(BOB, "wrong") is None
        assert accounts.authenticate("nobody@example.test", BOB_PW) is None
        assert accounts.wait_upgrades(10)
        assert users.read_bytes() == before and not accounts.has_scram()
        assert accounts.authenticate(BOB, BOB_PW) is not None
        assert accounts.wait_upgrades(10)
    text = users.read_text()
    assert BOB_PW not in text and "scram = SCRAM-SHA-256$10000:" in text
    assert text.split("\n")[0].startswith("scram_secret = ")         # made with the first keys
    assert before.decode().split("\n")[1] in text                   # the scrypt hash as it was
    keys = keys_in(users, BOB)
    assert keys == scram.derive(BOB_PW, keys.salt)          # `user passwd`'s salt and iterations
    assert accounts.has_scram() and accounts.scram_credentials(BOB)[1] == keys
    assert "SCRAM-SHA-256 keys of bob@example.test made at login and stored" in caplog.text
    assert BOB_PW not in caplog.text and "wrong" not in caplog.text
    # with keys, a login asks nothing more: the file stays as it is
    stamp = users.stat().st_mtime_ns, users.read_bytes()
    assert accounts.authenticate(BOB, BOB_PW) is not None and accounts.wait_upgrades(10)
    assert (users.stat().st_mtime_ns, users.read_bytes()) == stamp


def test_keys_are_written_only_for_the_hash_the_login_proved(users):
    accounts = AccountStore(str(users), DOMAINS)
    old_hash = accounts._accounts()[BOB]
    old_keys = scram.derive(BOB_PW)
    # the password set again meanwhile: its own keys stay
    accounts.set_password(BOB, "new password")
    assert accounts._store_keys(BOB, old_hash, old_keys) is False
    assert keys_in(users, BOB) == scram.derive("new password", keys_in(users, BOB).salt)
    # deleted meanwhile: nothing comes back
    accounts.remove(BOB)
    assert accounts._store_keys(BOB, old_hash, old_keys) is False
    assert "bob@" not in users.read_text()


def test_two_processes_store_one_set_of_keys(users, thread_guard):
    """Two AccountStores on one users.ini (two worker processes): the one that comes
    second under the file lock finds keys and leaves them."""
    first, second = AccountStore(str(users), DOMAINS), AccountStore(str(users), DOMAINS)
    stored = first._accounts()[BOB]
    assert first._store_keys(BOB, stored, scram.derive(BOB_PW)) is True
    written = users.read_bytes()
    assert second._store_keys(BOB, stored, scram.derive(BOB_PW)) is False
    assert users.read_bytes() == written
    # both logging in: still one valid set
    assert first.authenticate(BOB, BOB_PW) and second.authenticate(BOB, BOB_PW)
    assert first.wait_upgrades(10) and second.wait_upgrades(10)
    keys = keys_in(users, BOB)
    assert keys == scram.derive(BOB_PW, keys.salt) and users.read_text().count("scram = ") == 1


def test_a_password_saslprep_refuses_is_settled_once(tmp_path, caplog, thread_guard):
    path = tmp_path / "users.ini"
    write_users(path, (BOB, "bell\u0007"))
    before = path.read_bytes()
    accounts = AccountStore(str(path), DOMAINS)
    with caplog.at_level(logging.INFO, logger="clevermail.accounts"):
        for _ in range(2):
            assert accounts.authenticate(BOB, "bell\u0007") is not None
            assert accounts.wait_upgrades(10)
    assert path.read_bytes() == before
    assert caplog.text.count("keeps PLAIN and LOGIN only") == 1


def test_an_unwritable_users_file_costs_one_warning(users, caplog, monkeypatch, thread_guard):
    def refuse(path, data, mode):
        raise PermissionError(13, "Permission denied", path)
    monkeypatch.setattr(accounts_file, "atomic_write", refuse)
    before = users.read_bytes()
    accounts = AccountStore(str(users), DOMAINS)
    with caplog.at_level(logging.INFO, logger="clevermail.accounts"):
        for _ in range(3):
            assert accounts.authenticate(BOB, BOB_PW) is not None     # the login is not hurt
            assert accounts.wait_upgrades(10)
    assert users.read_bytes() == before
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Permission denied" in warnings[0].getMessage()
    assert "user passwd" in warnings[0].getMessage() and BOB_PW not in caplog.text


def test_a_failure_while_making_keys_leaves_the_queue_working(users, caplog, monkeypatch, thread_guard):
    """An unexpected error in one upgrade is logged (no password in it) and the next
    request still gets a thread: the keys are made at a later login."""
    derive = scram.derive
    calls = []

    def broken_once(password, *args):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return derive(password, *args)
    monkeypatch.setattr(scram, "derive", broken_once)
    write_users(users, (BOB, BOB_PW), ("carol@example.test", "carol's password"))
    accounts = AccountStore(str(users), DOMAINS)
    with caplog.at_level(logging.INFO, logger="clevermail.accounts"):
        assert accounts.authenticate(BOB, BOB_PW) is not None
        assert accounts.wait_upgrades(10)
        assert accounts.authenticate("carol@example.test", "carol's password") is not None
        assert accounts.wait_upgrades(10)
    assert "SCRAM-SHA-256 keys of bob@example.test could not be made" in caplog.text
    assert keys_in(users, "carol@example.test") is not None and keys_in(users, BOB) is None
    assert BOB_PW not in caplog.text


# -- end to end ----------------------------------------------------------------------------
@pytest.mark.e2e
def test_login_then_scram_across_two_services_on_one_data_dir(tmp_path, thread_guard):
    conf = make_config(tmp_path, smtp={"submission_listen": ["127.0.0.1:0"]},
                       limits={"auth_failure_delay": 0})
    users = conf.server.users_file
    write_users(tmp_path / "users.ini", (BOB, BOB_PW), ("carol@example.test", "carol pw"),
                ("dave@example.test", "dave pw"))
    assert users == str(tmp_path / "users.ini")
    one = MailService(conf).start()
    two = None
    try:
        two = MailService(conf, worker_index=1).start()     # a worker process's service
        with imaplib.IMAP4("127.0.0.1", one.port("imap"), timeout=10) as imap:
            assert "AUTH=SCRAM-SHA-256" not in imap.capabilities
            with pytest.raises(imaplib.IMAP4.error):
                imap.login(BOB, "wrong")
            assert one.accounts.wait_upgrades(10)
            assert keys_in(users, BOB) is None                      # a failure wrote nothing
            assert imap.login(BOB, BOB_PW)[0] == "OK"               # IMAP LOGIN
        assert one.accounts.wait_upgrades(10)
        assert keys_in(users, BOB) is not None
        # POP3 USER/PASS and SMTP AUTH PLAIN store keys the same way
        pop = poplib.POP3("127.0.0.1", one.port("pop3"), timeout=10)
        try:
            pop.user("carol@example.test")
            assert pop.pass_("carol pw").startswith(b"+OK")
        finally:
            pop.quit()
        with smtplib.SMTP("127.0.0.1", one.port("submission"), timeout=10) as smtp:
            smtp.ehlo()
            assert "SCRAM-SHA-256" not in smtp.esmtp_features.get("auth", "")
            smtp.login("dave@example.test", "dave pw")
        assert one.accounts.wait_upgrades(10)
        assert keys_in(users, "carol@example.test") and keys_in(users, "dave@example.test")
        # every account has keys now: the other service (its own AccountStore, as another
        # process) reads the rewritten file, offers SCRAM and runs it for bob
        with imaplib.IMAP4("127.0.0.1", two.port("imap"), timeout=10) as imap:
            assert "AUTH=SCRAM-SHA-256" in imap.capabilities
            client = ScramClient(BOB, BOB_PW)
            assert imap.authenticate("SCRAM-SHA-256", imaplib_auth(client))[0] == "OK"
            assert client.server_signature is not None
        assert BOB_PW not in (tmp_path / "users.ini").read_text()
    finally:
        if two is not None:
            two.stop()
        one.stop()
