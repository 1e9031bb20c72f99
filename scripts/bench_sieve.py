#!/usr/bin/env python3
"""Benchmark Sieve at final delivery: local delivery rate over SMTP with a 50-rule
script active for every recipient against no script, in the same pass (issue 17).

Two CleverMail servers run as children (bench_smtp.py's `--serve clevermail`, the
production logging and process tuning), one with an active 50-rule script for each of
bench_smtp's 10 accounts and one without; each round runs the same scenario against
both in turn, so a noisy machine affects both alike.  The script: 49 rules that do not
match a benchmark message (header :contains, address :domain, :matches with
variables, size, exists, body is left out: it parses the MIME tree) and a 50th that
files it into "Bench" (:create) flagged, so every test is evaluated and fileinto with
imap4flags is exercised (a keyword rather than a system flag costs a sync of the
folder's index per delivery, for its keyword letter).  Messages are bench_smtp's (python clients, --size bytes).

Figures per server: msg/s, latency p50/p99 (MAIL to the 250), server CPU ms per
message; the summary is the median over --rounds and the ratio with/without.  Also
the interpreter alone: evaluate() of the script on one message, microseconds each.

    python scripts/bench_sieve.py                     # 3 rounds of 3000 messages, 20 sessions
    python scripts/bench_sieve.py -n 1000 --rounds 1  # quicker
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))

import bench_smtp  # noqa: E402
from bench_smtp import USERS, Server, fmt, median, run_scenario, start_server, stop_server  # noqa: E402


def fifty_rules():
    rules = ['require ["fileinto", "imap4flags", "variables", "envelope", "subaddress", "mailbox"];']
    for i in range(49):
        kind = i % 7
        if kind == 0:
            rules.append(f'if header :contains "subject" "project-{i}" {{ fileinto "P{i}"; stop; }}')
        elif kind == 1:
            rules.append(f'if address :domain :is "from" "list{i}.example" {{ fileinto "L{i}"; stop; }}')
        elif kind == 2:
            rules.append(f'if header :matches "list-id" "*<team{i}.*>*" {{ fileinto "T{i}-${{1}}"; stop; }}')
        elif kind == 3:
            rules.append(f'if envelope :detail "to" "tag{i}" {{ fileinto "D{i}"; stop; }}')
        elif kind == 4:
            rules.append(f'if allof (exists "x-spam-{i}", size :over {i}M) {{ discard; stop; }}')
        elif kind == 5:
            rules.append(f'if anyof (header :is "x-mailer" "bulk{i}", address :localpart "to" "alias{i}")'
                         f' {{ addflag "$bulk{i}"; }}')
        else:
            rules.append(f'if not header :contains ["subject", "from"] ["", "x"] '
                         f'{{ fileinto "N{i}"; stop; }}')
    rules.append('if header :contains "subject" "benchmark" '
                 '{ fileinto :create :flags "\\\\Flagged" "Bench"; stop; }')
    return "\n".join(rules) + "\n"


def interpreter_us(script_text, size, count=2000):
    from clevermail.sieve import parse
    from clevermail.sieve.interp import Envelope, evaluate
    script = parse(script_text)
    body = bench_smtp.make_body(size)[:-3]
    env = Envelope("bench@client.test", USERS[0], USERS[0])
    t = time.process_time()
    for _ in range(count):
        evaluate(script, body, env)
    return (time.process_time() - t) / count * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=3000, help="messages per scenario (default 3000)")
    ap.add_argument("--seconds", type=float, default=60, help="time bound per scenario")
    ap.add_argument("--size", type=int, default=4096, help="message size in bytes (default 4096)")
    ap.add_argument("--concurrency", type=int, default=20, help="sessions (default 20)")
    ap.add_argument("--mode", choices=("conn", "reuse"), default="reuse")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--procs", type=int, default=2, help="client processes")
    ap.add_argument("--dir", help="work directory (default: a temp dir, removed after)")
    args = ap.parse_args()
    args.client = "python"

    text = fifty_rules()
    print(f"interpreter alone: {interpreter_us(text, args.size):.0f} us per message "
          f"(50 rules, {args.size} bytes)")
    base = args.dir or tempfile.mkdtemp(prefix="bench-sieve-", dir=bench_smtp.default_parent())
    servers = []
    try:
        for name in ("no-script", "sieve-50"):
            workdir = os.path.join(base, name)
            os.makedirs(workdir, exist_ok=True)
            proc, port = start_server("clevermail", workdir, script=bench_smtp.__file__)
            server = Server(name, ("127.0.0.1", port), proc=proc, workdir=workdir)
            servers.append(server)
            if name == "sieve-50":
                from clevermail.sieve.scripts import SieveScripts
                scripts = SieveScripts.for_data_dir(os.path.join(workdir, "data"))
                for user in USERS:
                    scripts.put(user, "bench", text)
                    scripts.activate(user, "bench")
        results = {s.name: [] for s in servers}
        print(f"{'round':>5} {'server':<10} {'msgs':>6} {'msg/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
              f"{'cpu ms/msg':>10} errors")
        for rnd in range(1, args.rounds + 1):
            for server in servers:
                r = run_scenario(server, args.mode, args.concurrency, args.size, args)
                results[server.name].append(r)
                print(f"{rnd:>5} {server.name:<10} {r['msgs']:>6} {r['rate']:>8.0f} {fmt(r['p50'], 7, '.1f')} "
                      f"{fmt(r['p99'], 7, '.1f')} {fmt(r['cpu_ms'], 10, '.2f')} {len(r['errors'])}"
                      + (f" ({r['errors'][0]})" if r["errors"] else ""), flush=True)
                time.sleep(1)
        plain = {k: median([r[k] for r in results["no-script"]]) for k in ("rate", "cpu_ms")}
        sieve = {k: median([r[k] for r in results["sieve-50"]]) for k in ("rate", "cpu_ms")}
        print(f"median no-script: {plain['rate']:.0f} msg/s, {plain['cpu_ms']:.2f} cpu ms/msg")
        print(f"median sieve-50:  {sieve['rate']:.0f} msg/s, {sieve['cpu_ms']:.2f} cpu ms/msg")
        print(f"ratio with/without: rate {sieve['rate'] / plain['rate']:.2f}, "
              f"cpu {sieve['cpu_ms'] / plain['cpu_ms']:.2f}")
        bench_dir = os.path.join(servers[1].workdir, "data", "mail", "bench.test", "user0", ".Bench", "cur")
        filed = len(os.listdir(bench_dir)) if os.path.isdir(bench_dir) else 0
        print(f"check: user0's Bench folder holds {filed} message(s) of the sieve-50 server")
    finally:
        for server in servers:
            stop_server(server.proc)
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
