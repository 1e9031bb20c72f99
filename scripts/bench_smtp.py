#!/usr/bin/env python3
r"""Benchmark SMTP delivery: accepted messages per second, latency percentiles and CPU
milliseconds per message, for CleverMail against a bare fsync-per-message baseline and
any SMTP server already running on loopback (e.g. a local Postfix).

Servers.  CleverMail and the baseline each run in a separate process (this script with
--serve; bench_smtp_serve.py), started once and stopped at the end: CleverMail is
clevermail.service.MailService from a config file in a temp dir (INFO logging to a file),
the baseline a bare socketserver.ThreadingTCPServer speaking just enough SMTP that writes
and fsyncs each message before its 250.  --workers N runs CleverMail with [server]
workers = N (the main process and N-1 worker processes on one listener, as `clevermail
start` does); a comma-separated list runs each side by side, reported as "clevermail"
(1) and "clevermail-wN", and their CPU figures add up every process.
The clients are in bench_smtp_client.py.
--external NAME=HOST:PORT (repeatable) adds a server that is already running, reported
as NAME; the script neither starts nor stops it, and it must accept mail from 127.0.0.1
for user0..user9@bench.test (Postfix recipe below).  NAME=HOST:PORT=DIR also empties the
Maildirs under DIR (their new/ cur/ tmp/ files) at the start, so that every server starts
with empty mailboxes, as ours do (Postfix: DIR=/var/vmail/bench.test).  Nothing is
deleted during the run: on ext4 without a journal (as on the development VM) the inode
allocator skips, at a cost, inodes freed in the last 30 seconds, so deleting a scenario's
messages slowed down whichever server created files next.  After emptying, the script
waits that out.

The work dir (--dir; default a new directory under $TMPDIR, else /var/tmp) is probed
first: the time to create a file there is printed, with a warning when it is slow.  On
the development VM's ext4 it rose to 400-550 us of CPU per created file, against 10-20
us normally, for minutes after many files near it were deleted: a Maildir there loses
any comparison, so compare only when that figure is normal.

Clients.  --client python (default): raw-socket SMTP clients in lockstep like smtplib
(no pipelining), spread over --procs processes; each message goes to one of 10 local
accounts.  --client smtp-source: Postfix's C load generator (Debian package postfix),
far cheaper in CPU, which matters when clients and server share 2 cores; it sends every
message to user0@bench.test, its body is --sizes bytes *plus* its own few headers, it
has no time bound (killed after --seconds + 60 and reported as an error) and no
latency figures ("-").

Scenarios are every combination of --sizes x --concurrency x --modes, where mode "conn"
opens one connection per message (connect ... QUIT) and "reuse" sends every message of
a session on one connection.  A scenario stops after -n messages or (python clients)
--seconds, whichever comes first (both are reported).  Latency: connect (conn) or MAIL
(reuse) to the 250 after the data.

CPU.  "cpu ms/msg" is the server process's user+system CPU (/proc/<pid>/stat, all its
threads) per message and "sys%" the kernel's share of it (socket calls, open/link/fsync);
"-" for an external server, whose work may be spread over many processes (Postfix:
smtpd, cleanup, qmgr, virtual).  For every server "mach ms/msg" is the whole machine's
busy CPU per message (user+nice+system+irq+softirq jiffies of /proc/stat, not idle,
iowait or steal): it includes the clients and anything else running, so it only
compares servers measured alike at about the same time (use smtp-source and --rounds);
it is counted in whole ticks less steal, unlike a process's CPU, so it can even come out
below "cpu ms/msg".  "steal ms/msg" is CPU time the hypervisor took from this VM
meanwhile: when it is high, all figures are shaky.

Mode "session" sends no message: connect, EHLO, QUIT and close, the cost of a new
session alone (its "msgs" are sessions; latency from connect to the 221; --sizes does not
apply, and the scenario is run once per size given, so give one).  Python clients only
(smtp-source always sends a message); for the baseline (--baseline all) it is the floor of
a bare thread-per-connection Python server.  Against a Postfix
as installed (Debian defaults, listening on 25) nothing needs configuring:

    python scripts/bench_smtp.py --modes session --sizes 0 --concurrency 20 --seconds 10 \
        --baseline all --external postfix=127.0.0.1:25 --rounds 3 --workers 1,2

Rounds.  --rounds K runs the plan K times; within a round each scenario is run against
every server in turn (clevermail, baseline, externals) so that a noisy machine affects
all alike (in the reverse order every other round), and a summary gives the median msg/s
and mach ms/msg over the rounds, and each server's median msg/s over the first external
server's ("vs postfix").  After
each scenario the script waits --settle seconds, not measured, so that work a server
does after its 250 (Postfix's qmgr and virtual delivering the queue) is not billed to
the next server -- that tail is then missing from the server's own mach ms/msg.

--checks adds "clevermail-checks": the same server with the inbound checks on (SPF of
MAIL FROM and HELO, DKIM, DMARC, ARC, the Authentication-Results header), its DNS a
server on loopback in the serving process (tests/dns_server.py) whose answers the
resolver's cache keeps (TTL 300 s: warm after the first message); every client message
is then DKIM-signed (rsa-sha256, a 2048-bit key made for the run) by client.test, whose
DMARC policy is p=reject and whose SPF allows 127.0.0.1.  The other servers get the
same signed bytes (and check nothing: "clevermail" keeps its checks off).  --before
DIR adds the same server run from DIR, an earlier checkout, to the rounds: "checks-before"
with --checks, else "before".  Issue 16's on/off ratio: bench_slices.py checks.

    python scripts/bench_smtp.py                       # full: 20,000 per scenario
    git worktree add /tmp/old HEAD~2 && python scripts/bench_smtp.py --checks --before /tmp/old
    python scripts/bench_smtp.py --sizes 4096 --concurrency 20 --baseline all
    python scripts/bench_smtp.py -n 2000 --sizes 4096 --concurrency 20 --client smtp-source \
        --external postfix=127.0.0.1:25=/var/vmail/bench.test --rounds 3

A Postfix for --external (Debian, as root; "Local only" at install):

    apt-get install postfix
    postconf -e inet_interfaces=loopback-only mynetworks=127.0.0.0/8 \
        virtual_mailbox_domains=bench.test virtual_mailbox_base=/var/vmail \
        virtual_mailbox_maps=hash:/etc/postfix/vmailbox \
        virtual_uid_maps=static:5000 virtual_gid_maps=static:5000
    postconf -e default_process_limit=200      # room for 100 concurrent smtpd
    for i in $(seq 0 9); do echo "user$i@bench.test bench.test/user$i/"; done \
        > /etc/postfix/vmailbox                  # trailing "/" = Maildir
    postmap /etc/postfix/vmailbox
    mkdir -p /var/vmail && chown 5000:5000 /var/vmail
    postfix start                                # or postfix reload
"""

import argparse
import dataclasses
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_smtp_client import (Conn, client_worker, find_smtp_source, make_body,  # noqa: E402,F401
                               python_clients, smtp_source_clients)
from bench_smtp_serve import (DOMAIN, RECENTLY_FREED_SECONDS, SLOW_CREATE_US, USERS,  # noqa: E402,F401
                              default_parent, empty_mailboxes, file_create_cost, make_dkim_key,
                              serve_main)

TICK = os.sysconf("SC_CLK_TCK")


# -- driver --------------------------------------------------------------------------------
def cpu_seconds(pid):
    """(user, system) CPU seconds of a process, all its threads (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def tree_cpu_seconds(pid):
    """cpu_seconds of a process and of its children, theirs and so on ([server]
    workers: the worker processes); a process gone meanwhile counts nothing."""
    user = system = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            u, s = cpu_seconds(p)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
        user, system = user + u, system + s
    return user, system


def start_server(kind, workdir, script=__file__, extra=(), prefix=()):
    """Run `[prefix] script --serve KIND --dir WORKDIR [extra]` (a server child that
    prints "PORT n" and serves until its stdin closes; prefix: e.g. valgrind): (process, port)."""
    proc = subprocess.Popen([*prefix, sys.executable, os.path.abspath(script), "--serve", kind, "--dir", workdir,
                             *extra],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise SystemExit(f"{kind} server did not start")
    return proc, int(line.split()[1])


def stop_server(proc):
    proc.stdin.close()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def pct(sorted_values, p):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]


def machine_jiffies():
    """(busy, steal) jiffies of the whole machine, from the first line of /proc/stat
    (user nice system idle iowait irq softirq steal ...): busy = user+nice+system+irq+
    softirq (guest time is already inside user); idle and iowait are no work done, steal
    is time the hypervisor gave to someone else."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return v[0] + v[1] + v[2] + v[5] + v[6], v[7]


@dataclasses.dataclass
class Server:
    """A server under test: one we started (proc, workdir) or an external one (None)."""
    name: str
    addr: tuple
    proc: subprocess.Popen = None
    workdir: str = None
    spool: str = None               # Maildirs emptied before each scenario


def external_server(spec):
    """NAME=HOST:PORT[=DIR] -> Server, after checking that it greets (fail before any run)."""
    name, eq, hostport = spec.partition("=")
    hostport, _, spool = hostport.partition("=")
    host, colon, port = hostport.rpartition(":")
    if not (eq and colon and name and host and port.isdigit()):
        raise SystemExit(f"--external {spec!r}: expected NAME=HOST:PORT or NAME=HOST:PORT=DIR")
    if spool and not os.path.isdir(spool):
        raise SystemExit(f"--external {spec!r}: {spool} is not a directory")
    if name in ("clevermail", "baseline") or name.startswith("clevermail-"):
        raise SystemExit(f"--external {spec!r}: the name {name} is taken")
    try:
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            greeting = sock.recv(512)
            sock.sendall(b"QUIT\r\n")
    except OSError as exc:
        raise SystemExit(f"--external {spec!r}: cannot connect: {exc}")
    if not greeting.startswith(b"220"):
        raise SystemExit(f"--external {spec!r}: no SMTP greeting ({greeting[:60]!r})")
    return Server(name, (host, int(port)), spool=spool or None)


def run_scenario(server, mode, conc, size, args):
    cpu0 = tree_cpu_seconds(server.proc.pid) if server.proc else None
    mach0, t0 = machine_jiffies(), time.perf_counter()
    if args.client == "python":
        done, latencies, errors = python_clients(server.addr, mode, conc, size, args.n, args.seconds,
                                                 args.procs)
    else:
        done, latencies, errors = smtp_source_clients(args.smtp_source, server.addr, mode, conc, size,
                                                      args.n, args.seconds)
    wall, mach1 = time.perf_counter() - t0, machine_jiffies()
    per_msg = (lambda seconds: seconds * 1e3 / done) if done else (lambda seconds: float("nan"))
    r = {"msgs": done, "secs": wall, "rate": done / wall if wall else 0, "errors": errors,
         "mach_ms": per_msg((mach1[0] - mach0[0]) / TICK), "steal_ms": per_msg((mach1[1] - mach0[1]) / TICK),
         "p50": None, "p90": None, "p99": None, "cpu_ms": None, "sys_pct": None}
    if latencies is not None:
        r.update(p50=pct(latencies, 50) * 1e3, p90=pct(latencies, 90) * 1e3, p99=pct(latencies, 99) * 1e3)
    if cpu0 is not None:
        cpu1 = tree_cpu_seconds(server.proc.pid)
        user, system = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
        cpu = user + system
        r.update(cpu_ms=per_msg(cpu), sys_pct=100 * system / cpu if cpu else 0)
    return r


def fmt(value, width, spec):
    """A number, or "-" for a figure this server or client cannot give."""
    return f"{'-' if value is None else format(value, spec):>{width}}"


def median(values):
    values = [v for v in values if v == v]          # without NaN (scenarios with no message)
    return statistics.median(values) if values else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=20000, help="messages per scenario (default 20000)")
    ap.add_argument("--seconds", type=float, default=60,
                    help="time bound per scenario (default 60; smtp-source: killed after this + 60)")
    ap.add_argument("--sizes", default="4096,102400", help="message sizes in bytes")
    ap.add_argument("--concurrency", default="1,20,100", help="concurrent sessions")
    ap.add_argument("--modes", default="conn,reuse",
                    help="conn (one connection per message), reuse, session (connect, EHLO, QUIT: no message)")
    ap.add_argument("--baseline", choices=("target", "all", "none"), default="target",
                    help="baseline scenarios: target = 20 sessions x 4 KiB only (default)")
    ap.add_argument("--external", action="append", default=[], metavar="NAME=HOST:PORT[=DIR]",
                    help="also run every scenario against this already-running server (repeatable); "
                         "DIR: its Maildirs, emptied before each scenario")
    ap.add_argument("--client", choices=("python", "smtp-source"), default="python",
                    help="load generator: the Python clients (default) or Postfix's smtp-source")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the plan, servers interleaved (default 1)")
    ap.add_argument("--settle", type=float, default=1,
                    help="unmeasured pause after each scenario for a server's after-250 work (default 1)")
    ap.add_argument("--procs", type=int, default=2, help="Python client processes (default 2)")
    ap.add_argument("--dir", help="work directory (default: a temp dir, removed after)")
    ap.add_argument("--checks", action="store_true",
                    help="also run clevermail-checks: inbound SPF/DKIM/DMARC/ARC on, signed mail")
    ap.add_argument("--workers", default="1",
                    help="CleverMail's [server] workers, comma-separated to run several side by side: "
                         "1 is \"clevermail\", N > 1 \"clevermail-wN\" (default 1)")
    ap.add_argument("--before", metavar="DIR", help="also DIR's server (an earlier checkout) in the same rounds: "
                    "clevermail-checks's as checks-before with --checks, else clevermail's as before")
    ap.add_argument("--serve", choices=("clevermail", "clevermail-checks", "baseline"), help=argparse.SUPPRESS)
    ap.add_argument("--serve-workers", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve_main(args.serve, args.dir, args.serve_workers)

    sizes = [int(s) for s in args.sizes.split(",")]
    concs = [int(c) for c in args.concurrency.split(",")]
    modes = args.modes.split(",")
    if not set(modes) <= {"conn", "reuse", "session"}:
        raise SystemExit(f"--modes {args.modes}: conn, reuse or session")
    if "session" in modes and args.client != "python":
        raise SystemExit("--modes session: Python clients only (smtp-source always sends a message)")
    # check what can fail before starting anything
    externals = [external_server(spec) for spec in args.external]
    if len({x.name for x in externals}) < len(externals):
        raise SystemExit("--external: the names must differ")
    args.smtp_source = find_smtp_source() if args.client == "smtp-source" else None
    full = [(m, c, s) for s in sizes for c in concs for m in modes]
    variants = {("clevermail" if n == 1 else f"clevermail-w{n}"): n
                for n in dict.fromkeys(int(w) for w in args.workers.split(","))}
    plans = {**{name: full for name in variants}, **{x.name: full for x in externals}}
    if args.checks:
        plans["clevermail-checks"] = full
    before = ("checks-before" if args.checks else "before") if args.before else None
    if before:
        plans[before] = full
    if args.baseline != "none":
        plans["baseline"] = full if args.baseline == "all" else [(m, 20, 4096) for m in modes]
    # every scenario once, in plan order (the baseline target may be outside the full plan)
    scenarios = list(dict.fromkeys(sc for plan in plans.values() for sc in plan))

    base = args.dir or tempfile.mkdtemp(prefix="bench-smtp-", dir=default_parent())
    print(f"# {os.cpu_count()} CPUs, work dir {base}, n={args.n}, bound {args.seconds:g}s per scenario, "
          f"client {args.client}, {args.rounds} round(s), settle {args.settle:g}s")
    deleted = sum(empty_mailboxes(x.spool) for x in externals if x.spool)
    if deleted:
        os.sync()
        print(f"# emptied the external Maildirs ({deleted} files); waiting {RECENTLY_FREED_SECONDS}s "
              f"so that no server pays for their freed inodes", flush=True)
        time.sleep(RECENTLY_FREED_SECONDS)
    if args.checks:
        make_dkim_key(base)
        os.environ["BENCH_DKIM_KEY"] = os.path.join(base, "dkim.pem")     # the forked clients read it
    create_us = file_create_cost(base)
    print(f"# creating a file in the work dir costs {create_us:.0f} us of CPU", flush=True)
    if create_us > SLOW_CREATE_US:
        print("# WARNING: that is slow (usually 10-20 us): files deleted in the last half minute, or a "
              "block group out of free inodes; CleverMail's deliveries would pay it", flush=True)
    servers = []
    try:
        # started once for all rounds: a restart per scenario would measure warm-up
        for name in [*variants, "clevermail-checks", "checks-before", "before", "baseline"]:
            if name in plans:
                workdir = os.path.join(base, name)
                os.makedirs(workdir, exist_ok=True)
                kind = {"checks-before": "clevermail-checks", "before": "clevermail"}.get(name, name)
                script = os.path.join(args.before, "scripts", "bench_smtp.py") if name == before else __file__
                proc, port = start_server("clevermail" if name in variants else kind, workdir, script,
                                          extra=("--serve-workers", str(variants.get(name, 1))))
                servers.append(Server(name, ("127.0.0.1", port), proc, workdir,
                                      os.path.join(workdir, "data", "mail", DOMAIN)))
        servers += externals
        w = max([10] + [len(x.name) for x in servers])
        print(f"{'server':<{w}} {'mode':<5} {'conc':>4} {'size':>6} {'msgs':>6} {'secs':>6} {'msg/s':>7} "
              f"{'p50ms':>7} {'p90ms':>7} {'p99ms':>7} {'cpu ms/msg':>10} {'sys%':>4} "
              f"{'mach ms/msg':>11} {'steal ms/msg':>12}  errors", flush=True)
        results = {}
        for rnd in range(1, args.rounds + 1):
            if args.rounds > 1:
                print(f"# round {rnd}/{args.rounds}", flush=True)
            # each scenario against every server in turn, so that a slow spell of this
            # shared VM (other jobs, steal) lands on all servers rather than on one
            for mode, conc, size in scenarios:
                # the order turns every round: no server always runs first
                for server in (servers if rnd % 2 else servers[::-1]):
                    if (mode, conc, size) not in plans[server.name]:
                        continue
                    r = run_scenario(server, mode, conc, size, args)
                    results.setdefault((server.name, mode, conc, size), []).append(r)
                    err = f"{len(r['errors'])} ({r['errors'][0]})" if r["errors"] else "0"
                    print(f"{server.name:<{w}} {mode:<5} {conc:>4} {size // 1024:>5}K {r['msgs']:>6} "
                          f"{r['secs']:>6.1f} {r['rate']:>7.0f} {fmt(r['p50'], 7, '.1f')} "
                          f"{fmt(r['p90'], 7, '.1f')} {fmt(r['p99'], 7, '.1f')} {fmt(r['cpu_ms'], 10, '.2f')} "
                          f"{fmt(r['sys_pct'], 4, '.0f')} {r['mach_ms']:>11.2f} {r['steal_ms']:>12.2f}  {err}",
                          flush=True)
                    time.sleep(args.settle)
        if args.rounds > 1:
            print(f"# median of {args.rounds} rounds")
            # the ratio of each server's median msg/s to the first external server's
            peer = externals[0].name if externals else None
            print(f"{'server':<{w}} {'mode':<5} {'conc':>4} {'size':>6} {'msg/s':>7} {'cpu ms/msg':>10} "
                  f"{'mach ms/msg':>11} {'vs ' + (peer or '-'):>12}  errors")
            for mode, conc, size in scenarios:
                ref = median(r["rate"] for r in results.get((peer, mode, conc, size), []))
                for server in servers:
                    rs = results.get((server.name, mode, conc, size))
                    if rs:
                        errors = sum(len(r["errors"]) for r in rs)
                        cpu = None if rs[0]["cpu_ms"] is None else median(r["cpu_ms"] for r in rs)
                        rate = median(r["rate"] for r in rs)
                        ratio = rate / ref if ref == ref and ref else None
                        print(f"{server.name:<{w}} {mode:<5} {conc:>4} {size // 1024:>5}K "
                              f"{rate:>7.0f} {fmt(cpu, 10, '.2f')} "
                              f"{median(r['mach_ms'] for r in rs):>11.2f} {fmt(ratio, 11, '.2f')}x  {errors}")
    finally:
        for server in servers:
            if server.proc:
                stop_server(server.proc)
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
