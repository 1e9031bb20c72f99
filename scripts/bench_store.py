#!/usr/bin/env python3
"""Benchmark durable delivery through the store against the raw cost of the same disk work.

For 1 and for 8 threads it delivers N messages (default 10,000) into one INBOX with
MailStore.deliver, and -- in the same run, in the same INBOX directories -- does the
raw Maildir work with plain os calls: create + write + fsync a file in tmp/, rename it
into new/, fsync new/.  It prints messages per second, fsyncs per message (os.fsync is
wrapped and counted in this process) and the store/raw ratio; the target is a store at
80% of raw or better.

The two run in alternating rounds of --round-size messages (default 100), each going
first in turn, so that a disk whose speed drifts (a shared machine) slows both alike.  Each thread count is bounded by --n
messages per side and --max-seconds for raw and store together; a run that hits the
time limit reports the messages it did.  Everything is written under a temporary directory
(in --dir, default the current directory, so that the file system is a real disk and
not a tmpfs) that is removed afterwards unless --keep is given.

    python scripts/bench_store.py [--n 10000] [--threads 1,8] [--size 4096] [--round-size 100]
                                  [--max-seconds 240] [--dir .] [--keep]
"""

import argparse
import itertools
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from clevermail.store import MailStore  # noqa: E402

USER = "bench@example.test"

# -- fsync counting -------------------------------------------------------------------------
_real_fsync = os.fsync
_fsync_lock = threading.Lock()
_fsyncs = [0]


def _counting_fsync(fd):
    with _fsync_lock:
        _fsyncs[0] += 1
    return _real_fsync(fd)


def fsync_count():
    """fsyncs since the last call."""
    with _fsync_lock:
        n, _fsyncs[0] = _fsyncs[0], 0
    return n


def make_message(size):
    head = b"From: a@example.org\r\nTo: bench@example.test\r\nSubject: benchmark\r\n\r\n"
    line = b"x" * 76 + b"\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return head + body


# -- the two workloads ----------------------------------------------------------------------------
def run_threads(nthreads, n, max_seconds, work):
    """Call work(i) for i in 0..n-1 from `nthreads` threads; returns (done, seconds)."""
    counter = itertools.count()
    done = [0] * nthreads
    errors = []
    deadline = time.monotonic() + max_seconds

    def loop(slot):
        try:
            while time.monotonic() < deadline:
                i = next(counter)
                if i >= n:
                    return
                work(i)
                done[slot] += 1
        except Exception as exc:  # report, do not hang the benchmark
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(t,), name=f"bench-{t}") for t in range(nthreads)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return sum(done), elapsed


def store_worker(store):
    return lambda i, message: store.deliver_local("", [USER], message)


def raw_worker(box):
    """The same disk work with plain os calls, in the same INBOX directories as the
    store (directories placed elsewhere on the disk can differ in speed by 30%)."""
    tmpdir, newdir = os.path.join(box, "tmp"), os.path.join(box, "new")
    pid = os.getpid()

    def work(i, message):
        disk = message.replace(b"\r\n", b"\n")   # the store writes LF endings too: same bytes
        name = f"{int(time.time())}.M{i}P{pid}.raw-bench"
        tmp = os.path.join(tmpdir, name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, disk)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(newdir, name))
        dfd = os.open(newdir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    return work


class Phase:
    """Totals of one workload over the rounds."""

    def __init__(self, label, work):
        self.label, self.work = label, work
        self.done, self.elapsed, self.fsyncs, self.next = 0, 0.0, 0, 0

    def round(self, count, max_seconds, message, nthreads):
        base = self.next
        fsync_count()
        done, elapsed = run_threads(nthreads, count, max_seconds, lambda i: self.work(base + i, message))
        self.fsyncs += fsync_count()
        self.done += done
        self.elapsed += elapsed
        self.next += count
        return elapsed

    @property
    def rate(self):
        return self.done / self.elapsed if self.elapsed else 0.0

    def report(self):
        per = self.fsyncs / self.done if self.done else 0.0
        print(f"  {self.label:<22} {self.done:>7} msgs in {self.elapsed:7.2f} s = {self.rate:9.0f} msg/s, "
              f"{per:.2f} fsync/msg", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="messages per phase (default 10000)")
    ap.add_argument("--threads", default="1,8", help="comma-separated thread counts (default 1,8)")
    ap.add_argument("--size", type=int, default=4096, help="message size in bytes (default 4096)")
    ap.add_argument("--max-seconds", type=float, default=240.0,
                    help="time limit per thread count, raw and store together (default 240)")
    ap.add_argument("--round-size", type=int, default=100,
                    help="messages per alternating raw/store round (default 100)")
    ap.add_argument("--dir", default=".", help="where to make the temporary directory (default .)")
    ap.add_argument("--keep", action="store_true", help="keep the written files")
    args = ap.parse_args(argv)
    if args.n < 1 or args.n > 1_000_000:
        ap.error("--n must be between 1 and 1,000,000")
    if args.round_size < 1:
        ap.error("--round-size must be at least 1")
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    if not threads or any(t < 1 or t > 64 for t in threads):
        ap.error("--threads takes counts from 1 to 64")

    message = make_message(args.size)
    root = tempfile.mkdtemp(prefix="clevermail-bench-", dir=args.dir)
    os.fsync = _counting_fsync
    ratios = {}
    try:
        print(f"store benchmark: {args.n} messages of {len(message)} bytes per phase, "
              f"in {os.path.abspath(root)}", flush=True)
        for nthreads in threads:
            print(f"{nthreads} thread{'s' if nthreads > 1 else ''}:", flush=True)
            mailstore = MailStore(os.path.join(root, f"store-{nthreads}"))
            box = mailstore.ensure_user(USER)
            raw = Phase("raw os calls", raw_worker(box))
            store = Phase("MailStore.deliver", store_worker(mailstore))
            # alternate in short rounds, each side going first in turn, so that a disk
            # whose speed drifts (a shared machine) slows both sides alike
            deadline = time.monotonic() + args.max_seconds
            r = 0
            while raw.next < args.n:
                count = min(args.round_size, args.n - raw.next)
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                first, second = (raw, store) if r % 2 == 0 else (store, raw)
                first.round(count, left / 2, message, nthreads)
                second.round(count, max(deadline - time.monotonic(), 0.001), message, nthreads)
                r += 1
            raw.report()
            store.report()
            ratios[nthreads] = store.rate / raw.rate if raw.rate else 0.0
            verdict = "ok" if ratios[nthreads] >= 0.8 else "BELOW TARGET"
            print(f"  {'store / raw':<22} {ratios[nthreads]:7.0%}  (target >= 80%: {verdict})", flush=True)
    finally:
        os.fsync = _real_fsync
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0 if all(r >= 0.8 for r in ratios.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
