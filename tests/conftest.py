"""Shared fixtures for every test module.

- make_config(tmp_path, **sections): the typed Settings (clevermail.config.load_config
  with overrides) whose files live in tmp_path: data_dir tmp_path/data, users_file
  tmp_path/users.ini, every listener on 127.0.0.1:0, no auth failure delay, a fast
  relay.  Each keyword is a section merged over those test defaults (a misspelt
  section or key is a ConfigError):
  make_config(tmp_path, limits={"message_size": 4096}, smtp={"submission_listen": ["127.0.0.1:0"]}).
- write_config(tmp_path, **sections): the same settings written as an INI file; returns
  its path (for the CLI and `python -m clevermail --config X`).
- config, mailstore, accounts: ready-made objects built from make_config(tmp_path).
- thread_guard: fails the test if it leaves threads behind.
- wait_for (tests/waiting.py): the one bounded poll; import it from `waiting`.
- relay_env: a started relay_sink.ServiceEnv (a real MailService from write_config,
  relaying to a Sink whose RCPT answers are the test module's `replies` fixture).
- clevermail_server, clevermail_account: the pytest plugin's own fixtures
  (clevermail/pytest_plugin.py), loaded through its entry point when CleverMail is
  installed, and here otherwise (a source tree run without installing).
"""

import shutil
import sys
import threading

import pytest

from clevermail.config import load_config
from waiting import wait_for

TEST_DOMAINS = ["example.test", "localhost"]


def _test_sections(tmp_path):
    return {
        "server": {
            "hostname": "mail.example.test",
            "data_dir": str(tmp_path / "data"),
            "users_file": str(tmp_path / "users.ini"),
            "domains": list(TEST_DOMAINS),
        },
        "smtp": {"listen": ["127.0.0.1:0"]},
        "pop3": {"listen": ["127.0.0.1:0"]},
        "imap": {"listen": ["127.0.0.1:0"]},
        "limits": {"auth_failure_delay": 0},
        "relay": {"interval": 0.2},
        # SPF/DKIM/DMARC would ask the system's resolver about every test sender: off
        # here; the inbound tests turn them on with a DNS server on loopback
        "inbound": {"checks": False},
    }


def _merged(tmp_path, overrides):
    sections = _test_sections(tmp_path)
    for section, values in overrides.items():
        sections.setdefault(section, {}).update(values)
    return sections


def make_config(tmp_path, **overrides):
    """The Settings for a test; see the module docstring."""
    return load_config(path=None, overrides=_merged(tmp_path, overrides))


def _ini_value(value):
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) + "," if value else ","
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    return text if text else '""'


def write_config(tmp_path, name="clevermail.ini", **overrides):
    """The test config as an INI file in tmp_path; returns its path (a str)."""
    lines = []
    for section, values in _merged(tmp_path, overrides).items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_ini_value(value)}" for key, value in values.items())
        lines.append("")
    path = tmp_path / name
    path.write_text("\n".join(lines), encoding="utf-8")
    return str(path)


def pytest_configure(config):
    if "clevermail.pytest_plugin" not in sys.modules:     # no pytest11 entry point installed
        config.pluginmanager.import_plugin("clevermail.pytest_plugin")


@pytest.fixture(name="make_config")
def _make_config_fixture():
    return make_config


@pytest.fixture(name="write_config")
def _write_config_fixture():
    return write_config


@pytest.fixture(autouse=True)
def _no_config_env(monkeypatch):
    """A CLEVERMAIL_CONFIG from the developer's shell must not leak into tests."""
    monkeypatch.delenv("CLEVERMAIL_CONFIG", raising=False)


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path)


@pytest.fixture
def mailstore(config):
    from clevermail.store import MailStore
    return MailStore(config.server.data_dir)


@pytest.fixture
def accounts(config):
    from clevermail.accounts import AccountStore
    return AccountStore(config.server.users_file, config.server.domains)


@pytest.fixture
def thread_guard():
    """Fails the test when threads it started are still alive at its end (after a
    short grace period for threads that are already finishing)."""
    before = set(threading.enumerate())
    yield before

    def extra():
        return [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert wait_for(lambda: not extra(), timeout=5), f"threads left behind: {[t.name for t in extra()]}"



@pytest.fixture(scope="session")
def relay_users(tmp_path_factory):
    """users.ini with ServiceEnv's accounts (hashing is slow: made once, then copied)."""
    from relay_sink import ServiceEnv
    path = tmp_path_factory.mktemp("users") / "users.ini"
    ServiceEnv.make_users(path)
    return path


@pytest.fixture
def relay_env(thread_guard, tmp_path, relay_users, replies):
    """A started relay_sink.ServiceEnv for write_config(tmp_path) (its path in
    env.config_path) with relay.mx_port on a Sink(rcpt=replies); the module defines the
    `replies` fixture.  Stopped, with its sink, at teardown."""
    from relay_sink import ServiceEnv, Sink
    shutil.copy(relay_users, tmp_path / "users.ini")
    sink = Sink(rcpt=replies)
    path = write_config(tmp_path, relay={"mx_port": sink.port})
    env = ServiceEnv(load_config(path), sink)
    env.config_path = path
    try:
        yield env.start()
    finally:
        env.stop()
        sink.close()
