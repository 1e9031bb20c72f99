"""Helpers for the account tests (test_accounts.py, test_accounts_names.py): the local
DOMAINS and the fixtures `users` (a users.ini path in tmp_path) and `store` (an
AccountStore on it)."""

import pytest

from clevermail.accounts import AccountStore

DOMAINS = ["example.test", "other.test"]


@pytest.fixture
def users(tmp_path):
    return str(tmp_path / "users.ini")


@pytest.fixture
def store(users):
    return AccountStore(users, DOMAINS)
