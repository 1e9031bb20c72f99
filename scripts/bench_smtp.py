#!/usr/bin/env python3
"""Benchmark SMTP delivery: accepted messages per second, latency percentiles and
server CPU milliseconds per message, against a bare fsync-per-message baseline.

The server runs in a separate process (this script with --serve): either CleverMail
(clevermail.service.MailService from a config in a temp dir, INFO logging to a file)
or the baseline, a bare socketserver.ThreadingTCPServer speaking just enough SMTP that
writes and fsyncs each message before its 250.  Server CPU is read from
/proc/<pid>/stat (user+system of all its threads) before and after each scenario;
"sys%" is the kernel's share of it (socket calls, open/link/fsync).

Clients are raw-socket SMTP clients in lockstep like smtplib (no pipelining), spread
over a few processes; each message goes to one of 10 local accounts.  Scenarios are
every combination of --sizes x --concurrency x --modes, where mode "conn" opens one
connection per message (connect ... QUIT) and "reuse" sends every message of a session
on one connection.  Each scenario stops after -n messages or --seconds, whichever
comes first (both are reported).  Latency: connect (conn) or MAIL (reuse) to the 250
after the data.

    python scripts/bench_smtp.py                       # full: 20,000 per scenario
    python scripts/bench_smtp.py -n 3000 --seconds 20  # quicker
    python scripts/bench_smtp.py --sizes 4096 --concurrency 20 --baseline all
"""

import argparse
import multiprocessing
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

DOMAIN = "bench.test"
USERS = [f"user{i}@{DOMAIN}" for i in range(10)]
TICK = os.sysconf("SC_CLK_TCK")


# -- servers (child process) ------------------------------------------------------------
def serve_clevermail(workdir):
    from clevermail.accounts import hash_password
    from clevermail.config import load_config
    from clevermail.logs import setup_logging
    from clevermail.service import MailService

    users = os.path.join(workdir, "users.ini")
    digest = hash_password("bench-password")
    with open(users, "w") as f:
        f.write("".join(f"[{u}]\npassword = {digest}\n" for u in USERS))
    conf = load_config(overrides={
        "server": {"hostname": "mx.bench.test", "data_dir": os.path.join(workdir, "data"),
                   "users_file": users, "domains": [DOMAIN]},
        "smtp": {"listen": ["127.0.0.1:0"]}, "pop3": {"listen": []}, "imap": {"listen": []},
        "limits": {"connections": 2000, "connections_per_client": 2000, "message_size": 1 << 20},
    })
    # the production logging set-up (INFO, as `clevermail start` does), to a file
    setup_logging("INFO", os.path.join(workdir, "server.log"), console=False)
    svc = MailService(conf).start()
    return svc.port("smtp"), svc.stop


class BaselineHandler(socketserver.BaseRequestHandler):
    """Just enough SMTP; the message is written and fsynced before the 250."""

    def handle(self):
        sock, buf = self.request, bytearray()
        sock.sendall(b"220 baseline\r\n")
        while True:
            i = buf.find(b"\n")
            while i < 0:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
                i = buf.find(b"\n")
            verb = bytes(buf[:4]).upper()
            del buf[:i + 1]
            if verb == b"QUIT":
                sock.sendall(b"221 bye\r\n")
                return
            if verb != b"DATA":
                sock.sendall(b"250 ok\r\n")
                continue
            sock.sendall(b"354 go\r\n")
            while (end := buf.find(b"\r\n.\r\n")) < 0:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
            body = bytes(buf[:end + 2])
            del buf[:end + 5]
            path = os.path.join(self.server.spool, f"{threading.get_ident()}-{time.monotonic_ns()}")
            with open(path, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            sock.sendall(b"250 queued\r\n")


class BaselineServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def serve_baseline(workdir):
    server = BaselineServer(("127.0.0.1", 0), BaselineHandler)
    server.spool = os.path.join(workdir, "data", "mail", DOMAIN)
    os.makedirs(server.spool, exist_ok=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1], server.shutdown


def serve_main(kind, workdir):
    port, stop = (serve_clevermail if kind == "clevermail" else serve_baseline)(workdir)
    print(f"PORT {port}", flush=True)
    sys.stdin.read()            # until the parent closes our stdin
    stop()


# -- client (worker processes) ----------------------------------------------------------------
class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.buf = b""

    def reply(self):
        """The code of one (possibly multi-line) reply."""
        while True:
            while b"\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise EOFError("server closed")
                self.buf += data
            line, _, self.buf = self.buf.partition(b"\n")
            if line[3:4] != b"-":
                return int(line[:3])

    def cmd(self, data, want):
        self.sock.sendall(data)
        code = self.reply()
        if code != want:
            raise RuntimeError(f"{data[:20]!r}: {code}")

    def send_message(self, rcpt, body):
        self.cmd(b"MAIL FROM:<bench@client.test>\r\n", 250)
        self.cmd(b"RCPT TO:<" + rcpt.encode() + b">\r\n", 250)
        self.cmd(b"DATA\r\n", 354)
        self.cmd(body, 250)

    def close(self):
        self.sock.close()


def make_body(size):
    head = b"From: bench@client.test\r\nTo: someone@bench.test\r\nSubject: benchmark\r\n\r\n"
    line = b"x" * 76 + b"\r\n"
    lines = max(1, (size - len(head)) // len(line))
    return head + line * lines + b".\r\n"


def client_worker(port, threads, mode, size, counter, total, deadline, out):
    body = make_body(size)
    latencies, errors = [], []

    def take():
        with counter.get_lock():
            if counter.value >= total or time.time() > deadline:
                return None
            counter.value += 1
            return counter.value

    def run():
        conn = None
        try:
            while (n := take()) is not None:
                rcpt = USERS[n % len(USERS)]
                start = time.perf_counter()
                if mode == "conn":
                    conn = Conn(port)
                    if conn.reply() != 220:
                        raise RuntimeError("no greeting")
                    conn.cmd(b"EHLO client.test\r\n", 250)
                    conn.send_message(rcpt, body)
                    latencies.append(time.perf_counter() - start)
                    conn.cmd(b"QUIT\r\n", 221)
                    conn.close()
                    conn = None
                else:
                    if conn is None:
                        conn = Conn(port)
                        conn.reply()
                        conn.cmd(b"EHLO client.test\r\n", 250)
                        start = time.perf_counter()
                    conn.send_message(rcpt, body)
                    latencies.append(time.perf_counter() - start)
        except Exception as exc:                       # reported, never hidden
            errors.append(f"{exc.__class__.__name__}: {exc}")
        finally:
            if conn is not None:
                try:
                    conn.cmd(b"QUIT\r\n", 221)
                except Exception:
                    pass
                conn.close()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    out.put((latencies, errors))


# -- driver --------------------------------------------------------------------------------
def cpu_seconds(pid):
    """(user, system) CPU seconds of a process, all its threads (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def start_server(kind, workdir):
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", kind, "--dir", workdir],
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


def run_scenario(proc, port, mode, conc, size, n, seconds, procs, workdir):
    # start each scenario with empty mailboxes (the store recreates them on delivery)
    spool = os.path.join(workdir, "data", "mail", DOMAIN)
    shutil.rmtree(spool, ignore_errors=True)
    os.makedirs(spool, exist_ok=True)
    ctx = multiprocessing.get_context("fork")
    counter, out = ctx.Value("l", 0), ctx.Queue()
    nprocs = max(1, min(procs, conc))
    shares = [conc // nprocs + (1 if i < conc % nprocs else 0) for i in range(nprocs)]
    cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
    deadline = time.time() + seconds
    workers = [ctx.Process(target=client_worker, args=(port, k, mode, size, counter, n, deadline, out))
               for k in shares]
    for w in workers:
        w.start()
    results = [out.get() for _ in workers]
    for w in workers:
        w.join()
    wall, cpu1 = time.perf_counter() - t0, cpu_seconds(proc.pid)
    user, system = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
    cpu = user + system
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = [e for _, errs in results for e in errs]
    done = len(latencies)
    return {"msgs": done, "secs": wall, "rate": done / wall if wall else 0,
            "p50": pct(latencies, 50) * 1e3, "p90": pct(latencies, 90) * 1e3,
            "p99": pct(latencies, 99) * 1e3, "cpu_ms": cpu * 1e3 / done if done else float("nan"),
            "sys_pct": 100 * system / cpu if cpu else 0, "errors": errors}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=20000, help="messages per scenario (default 20000)")
    ap.add_argument("--seconds", type=float, default=60, help="time bound per scenario (default 60)")
    ap.add_argument("--sizes", default="4096,102400", help="message sizes in bytes")
    ap.add_argument("--concurrency", default="1,20,100", help="concurrent sessions")
    ap.add_argument("--modes", default="conn,reuse", help="conn (one connection per message), reuse")
    ap.add_argument("--baseline", choices=("target", "all", "none"), default="target",
                    help="baseline scenarios: target = 20 sessions x 4 KiB only (default)")
    ap.add_argument("--procs", type=int, default=2, help="client processes (default 2)")
    ap.add_argument("--dir", help="work directory (default: a temp dir, removed after)")
    ap.add_argument("--serve", choices=("clevermail", "baseline"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve_main(args.serve, args.dir)

    sizes = [int(s) for s in args.sizes.split(",")]
    concs = [int(c) for c in args.concurrency.split(",")]
    modes = args.modes.split(",")
    base = args.dir or tempfile.mkdtemp(prefix="bench-smtp-")
    print(f"# {os.cpu_count()} CPUs, work dir {base}, n={args.n}, bound {args.seconds:g}s per scenario")
    print(f"{'server':<10} {'mode':<5} {'conc':>4} {'size':>6} {'msgs':>6} {'secs':>6} {'msg/s':>7} "
          f"{'p50ms':>7} {'p90ms':>7} {'p99ms':>7} {'cpu ms/msg':>10} {'sys%':>4}  errors")
    try:
        for kind in ("clevermail", "baseline"):
            plan = [(m, c, s) for s in sizes for c in concs for m in modes]
            if kind == "baseline":
                if args.baseline == "none":
                    continue
                if args.baseline == "target":
                    plan = [(m, 20, 4096) for m in modes]
            workdir = os.path.join(base, kind)
            os.makedirs(workdir, exist_ok=True)
            proc, port = start_server(kind, workdir)
            try:
                for mode, conc, size in plan:
                    r = run_scenario(proc, port, mode, conc, size, args.n, args.seconds, args.procs, workdir)
                    err = f"{len(r['errors'])} ({r['errors'][0]})" if r["errors"] else "0"
                    print(f"{kind:<10} {mode:<5} {conc:>4} {size // 1024:>5}K {r['msgs']:>6} {r['secs']:>6.1f} "
                          f"{r['rate']:>7.0f} {r['p50']:>7.1f} {r['p90']:>7.1f} {r['p99']:>7.1f} "
                          f"{r['cpu_ms']:>10.2f} {r['sys_pct']:>4.0f}  {err}", flush=True)
            finally:
                stop_server(proc)
    finally:
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
