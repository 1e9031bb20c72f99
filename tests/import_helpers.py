"""Fixtures of the `clevermail import` and `export` tests (test_import.py,
test_import_readers.py, test_export.py):
`cfg` (a config file with the test accounts in tmp_path) and `store` (a MailStore on
its data directory)."""

import pytest

from clevermail.store import MailStore

from fakes import make_accounts


@pytest.fixture
def cfg(tmp_path, write_config):
    make_accounts(tmp_path / "users.ini")
    return write_config(tmp_path)


@pytest.fixture
def store(tmp_path):
    return MailStore(tmp_path / "data")
