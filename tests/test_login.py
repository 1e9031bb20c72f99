"""Tests for clevermail.login, without sockets: SASL decoding and exchanges, the
authzid policy, the failure delay, the throttle (fake clock) and peer normalisation.
The three protocols' sessions show the same behaviour in their own session tests."""

import base64
import logging
import types

import pytest

import fakes
from clevermail import login
from clevermail.accounts import AccountError
from clevermail.login import (AuthThrottle, Cancelled, Failed, Login, Malformed, ResponseTooLong,
                              Throttled, b64_text, decode_sasl_plain, exchange, normalize_peer,
                              same_identity)
from clevermail.metrics import PromMetrics
from clevermail.netbase import Limits
from clevermail.wire import LineTooLong


def _b64(raw):
    return base64.b64encode(raw).decode()


# -- SASL decoding ---------------------------------------------------------------------------
def test_b64_text():
    assert b64_text("Username:") == "VXNlcm5hbWU6"
    assert b64_text("Password:") == "UGFzc3dvcmQ6"


def test_decode_sasl_plain():
    assert decode_sasl_plain(_b64(b"\0alice\0s3cret")) == ("", "alice", "s3cret")
    assert decode_sasl_plain(_b64(b"admin\0alice\0p\xc3\xa4ss").encode()) == ("admin", "alice", "päss")


@pytest.mark.parametrize("value, why", [
    ("", "malformed PLAIN message"),
    ("not base64!", "invalid base64"),
    ("YWJj\r\n", "invalid base64"),
    (_b64(b"alice\0s3cret"), "malformed PLAIN message"),
    (_b64(b"\0\0pw"), "malformed PLAIN message"),
    (_b64(b"\0alice\0"), "malformed PLAIN message"),
    (_b64(b"\0a\0b\0c"), "malformed PLAIN message"),
    (_b64(b"\0al\xffice\0pw"), "PLAIN message is not UTF-8"),
])
def test_decode_sasl_plain_errors(value, why):
    with pytest.raises(Malformed) as info:
        decode_sasl_plain(value)
    assert str(info.value) == why


# -- SASL exchanges --------------------------------------------------------------------------
class Asker:
    """ask() for exchange(): records challenges, answers from a list."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.challenges = []

    def __call__(self, challenge):
        self.challenges.append(challenge)
        return self.answers.pop(0)


def test_plain_with_initial_response_asks_nothing():
    ask = Asker()
    assert exchange("PLAIN", _b64(b"\0alice\0pw"), ask) == ("", "alice", "pw")
    assert ask.challenges == []


def test_plain_continuation_is_an_empty_challenge():
    ask = Asker(_b64(b"bob\0alice\0pw"))
    assert exchange("PLAIN", None, ask) == ("bob", "alice", "pw")
    assert ask.challenges == [""]


def test_equals_sign_is_an_empty_initial_response():
    # "=" is no base64 at all: were it not read as empty, the reason would differ
    with pytest.raises(Malformed, match="malformed PLAIN message"):
        exchange("PLAIN", "=", Asker())
    ask = Asker(b64_text("pw"))
    assert exchange("LOGIN", "=", ask) == ("", "", "pw")
    assert ask.challenges == ["UGFzc3dvcmQ6"]


def test_login_mechanism_asks_username_then_password():
    ask = Asker(b64_text("alice"), b64_text("pä ss"))
    assert exchange("LOGIN", None, ask) == ("", "alice", "pä ss")
    assert ask.challenges == ["VXNlcm5hbWU6", "UGFzc3dvcmQ6"]
    ask = Asker(b64_text("pw"))
    assert exchange("LOGIN", b64_text("alice"), ask) == ("", "alice", "pw")
    assert ask.challenges == ["UGFzc3dvcmQ6"]


@pytest.mark.parametrize("mechanism, initial, answers", [
    ("PLAIN", None, ["*"]),
    ("PLAIN", "*", []),
    ("LOGIN", None, ["*"]),
    ("LOGIN", None, [b64_text("alice"), "*"]),
])
def test_star_cancels(mechanism, initial, answers):
    with pytest.raises(Cancelled):
        exchange(mechanism, initial, Asker(*answers))


@pytest.mark.parametrize("mechanism, initial, answers", [
    ("PLAIN", "!!!", []),
    ("LOGIN", "!!!", []),
    ("LOGIN", None, [b64_text("alice"), "%%%"]),
    ("LOGIN", _b64(b"al\xffice"), []),
])
def test_bad_base64_is_malformed(mechanism, initial, answers):
    with pytest.raises(Malformed):
        exchange(mechanism, initial, Asker(*answers))


def test_unknown_mechanism_is_the_callers_bug():
    with pytest.raises(ValueError):
        exchange("CRAM-MD5", None, Asker())


# -- Login: the reading side -----------------------------------------------------------------
class FakeReader:
    """LineReader's readline(limit) over a list of lines."""

    def __init__(self, *lines):
        self.lines = list(lines)

    def readline(self, limit):
        line = self.lines.pop(0) if self.lines else b""
        if len(line) > limit:
            raise LineTooLong()
        return line


class FakeHandler:
    def __init__(self, accounts):
        self.accounts = accounts
        self.authenticate = accounts.authenticate


class FakeSession:
    """What Login uses of a session: send, reader, log, debug, peer, server."""

    def __init__(self, tmp_path, *lines, delay=0.25, throttle=None, peer="192.0.2.7"):
        self.sent = []
        self.reader = FakeReader(*lines)
        self.log = logging.getLogger("clevermail.test-login")
        self.debug = True
        self.peer = peer
        self.protocol = "imap"
        self.server = types.SimpleNamespace(
            handler=FakeHandler(fakes.make_accounts(tmp_path / "users.ini")),
            throttle=throttle if throttle is not None else AuthThrottle(limit=10, window=60),
            limits=Limits(auth_failure_delay=delay), metrics=PromMetrics())

    def send(self, data):
        self.sent.append(data)


@pytest.fixture
def slept(monkeypatch):
    """The failure delays Login asked for (nothing really sleeps)."""
    calls = []
    monkeypatch.setattr(login, "time", types.SimpleNamespace(sleep=calls.append))
    return calls


def plain(user, password, authzid=""):
    return _b64(f"{authzid}\0{user}\0{password}".encode())


def test_continuation_uses_the_prompt_and_is_never_logged(tmp_path, caplog, slept):
    caplog.set_level(logging.DEBUG, logger="clevermail")
    secret = plain(fakes.ALICE, fakes.PASSWORD)
    s = FakeSession(tmp_path, secret.encode() + b"\r\n")
    account = Login(s, prompt="334 ", line_limit=100).sasl("PLAIN", None)
    assert account.address == fakes.ALICE
    assert s.sent == ["334 \r\n"]
    assert "C: ***" in caplog.text
    assert secret not in caplog.text and fakes.PASSWORD not in caplog.text
    assert f"auth ok user={fakes.ALICE} (PLAIN)" in caplog.text
    assert slept == []                          # success is not delayed


def test_over_long_line_non_ascii_and_eof(tmp_path, slept):
    s = FakeSession(tmp_path, b"x" * 101 + b"\r\n", "é\r\n".encode(), b"")
    lg = Login(s, prompt="+ ", line_limit=100)
    with pytest.raises(ResponseTooLong):
        lg.sasl("PLAIN", None)
    with pytest.raises(Malformed):
        lg.sasl("PLAIN", None)
    with pytest.raises(EOFError):
        lg.sasl("PLAIN", None)
    assert s.sent == ["+ \r\n"] * 3
    # none of these is a verified failure: no delay, nothing counted
    assert slept == [] and not s.server.throttle._fails


# -- the authzid policy, the delay, the throttle count, the log line --------------------------
def failure_lines(caplog):
    return [r.getMessage() for r in caplog.records if "auth failed" in r.getMessage()]


def test_foreign_authzid_fails_exactly_like_a_wrong_password(tmp_path, caplog, slept, monkeypatch):
    caplog.set_level(logging.INFO, logger="clevermail")
    verified = []
    s = FakeSession(tmp_path, throttle=AuthThrottle(limit=2, window=60))
    real = s.server.handler.authenticate
    s.server.handler.authenticate = lambda u, p: verified.append(u) or real(u, p)
    lg = Login(s, prompt="+ ", line_limit=100)
    with pytest.raises(Failed) as wrong:
        lg.sasl("PLAIN", plain(fakes.ALICE, "wrong"))
    with pytest.raises(Failed) as foreign:
        lg.sasl("PLAIN", plain(fakes.ALICE, fakes.PASSWORD, authzid=fakes.BOB))
    assert verified == [fakes.ALICE, fakes.ALICE]          # the password is checked both times
    assert slept == [0.25, 0.25]                           # the same delay
    assert s.server.throttle.blocked(s.peer)               # both counted (limit 2)
    assert failure_lines(caplog) == [f"auth failed user='{fakes.ALICE}' (PLAIN)"] * 2
    assert (wrong.value.foreign_authzid, foreign.value.foreign_authzid) == (False, True)
    with pytest.raises(Throttled):                         # refused before any reading
        lg.sasl("PLAIN", None)
    assert slept == [0.25, 0.25]
    logins = {result: s.server.metrics.registry.get_sample_value(
        "clevermail_logins_total", {"protocol": "imap", "mechanism": "plain", "result": result})
        for result in ("ok", "failed", "throttled")}
    assert logins == {"ok": None, "failed": 2, "throttled": 1}   # the metric cannot tell them apart either


def test_foreign_authzid_flag_does_not_depend_on_the_password(tmp_path, slept):
    lg = Login(FakeSession(tmp_path), prompt="+ ", line_limit=100)
    for password in ("wrong", fakes.PASSWORD):
        with pytest.raises(Failed) as info:
            lg.sasl("PLAIN", plain(fakes.ALICE, password, authzid=fakes.BOB))
        assert info.value.foreign_authzid


def test_authzid_naming_the_user_is_no_proxy(tmp_path, slept):
    lg = Login(FakeSession(tmp_path), prompt="+ ", line_limit=100)
    for authzid in (fakes.ALICE, "ALICE@Example.Test", "alice"):
        assert lg.sasl("PLAIN", plain("Alice", fakes.PASSWORD, authzid=authzid)).address == fakes.ALICE
    assert slept == []


def test_same_identity():
    def canonical(name):
        if " " in name:
            raise AccountError("bad")
        return name.lower() if "@" in name else f"{name.lower()}@example.test"
    assert same_identity("", "anyone", canonical)
    assert same_identity("alice", "ALICE@example.test", canonical)
    assert not same_identity("bob", "alice", canonical)
    assert same_identity("Bad Name", "bad name", canonical)      # refused names: as given
    assert not same_identity("bad name", "alice", canonical)


def test_password_login_and_zero_delay(tmp_path, slept):
    s = FakeSession(tmp_path, delay=0)
    lg = Login(s, prompt="+ ", line_limit=100)
    assert lg.password(fakes.ALICE, fakes.PASSWORD, "LOGIN command").address == fakes.ALICE
    with pytest.raises(Failed):
        lg.password("nobody", fakes.PASSWORD, "LOGIN command")
    assert slept == []                           # a zero delay is no call at all
    assert len(s.server.throttle._fails[s.peer]) == 1
    for result in ("ok", "failed"):
        assert s.server.metrics.registry.get_sample_value("clevermail_logins_total", {
            "protocol": "imap", "mechanism": "login_command", "result": result}) == 1


def test_no_throttle_configured(tmp_path, slept):
    s = FakeSession(tmp_path)
    s.server.throttle = None
    with pytest.raises(Failed):
        Login(s, prompt="+ ", line_limit=100).password(fakes.ALICE, "wrong", "USER/PASS")
    assert slept == [0.25]


# -- throttle ----------------------------------------------------------------------------------
def test_throttle_limit_and_window():
    now = [1000.0]
    th = AuthThrottle(limit=3, window=60, clock=lambda: now[0])
    assert not th.blocked("192.0.2.1")
    for _ in range(3):
        th.failed("192.0.2.1")
    assert th.blocked("192.0.2.1")
    assert not th.blocked("192.0.2.2")
    now[0] += 61
    assert not th.blocked("192.0.2.1")


def test_throttle_groups_ipv6_by_64():
    th = AuthThrottle(limit=2, window=60)
    th.failed("2001:db8:1:2::1")
    th.failed("2001:db8:1:2:ffff::9")
    assert th.blocked("2001:db8:1:2::77")
    assert not th.blocked("2001:db8:1:3::1")


def test_throttle_ipv4_mapped_counts_as_ipv4_not_as_one_ipv6_64():
    # the peers a session hands over are normalised when it starts (line_session)
    th = AuthThrottle(limit=2, window=60)
    peer = login.normalize_peer
    assert th.key(peer("::ffff:192.0.2.7")) == th.key("192.0.2.7") == "192.0.2.7"
    th.failed(peer("::ffff:192.0.2.7"))
    th.failed(peer("::ffff:192.0.2.7"))
    assert th.blocked("192.0.2.7")
    assert not th.blocked(peer("::ffff:198.51.100.9"))
    assert not th.blocked("198.51.100.9")


def test_throttle_normalises_nothing_again(monkeypatch):
    # the session normalised its peer once: the throttle takes it as it is
    calls = []
    monkeypatch.setattr(login, "normalize_peer", lambda a: calls.append(a) or a)
    th = AuthThrottle(limit=1, window=60)
    th.failed("192.0.2.7")
    assert th.blocked("192.0.2.7") and th.key("2001:db8::1") == "2001:db8::/64"
    assert calls == []


def test_throttle_loopback_and_odd_keys():
    th = AuthThrottle(limit=1, window=60)
    th.failed("127.0.0.1")
    assert th.blocked("127.0.0.1")
    th.failed("not-an-ip")
    assert th.blocked("not-an-ip")


# -- peers -------------------------------------------------------------------------------------
@pytest.mark.parametrize("given, seen", [
    ("::ffff:192.0.2.7", "192.0.2.7"),
    ("::FFFF:127.0.0.1", "127.0.0.1"),
    ("0:0:0:0:0:ffff:c000:207", "192.0.2.7"),     # the same address, spelt in full
    ("::ffff:1.2.3", "::ffff:1.2.3"),              # not an address: returned as given
    ("::ffff:2001:db8::1", "::ffff:2001:db8::1"),
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8::1", "2001:db8::1"),
    ("::1", "::1"),
    ("fe80::1%eth0", "fe80::1%eth0"),
    ("not-an-ip", "not-an-ip"),
    ("", ""),
])
def test_normalize_peer(given, seen):
    assert normalize_peer(given) == seen
