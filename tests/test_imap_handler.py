"""Tests for clevermail.imap.handler.IMAPFileHandler: the storage side of IMAP, called
directly over a real MailStore and AccountStore in tmp_path."""

import os
import time

import pytest

from clevermail.imap.handler import TreeNode
from clevermail.store import FolderExists, InvalidName, NoSuchFolder
from clevermail.store.folder import FolderStatus
from imap_helpers import ALICE, BOB, PASSWORD, make_handler, message
from fakes import RETURN_PATH


@pytest.fixture
def handler(tmp_path):
    h = make_handler(tmp_path)
    h.store.ensure_user(ALICE)
    return h


@pytest.fixture
def store(handler):
    return handler.store


def names(handler, address=ALICE):
    """name -> (children, selectable) of the user's folder tree."""
    return {n.name: (n.children, n.selectable) for n in handler.folder_tree(address)}


def count(handler, name, address=ALICE):
    return handler.status(address, name).messages


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


def test_folder_tree_of_new_account(handler):
    assert handler.folder_tree(ALICE) == (
        TreeNode("INBOX", False, True), TreeNode("Archive", False, True, ("\\Archive",)),
        TreeNode("Drafts", False, True, ("\\Drafts",)), TreeNode("Junk", False, True, ("\\Junk",)),
        TreeNode("Sent", False, True, ("\\Sent",)), TreeNode("Trash", False, True, ("\\Trash",)),
    )


def test_create_makes_superiors(handler):
    handler.create(ALICE, "A/B/C")
    got = names(handler)
    assert got["A"] == (True, True)
    assert got["A/B"] == (True, True)
    assert got["A/B/C"] == (False, True)
    with pytest.raises(FolderExists):
        handler.create(ALICE, "A/B")
    handler.create(ALICE, "INBOX/Sub")
    assert names(handler)["INBOX"] == (True, True)


@pytest.mark.parametrize("bad", ["..", "../x", "a/../b", "/etc", "a//b", "~x", "a/~b", "a\x00b",
                                 "a\\b", "x" * 300, "/".join("d" * 20)])
def test_invalid_names_create_nothing(handler, store, bad):
    before = sorted(os.listdir(store.user_root(ALICE)))
    with pytest.raises(InvalidName):
        handler.create(ALICE, bad)
    assert sorted(os.listdir(store.user_root(ALICE))) == before
    with pytest.raises(InvalidName):
        handler.open_view(ALICE, bad, readonly=True)
    with pytest.raises(InvalidName):
        handler.append(ALICE, bad, message(1), [], None)


def test_missing_parents_are_noselect(handler, store):
    handler.create(ALICE, "P/Q")
    store.delete_folder(ALICE, "P")
    assert names(handler)["P"] == (True, False)


def test_delete_keeps_the_subscription(handler):
    # RFC 3501 6.3.6: a name is never removed from the subscriptions unilaterally
    handler.create(ALICE, "Old")
    handler.subscribe(ALICE, "Old", True)
    handler.delete(ALICE, "Old")
    assert "Old" not in names(handler)
    assert "Old" in handler.subscriptions(ALICE)
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
    assert got["X"] == (True, True) and got["X/Y"] == (True, True)
    assert count(handler, "X/Y/P") == 1


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
    store.deliver_local("", [ALICE], message(1))
    store.deliver_local("", [ALICE], message(2))
    handler.rename(ALICE, "INBOX", "Before")
    assert count(handler, "INBOX") == 0
    assert count(handler, "Before") == 2


def test_status(handler, store):
    store.deliver_local("", [ALICE], message(1))
    store.deliver_local("", [ALICE], message(2))
    st = handler.status(ALICE, "INBOX")
    assert st == FolderStatus(messages=2, recent=2, uidnext=3, uidvalidity=st.uidvalidity, unseen=2,
                              highestmodseq=st.highestmodseq)
    assert st.highestmodseq > 1
    assert st.uidvalidity > 0
    view = handler.open_view(ALICE, "INBOX", readonly=False)     # claims \Recent
    try:
        handler.set_flags(view, [1], ["\\Seen"], "+")
    finally:
        handler.close_view(view)
    st = handler.status(ALICE, "INBOX")
    assert (st.recent, st.unseen) == (0, 1)
    with pytest.raises(NoSuchFolder):
        handler.status(ALICE, "Nope")


def test_append_flags_date_and_uids(handler):
    when = time.mktime((2001, 2, 3, 4, 5, 6, 0, 0, -1))
    validity, uid = handler.append(ALICE, "Drafts", message(1), ["\\Draft", "\\Seen", "$Todo"], when)
    assert uid == 1
    validity2, uid2 = handler.append(ALICE, "Drafts", message(2), [], None)
    assert (validity2, uid2) == (validity, 2)
    drafts = handler.open_view(ALICE, "Drafts", readonly=True)
    try:
        (msg,) = drafts.messages([1])
        assert msg.flags == {"\\Draft", "\\Seen", "$Todo", "\\Recent"}
        assert msg.internaldate == int(when)
        assert handler.read_message(drafts, msg) == message(1)
        assert drafts.uidvalidity == validity
    finally:
        handler.close_view(drafts)
    with pytest.raises(NoSuchFolder):
        handler.append(ALICE, "Nope", message(1), [], None)


def test_copy_keeps_flags_and_remaps_keywords(handler, store):
    store.deliver_local("", [ALICE], message(1))
    store.deliver_local("", [ALICE], message(2))
    handler.append(ALICE, "Archive", message(0), ["$First"], None)   # Archive's 'a' = $First
    inbox = handler.open_view(ALICE, "INBOX", readonly=False)
    try:
        handler.set_flags(inbox, [2], ["$Second", "\\Flagged"], "+")
        validity, pairs = handler.copy(inbox, [1, 2, 99], ALICE, "Archive")
        assert pairs == [(1, 2), (2, 3)]
        with pytest.raises(NoSuchFolder):
            handler.copy(inbox, [1], ALICE, "Nope")
        with pytest.raises(InvalidName):
            handler.copy(inbox, [1], ALICE, "../x")
    finally:
        handler.close_view(inbox)
    archive = handler.open_view(ALICE, "Archive", readonly=True)
    try:
        assert validity == archive.uidvalidity
        assert archive.messages([3])[0].flags == {"\\Flagged", "$Second", "\\Recent"}
        assert handler.read_message(archive, archive.messages([2])[0]) == RETURN_PATH + message(1)
    finally:
        handler.close_view(archive)


def test_users_are_kept_apart(handler, store):
    store.deliver_local("", [BOB], message(1, to=BOB))
    handler.create(ALICE, "Shared")
    assert "Shared" not in names(handler, BOB)
    assert count(handler, "INBOX", BOB) == 1
    assert count(handler, "INBOX") == 0


# -- the selected folder: every change through the handler ----------------------------

@pytest.fixture
def inbox(handler, store):
    for i in range(1, 5):
        store.deliver_local("", [ALICE], message(i))
    view = handler.open_view(ALICE, "INBOX", readonly=False)
    yield view
    handler.close_view(view)


def flags_of(view, uid):
    return view.messages([view.seq_of(uid)])[0].flags


def test_open_view_pairs_with_close_view(handler, store):
    view = handler.open_view(ALICE, "INBOX", readonly=True)
    folder = store._open[store.folder_path(ALICE, "INBOX")]
    assert folder.users == 1 and view.readonly and view.name == "INBOX"
    handler.close_view(view)
    assert folder.users == 0 and store._open == {}
    with pytest.raises(NoSuchFolder):
        handler.open_view(ALICE, "Nope", readonly=False)
    assert store._open == {}


def test_open_view_keeps_the_recent_a_session_owned(handler, inbox, store):
    other = handler.open_view(ALICE, "INBOX", readonly=False, owned_recent={2, 3, 99})
    try:
        assert inbox.recent == {1, 2, 3, 4}
        assert other.recent == {2, 3}            # 99 no longer exists
    finally:
        handler.close_view(other)


def test_set_flags_modes_and_keywords(handler, inbox):
    assert handler.set_flags(inbox, [1, 2], ["\\Flagged", "$Todo", "\\Recent"], "+") == [1, 2]
    assert flags_of(inbox, 1) == {"\\Flagged", "$Todo", "\\Recent"}
    assert handler.set_flags(inbox, [1, 2], ["\\Flagged"], "+") == []        # nothing new
    assert handler.set_flags(inbox, [1], ["$Todo", "$Unknown"], "-") == [1]
    assert flags_of(inbox, 1) == {"\\Flagged", "\\Recent"}
    assert "$Unknown" not in inbox.keywords()                              # removing defines nothing
    assert handler.set_flags(inbox, [2], ["\\Seen"], "=") == [2]
    assert flags_of(inbox, 2) == {"\\Seen", "\\Recent"}
    # the view's own changes are not reported back to it
    assert not inbox.changes()


def test_mark_seen_reports_only_newly_seen(handler, inbox):
    handler.set_flags(inbox, [2], ["\\Seen"], "+")
    assert handler.mark_seen(inbox, [1, 2, 3]) == {1, 3}
    assert handler.mark_seen(inbox, [1, 2, 3]) == set()
    assert [("\\Seen" in flags_of(inbox, u)) for u in (1, 2, 3, 4)] == [True, True, True, False]


def test_expunge_deleted_all_or_among(handler, inbox):
    handler.set_flags(inbox, [1, 2, 4], ["\\Deleted"], "+")
    assert handler.expunge_deleted(inbox, among={2, 3}) == [2]           # UID EXPUNGE 2:3
    assert handler.expunge_deleted(inbox) == [1, 4]
    assert handler.expunge_deleted(inbox) == []
    assert handler.status(ALICE, "INBOX").messages == 1


class LockWithAHook:
    """The folder's RLock, running `hook` once at the `at`-th moment another session
    could take it after the expunge began: when an outermost hold is let go."""

    def __init__(self, lock, hook, at=1):
        self.lock, self.hook, self.depth, self.at = lock, hook, 0, at

    def __enter__(self):
        self.lock.acquire()
        self.depth += 1
        return self

    def __exit__(self, *exc):
        self.depth -= 1
        self.lock.release()
        if self.depth == 0 and self.hook is not None:
            self.at -= 1
            if not self.at:
                hook, self.hook = self.hook, None
                hook()
        return False


@pytest.mark.parametrize("at", [1, 2, 3])
def test_expunge_never_removes_a_message_whose_deleted_flag_was_just_cleared(handler, inbox, monkeypatch, at):
    # another session's STORE -FLAGS \Deleted gets the folder lock at a moment it is
    # free (the first, second or third): if EXPUNGE chose its messages under one
    # hold and unlinked under another, the message would be lost although its
    # \Deleted was cleared
    other = handler.open_view(ALICE, "INBOX", readonly=False)
    handler.set_flags(inbox, [2], ["\\Deleted"], "+")
    cleared = []
    folder = inbox._folder      # the store's own lock, to interleave at its first free moment
    monkeypatch.setattr(folder, "lock", LockWithAHook(
        folder.lock, lambda: cleared.extend(handler.set_flags(other, [2], ["\\Deleted"], "-")), at))
    removed = handler.expunge_deleted(inbox)
    # either the clear came first and the message stays, or the expunge did (then
    # there was nothing left to clear); never cleared and lost
    assert (removed, cleared) in (([2], []), ([], [2]))
    assert handler.status(ALICE, "INBOX").messages == (3 if removed else 4)
    handler.close_view(other)


def test_expunge_and_copy_make_a_move(handler, inbox):
    validity, pairs = handler.copy(inbox, [3, 4], ALICE, "Trash")
    assert handler.expunge(inbox, [p[0] for p in pairs]) == [3, 4]
    assert (count(handler, "INBOX"), count(handler, "Trash")) == (2, 2)
    assert validity == handler.status(ALICE, "Trash").uidvalidity


def test_watch_wakes_on_delivery_until_unwatched(handler, inbox, store):
    waiter = handler.watch(inbox)
    assert handler.watch(inbox) is waiter           # one per view
    inbox.changes()
    assert not waiter.woken
    store.deliver_local("", [ALICE], message(5))
    assert waiter.woken
    folder = inbox._folder
    assert len(folder.waiters) == 1
    handler.unwatch(inbox)
    assert len(folder.waiters) == 0
    store.deliver_local("", [ALICE], message(6))
    assert inbox.changes().new == (5, 6)
