"""[sieve] in the config (settings.SieveSettings, sieve/interp.SieveLimits): the limits
reach the interpreter, the script store, ManageSieve's CAPABILITY, HAVESPACE and
PUTSCRIPT, and a reload changes them for the next run."""

import dataclasses
import socket

import pytest

from clevermail.config import ConfigError
from clevermail.sieve import parse
from clevermail.sieve.errors import SieveRuntimeError
from clevermail.settings import SieveSettings
from clevermail.sieve.interp import DEFAULT_LIMITS, Envelope, SieveLimits, evaluate
from conftest import make_config
from interop_helpers import Server, tls_files
from managesieve_helpers import Client

MESSAGE = b"From: a@b.example\r\nSubject: hi\r\n\r\nbody\r\n"
ENV = Envelope("a@b.example", "alice@example.test", "alice@example.test")


def run(script, limits):
    return evaluate(parse('require ["vacation"];\n' + script), MESSAGE, ENV, limits=limits)


def test_defaults_and_typed_values(tmp_path):
    assert make_config(tmp_path).sieve.limits == DEFAULT_LIMITS
    conf = make_config(tmp_path, sieve={"max_scripts": 3, "max_script_size": 1000, "max_redirects": 1,
                                        "max_actions": 5, "vacation_min_days": 2, "vacation_max_days": 30})
    assert (conf.sieve.max_scripts, conf.sieve.max_script_size) == (3, 1000)
    assert conf.sieve.limits == SieveLimits(max_actions=5, max_redirects=1, vacation_min_days=2,
                                            vacation_max_days=30)


def test_a_day_range_upside_down_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"\[sieve\] vacation_min_days: more than vacation_max_days"):
        make_config(tmp_path, sieve={"vacation_min_days": 10, "vacation_max_days": 5})


def test_the_interpreter_keeps_to_the_limits():
    two = 'redirect "r1@b.example"; redirect "r2@b.example";'
    assert len(run(two, SieveLimits(max_redirects=2))) == 2
    with pytest.raises(SieveRuntimeError, match="more than 1 redirects"):
        run(two, SieveLimits(max_redirects=1))
    with pytest.raises(SieveRuntimeError, match="more than 1 actions"):
        run('keep; redirect "r1@b.example";', SieveLimits(max_actions=1))
    (vacation, _) = run('vacation :days 60 "away";', SieveLimits(vacation_max_days=30))
    assert vacation.days == 30
    (vacation, _) = run('vacation :days 1 "away";', SieveLimits(vacation_min_days=3))
    assert vacation.days == 3


@pytest.fixture
def server(tmp_path, thread_guard):
    cert, key, _ = tls_files(tmp_path)
    server = Server(tmp_path / "srv", cert, key, managesieve={"listen": ["127.0.0.1:0"]},
                    sieve={"max_scripts": 1, "max_script_size": 100, "max_redirects": 2})
    try:
        yield server
    finally:
        server.stop()


def _client(server):
    c = Client(socket.create_connection(("127.0.0.1", server.port("managesieve")), timeout=30), None)
    lines, _ = c.response()
    return c, lines


def test_managesieve_follows_the_section_and_a_reload(server):
    c, lines = _client(server)
    try:
        assert '"MAXREDIRECTS" "2"' in lines
        c.login()                   # loopback: PLAIN without TLS
        c.expect('HAVESPACE "a" 100', 'OK "PUTSCRIPT would succeed"')
        status = c.cmd('HAVESPACE "a" 101')[1]
        assert status.startswith("NO (QUOTA/MAXSIZE)")
        c.put("one", "keep;\n")
        assert c.cmd('PUTSCRIPT "two" {6+}\r\nkeep;\n')[1].startswith("NO (QUOTA/MAXSCRIPTS)")
        c.expect("LOGOUT", 'OK "logout completed"')
    finally:
        c.close()
    service = server.service
    service.reload(dataclasses.replace(service.settings, sieve=SieveSettings(
        max_scripts=5, max_script_size=100, limits=SieveLimits(max_redirects=7))))
    assert service.sieve.limits.max_redirects == 7
    c, lines = _client(server)
    try:
        assert '"MAXREDIRECTS" "7"' in lines
        c.login()
        c.put("two", "keep;\n")             # five scripts allowed now
        c.expect("LOGOUT", 'OK "logout completed"')
    finally:
        c.close()
