"""CPU time of a server's processes while a benchmark runs (for bench_imaptest.py).

A server is named by its root processes (CleverMail: the `clevermail start` process,
whose workers are its children; Dovecot: its master, which starts a process per
login).  `tree_cpu(roots)` is the user + system time, in seconds, of the roots and
every live descendant, with what their exited children used (cutime/cstime: Dovecot's
imap processes end and are reaped by the master).  `CpuWindow` keeps the readings at
the start and at the end of a run, so `seconds` is what the server spent on it: beside
the ops/s, the CPU per command, the figure that says how much work a server does for
the same load whatever else the (shared) machine runs.
"""

import os

_TICK = os.sysconf("SC_CLK_TCK")


def _stats():
    """pid -> (ppid, utime + stime + cutime + cstime in ticks) of every process."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                text = f.read()
        except OSError:
            continue            # ended meanwhile
        fields = text[text.rindex(")") + 2:].split()
        # after the name: state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based
        out[int(entry)] = (int(fields[1]), sum(int(v) for v in fields[11:15]))
    return out


def tree_cpu(roots):
    """User + system seconds of `roots` and all their live descendants (see above)."""
    stats = _stats()
    children = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0, [r for r in roots if r in stats], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo.extend(children.get(pid, ()))
    return total / _TICK


def pids_running(pattern):
    """PIDs whose command line contains `pattern` (bytes compare, NULs as spaces)."""
    out, needle = [], pattern.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                line = f.read().replace(b"\0", b" ")
        except OSError:
            continue
        if needle in line:
            out.append(int(entry))
    return out


def machine_ticks(stat_line=None):
    """(all ticks, stolen ticks) of the machine's CPUs so far: /proc/stat's first line
    ("cpu user nice system idle iowait irq softirq steal ..."; guest time is inside
    user and nice already), or the line given.  (0, 0) where there is none."""
    if stat_line is None:
        try:
            with open("/proc/stat") as f:
                stat_line = f.readline()
        except OSError:
            return 0, 0
    fields = stat_line.split()
    if not fields or fields[0] != "cpu":
        return 0, 0
    values = [int(v) for v in fields[1:9]]
    return sum(values), (values[7] if len(values) > 7 else 0)


class CpuWindow:
    """The server's CPU seconds between start() and stop(); `roots()` names its root
    processes at each reading (a server started after the window opened is found at
    its first reading that sees it).  `steal`: the share of the machine's CPU time the
    hypervisor gave to other guests meanwhile (a virtual machine's steal time): on a
    shared host it moves a run's ops/s by tens of percent, so a round is read with it."""

    def __init__(self, roots):
        self.roots = roots
        self.first = self.last = None
        self._ticks = self._ticks_last = None

    def start(self):
        self.first = tree_cpu(self.roots())
        self._ticks = machine_ticks()

    def stop(self):
        self.last = tree_cpu(self.roots())
        self._ticks_last = machine_ticks()

    @property
    def seconds(self):
        if self.first is None or self.last is None:
            return None
        return self.last - self.first

    @property
    def steal(self):
        """Stolen ticks over all ticks in the window (0.0-1.0), or None."""
        if self._ticks is None or self._ticks_last is None:
            return None
        total = self._ticks_last[0] - self._ticks[0]
        return (self._ticks_last[1] - self._ticks[1]) / total if total > 0 else None
