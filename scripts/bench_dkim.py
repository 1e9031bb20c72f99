#!/usr/bin/env python3
r"""Benchmark DKIM signing (issue 14): what a signature costs, and what signing costs
SMTP submission.

1. CPU per message (--cpu, the default part 1): time.process_time() of signing a 4 KiB
   and a 100 KiB message with rsa-sha256 (2048 bits), with ed25519-sha256, and with
   both as the server does (one parse and one body hash: dkim/signature.Message), and,
   for comparison, dkimpy's own dkim.sign() with the same RSA key (its pure-Python RSA,
   which the server does not use).

2. Submission with signing on and off (--smtp, part 2): two CleverMail processes
   (this script with --serve on|off), the same but for [dkim] sign, each a MailService
   with one submission listener on 127.0.0.1:0 and 10 accounts of bench.test.  Client
   processes (--procs, threads = --concurrency) log in with AUTH PLAIN and send
   messages From: and to those accounts (local delivery; --rcpt relay sends them to
   remote addresses instead, relayed to a sink process through [relay] smarthost).
   Mode "conn": connect, EHLO, AUTH, one message, QUIT; "reuse": one login, then
   messages on the same connection.  Every scenario runs against both servers, in
   alternating order round after round (--rounds), so a noisy machine affects both
   alike; the summary gives the median msg/s of each, the ratio on/off (the issue asks
   for at least 0.80), the server's CPU ms per message ("cpu"), the clients' ("cli")
   and the "cpu ratio": (server + clients) CPU per message off / on.  The issue's
   figure: bench_slices.py signing (runs here moved by up to 2x on the shared VM).

    python scripts/bench_dkim.py                                 # both parts
    python scripts/bench_dkim.py --no-smtp                       # CPU part only
    python scripts/bench_dkim.py --no-cpu -n 2000 --rounds 5 --modes conn,reuse --sizes 4096
    git worktree add /tmp/old HEAD~3 && python scripts/bench_dkim.py --no-cpu --before /tmp/old
"""

import argparse
import base64
import multiprocessing
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import bench_smtp  # noqa: E402
from bench_smtp import cpu_seconds, default_parent, machine_jiffies, TICK  # noqa: E402

DOMAIN = "bench.test"
USERS = [f"user{i}@{DOMAIN}" for i in range(10)]
PASSWORD = "bench-password"


def make_message(size, sender=USERS[0], to=USERS[1]):
    head = (f"From: Bench <{sender}>\r\nTo: <{to}>\r\nSubject: benchmark\r\n"
            f"Date: Wed, 02 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{time.monotonic_ns()}@client.test>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n").encode()
    line = b"The quick brown fox jumps over the lazy dog, again and again and again.  \r\n"
    return head + line * max(1, (size - len(head)) // len(line))


# -- part 1: CPU per signature ---------------------------------------------------------------
def cpu_part(args):
    from clevermail.dkim import signature
    from clevermail.dkim.keys import KeyStore
    import dkim

    work = tempfile.mkdtemp(prefix="bench-dkim-keys-")
    try:
        store = KeyStore(os.path.join(work, "dkim"))
        rsa_key, ed_key = store.generate(DOMAIN)
        with open(rsa_key.selector.path, "rb") as f:
            pem = f.read()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def per_message(fn, n):
        fn()                                        # warm
        t = time.process_time()
        for _ in range(n):
            fn()
        return (time.process_time() - t) / n * 1e3

    print(f"# CPU ms per message (process time, {os.cpu_count()} CPUs, n={args.cpu_n} per figure)")
    print(f"{'size':>6} {'rsa-sha256':>11} {'ed25519':>9} {'both':>8} {'dkimpy sign() rsa':>18}")
    for size in [int(s) for s in args.sizes.split(",")]:
        data = make_message(size)
        now = time.time()
        rsa = per_message(lambda: signature.sign(signature.Message(data), rsa_key, now), args.cpu_n)
        ed = per_message(lambda: signature.sign(signature.Message(data), ed_key, now), args.cpu_n)

        def both():
            m = signature.Message(data)
            return signature.sign(m, rsa_key, now) + signature.sign(m, ed_key, now)
        b = per_message(both, args.cpu_n)
        ref = per_message(lambda: dkim.sign(data, rsa_key.selector.name.encode(), DOMAIN.encode(), pem,
                                            canonicalize=(b"relaxed", b"relaxed")),
                          max(5, args.cpu_n // 10))
        print(f"{size // 1024:>5}K {rsa:>11.2f} {ed:>9.2f} {b:>8.2f} {ref:>18.2f}", flush=True)


# -- part 2: servers (child processes) ---------------------------------------------------------
def serve(kind, workdir, sink_port):
    from clevermail.passwords import hash_password
    from clevermail.config import load_config
    from clevermail.logs import setup_logging
    from clevermail.process import place, tune_process, usable_cpus
    from clevermail.service import MailService

    users = os.path.join(workdir, "users.ini")
    digest = hash_password(PASSWORD)
    with open(users, "w") as f:
        f.write("".join(f"[{u}]\npassword = {digest}\n" for u in USERS))
    relay = {"interval": 1}
    if sink_port:
        relay.update(smarthost=f"127.0.0.1:{sink_port}", smarthost_tls="none")
    conf = load_config(overrides={
        "server": {"hostname": "mx.bench.test", "data_dir": os.path.join(workdir, "data"),
                   "users_file": users, "domains": [DOMAIN]},
        "smtp": {"listen": [], "submission_listen": ["127.0.0.1:0"]},
        "pop3": {"listen": []}, "imap": {"listen": []},
        "limits": {"connections": 2000, "connections_per_client": 2000, "message_size": 1 << 20,
                   "auth_failure_delay": 0},
        "relay": relay,
        # the per-user sending limits (issue 14) would refuse a benchmark after 500 messages
        "senders": {"messages_per_hour": 0, "recipients_per_hour": 0},
        "dkim": {"sign": kind == "on"},
    })
    setup_logging("INFO", os.path.join(workdir, "server.log"), console=False)
    tune_process()
    place(conf.server.cpu_affinity, 0, usable_cpus())      # as `clevermail start` does
    svc = MailService(conf).start()
    return svc.port("submission"), svc.stop


def serve_sink():
    """A minimal SMTP sink for --rcpt relay: 250 to everything, messages dropped."""
    import socketserver

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            sock, buf = self.request, bytearray()
            sock.sendall(b"220 sink\r\n")
            while True:
                while (i := buf.find(b"\n")) < 0:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buf += data
                verb = bytes(buf[:4]).upper()
                del buf[:i + 1]
                if verb == b"QUIT":
                    sock.sendall(b"221 bye\r\n")
                    return
                if verb == b"EHLO":
                    sock.sendall(b"250-sink\r\n250 PIPELINING\r\n")
                    continue
                if verb != b"DATA":
                    sock.sendall(b"250 ok\r\n")
                    continue
                sock.sendall(b"354 go\r\n")
                while (end := buf.find(b"\r\n.\r\n")) < 0:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buf += data
                del buf[:end + 5]
                sock.sendall(b"250 ok\r\n")

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 256

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1], server.shutdown


def serve_main(kind, workdir, sink_port):
    port, stop = serve_sink() if kind == "sink" else serve(kind, workdir, sink_port)
    print(f"PORT {port}", flush=True)
    sys.stdin.read()
    stop()


def start_child(kind, workdir, sink_port=0, script=__file__):
    return bench_smtp.start_server(kind, workdir, script=script, extra=("--sink-port", str(sink_port)))
stop_child = bench_smtp.stop_server


# -- part 2: clients -------------------------------------------------------------------------
class Conn(bench_smtp.Conn):
    """bench_smtp's raw-socket SMTP client (replies in lockstep, like smtplib), with AUTH."""

    def login(self, user):
        if self.reply() != 220:
            raise RuntimeError("no greeting")
        self.cmd(b"EHLO client.test\r\n", 250)
        token = base64.b64encode(f"\0{user}\0{PASSWORD}".encode())
        self.cmd(b"AUTH PLAIN " + token + b"\r\n", 235)

    def close(self):
        try:
            self.cmd(b"QUIT\r\n", 221)
        except Exception:
            pass
        self.sock.close()


def wire(data):
    """DATA form: dot-stuffed, ended by CRLF.CRLF."""
    return data.replace(b"\r\n.", b"\r\n..") + b".\r\n"


def client_worker(addr, threads, mode, size, rcpt_kind, counter, total, deadline, out):
    errors, done = [], [0]

    def take():
        with counter.get_lock():
            if counter.value >= total or time.time() > deadline:
                return None
            counter.value += 1
            return counter.value

    def run(index):
        user = USERS[index % len(USERS)]
        conn = None
        try:
            while (n := take()) is not None:
                to = USERS[n % len(USERS)] if rcpt_kind == "local" else f"rcpt{n % 10}@remote.test"
                body = wire(make_message(size, sender=user, to=to))
                if conn is None:
                    conn = Conn(addr)
                    conn.login(user)
                conn.cmd(f"MAIL FROM:<{user}>\r\n".encode(), 250)
                conn.cmd(f"RCPT TO:<{to}>\r\n".encode(), 250)
                conn.cmd(b"DATA\r\n", 354)
                conn.cmd(body, 250)
                done[0] += 1
                if mode == "conn":
                    conn.close()
                    conn = None
        except Exception as exc:
            errors.append(f"{exc.__class__.__name__}: {exc}")
        finally:
            if conn is not None:
                conn.close()

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    out.put((done[0], errors))


def run_scenario(proc, port, mode, conc, size, args):
    ctx = multiprocessing.get_context("fork")
    counter, out = ctx.Value("l", 0), ctx.Queue()
    nprocs = max(1, min(args.procs, conc))
    shares = [conc // nprocs + (1 if i < conc % nprocs else 0) for i in range(nprocs)]
    cpu0, mach0, t0 = cpu_seconds(proc.pid), machine_jiffies(), time.perf_counter()
    clients0 = resource.getrusage(resource.RUSAGE_CHILDREN)     # the clients, once joined
    deadline = time.time() + args.seconds
    workers = [ctx.Process(target=client_worker, args=(("127.0.0.1", port), k, mode, size, args.rcpt,
                                                       counter, args.n, deadline, out)) for k in shares]
    for w in workers:
        w.start()
    results = [out.get() for _ in workers]
    for w in workers:
        w.join()
    wall, cpu1, mach1 = time.perf_counter() - t0, cpu_seconds(proc.pid), machine_jiffies()
    clients1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = sum(d for d, _ in results)
    errors = [e for _, errs in results for e in errs]
    cpu = sum(cpu1) - sum(cpu0)
    clients = (clients1.ru_utime + clients1.ru_stime) - (clients0.ru_utime + clients0.ru_stime)
    return {"msgs": done, "rate": done / wall if wall else 0.0, "errors": errors,
            "cpu_ms": cpu * 1e3 / done if done else float("nan"),
            "cli_ms": clients * 1e3 / done if done else float("nan"),
            "mach_ms": (mach1[0] - mach0[0]) / TICK * 1e3 / done if done else float("nan")}


def smtp_part(args):
    base = tempfile.mkdtemp(prefix="bench-dkim-", dir=default_parent())
    children = {}
    try:
        sink_port = 0
        if args.rcpt == "relay":
            sink, sink_port = start_child("sink", base)
            children["sink"] = (sink, sink_port)
        kinds = ["on", "off"] + (["before"] if args.before else [])
        for kind in kinds:
            workdir = os.path.join(base, kind)
            os.makedirs(workdir)
            children[kind] = (start_child(kind, workdir, sink_port) if kind != "before" else
                              start_child("on", workdir, sink_port,
                                          script=os.path.join(args.before, "scripts", "bench_dkim.py")))
        scenarios = [(m, int(c), int(s)) for s in args.sizes.split(",") for c in args.concurrency.split(",")
                     for m in args.modes.split(",")]
        print(f"# submission, signing on vs off: {os.cpu_count()} CPUs, n={args.n}, bound {args.seconds:g}s, "
              f"{args.rounds} round(s), recipients {args.rcpt}, work dir {base}")
        print(f"{'signing':<7} {'mode':<5} {'conc':>4} {'size':>5} {'msgs':>6} {'msg/s':>7} "
              f"{'cpu ms/msg':>10} {'cli ms/msg':>10} {'mach ms/msg':>11}  errors", flush=True)
        # not measured: each server makes its mailboxes and loads what it loads on first use
        for kind in kinds:
            proc, port = children[kind]
            run_scenario(proc, port, "reuse", scenarios[0][1], scenarios[0][2],
                         argparse.Namespace(**{**vars(args), "n": args.warmup}))
        results = {}
        for rnd in range(args.rounds):
            for sc in scenarios:
                # each round another goes first, so none always meets a warmer machine
                for kind in kinds[rnd % len(kinds):] + kinds[:rnd % len(kinds)]:
                    proc, port = children[kind]
                    r = run_scenario(proc, port, *sc, args)
                    results.setdefault((kind, sc), []).append(r)
                    err = f"{len(r['errors'])} ({r['errors'][0]})" if r["errors"] else "0"
                    print(f"{kind:<7} {sc[0]:<5} {sc[1]:>4} {sc[2] // 1024:>4}K {r['msgs']:>6} "
                          f"{r['rate']:>7.0f} {r['cpu_ms']:>10.2f} {r['cli_ms']:>10.2f} {r['mach_ms']:>11.2f}  {err}",
                          flush=True)
                    time.sleep(args.settle)
        print(f"# median over {args.rounds} round(s); ratio = msg/s with signing / without (issue 14: >= 0.80);"
              " cpu ratio = (server + clients) CPU per message without / with: the rate ratio when"
              " the two cores are the limit, whatever else runs on the machine")
        print(f"{'mode':<5} {'conc':>4} {'size':>5} {'on msg/s':>9} {'off msg/s':>9} {'ratio':>6} "
              f"{'on cpu ms':>9} {'off cpu ms':>10} {'on cli ms':>9} {'off cli ms':>10} {'cpu ratio':>9}")
        for sc in scenarios:
            on, off = results[("on", sc)], results[("off", sc)]
            med = {(kind, key): statistics.median(r[key] for r in runs)
                   for kind, runs in (("on", on), ("off", off)) for key in ("rate", "cpu_ms", "cli_ms")}
            rate_on, rate_off = med["on", "rate"], med["off", "rate"]
            total_on = med["on", "cpu_ms"] + med["on", "cli_ms"]
            total_off = med["off", "cpu_ms"] + med["off", "cli_ms"]
            print(f"{sc[0]:<5} {sc[1]:>4} {sc[2] // 1024:>4}K {rate_on:>9.0f} {rate_off:>9.0f} "
                  f"{rate_on / rate_off if rate_off else float('nan'):>6.2f} "
                  f"{med['on', 'cpu_ms']:>9.2f} {med['off', 'cpu_ms']:>10.2f} "
                  f"{med['on', 'cli_ms']:>9.2f} {med['off', 'cli_ms']:>10.2f} "
                  f"{total_off / total_on if total_on else float('nan'):>9.2f}")
            if args.before:
                before = results[("before", sc)]
                rate, cpu, cli = (statistics.median(r[k] for r in before) for k in ("rate", "cpu_ms", "cli_ms"))
                print(f"{'':<5} {'':>4} {'':>5} {'before:':>9} {rate:>9.0f} "
                      f"{rate / rate_off if rate_off else float('nan'):>6.2f} {cpu:>9.2f} {'':>10} {cli:>9.2f} "
                      f"{'':>10} {total_off / (cpu + cli) if cpu + cli else float('nan'):>9.2f}")
        signed = os.path.join(base, "on", "data", "mail", DOMAIN)
        if args.rcpt == "local" and not _some_signed(signed):
            print("# WARNING: no DKIM-Signature found in the signing server's mailboxes")
    finally:
        for proc, _ in children.values():
            stop_child(proc)
        shutil.rmtree(base, ignore_errors=True)


def _some_signed(root):
    """A look at one delivered message: the 'on' server really signed."""
    for folder, _, files in os.walk(root):
        if os.path.basename(folder) == "new" and files:
            with open(os.path.join(folder, files[0]), "rb") as f:
                return b"DKIM-Signature:" in f.read(8192)
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-cpu", dest="cpu", action="store_false", help="skip part 1 (CPU per signature)")
    ap.add_argument("--no-smtp", dest="smtp", action="store_false", help="skip part 2 (submission on/off)")
    ap.add_argument("--cpu-n", type=int, default=200, help="signatures per CPU figure (default 200)")
    ap.add_argument("-n", type=int, default=3000, help="messages per scenario and server (default 3000)")
    ap.add_argument("--seconds", type=float, default=30, help="time bound per scenario (default 30)")
    ap.add_argument("--sizes", default="4096,102400", help="message sizes in bytes (default 4096,102400)")
    ap.add_argument("--concurrency", default="20", help="concurrent sessions (default 20)")
    ap.add_argument("--modes", default="conn,reuse", help="conn (login per message), reuse (default both)")
    ap.add_argument("--rcpt", choices=("local", "relay"), default="local",
                    help="local accounts (default) or remote addresses relayed to a sink")
    ap.add_argument("--rounds", type=int, default=3, help="rounds, servers alternating (default 3)")
    ap.add_argument("--settle", type=float, default=1, help="pause after each scenario (default 1 s)")
    ap.add_argument("--procs", type=int, default=2, help="client processes (default 2)")
    ap.add_argument("--warmup", type=int, default=300,
                    help="messages sent to each server before the rounds, not measured (default 300)")
    ap.add_argument("--before", metavar="DIR",
                    help="also a signing server running the code of DIR, an earlier checkout "
                         "(git worktree add DIR COMMIT), in the same rounds: reported as 'before'")
    ap.add_argument("--serve", choices=("on", "off", "sink"), help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    ap.add_argument("--sink-port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve_main(args.serve, args.dir, args.sink_port)
    if args.cpu:
        cpu_part(args)
    if args.smtp:
        smtp_part(args)


if __name__ == "__main__":
    main()
