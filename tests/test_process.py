"""Tests for clevermail.process: `clevermail start`'s process-wide tuning (GIL switch
interval, descriptor limit, thread stack size).  Each test puts the interpreter back as
it found it.  That the paths a client drives fit the stack: test_thread_stack.py."""

import resource
import sys
import threading

import pytest

from clevermail import process


@pytest.fixture
def restore_process():
    interval = sys.getswitchinterval()
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    stack = threading.stack_size()
    yield interval, limits
    threading.stack_size(stack)
    sys.setswitchinterval(interval)
    resource.setrlimit(resource.RLIMIT_NOFILE, limits)     # lowering is always allowed


def test_tune_process_shortens_the_switch_interval_and_raises_the_fd_limit(restore_process):
    sys.setswitchinterval(0.005)                            # Python's default
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))
    process.tune_process()
    assert sys.getswitchinterval() == pytest.approx(process.SWITCH_INTERVAL)
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    assert threading.stack_size() == process.THREAD_STACK_SIZE


def test_tune_process_never_lengthens_a_shorter_interval(restore_process):
    sys.setswitchinterval(process.SWITCH_INTERVAL / 2)
    process.tune_process()
    assert sys.getswitchinterval() == pytest.approx(process.SWITCH_INTERVAL / 2)


def test_importing_the_package_changes_nothing():
    code = ("import resource, sys, threading\n"
            "now = lambda: (sys.getswitchinterval(), resource.getrlimit(resource.RLIMIT_NOFILE), "
            "threading.stack_size())\n"
            "before = now(); import clevermail.cli, clevermail.service; print(before == now())")
    import subprocess
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "True", out.stderr
