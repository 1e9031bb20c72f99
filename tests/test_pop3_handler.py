"""Tests for clevermail.pop3.handler.POP3FileHandler: the maildrop (a store FolderView
frozen at login), exclusive use, RETR's \\Seen and QUIT's expunge, called directly over
a real MailStore and AccountStore in tmp_path."""

import pytest

from clevermail.store import FolderInUse, MessageGone
from clevermail.store.view import FolderView, ViewMode, close_view, open_view
from pop3_helpers import ALICE, make_handler, message
from fakes import RETURN_PATH


@pytest.fixture
def handler(tmp_path):
    h = make_handler(tmp_path)
    for i in range(1, 4):
        h.store.deliver_local("", [ALICE], message(i))
    return h


@pytest.fixture
def drop(handler):
    d = handler.open_maildrop(ALICE)
    yield d
    handler.release(d)


def inbox_flags(store):
    """{uid: flag names} as an IMAP session would see them now."""
    view = open_view(store, ALICE, "INBOX", ViewMode.EXAMINE)
    try:
        return {m.uid: tuple(sorted(m.flags - {"\\Recent"}))
                for m in view.messages(range(1, len(view) + 1))}
    finally:
        close_view(store, view)


def test_maildrop_is_a_view_frozen_at_login(handler, drop):
    assert isinstance(drop.view, FolderView) and not hasattr(drop, "folder")
    assert drop.uids == [1, 2, 3]
    assert drop.sizes == [len(RETURN_PATH + message(i)) for i in (1, 2, 3)]
    assert (drop.count, drop.octets) == (3, sum(drop.sizes))
    assert drop.uidl(0) == f"{drop.uidvalidity}.1"
    handler.store.deliver_local("", [ALICE], message(4))            # new mail during the session
    other = open_view(handler.store, ALICE, "INBOX", ViewMode.SELECT)
    try:
        other.expunge([2])                              # an IMAP session expunges 2
    finally:
        close_view(handler.store, other)
    assert drop.uids == [1, 2, 3] and len(drop) == 3


def test_maildrop_takes_no_recent(handler, drop):
    assert drop.view.recent == set()                    # \Recent is IMAP's
    view = open_view(handler.store, ALICE, "INBOX", ViewMode.SELECT)
    try:
        assert view.recent == {1, 2, 3}                 # still there for IMAP
    finally:
        close_view(handler.store, view)


def test_exclusive_use_and_idempotent_release(handler):
    first = handler.open_maildrop(ALICE)
    with pytest.raises(FolderInUse):
        handler.open_maildrop(ALICE)
    handler.release(first)
    handler.release(first)
    store = handler.store
    assert store._open == {}                            # the folder went back once
    second = handler.open_maildrop(ALICE)
    handler.release(second)


def test_failed_open_releases_everything(handler, monkeypatch):
    def broken(address, name):
        raise OSError("disk on fire")
    monkeypatch.setattr(handler.store, "open_folder", broken)
    with pytest.raises(OSError):
        handler.open_maildrop(ALICE)
    monkeypatch.undo()
    drop = handler.open_maildrop(ALICE)                 # neither lock was kept
    handler.release(drop)


def test_open_message_and_gone(handler, drop):
    with handler.open_message(drop, 1) as f:
        assert f.read() == (RETURN_PATH + message(2)).replace(b"\r\n", b"\n")
    view = open_view(handler.store, ALICE, "INBOX", ViewMode.SELECT)
    try:
        view.expunge([2])
    finally:
        close_view(handler.store, view)
    with pytest.raises(MessageGone):
        handler.open_message(drop, 1)


def test_mark_seen_shows_in_imap(handler, drop):
    handler.mark_seen(drop, 0)
    assert inbox_flags(handler.store) == {1: ("\\Seen",), 2: (), 3: ()}
    view = open_view(handler.store, ALICE, "INBOX", ViewMode.SELECT)
    try:
        view.expunge([3])
    finally:
        close_view(handler.store, view)
    handler.mark_seen(drop, 2)                          # gone meanwhile: nothing to do


def test_commit_expunges_the_marked_only(handler, drop):
    assert handler.commit(drop) == 0
    drop.mark(0)
    drop.mark(2)
    assert not drop.mark(2)
    assert (drop.count, drop.marked_uids()) == (1, [1, 3])
    assert handler.commit(drop) == 2
    assert inbox_flags(handler.store) == {2: ()}
