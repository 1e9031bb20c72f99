"""Helpers for the CLI tests run with click's CliRunner (test_cli.py,
test_cli_users.py): the fixtures `runner` and `cfg` (a config file in tmp_path), run()
(main with --config) and accounts() (the AccountStore the config names)."""

import pytest
from click.testing import CliRunner

from clevermail.accounts import AccountStore
from clevermail.cli import main
from clevermail.store import MailStore


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def cfg(tmp_path, write_config):
    return write_config(tmp_path)


def run(runner, cfg, *args, input=None, env=None):
    return runner.invoke(main, ["--config", cfg, *args] if cfg else list(args), input=input, env=env,
                         catch_exceptions=False)


def accounts(tmp_path):
    return AccountStore(str(tmp_path / "users.ini"), ["example.test", "localhost"])


def with_mail(runner, cfg, tmp_path):
    run(runner, cfg, "user", "add", "alice", "--password-stdin", input="pw\n")
    store = MailStore(str(tmp_path / "data"))
    store.deliver_local("", ["alice@example.test"], b"Subject: keep me\r\n\r\nx\r\n")
    return store.user_root("alice@example.test")
