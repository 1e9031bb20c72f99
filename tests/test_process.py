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
    code = ("import gc, resource, sys, threading\n"
            "now = lambda: (sys.getswitchinterval(), resource.getrlimit(resource.RLIMIT_NOFILE), "
            "threading.stack_size(), gc.get_threshold(), gc.get_freeze_count())\n"
            "before = now(); import clevermail.cli, clevermail.service; print(before == now())")
    import subprocess
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "True", out.stderr


def test_settle_heap_freezes_what_start_up_made_and_sets_the_thresholds():
    """In a child (the collector is the interpreter's): a start-up object is frozen, one
    made after is not, and the thresholds are GC_THRESHOLDS."""
    code = ("import gc\n"
            "from clevermail import process\n"
            "early = [{}]\n"
            "assert gc.get_freeze_count() == 0 and gc.get_threshold() != process.GC_THRESHOLDS\n"
            "process.settle_heap()\n"
            "late = [{}]\n"
            "frozen = gc.get_freeze_count()\n"
            "print(frozen > 1000, gc.get_threshold() == process.GC_THRESHOLDS,\n"
            "      any(o is early for o in gc.get_objects()), any(o is late for o in gc.get_objects()))")
    import subprocess
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["True", "True", "False", "True"], out.stderr


# A child that frees a 16 MiB block (which, left alone, raises glibc's mmap threshold
# past 8 MiB), then allocates and frees 8 MiB: the resident kB the free gave back.
_GIVEN_BACK = """
import sys
from clevermail import process
if sys.argv[1] == "fixed":
    assert process.fix_mmap_threshold()
def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
big = b"x" * (16 << 20)
del big
block = b"y" * (8 << 20)
held = rss()
del block
print(held - rss())
"""


def _given_back(mode):
    import os
    import subprocess
    out = subprocess.run([sys.executable, "-c", _GIVEN_BACK, mode], capture_output=True, text=True,
                         timeout=60, env=dict(os.environ, GLIBC_TUNABLES=""))
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


def test_fixed_mmap_threshold_gives_a_freed_block_back_to_the_system():
    import os
    if not os.confstr("CS_GNU_LIBC_VERSION") or not os.path.exists("/proc/self/status"):
        pytest.skip("glibc's malloc on Linux only")
    # glibc's dynamic threshold keeps the 8 MiB in the heap once freed: the control
    # shows the check can tell the two apart
    assert _given_back("default") < 4096
    assert _given_back("fixed") >= 7 * 1024


def test_fix_mmap_threshold_is_harmless_without_glibc(monkeypatch):
    import os
    monkeypatch.setattr(os, "confstr", lambda name: None)
    assert process.fix_mmap_threshold() is False
