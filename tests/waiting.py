"""wait_for: the one bounded poll of the test suite (imported by test modules and by
relay_sink.py, whose helpers relay_procs.py runs in subprocesses)."""

import time


def wait_for(predicate, timeout=10.0, interval=0.01):
    """Call `predicate` until it returns something true, and return that value; past
    `timeout` seconds return its last (falsy) value, for the caller to assert on.

    The timeout is a bound against a hung test, never a timing assertion: a slow
    machine only waits longer."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
