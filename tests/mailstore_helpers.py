"""Helpers of the MailStore tests (test_store_mailstore.py,
test_store_mailstore_folders.py, test_store_concurrency.py): the `data` fixture (the
data directory store_helpers' `store` uses) and run_child() (code run by another
interpreter on the same store)."""

import os

import pytest


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def data(tmp_path):
    return str(tmp_path / "data")
