#!/usr/bin/env python3
"""Relay throughput: queue N messages to D domains, deliver them through the real
worker (threads, claims, fsyncs, smtplib) to a sink SMTP server on 127.0.0.1 running
in its own process, with DNS answered by a fake resolver; print messages per second.

    python scripts/bench_relay.py                 # 5000 messages, 50 domains
    python scripts/bench_relay.py -n 500 -d 10    # quicker
Bounded: at most --max-seconds of delivery (default 300), then it reports what it did.
"""
from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from clevermail.relay.queue import RelayQueue      # noqa: E402
from clevermail.relay.settings import RelaySettings    # noqa: E402
from clevermail.relay.worker import RelayWorker    # noqa: E402
from relay_sink import FakeResolver, mx_zone       # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--messages", type=int, default=5000)
    ap.add_argument("-d", "--domains", type=int, default=50)
    ap.add_argument("-r", "--recipients", type=int, default=2, help="recipients per message")
    ap.add_argument("-c", "--concurrency", type=int, default=4, help="delivery threads")
    ap.add_argument("--size", type=int, default=2000, help="approximate message size in bytes")
    ap.add_argument("--max-seconds", type=float, default=300.0)
    args = ap.parse_args(argv)
    if not (0 < args.messages <= 100_000 and 0 < args.domains <= 10_000):
        ap.error("messages must be 1..100000, domains 1..10000")
    logging.basicConfig(level=logging.WARNING)

    domains = [f"d{i}.bench.test" for i in range(args.domains)]
    filler = ("x" * 76 + "\r\n") * max(0, args.size // 78)
    sink = subprocess.Popen([sys.executable, str(REPO / "tests" / "relay_procs.py"), "sink"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(sink.stdout.readline())
        with tempfile.TemporaryDirectory() as tmp:
            q = RelayQueue(Path(tmp) / "queue")
            t0 = time.perf_counter()
            for i in range(args.messages):
                dom = domains[i % len(domains)]
                data = (f"From: a@here.test\r\nTo: u@{dom}\r\nSubject: bench {i}\r\n"
                        f"Message-ID: <b{i}@here.test>\r\n\r\n{filler}").encode()
                q.enqueue("a@here.test", [f"u{j}@{dom}" for j in range(args.recipients)], data, f"B{i}")
            enqueue_s = time.perf_counter() - t0

            settings = RelaySettings(hostname="bench.here.test", mx_port=port, connect_timeout=5,
                                     concurrency=args.concurrency)
            worker = RelayWorker(q, settings, FakeResolver(mx_zone(domains)),
                                 local_deliver=lambda s, a, d: None, is_local=lambda a: False)
            t0 = time.perf_counter()
            deadline = t0 + args.max_seconds
            worker.start()              # the production path: worker thread + delivery threads
            try:
                while q.scan() and time.perf_counter() < deadline:
                    time.sleep(0.01)    # an entry is removed once all its recipients got 250
                elapsed = time.perf_counter() - t0
            finally:
                worker.stop()
            left = len(q.scan())
        sink.stdin.close()
        accepted = int(sink.stdout.readline())
        sink.wait(30)
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.wait()
    print(f"enqueued {args.messages} messages x {args.recipients} recipients in {enqueue_s:.2f}s "
          f"({args.messages / enqueue_s:.0f} msg/s, fsync per message)")
    print(f"delivered {args.messages - left} messages to {args.domains} domains with "
          f"{args.concurrency} delivery threads in {elapsed:.2f}s: "
          f"{(args.messages - left) / elapsed:.0f} messages/s (sink accepted {accepted})"
          + (f"; {left} left at the time limit" if left else ""))
    return 0 if left == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
