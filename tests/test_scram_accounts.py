"""SCRAM-SHA-256 keys in users.ini (accounts.py) and SCRAM through the one login path
(login.py): written with every password the CLI sets, never the password itself;
read back for an exchange; the failure delay, the throttle, the authzid policy and
the log line exactly as for PLAIN.  The client is tests/scram_client.py."""

import base64
import logging
import types

import pytest
from click.testing import CliRunner

import fakes
from clevermail import login, scram
from clevermail.accounts import AccountStore
from clevermail.cli import main
from clevermail.login import Failed, Login
from clevermail.metrics import PromMetrics
from clevermail.netbase import Limits
from scram_client import ScramClient

DOMAINS = ["example.test", "localhost"]


def store(tmp_path):
    return AccountStore(str(tmp_path / "users.ini"), DOMAINS)


# -- users.ini --------------------------------------------------------------------------------
def test_the_cli_writes_keys_with_every_password_and_never_the_password(tmp_path, write_config):
    cfg = write_config(tmp_path)
    runner = CliRunner()
    assert runner.invoke(main, ["--config", cfg, "user", "add", "alice", "--password-stdin"],
                         input="first pass\n").exit_code == 0
    text = (tmp_path / "users.ini").read_text()
    assert "first pass" not in text and "scram = SCRAM-SHA-256$10000:" in text
    accounts = store(tmp_path)
    address, keys = accounts.scram_credentials("Alice@Example.test")
    assert address == "alice@example.test" and keys == scram.derive("first pass", keys.salt)
    assert accounts.has_scram()
    assert runner.invoke(main, ["--config", cfg, "user", "passwd", "alice", "--password-stdin"],
                         input="second pass\n").exit_code == 0
    _, new = store(tmp_path).scram_credentials("alice")
    assert new == scram.derive("second pass", new.salt) and new.salt != keys.salt
    assert "second pass" not in (tmp_path / "users.ini").read_text()
    shown = runner.invoke(main, ["--config", cfg, "user", "show", "alice"])
    assert "scram-sha-256: yes" in shown.output


def test_a_password_saslprep_refuses_leaves_no_keys_behind(tmp_path):
    accounts = store(tmp_path)
    accounts.add("alice", "plain")
    accounts.set_password("alice", "bell\u0007")
    assert accounts.scram_credentials("alice") == ("alice@example.test", None)
    assert accounts.authenticate("alice", "bell\u0007") is not None      # PLAIN still
    assert not accounts.has_scram()


def test_older_entries_unknown_names_and_broken_values(tmp_path, caplog):
    path = tmp_path / "users.ini"
    path.write_text(f"[bob@example.test]\npassword = {fakes.password_hash()}\n"
                    "[carol@example.test]\npassword = x\nscram = SCRAM-SHA-256$1:AA==$AA==:AA==\n")
    accounts = store(tmp_path)
    with caplog.at_level(logging.WARNING, logger="clevermail.accounts"):
        assert not accounts.has_scram()               # carol's value is no keys
    assert "the scram value of carol@example.test is not usable" in caplog.text
    assert "AA==" not in caplog.text
    assert accounts.scram_credentials("carol") == ("carol@example.test", None)
    assert accounts.scram_credentials("bob") == ("bob@example.test", None)
    assert accounts.scram_credentials("nobody") == (None, None)
    assert accounts.scram_credentials("bad name!") == (None, None)
    assert accounts.scram_credentials("bob@elsewhere.test") == (None, None)


def test_the_stand_in_secret_is_the_files_and_stays(tmp_path):
    accounts = store(tmp_path)
    before = accounts.scram_secret()            # no file yet: this process's
    accounts.add("alice", "pw")
    secret = accounts.scram_secret()
    assert secret != before and len(secret) == 32
    accounts.add("bob", "pw")
    accounts.set_password("alice", "other")
    assert store(tmp_path).scram_secret() == secret          # every process, every edit
    assert (tmp_path / "users.ini").read_text().index("scram_secret") < \
        (tmp_path / "users.ini").read_text().index("[alice@example.test]")


# -- the one login path ---------------------------------------------------------------------
class Session:
    """What Login uses of a session (as tests/test_login.py's FakeSession)."""

    def __init__(self, accounts, *lines, throttle=None):
        self.sent, self.lines = [], list(lines)
        self.reader = types.SimpleNamespace(readline=lambda limit: self.lines.pop(0) if self.lines else b"")
        self.log = logging.getLogger("clevermail.test-scram")
        self.debug = True
        self.peer = "192.0.2.7"
        self.protocol = "imap"
        self.server = types.SimpleNamespace(
            handler=types.SimpleNamespace(accounts=accounts, authenticate=accounts.authenticate),
            throttle=throttle or login.AuthThrottle(limit=10, window=60),
            limits=Limits(auth_failure_delay=0.25), metrics=PromMetrics())

    def send(self, data):
        self.sent.append(data)


@pytest.fixture
def slept(monkeypatch):
    calls = []
    monkeypatch.setattr(login, "time", types.SimpleNamespace(sleep=calls.append))
    return calls


def b64(text):
    return base64.b64encode(text.encode()).decode()


def run_login(accounts, client, ask_final=None, throttle=None):
    """A SCRAM login through Login.sasl with `client`; (the Login's session, the
    account or the LoginError raised)."""
    session = Session(accounts, throttle=throttle)

    def ask(challenge):
        text = base64.b64decode(challenge).decode()
        if text.startswith("r="):
            return b64((ask_final or client.final)(text))
        client.check(text)
        return ""
    try:
        return session, Login(session, prompt="+ ", line_limit=4096).sasl(
            "SCRAM-SHA-256", b64(client.first()), ask=ask)
    except login.LoginError as exc:
        return session, exc


def test_a_login_and_its_log_line(tmp_path, caplog, slept):
    caplog.set_level(logging.DEBUG, logger="clevermail")
    accounts = store(tmp_path)
    accounts.add("alice", "pw one")
    _, account = run_login(accounts, ScramClient("alice@example.test", "pw one"))
    assert account.address == "alice@example.test" and slept == []
    assert "auth ok user=alice@example.test (SCRAM-SHA-256)" in caplog.text
    assert "pw one" not in caplog.text


def test_failures_take_the_path_of_a_wrong_password(tmp_path, caplog, slept):
    """A wrong proof, an unknown name, a name without keys, a foreign authzid with the
    right proof and a broken message: each waits the delay, counts toward the
    throttle, logs one line and raises Failed."""
    caplog.set_level(logging.INFO, logger="clevermail")
    accounts = store(tmp_path)
    accounts.add("alice", "pw one")
    accounts.add("bob", "pw two")
    (tmp_path / "users.ini").write_text((tmp_path / "users.ini").read_text().replace(
        "scram = SCRAM", "# no keys: SCRAM", 1))        # alice's entry loses its keys
    accounts.add("carol", "pw three")
    throttle = login.AuthThrottle(limit=5, window=60)
    cases = [ScramClient("bob@example.test", "wrong"), ScramClient("nobody@example.test", "pw"),
             ScramClient("alice@example.test", "pw one"),
             ScramClient("carol@example.test", "pw three", authzid="bob@example.test")]
    results = [run_login(accounts, client, throttle=throttle)[1] for client in cases]
    results.append(run_login(accounts, ScramClient("bob@example.test", "pw two"),
                             ask_final=lambda server_first: "c=biws,r=nope,p=AAAA", throttle=throttle)[1])
    assert [type(r) for r in results] == [Failed] * 5
    assert [r.foreign_authzid for r in results] == [False, False, False, True, False]
    assert slept == [0.25] * 5
    assert throttle.blocked("192.0.2.7")
    assert [r.getMessage() for r in caplog.records if "auth failed" in r.getMessage()] == [
        "auth failed user='bob@example.test' (SCRAM-SHA-256)",
        "auth failed user='nobody@example.test' (SCRAM-SHA-256)",
        "auth failed user='alice@example.test' (SCRAM-SHA-256)",
        "auth failed user='carol@example.test' (SCRAM-SHA-256)",
        "auth failed user='bob@example.test' (SCRAM-SHA-256: nonce mismatch)"]
    session, result = run_login(accounts, ScramClient("carol@example.test", "pw three"), throttle=throttle)
    assert isinstance(result, login.Throttled) and session.sent == []     # nothing read


def test_cancel_and_bad_base64_are_not_failures(tmp_path, slept):
    accounts = store(tmp_path)
    accounts.add("alice", "pw")
    for initial, answers, error in (("*", [], login.Cancelled), (None, [b"*\r\n"], login.Cancelled),
                                    ("!!", [], login.Malformed), (None, [b"!!\r\n"], login.Malformed)):
        session = Session(accounts, *answers)
        with pytest.raises(error):
            Login(session, prompt="+ ", line_limit=100).sasl("SCRAM-SHA-256", initial)
    assert slept == []


def test_offered_only_while_some_account_has_keys(tmp_path):
    accounts = store(tmp_path)
    assert login.offered(accounts) == ("PLAIN", "LOGIN")
    accounts.add("alice", "pw")
    assert login.offered(accounts, ("PLAIN",)) == ("SCRAM-SHA-256", "PLAIN")


def test_scram_is_offered_only_once_every_account_has_keys(tmp_path):
    """A client picks the strongest mechanism offered and an account without keys
    cannot finish SCRAM: one such account keeps SCRAM from being offered at all."""
    path = tmp_path / "users.ini"
    path.write_text(f"[old@example.test]\npassword = {fakes.password_hash()}\n")
    accounts = store(tmp_path)
    assert not accounts.has_scram()                 # written before SCRAM existed
    accounts.add("new", "new pass")
    assert accounts.scram_credentials("new")[1] is not None
    assert not accounts.has_scram()                 # old@ could not log in with it
    assert login.offered(accounts) == ("PLAIN", "LOGIN")
    accounts.set_password("old", "set again")
    assert accounts.has_scram()
    assert login.offered(accounts) == (scram.MECHANISM, "PLAIN", "LOGIN")
    assert not store(tmp_path / "empty").has_scram()  # no account: nothing to offer
