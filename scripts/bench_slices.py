#!/usr/bin/env python3
r"""Two CleverMail servers, one feature on and off, measured in alternating time slices:
the SMTP accept rate with the feature over the rate without it, from one interleaved
pass, and each server's CPU per message split into user and system time.

    python scripts/bench_slices.py checks   # issue 16: inbound SPF+DKIM+DMARC on / off
    python scripts/bench_slices.py signing  # issue 14: DKIM signing on / off (submission, AUTH)
    python scripts/bench_slices.py checks --modes conn,reuse --sizes 4096 --concurrency 20 \
        --rounds 5 --seconds 10 --slice 1.5

Why slices.  On this shared 2-core VM the rate of one and the same server moved by up to
2x from one 10-second run to the next (other jobs, steal, the file system after mass
deletions), so comparing two servers run one after the other showed the noise, not the
feature.  Here both servers run all the time and one load generator sends to one of them
at a time, switching every --slice seconds (on, off, on, off ...): each server's rate is
its messages over the summed length of its own slices, and a slow spell of the machine
lands on both within a slice or two.  A round gives each server --seconds of slices
(after one unmeasured lead-in slice each) and its ratio on/off; the summary is the
median over --rounds of the ratio, and of each figure.  Which server has the first
slice alternates from round to round.

Boundaries.  The sessions in flight when the target switches finish on the old server
(their messages count for it) while the new server ramps up, so each server's count
gains the tail of its own slice and loses the time the other's tail takes: the bias is
about (L_on - L_off) / 2 per slice, L being a message's latency (tens of ms at 20
sessions), a fraction of a percent of a 1.5 s slice.

Same load for both.  One set of client processes (--procs, threads = --concurrency,
raw-socket clients in lockstep as smtplib) sends to both; a thread keeps one session to
each server (mode "reuse": the idle one just waits) or opens one per message ("conn").
checks: "on" is bench_smtp.py's clevermail-checks (SPF of MAIL FROM and HELO, DKIM,
DMARC, ARC, Authentication-Results; its loopback DNS, tests/dns_server.py, runs in the
server process, answers with TTL 300 s, and the lead-in warms the resolver's cache: the
number of queries it got over the whole run is printed), "off" the same server with
[inbound] checks off; both get the same DKIM-signed bytes (bench_smtp_client.make_body).
signing: bench_dkim.py's servers, [dkim] sign on / off, one submission listener; every
message From: and to local accounts after AUTH PLAIN (a new login per message in conn).
Each server has its own data dir under the work dir (nothing is deleted during the run).
After the run one delivered message of each server is checked: "on" must carry the
feature's header (Authentication-Results with dkim=pass and dmarc=pass; DKIM-Signature)
and "off" must not, or the run is reported as invalid.

CPU.  "usr" and "sys" are ms per message of the server process (all threads, from
/proc/<pid>/stat), over the whole measured pass (its own slices and the drain in the
other's) divided by its messages; "cli" the clients' thread CPU per message
(time.thread_time around each message, so per target server); "steal" is CPU the
hypervisor took from the VM per message over the pass (all figures shaky when high).
System time is shown apart because, after mass deletions nearby, the file system made
creating a file cost 500-970 us (bench_smtp.py's probe, printed first).

--callgrind N counts instructions per message instead (bench_callgrind.py): repeatable
whatever the load, for the Python side of a change.
"""

import argparse
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench_callgrind  # noqa: E402
import bench_dkim  # noqa: E402
import bench_smtp  # noqa: E402
from bench_smtp_client import Conn, make_body  # noqa: E402
from bench_smtp_serve import (DOMAIN, RECENTLY_FREED_SECONDS, SLOW_CREATE_US, USERS, default_parent, file_create_cost,  # noqa: E402
                              make_dkim_key)


# -- the two workloads -------------------------------------------------------------------------
NAMES = ("on", "off")


class Checks:
    """Issue 16: port 25, inbound checks on and off, the same signed message to both."""
    kinds = {"on": "clevermail-checks", "off": "clevermail"}

    def start(self, base, names=NAMES, prefix=lambda name: ()):
        if not os.path.exists(os.path.join(base, "dkim.pem")):
            make_dkim_key(base)
        os.environ["BENCH_DKIM_KEY"] = os.path.join(base, "dkim.pem")   # make_body signs with it
        return {name: bench_smtp.start_server(self.kinds[name], os.path.join(base, name), prefix=prefix(name))
                for name in names}

    def prepare(self, size):
        return make_body(size)          # in each client process: signed once, bytes reused

    def open(self, addr, thread):
        conn = Conn(addr)
        if conn.reply() != 220:
            raise RuntimeError("no greeting")
        conn.cmd(b"EHLO client.test\r\n", 250)
        return conn

    def send(self, conn, thread, n, body):
        conn.send_message(USERS[n % len(USERS)], body)

    def check(self, name, head):
        ours = b"Authentication-Results: mx.bench.test;" in head
        passed = ours and b"dkim=pass" in head and b"dmarc=pass" in head
        return passed if name == "on" else not ours


class Signing:
    """Issue 14: submission with AUTH PLAIN, [dkim] sign on and off, local recipients."""

    def start(self, base, names=NAMES, prefix=lambda name: ()):
        return {name: bench_smtp.start_server(name, os.path.join(base, name), script=bench_dkim.__file__,
                                              extra=("--sink-port", "0"), prefix=prefix(name))
                for name in names}

    def prepare(self, size):
        return size

    def open(self, addr, thread):
        conn = bench_dkim.Conn(addr)
        conn.login(USERS[thread % len(USERS)])
        return conn

    def send(self, conn, thread, n, size):
        user, to = USERS[thread % len(USERS)], USERS[n % len(USERS)]
        conn.cmd(f"MAIL FROM:<{user}>\r\n".encode(), 250)
        conn.cmd(f"RCPT TO:<{to}>\r\n".encode(), 250)
        conn.cmd(b"DATA\r\n", 354)
        conn.cmd(bench_dkim.wire(bench_dkim.make_message(size, sender=user, to=to)), 250)

    def check(self, name, head):
        return (b"DKIM-Signature:" in head) == (name == "on")


WORKLOADS = {"checks": Checks, "signing": Signing}


# -- the load generator ------------------------------------------------------------------------
def client_process(work, addrs, first_thread, threads, mode, size, target, stop, counts, out):
    """`threads` sessions that each send to addrs[target.value] until stop is set; counts[k]
    counts messages accepted by server k.  Puts per server: latencies, client CPU, errors."""
    payload = work.prepare(size)
    lock = threading.Lock()
    latencies = [[] for _ in addrs]
    cli = [0.0 for _ in addrs]
    errors = [[] for _ in addrs]

    def run(thread):
        conns, n = [None] * len(addrs), thread
        while not stop.value:
            k = target.value
            if k < 0:
                time.sleep(0.005)
                continue
            c0, t0 = time.thread_time(), time.perf_counter()
            try:
                if conns[k] is None:
                    conns[k] = work.open(addrs[k], thread)
                    if mode == "reuse":
                        t0 = time.perf_counter()      # reuse: MAIL to 250, as bench_smtp
                work.send(conns[k], thread, n, payload)
                t1 = time.perf_counter()
                if mode == "conn":
                    conns[k].cmd(b"QUIT\r\n", 221)
                    conns[k].sock.close()
                    conns[k] = None
            except Exception as exc:                   # reported per server, never hidden
                errors[k].append(f"{exc.__class__.__name__}: {exc}")
                if conns[k] is not None:
                    conns[k].sock.close()
                    conns[k] = None
                time.sleep(0.05)
                continue
            n += threads
            with counts.get_lock():
                counts[k] += 1
            with lock:
                latencies[k].append(t1 - t0)
                cli[k] += time.thread_time() - c0
        for conn in conns:
            if conn is not None:
                try:
                    conn.cmd(b"QUIT\r\n", 221)
                except Exception:
                    pass
                conn.sock.close()

    pool = [threading.Thread(target=run, args=(first_thread + i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put((latencies, cli, errors))


def one_pass(work, servers, mode, conc, size, args, first):
    """One interleaved pass: per server msgs, secs, rate, usr/sys/cli ms per message,
    p50/p99 latency, errors; and the pass's steal ms per message."""
    ctx = multiprocessing.get_context("fork")
    addrs = [("127.0.0.1", port) for _, port in servers]
    target, stop = ctx.Value("i", -1, lock=False), ctx.Value("b", 0, lock=False)
    counts, out = ctx.Array("l", len(servers)), ctx.Queue()
    nprocs = max(1, min(args.procs, conc))
    shares = [conc // nprocs + (1 if i < conc % nprocs else 0) for i in range(nprocs)]
    procs = [ctx.Process(target=client_process,
                         args=(work, addrs, sum(shares[:i]), k, mode, size, target, stop, counts, out))
             for i, k in enumerate(shares)]
    for p in procs:
        p.start()
    order = [first, 1 - first]
    for k in order:                                  # lead-in, not measured
        target.value = k
        time.sleep(args.slice)
    secs = [0.0] * len(servers)
    cpu0 = [bench_smtp.tree_cpu_seconds(proc.pid) for proc, _ in servers]
    mach0, done0 = bench_smtp.machine_jiffies(), list(counts)
    t0 = time.perf_counter()
    while min(secs) < args.seconds:
        for k in order:
            target.value = k
            start = time.perf_counter()
            time.sleep(args.slice)
            secs[k] += time.perf_counter() - start
    wall = time.perf_counter() - t0
    done1 = list(counts)
    cpu1 = [bench_smtp.tree_cpu_seconds(proc.pid) for proc, _ in servers]
    mach1 = bench_smtp.machine_jiffies()
    stop.value = 1
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    rows = []
    for k in range(len(servers)):
        msgs = done1[k] - done0[k]
        per = (lambda s: s * 1e3 / msgs) if msgs else (lambda s: float("nan"))
        lat = sorted(x for r in results for x in r[0][k])
        rows.append({"msgs": msgs, "secs": secs[k], "rate": msgs / secs[k],
                     "usr": per(cpu1[k][0] - cpu0[k][0]), "sys": per(cpu1[k][1] - cpu0[k][1]),
                     "cli": per(sum(r[1][k] for r in results)),
                     "p50": bench_smtp.pct(lat, 50) * 1e3, "p99": bench_smtp.pct(lat, 99) * 1e3,
                     "errors": [e for r in results for e in r[2][k]]})
    total = sum(done1) - sum(done0)
    steal = (mach1[1] - mach0[1]) / bench_smtp.TICK * 1e3 / total if total else float("nan")
    return rows, steal, wall


# -- driver ------------------------------------------------------------------------------------
def first_delivered(workdir):
    """The head of one message a server delivered (None if none)."""
    for folder, _, files in os.walk(os.path.join(workdir, "data", "mail", DOMAIN)):
        if os.path.basename(folder) == "new" and files:
            with open(os.path.join(folder, sorted(files)[0]), "rb") as f:
                return f.read(8192).partition(b"\r\n\r\n")[0]
    return None


def med(values):
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workload", choices=sorted(WORKLOADS),
                    help="checks: inbound SPF+DKIM+DMARC on/off (issue 16); signing: DKIM signing on/off (14)")
    ap.add_argument("--sizes", default="4096", help="message sizes in bytes (default 4096)")
    ap.add_argument("--concurrency", default="20", help="concurrent sessions (default 20)")
    ap.add_argument("--modes", default="conn,reuse", help="conn (a connection per message), reuse")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved passes per scenario (default 5)")
    ap.add_argument("--seconds", type=float, default=10, help="measured slice time per server and pass")
    ap.add_argument("--slice", type=float, default=1.5, help="slice length in seconds (default 1.5)")
    ap.add_argument("--procs", type=int, default=2, help="client processes (default 2)")
    ap.add_argument("--callgrind", type=int, metavar="N",
                    help="instead: each server under valgrind's callgrind, instructions per message over "
                         "N messages (load-independent; user space only)")
    args = ap.parse_args()
    modes = args.modes.split(",")
    if not set(modes) <= {"conn", "reuse"}:
        raise SystemExit(f"--modes {args.modes}: conn, reuse")
    scenarios = [(m, int(c), int(s)) for s in args.sizes.split(",") for c in args.concurrency.split(",")
                 for m in modes]
    work = WORKLOADS[args.workload]()
    base = tempfile.mkdtemp(prefix=f"bench-slices-{args.workload}-", dir=default_parent())
    started = {}
    if args.callgrind:
        try:
            return bench_callgrind.main(work, args, base, NAMES)
        finally:
            shutil.rmtree(base, ignore_errors=True)
    try:
        for name in NAMES:
            os.makedirs(os.path.join(base, name))
        create_us = file_create_cost(base)
        if create_us > SLOW_CREATE_US:
            # files freed in the last half minute (an earlier run's work dir): wait that out
            print(f"# creating a file costs {create_us:.0f} us: waiting {RECENTLY_FREED_SECONDS}s", flush=True)
            time.sleep(RECENTLY_FREED_SECONDS)
            create_us = file_create_cost(base)
        with open("/proc/loadavg") as f:
            load = " ".join(f.read().split()[:3])
        print(f"# {args.workload} on/off in alternating {args.slice:g}s slices, {args.seconds:g}s per server "
              f"and pass, {args.rounds} round(s), {os.cpu_count()} CPUs, load {load}, creating a file "
              f"{create_us:.0f} us{' (SLOW)' if create_us > SLOW_CREATE_US else ''}, work dir {base}",
              flush=True)
        started = work.start(base)
        servers = [started[name] for name in NAMES]
        print(f"{'rnd':>3} {'mode':<5} {'conc':>4} {'size':>5} {'on msg/s':>8} {'off msg/s':>9} {'ratio':>5} "
              f"{'on usr':>6} {'sys':>5} {'cli':>5} {'off usr':>7} {'sys':>5} {'cli':>5} "
              f"{'on p50':>6} {'off p50':>7} {'steal':>5} {'load1':>5}  errors", flush=True)
        results = {}
        for rnd in range(args.rounds):
            for sc in scenarios:
                rows, steal, _ = one_pass(work, servers, *sc, args, first=rnd % 2)
                on, off = rows
                with open("/proc/loadavg") as f:
                    load1 = float(f.read().split()[0])
                ratio = on["rate"] / off["rate"] if off["rate"] else float("nan")
                results.setdefault(sc, []).append((on, off, ratio, steal))
                errs = on["errors"] + off["errors"]
                err = f"{len(on['errors'])}/{len(off['errors'])} ({errs[0]})" if errs else "0"
                print(f"{rnd + 1:>3} {sc[0]:<5} {sc[1]:>4} {sc[2] // 1024:>4}K {on['rate']:>8.0f} "
                      f"{off['rate']:>9.0f} {ratio:>5.2f} {on['usr']:>6.2f} {on['sys']:>5.2f} {on['cli']:>5.2f} "
                      f"{off['usr']:>7.2f} {off['sys']:>5.2f} {off['cli']:>5.2f} {on['p50']:>6.1f} "
                      f"{off['p50']:>7.1f} {steal:>5.2f} {load1:>5.2f}  {err}", flush=True)
        print(f"# median over {args.rounds} rounds; ratio = on msg/s / off msg/s within each pass "
              f"(median, [min-max]); usr/sys = server CPU ms per message (total)")
        print(f"{'mode':<5} {'conc':>4} {'size':>5} {'on msg/s':>8} {'off msg/s':>9} {'ratio':>5} {'range':>11} "
              f"{'on usr+sys':>12} {'total':>5} {'off usr+sys':>12} {'total':>5} {'on cli':>6} {'off cli':>7}")
        for sc, runs in results.items():
            ratios = [r[2] for r in runs]
            m = {(side, key): med(r[i][key] for r in runs) for i, side in enumerate(NAMES)
                 for key in ("rate", "usr", "sys", "cli")}
            tot = {side: med(r[i]["usr"] + r[i]["sys"] for r in runs) for i, side in enumerate(NAMES)}
            print(f"{sc[0]:<5} {sc[1]:>4} {sc[2] // 1024:>4}K {m['on', 'rate']:>8.0f} {m['off', 'rate']:>9.0f} "
                  f"{med(ratios):>5.2f} {min(ratios):>5.2f}-{max(ratios):<5.2f} "
                  f"{m['on', 'usr']:>6.2f}+{m['on', 'sys']:<5.2f} {tot['on']:>5.2f} "
                  f"{m['off', 'usr']:>6.2f}+{m['off', 'sys']:<5.2f} {tot['off']:>5.2f} "
                  f"{m['on', 'cli']:>6.2f} {m['off', 'cli']:>7.2f}")
    finally:
        for proc, _ in started.values():
            bench_smtp.stop_server(proc)
    valid = True
    for name in started:
        head = first_delivered(os.path.join(base, name))
        if head is None or not work.check(name, head):
            valid = False
            print(f"# INVALID: server '{name}' delivered {'nothing' if head is None else 'a message'} "
                  f"{'without' if name == 'on' else 'with'} the feature's header", flush=True)
    dns_log = os.path.join(base, "on", "dns-queries")
    if os.path.exists(dns_log):
        with open(dns_log) as f:
            print(f"# the checks' loopback DNS answered {f.read().strip()} queries over the whole run")
    shutil.rmtree(base, ignore_errors=True)
    return 0 if valid else 1


if __name__ == "__main__":
    sys.exit(main())
