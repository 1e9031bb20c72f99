"""Tests for clevermail.store.waiters: one folder's shared wake-up.  Every waiter asleep
polls the same descriptor, one write wakes them all, a waiter is woken once per change
until it looks (the two generation counters), no descriptor per waiter, and every
descriptor made is closed again."""

import select
import threading

import pytest

from clevermail.store.waiters import Waiters
from descriptors import fds

WAIT = 10.0     # bound for anything awaited; never asserted on


def readable(fd):
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def look(waiter):
    """What FolderView.changes does around its sync and its read of the index."""
    waiter.looking()
    waiter.looked()


@pytest.fixture
def waiters():
    return Waiters()


def test_a_new_waiter_looks_before_it_sleeps(waiters):
    waiter = waiters.join()
    assert waiter.woken and waiter.arm() is None      # never looked: read the changes first
    look(waiter)
    assert not waiter.woken
    fd = waiter.arm()
    assert fd is not None and not readable(fd)
    waiter.disarm()
    waiter.close()


@pytest.mark.parametrize("kind", ["wake", "wake_index"])
def test_a_change_fires_the_descriptor_every_sleeper_polls(waiters, kind):
    sleepers = [waiters.join() for _ in range(5)]
    for waiter in sleepers:
        look(waiter)
    armed = {waiter.arm() for waiter in sleepers}
    assert len(armed) == 1                  # one descriptor for all of them
    (fd,) = armed
    getattr(waiters, kind)()
    assert readable(fd)                     # one write woke them all
    assert all(waiter.woken for waiter in sleepers)
    for waiter in sleepers:
        waiter.disarm()
        assert waiter.arm() is None         # woken: look before sleeping again
        look(waiter)
        assert not waiter.woken
        fresh = waiter.arm()
        assert fresh is not None and not readable(fresh)
        waiter.disarm()
    for waiter in sleepers:
        waiter.close()


def test_a_change_between_two_looks_is_never_lost(waiters):
    waiter = waiters.join()
    look(waiter)
    waiters.wake_index()                    # after the look, before the sleep
    assert waiter.arm() is None
    # a delivery's wake-up while the waiter looks at the directories: its file may be
    # past that look, so the waiter looks again even though it read the index after
    waiter.looking()
    waiters.wake()
    waiter.looked()
    assert waiter.woken and waiter.arm() is None
    look(waiter)
    assert waiter.arm() is not None
    waiter.close()


def test_the_index_change_a_waiter_reads_does_not_wake_it_again(waiters):
    waiter = waiters.join()
    waiter.looking()
    waiters.wake_index()       # its own sync indexing a file, under the folder lock...
    waiter.looked()            # ...then its read of the changes, under the same lock
    assert not waiter.woken
    assert waiter.arm() is not None
    waiter.close()


def test_no_descriptor_per_waiter_and_none_left_behind(waiters):
    before = fds()
    sleepers = [waiters.join() for _ in range(200)]
    for waiter in sleepers:
        look(waiter)
        waiter.arm()
    assert len(fds() - before) == 1         # 200 sleepers, one descriptor
    waiters.wake()
    for waiter in sleepers[:100]:           # half of them back asleep on a fresh one
        waiter.disarm()
        look(waiter)
        waiter.arm()
    assert len(fds() - before) == 2         # the fired one (still polled) and the new one
    for waiter in sleepers[100:]:
        waiter.disarm()
    assert len(fds() - before) == 1         # the fired one closed with its last poller
    for waiter in sleepers:
        waiter.close()
        waiter.close()                      # twice counts once
    assert fds() <= before and len(waiters) == 0


def test_a_wake_with_nobody_asleep_makes_no_descriptor(waiters):
    before = fds()
    waiter = waiters.join()
    for _ in range(10):
        waiters.wake()
        waiters.wake_index()
    assert fds() <= before
    look(waiter)
    fd = waiter.arm()
    waiter.disarm()
    waiters.wake()                           # nobody polls it: kept for the next sleeper
    look(waiter)
    assert waiter.arm() == fd and not readable(fd)
    waiter.close()
    assert fds() <= before


def test_threads_asleep_on_the_folder_all_wake(waiters):
    count = 50
    asleep, woken = threading.Barrier(count + 1), []

    def sleeper():
        waiter = waiters.join()
        look(waiter)
        fd = waiter.arm()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        asleep.wait(WAIT)
        if poller.poll(WAIT * 1000):
            woken.append(waiter.woken)
        waiter.close()

    threads = [threading.Thread(target=sleeper) for _ in range(count)]
    for t in threads:
        t.start()
    asleep.wait(WAIT)
    waiters.wake()
    for t in threads:
        t.join(WAIT)
    assert woken == [True] * count and len(waiters) == 0


def test_callbacks_are_called_on_every_change_and_a_broken_one_is_logged(waiters, caplog):
    calls = []

    def broken():
        raise RuntimeError("boom")

    waiters.add(broken)
    waiters.add(lambda: calls.append(1))
    waiters.wake()
    waiters.wake_index()
    assert calls == [1, 1]
    assert "folder waiter failed" in caplog.text


def test_callbacks_are_swapped_whole(waiters):
    """add/remove replace the tuple, so a wake-up iterating the old one is never
    disturbed by a callback leaving during the call."""
    calls = []

    def leaving():
        calls.append("leaving")
        waiters.remove(leaving)

    waiters.add(leaving)
    waiters.add(lambda: calls.append("other"))
    waiters.add(leaving)                    # once only
    waiters.wake()
    waiters.wake()
    assert calls == ["leaving", "other", "other"]


def test_on_waiting_hears_of_the_first_waiter_and_the_last():
    heard = []
    waiters = Waiters(lambda: heard.append(len(waiters)))
    event = threading.Event()
    waiters.add(event.set)
    waiter = waiters.join()
    waiters.add(event.set)                  # already there: nothing
    waiters.remove(event.set)
    assert heard == [1]
    waiter.close()
    assert heard == [1, 0]
    waiters.remove(event.set)               # not there any more: nothing
    assert heard == [1, 0]
