"""store/tree_events.py and MailStore's publishing of tree changes (IMAP NOTIFY's
MailboxName and SubscriptionChange come from them)."""

import threading

from clevermail.store import MailStore
from clevermail.store.tree_events import TreeEvent, TreeEvents

ALICE = "alice@example.test"


def test_mailstore_publishes_each_change_to_the_users_listeners(tmp_path):
    store = MailStore(tmp_path / "data")
    store.ensure_user(ALICE)
    seen, others = [], []
    store.tree_events.listen(ALICE, lambda e: seen.append(e) if e else None)
    store.tree_events.listen("bob@example.test", others.append)
    store.create_folder(ALICE, "Box")
    store.subscribe(ALICE, "Box")
    store.rename_folder(ALICE, "Box", "Crate")
    store.subscribe(ALICE, "Crate", on=False)
    store.delete_folder(ALICE, "Crate")
    me = threading.get_ident()
    assert seen == [TreeEvent("create", "Box", None, me), TreeEvent("subscribe", "Box", None, me),
                    TreeEvent("rename", "Crate", "Box", me), TreeEvent("unsubscribe", "Crate", None, me),
                    TreeEvent("delete", "Crate", None, me)]
    assert others == []
    listener = []
    store.tree_events.listen(ALICE, listener.append)
    store.tree_events.unlisten(ALICE, listener.append)   # an equal bound method will do
    store.create_folder(ALICE, "Later")
    assert listener == []


def test_a_change_is_busy_until_its_end_then_listeners_get_none(tmp_path):
    store = MailStore(tmp_path / "data")
    store.ensure_user(ALICE)
    seen = []
    store.tree_events.listen(ALICE, lambda e: seen.append((e, store.tree_events.busy(ALICE))))
    assert not store.tree_events.busy(ALICE)
    store.create_folder(ALICE, "Box")
    me = threading.get_ident()
    # the event comes while the change is under way, the None once it is over
    assert seen == [(TreeEvent("create", "Box", None, me), True), (None, False)]


def test_a_failed_change_publishes_nothing_and_a_broken_listener_fails_nothing(tmp_path):
    store = MailStore(tmp_path / "data")
    store.ensure_user(ALICE)
    seen = []

    def broken(event):
        raise RuntimeError("listener bug")
    store.tree_events.listen(ALICE, broken)
    store.tree_events.listen(ALICE, lambda e: seen.append(e) if e else None)
    store.create_folder(ALICE, "Box")           # the broken listener is logged, not raised
    try:
        store.create_folder(ALICE, "Box")
    except Exception:
        pass
    assert [e.kind for e in seen] == ["create"]


def test_the_origin_is_the_changing_thread():
    events, seen = TreeEvents(), []
    events.listen(ALICE, seen.append)
    t = threading.Thread(target=events.publish, args=(ALICE, "create", "X"))
    t.start()
    t.join()
    assert seen[0].origin == t.ident != threading.get_ident()
