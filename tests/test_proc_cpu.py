"""scripts/proc_cpu.py: the CPU time of a server's process tree that bench_imaptest.py
puts beside its ops/s (a child's own work, and a grandchild's once reaped, counted)."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))

import proc_cpu  # noqa: E402
from proc_cpu import CpuWindow, machine_ticks, pids_running, tree_cpu  # noqa: E402

# a parent that, once told, starts a child burning CPU, reaps it, then waits to be told
# to end
_PARENT = """
import subprocess, sys
sys.stdin.readline()
subprocess.run([sys.executable, "-c", "import time\\nend = time.process_time() + 0.3\\nwhile time.process_time() < end: pass"])
print("reaped", flush=True)
sys.stdin.readline()
"""


def test_a_reaped_grandchilds_cpu_counts_for_its_parent_tree():
    marker = "proc-cpu-test-%d" % os.getpid()
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, marker], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        window = CpuWindow(lambda: [parent.pid])
        window.start()
        parent.stdin.write("go\n")      # the grandchild burns its 0.3 s from now on
        parent.stdin.flush()
        assert parent.stdout.readline().strip() == "reaped"
        window.stop()
        assert window.seconds >= 0.25
        assert pids_running(marker) == [parent.pid]
        assert tree_cpu([parent.pid]) >= window.seconds
    finally:
        parent.stdin.write("\n")
        parent.stdin.close()
        parent.wait(timeout=30)
        parent.stdout.close()
    assert tree_cpu([parent.pid]) == 0          # gone: nothing counted


def test_the_machine_ticks_and_the_share_stolen_in_a_window(monkeypatch):
    # cpu user nice system idle iowait irq softirq steal guest guest_nice
    assert machine_ticks("cpu  100 0 50 800 10 0 5 35 20 0\n") == (1000, 35)
    assert machine_ticks("cpu0 1 2 3 4\n") == (0, 0)             # a CPU's line, not the sum
    assert machine_ticks("cpu  10 0 5 85\n") == (100, 0)          # a kernel without steal
    total, stolen = machine_ticks()
    assert total > 0 and 0 <= stolen <= total
    readings = iter([(1000, 35), (1400, 135)])
    monkeypatch.setattr(proc_cpu, "machine_ticks", lambda: next(readings))
    window = CpuWindow(lambda: [])
    assert window.steal is None
    window.start()
    window.stop()
    assert window.steal == 0.25 and window.seconds == 0
