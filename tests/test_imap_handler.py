"""Tests for clevermail.imap.handler.IMAPFileHandler: the storage side of IMAP, called
directly over a real MailStore and AccountStore in tmp_path."""

import os
import time

import pytest

from clevermail.store import FolderExists, InvalidName, NoSuchFolder
from imap_helpers import ALICE, BOB, PASSWORD, make_handler, message


@pytest.fixture
def handler(tmp_path):
    h = make_handler(tmp_path)
    h.store.ensure_user(ALICE)
    return h


@pytest.fixture
def store(handler):
    return handler.store


def names(handler, address=ALICE):
    return dict(handler.mailboxes(address))


def test_authenticate_makes_the_tree(tmp_path):
    h = make_handler(tmp_path)
    root = h.store.user_root(BOB)
    assert not os.path.exists(root)
    assert h.authenticate(BOB, "wrong") is None
    assert not os.path.exists(root)
    account = h.authenticate("Bob@Example.Test", PASSWORD)
    assert account.address == BOB
    for name in ("cur", "new", "tmp", ".Sent/cur", ".Drafts/cur", ".Trash/cur", ".Junk/cur", ".Archive/cur"):
        assert os.path.isdir(os.path.join(root, name)), name
    assert h.subscriptions(BOB) == ["Archive", "Drafts", "Junk", "Sent", "Trash"]
    assert h.authenticate("nobody@example.test", PASSWORD) is None


def test_mailboxes_of_new_account(handler):
    assert handler.mailboxes(ALICE) == [
        ("INBOX", ["\\HasNoChildren"]),
        ("Archive", ["\\HasNoChildren", "\\Archive"]),
        ("Drafts", ["\\HasNoChildren", "\\Drafts"]),
        ("Junk", ["\\HasNoChildren", "\\Junk"]),
        ("Sent", ["\\HasNoChildren", "\\Sent"]),
        ("Trash", ["\\HasNoChildren", "\\Trash"]),
    ]


def test_create_makes_superiors(handler):
    handler.create(ALICE, "A/B/C")
    got = names(handler)
    assert got["A"] == ["\\HasChildren"]
    assert got["A/B"] == ["\\HasChildren"]
    assert got["A/B/C"] == ["\\HasNoChildren"]
    with pytest.raises(FolderExists):
        handler.create(ALICE, "A/B")
    handler.create(ALICE, "INBOX/Sub")
    assert names(handler)["INBOX"] == ["\\HasChildren"]


@pytest.mark.parametrize("bad", ["..", "../x", "a/../b", "/etc", "a//b", "~x", "a/~b", "a\x00b",
                                 "a\\b", "x" * 300, "/".join("d" * 20)])
def test_invalid_names_create_nothing(handler, store, bad):
    before = sorted(os.listdir(store.user_root(ALICE)))
    with pytest.raises(InvalidName):
        handler.create(ALICE, bad)
    assert sorted(os.listdir(store.user_root(ALICE))) == before
    with pytest.raises(InvalidName):
        handler.open(ALICE, bad)
    with pytest.raises(InvalidName):
        handler.append(ALICE, bad, message(1), [], None)


def test_missing_parents_are_noselect(handler, store):
    handler.create(ALICE, "P/Q")
    store.delete_folder(ALICE, "P")
    assert names(handler)["P"] == ["\\HasChildren", "\\Noselect"]


def test_delete_unsubscribes(handler):
    handler.create(ALICE, "Old")
    handler.subscribe(ALICE, "Old", True)
    handler.delete(ALICE, "Old")
    assert "Old" not in names(handler)
    assert "Old" not in handler.subscriptions(ALICE)
    with pytest.raises(NoSuchFolder):
        handler.delete(ALICE, "Old")


def test_subscribe_twice_and_unsubscribe_unknown(handler):
    handler.subscribe(ALICE, "X", True)
    handler.subscribe(ALICE, "X", True)
    handler.subscribe(ALICE, "Y", False)
    assert handler.subscriptions(ALICE).count("X") == 1
    handler.subscribe(ALICE, "X", False)
    assert "X" not in handler.subscriptions(ALICE)


def test_rename_with_children_and_new_superiors(handler):
    handler.create(ALICE, "W/P")
    handler.append(ALICE, "W/P", message(1), [], None)
    handler.rename(ALICE, "W", "X/Y")
    got = names(handler)
    assert "W" not in got and "W/P" not in got
    assert got["X"] == ["\\HasChildren"] and got["X/Y"] == ["\\HasChildren"]
    assert handler.status(ALICE, "X/Y/P")["MESSAGES"] == 1


def test_rename_failures_create_nothing(handler, store):
    before = sorted(os.listdir(store.user_root(ALICE)))
    with pytest.raises(NoSuchFolder):
        handler.rename(ALICE, "Missing", "New/Sub")
    with pytest.raises(FolderExists):
        handler.rename(ALICE, "Sent", "Trash")
    with pytest.raises(InvalidName):
        handler.rename(ALICE, "Sent", "ok/../bad")
    assert sorted(os.listdir(store.user_root(ALICE))) == before


def test_rename_inbox_moves_messages(handler, store):
    store.deliver(ALICE, message(1))
    store.deliver(ALICE, message(2))
    handler.rename(ALICE, "INBOX", "Before")
    assert handler.status(ALICE, "INBOX")["MESSAGES"] == 0
    assert handler.status(ALICE, "Before")["MESSAGES"] == 2


def test_status(handler, store):
    store.deliver(ALICE, message(1))
    store.deliver(ALICE, message(2))
    st = handler.status(ALICE, "INBOX")
    assert st == {"MESSAGES": 2, "RECENT": 2, "UIDNEXT": 3, "UIDVALIDITY": st["UIDVALIDITY"], "UNSEEN": 2}
    assert st["UIDVALIDITY"] > 0
    folder = handler.open(ALICE, "INBOX")
    try:
        folder.claim_recent()
        folder.store_flags([1], {"S"}, "+")
    finally:
        handler.close(folder)
    st = handler.status(ALICE, "INBOX")
    assert (st["RECENT"], st["UNSEEN"]) == (0, 1)
    with pytest.raises(NoSuchFolder):
        handler.status(ALICE, "Nope")


def test_append_flags_date_and_uids(handler):
    when = time.mktime((2001, 2, 3, 4, 5, 6, 0, 0, -1))
    validity, uid = handler.append(ALICE, "Drafts", message(1), ["\\Draft", "\\Seen", "$Todo"], when)
    assert uid == 1
    validity2, uid2 = handler.append(ALICE, "Drafts", message(2), [], None)
    assert (validity2, uid2) == (validity, 2)
    folder = handler.open(ALICE, "Drafts")
    try:
        entry = folder.by_uid[1]
        assert folder.flag_names(entry.flags) == ("\\Draft", "\\Seen", "$Todo")
        assert entry.date == int(when)
        assert folder.read_message(1) == message(1)
        assert folder.uidvalidity == validity
    finally:
        handler.close(folder)
    with pytest.raises(NoSuchFolder):
        handler.append(ALICE, "Nope", message(1), [], None)


def test_copy_keeps_flags_and_remaps_keywords(handler, store):
    store.deliver(ALICE, message(1))
    store.deliver(ALICE, message(2))
    handler.append(ALICE, "Archive", message(0), ["$First"], None)   # Archive's 'a' = $First
    inbox = handler.open(ALICE, "INBOX")
    try:
        inbox.store_flags([2], inbox.letters_for(["$Second", "\\Flagged"]), "+")
        validity, pairs = handler.copy(inbox, [1, 2, 99], ALICE, "Archive")
        assert pairs == [(1, 2), (2, 3)]
        with pytest.raises(NoSuchFolder):
            handler.copy(inbox, [1], ALICE, "Nope")
        with pytest.raises(InvalidName):
            handler.copy(inbox, [1], ALICE, "../x")
    finally:
        handler.close(inbox)
    archive = handler.open(ALICE, "Archive")
    try:
        assert validity == archive.uidvalidity
        assert archive.flag_names(archive.by_uid[3].flags) == ("\\Flagged", "$Second")
        assert archive.read_message(2) == message(1)
    finally:
        handler.close(archive)


def test_users_are_kept_apart(handler, store):
    store.deliver(BOB, message(1, to=BOB))
    handler.create(ALICE, "Shared")
    assert "Shared" not in names(handler, BOB)
    assert handler.status(BOB, "INBOX")["MESSAGES"] == 1
    assert handler.status(ALICE, "INBOX")["MESSAGES"] == 0
