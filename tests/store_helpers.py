"""Helpers for the folder tests (test_store_folder.py, test_store_durability.py): the
user, a small message, and the fixtures `store` (a MailStore in tmp_path) and `inbox`
(the user's INBOX Folder, released after the test)."""

import os

import pytest

from clevermail.store.mailstore import MailStore

USER = "alice@example.test"


def msg(n, extra=b""):
    return b"Subject: message %d\r\n\r\nbody %d\r\n" % (n, n) + extra


@pytest.fixture
def store(tmp_path):
    return MailStore(str(tmp_path / "data"))


@pytest.fixture
def inbox(store):
    f = store.open_folder(USER, "INBOX")
    yield f
    store.release_folder(f)


def names(folder, sub):
    return sorted(os.listdir(os.path.join(folder.path, sub)))
