"""Tests for clevermail.session_threads: one thread per session, threads kept for the
next connection, never a job queued without a thread to take it, and a clean stop."""

import threading
import time

import pytest

from clevermail.session_threads import SessionThreads
from waiting import wait_for


class Jobs:
    """Jobs that block until released, recording which thread ran them."""

    def __init__(self):
        self.ran = []                   # (job id, thread)
        self.release = {}
        self.lock = threading.Lock()

    def run(self, job_id):
        with self.lock:
            self.ran.append((job_id, threading.current_thread()))
            gate = self.release.setdefault(job_id, threading.Event())
        assert gate.wait(10)

    def let_go(self, job_id):
        with self.lock:
            self.release.setdefault(job_id, threading.Event()).set()

    def threads_of(self, *ids):
        return [t for j, t in self.ran if j in ids]


@pytest.fixture
def jobs():
    return Jobs()


def test_each_concurrent_job_gets_its_own_thread(jobs, thread_guard):
    pool = SessionThreads(jobs.run, "t")
    try:
        for i in range(5):
            assert pool.submit(i)
        assert wait_for(lambda: len(jobs.ran) == 5)
        assert len({t for _, t in jobs.ran}) == 5
        assert pool.size == 5 and pool.waiting == 0
    finally:
        for i in range(5):
            jobs.let_go(i)
        pool.stop()
        pool.join(5)


def test_a_finished_thread_takes_the_next_job(jobs, thread_guard):
    pool = SessionThreads(jobs.run, "t")
    try:
        pool.submit("a")
        jobs.let_go("a")
        assert wait_for(lambda: pool.waiting == 1)
        pool.submit("b")
        assert wait_for(lambda: len(jobs.ran) == 2)
        assert jobs.threads_of("a") == jobs.threads_of("b")
        assert pool.size == 1
        assert jobs.threads_of("a")[0].name.startswith("t-")
    finally:
        jobs.let_go("b")
        pool.stop()
        pool.join(5)


def test_a_burst_never_waits_behind_a_busy_thread(jobs, thread_guard):
    """One waiting thread and three jobs at once: the other two get new threads at
    once (a job is never queued for a thread that is still busy with a session)."""
    pool = SessionThreads(jobs.run, "t")
    try:
        pool.submit("first")
        jobs.let_go("first")
        assert wait_for(lambda: pool.waiting == 1)
        for name in ("x", "y", "z"):
            pool.submit(name)
        assert wait_for(lambda: len(jobs.ran) == 4)     # all three running, none released yet
        assert len(set(jobs.threads_of("x", "y", "z"))) == 3
    finally:
        for name in ("x", "y", "z"):
            jobs.let_go(name)
        pool.stop()
        pool.join(5)


def test_idle_threads_end_after_the_idle_timeout(jobs, thread_guard):
    pool = SessionThreads(jobs.run, "t", idle_timeout=0.05)
    for i in range(3):
        pool.submit(i)
        jobs.let_go(i)
    assert wait_for(lambda: pool.size == 0)
    assert pool.waiting == 0
    # and a job after that starts a thread again
    pool.submit("later")
    assert wait_for(lambda: len(jobs.ran) == 4)
    jobs.let_go("later")
    assert wait_for(lambda: pool.size == 0)


def test_only_so_many_threads_wait_for_the_next_job(jobs, thread_guard):
    """After a mass close only `keep` threads stay to wait: the others end with their
    session, instead of all waking together later."""
    pool = SessionThreads(jobs.run, "t", keep=2)
    try:
        for i in range(5):
            pool.submit(i)
        assert wait_for(lambda: len(jobs.ran) == 5)
        for i in range(5):
            jobs.let_go(i)
        assert wait_for(lambda: pool.size == 2)
        assert pool.waiting == 2
    finally:
        pool.stop()
        pool.join(5)


def test_many_short_jobs_all_run_exactly_once(thread_guard):
    done, lock = [], threading.Lock()

    def run(i):
        with lock:
            done.append(i)

    pool = SessionThreads(run, "t", idle_timeout=0.01)   # threads come and go meanwhile
    for i in range(2000):
        assert pool.submit(i)
        if i % 97 == 0:
            time.sleep(0.02)
    assert wait_for(lambda: len(done) == 2000)
    assert sorted(done) == list(range(2000))
    pool.stop()
    pool.join(5)
    assert pool.size == 0


def test_stop_ends_waiting_threads_and_busy_ones_after_their_job(jobs, thread_guard):
    pool = SessionThreads(jobs.run, "t")
    pool.submit("idle")
    jobs.let_go("idle")
    pool.submit("busy")
    assert wait_for(lambda: pool.waiting == 1 and len(jobs.ran) == 2)
    pool.stop()
    assert not pool.submit("refused")           # nothing new after stop
    assert wait_for(lambda: pool.size == 1)            # the waiting thread is gone at once
    jobs.let_go("busy")
    pool.join(5)
    assert pool.size == 0
    assert [j for j, _ in jobs.ran] == ["idle", "busy"]


def test_a_job_that_raises_does_not_take_the_pool_down(thread_guard):
    calls = []

    def run(i):
        calls.append(i)
        if i == 0:
            raise RuntimeError("boom")

    pool = SessionThreads(run, "t")
    old_hook = threading.excepthook
    threading.excepthook = lambda args: None    # the dying thread's traceback
    try:
        pool.submit(0)
        assert wait_for(lambda: pool.size == 0)
        pool.submit(1)
        assert wait_for(lambda: calls == [0, 1])
    finally:
        threading.excepthook = old_hook
        pool.stop()
        pool.join(5)
