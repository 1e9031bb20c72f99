"""Set-up shared by the tests of folder views and what IMAP builds on them
(test_store_view.py, test_store_lockfree.py, test_imap_selected_mailbox.py): the user,
a small message, and the fixtures `store` (a MailStore in tmp_path), `folder` (the
user's INBOX, open, holding messages 1-3, released after the test) and `elsewhere`
(the same INBOX as another process holds it: a second MailStore on the data dir)."""

import pytest

from clevermail.store import MailStore
from fakes import open_inbox

ALICE = "alice@example.test"


def message(n):
    return b"Subject: message %d\r\n\r\nbody %d\r\n" % (n, n)


@pytest.fixture
def store(tmp_path):
    return MailStore(tmp_path / "data")


@pytest.fixture
def folder(store):
    with open_inbox(store, ALICE, map(message, range(1, 4))) as folder:
        yield folder


@pytest.fixture
def elsewhere(tmp_path, folder):
    """The same INBOX as another process holds it."""
    other = MailStore(tmp_path / "data")
    f = other.open_folder(ALICE, "INBOX")
    yield f
    other.release_folder(f)
