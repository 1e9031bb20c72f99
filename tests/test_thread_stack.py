"""The serving process gives its threads small stacks (process.THREAD_STACK_SIZE, so
that 10,000 session threads fit in memory and address space): the deepest work a
client can ask of a session, run in a real server whose threads have half that stack,
in a process of its own (tests/stack_probe.py), must complete, and hostile nesting
must end in RecursionError, not a crash."""

import os
import subprocess
import sys

from clevermail import process

TESTS = os.path.dirname(os.path.abspath(__file__))


def test_the_deepest_session_work_fits_half_the_thread_stack():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(TESTS), TESTS, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, os.path.join(TESTS, "stack_probe.py"),
                          str(process.THREAD_STACK_SIZE // 2)],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, (out.returncode, out.stdout, out.stderr[-2000:])
    lines = out.stdout.splitlines()
    assert lines == ["bodystructure OK True", "section OK", "search not OK",
                     "search or [b'1']", "search parens OK", "json RecursionError", "OK"], out.stdout
