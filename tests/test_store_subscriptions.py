"""Tests for clevermail.store.subscriptions: every rewrite of a user's subscriptions
file under the user's lock (no lost update between SUBSCRIBE and RENAME), durable,
and never under a store-wide lock."""

import fcntl
import os
import threading

import pytest

from clevermail import durable
from clevermail.store import MailStore, subscriptions
from fakes import flock_is_held

USER = "alice@example.test"


@pytest.fixture
def store(tmp_path):
    return MailStore(str(tmp_path / "data"))


def test_every_rewrite_holds_the_user_lock_and_is_durable(store, monkeypatch):
    """ensure (special-use folders), subscribe, unsubscribe and rename all rewrite the
    file with its directory fsynced, each while holding the user's lock."""
    writes = []
    real_write, real_sync = subscriptions.atomic_write, durable.fsync_dir
    synced = []

    def checked_write(path, data, *a, **kw):
        writes.append((os.path.basename(path), flock_is_held(os.path.dirname(path))))
        return real_write(path, data, *a, **kw)

    monkeypatch.setattr(subscriptions, "atomic_write", checked_write)
    monkeypatch.setattr(durable, "fsync_dir", lambda p: synced.append(p) or real_sync(p))
    root = store.ensure_user(USER)
    store.create_folder(USER, "Work")
    store.subscribe(USER, "Work")
    store.subscribe(USER, "Sent", on=False)
    store.rename_folder(USER, "Work", "Job")
    assert writes == [(subscriptions.FILENAME, True)] * 4
    assert synced.count(root) == 4
    assert store.subscriptions(USER) == ["Archive", "Drafts", "Junk", "Trash", "Job"]


def test_subscribe_and_rename_from_many_threads_lose_nothing(store, thread_guard):
    """RENAME used to rewrite the file without the lock SUBSCRIBE held: concurrent
    subscriptions vanished.  Now every update survives."""
    store.ensure_user(USER)
    for i in range(4):
        store.create_folder(USER, f"F{i}")
    errors = []

    def subscriber(n):
        try:
            for j in range(15):
                store.subscribe(USER, f"S{n}-{j}")
        except Exception as exc:        # reported below, never lost in a thread
            errors.append(exc)

    def renamer():
        try:
            for i in range(4):
                store.rename_folder(USER, f"F{i}", f"G{i}")
                store.rename_folder(USER, f"G{i}", f"H{i}")
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=subscriber, args=(n,)) for n in range(3)]
    threads.append(threading.Thread(target=renamer))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    subs = store.subscriptions(USER)
    assert [s for s in subs if s[:1] != "S" or "-" not in s] == ["Archive", "Drafts", "Junk", "Sent", "Trash"]
    assert sorted(s for s in subs if s[:1] == "S" and "-" in s) == sorted(f"S{n}-{j}" for n in range(3) for j in range(15))


def test_a_subscription_write_does_not_hold_up_other_users(store, monkeypatch, thread_guard):
    """No store-wide lock over the subscriptions' disk I/O: another user's folder opens
    while a subscription is being written."""
    store.ensure_user(USER)
    store.ensure_user("bob@example.test")
    real_write = subscriptions.atomic_write
    opened = []

    def write_while_another_opens(path, data, *a, **kw):
        t = threading.Thread(target=lambda: opened.append(
            store.release_folder(store.open_folder("bob@example.test", "INBOX")) or True))
        t.start()
        t.join(10)
        assert not t.is_alive()
        return real_write(path, data, *a, **kw)

    monkeypatch.setattr(subscriptions, "atomic_write", write_while_another_opens)
    store.subscribe(USER, "Lists")
    assert opened == [True]
    assert "Lists" in store.subscriptions(USER)
