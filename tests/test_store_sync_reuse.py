"""store/sync.py's reused looks: a look at a folder's directories begun after a point
(`next_mark`) serves a sync of a thread that asks only for the changes finished before
that point (`reuse_since`); every other sync looks, so a change by another process is
never missed for good.  "Another process" is a second MailStore on the same data
directory (test_store_lockfree.py)."""

import shutil
import threading
from threading import get_ident

import pytest

from clevermail.store.sync import next_mark, reuse_since
from view_fixtures import ALICE, elsewhere, folder, message, store  # noqa: F401 (fixtures)



@pytest.fixture
def reusing():
    """reuse_since for this thread, set by the test, taken out after it."""
    yield lambda point: reuse_since.__setitem__(get_ident(), point)
    reuse_since.pop(get_ident(), None)


def test_a_look_begun_after_the_point_serves_and_the_next_look_sees_what_came_since(
        folder, elsewhere, reusing):
    point = next_mark()
    assert folder.sync() is False           # a look begun after the point
    uid = elsewhere.append(message(4))
    reusing(point)
    assert folder.sync() is False           # served by that look: no look of its own
    assert uid not in folder.uids
    reuse_since.pop(get_ident())
    assert folder.sync() is True            # the next look sees it
    assert uid in folder.uids


def test_a_look_begun_before_the_point_does_not_serve(folder, elsewhere, reusing):
    assert folder.sync() is False
    uid = elsewhere.append(message(4))
    reusing(next_mark())
    assert folder.sync() is True
    assert uid in folder.uids


def test_a_later_point_of_another_caller_does_not_make_a_look_serve(folder, elsewhere, reusing):
    point = next_mark()
    uid = elsewhere.append(message(4))
    next_mark()                             # another session's command begins
    reusing(point)
    assert folder.sync() is True            # no look began after our point yet
    assert uid in folder.uids


def test_another_threads_point_leaves_this_threads_looks_alone(folder, elsewhere):
    point = next_mark()
    assert folder.sync() is False
    uid = elsewhere.append(message(4))
    other = threading.Thread(target=lambda: None)
    other.start()
    other.join()
    reuse_since[other.ident] = point
    try:
        assert folder.sync() is True
    finally:
        del reuse_since[other.ident]
    assert uid in folder.uids


def test_a_forced_sync_always_looks(folder, elsewhere, reusing):
    point = next_mark()
    assert folder.sync() is False
    uid = elsewhere.append(message(4))
    reusing(point)
    assert folder.sync(force=True) is True
    assert uid in folder.uids


def test_a_look_that_failed_serves_nothing(folder, reusing):
    point = next_mark()
    shutil.rmtree(folder.path)
    with pytest.raises(FileNotFoundError):
        folder.sync()
    reusing(point)
    with pytest.raises(FileNotFoundError):
        folder.sync()
