"""The look at the selected folder after each command (session.py flush_updates,
updates.py, store/sync.py `reuse_since`): after a command that looked at the folder
itself (STATUS, APPEND, EXPUNGE with CONDSTORE) that look serves, and a change another
process makes at any time is said by the first command begun after it, as before.
"Another process" is a second MailStore on the same data directory."""

import os

import pytest

from clevermail.store import MailStore
from clevermail.store.sync import reuse_since
from imap_helpers import (  # noqa: F401 (client, handler, open_session, selected, store: fixtures)
    ALICE, append, client, deliver, handler, message, open_session, selected, store)


@pytest.fixture
def elsewhere(store):
    """Alice's INBOX as another process holds it."""
    other = MailStore(os.path.dirname(store.mail_root))
    folder = other.open_folder(ALICE, "INBOX")
    yield folder
    other.release_folder(folder)


@pytest.fixture
def stats(monkeypatch):
    """The paths os.stat is asked for (a look at a folder stats its new/, then cur/;
    a writer of this process keeps its stamp of cur/ with a stat of its own)."""
    seen = []
    real = os.stat

    def stat(path, *args, **kw):
        seen.append(os.fspath(path) if not isinstance(path, int) else path)
        return real(path, *args, **kw)
    monkeypatch.setattr(os, "stat", stat)
    return seen


def looks(seen):
    return sum(1 for p in seen if isinstance(p, str) and p.endswith(os.sep + "new"))


@pytest.mark.parametrize("command", ['STATUS "INBOX" (MESSAGES)', "NOOP", "FETCH 1 (FLAGS)",
                                     'LIST "" *', "EXPUNGE"])
def test_a_change_by_another_process_is_said_by_the_next_command(selected, elsewhere, command):
    selected.expect(command)
    elsewhere.append(message(4))
    reply = selected.expect("NOOP")
    assert "* 4 EXISTS" in reply.untagged
    assert reuse_since == {}


def test_a_change_made_before_status_is_said_after_it(selected, elsewhere):
    elsewhere.append(message(4))
    reply = selected.expect('STATUS "INBOX" (MESSAGES)')
    assert reply.untagged[0] == '* STATUS "INBOX" (MESSAGES 4)'
    assert "* 4 EXISTS" in reply.untagged


def test_the_updates_after_status_of_the_selected_folder_reuse_its_look(selected, stats):
    selected.expect('STATUS "INBOX" (MESSAGES)')
    assert looks(stats) == 1
    del stats[:]
    selected.expect("NOOP")
    assert looks(stats) == 1


def test_append_to_the_selected_folder_says_its_message_and_another_process_change(
        selected, elsewhere):
    elsewhere.append(message(4))
    reply = append(selected, "INBOX", message(5))
    assert reply.tagged.startswith(reply.tagged.split()[0] + " OK [APPENDUID")
    assert "* 5 EXISTS" in reply.untagged
    elsewhere.append(message(6))
    assert "* 6 EXISTS" in selected.expect("NOOP").untagged


def test_expunge_with_condstore_says_its_expunges_once_and_the_next_change(
        client, store, elsewhere, stats):
    deliver(store, 3)
    client.expect("SELECT INBOX (CONDSTORE)")
    client.expect("STORE 2 +FLAGS.SILENT (\\Deleted)")
    del stats[:]
    reply = client.expect("EXPUNGE", code=None)
    assert reply.untagged == ["* 2 EXPUNGE"]
    assert "HIGHESTMODSEQ" in reply.tagged
    assert looks(stats) == 1            # the look of its updates served the one after
    elsewhere.append(message(7))
    assert "* 3 EXISTS" in client.expect("NOOP").untagged
