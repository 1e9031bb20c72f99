"""[server] cpu_affinity (clevermail/process.py): which CPUs a serving process may use,
and keeping every thread of it (those running and those started later) to one of them.
The affinity is process-wide state, so each test that sets it runs in a child process;
end to end with `clevermail start` and a worker: tests/test_workers.py."""

import os
import subprocess
import sys

import pytest

from clevermail import process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _usable():
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return []


needs_two = pytest.mark.skipif(len(_usable()) < 2, reason="needs two usable CPUs")

# A child that starts a thread, applies process.place(MODE, INDEX, CPUS), starts a second
# thread, and prints the CPUs of every thread of the process, one line each.
_CHILD = """
import json, os, sys, threading
from clevermail import process
mode, index, cpus, narrow = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
if narrow:
    os.sched_setaffinity(0, set(narrow))    # what a worker inherits from its main process
go, done = threading.Event(), threading.Event()
def wait():
    go.set()
    done.wait(30)
before = threading.Thread(target=wait)
before.start()
go.wait(30)
print(json.dumps(process.place(mode, index, cpus)))
go.clear()
after = threading.Thread(target=wait)
after.start()
go.wait(30)
for task in sorted(os.listdir("/proc/self/task")):
    print(json.dumps(sorted(os.sched_getaffinity(int(task)))))
done.set()
"""


def _place(mode, index, cpus, narrow=()):
    import json
    out = subprocess.run([sys.executable, "-c", _CHILD, mode, str(index), json.dumps(cpus),
                          json.dumps(list(narrow))],
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr
    first, *tasks = out.stdout.splitlines()
    assert len(tasks) == 3          # the main thread, one started before, one after
    return json.loads(first), [json.loads(t) for t in tasks]


def test_usable_cpus_of_a_worker_come_from_the_main_process_and_leave_the_environment():
    environ = {process.CPUS_ENV: "3,1,2"}
    assert process.usable_cpus(environ) == [1, 2, 3]
    assert process.CPUS_ENV not in environ      # nothing the worker starts inherits it


@pytest.mark.parametrize("value", ["", "a,b", "-1", ",,"])
def test_a_malformed_cpu_list_counts_as_absent(value):
    assert process.usable_cpus({process.CPUS_ENV: value}) == _usable()


def test_a_main_process_uses_its_own_affinity():
    assert process.usable_cpus({}) == _usable()


def test_encode_round_trips():
    assert process.usable_cpus({process.CPUS_ENV: process.encode_cpus([0, 5, 7])}) == [0, 5, 7]


def test_one_cpu_leaves_nothing_to_choose():
    assert process.keep_to_one_cpu(0, [4]) is None
    assert process.keep_to_one_cpu(3, []) is None


@needs_two
def test_auto_keeps_every_thread_to_the_indexed_cpu_round_robin():
    cpus = _usable()[:2]
    cpu, tasks = _place("auto", 3, cpus)        # process 3 of 2 CPUs: the second one
    assert cpu == cpus[1]
    assert tasks == [[cpus[1]]] * 3


@needs_two
def test_auto_for_the_main_process_takes_the_first_cpu():
    cpus = _usable()[:2]
    cpu, tasks = _place("auto", 0, cpus)
    assert cpu == cpus[0]
    assert tasks == [[cpus[0]]] * 3


@needs_two
def test_off_gives_a_worker_back_the_set_its_main_process_narrowed():
    cpus = _usable()[:2]
    cpu, tasks = _place("off", 1, cpus, narrow=[cpus[0]])
    assert cpu is None
    assert tasks == [cpus] * 3
