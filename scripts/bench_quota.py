#!/usr/bin/env python3
"""Benchmark the quota check (store/quota.py over the maildirsize ledger of
store/maildirsize.py): what `Quotas.usage` and a delivery's reservation cost for a
user with N messages (default 100,000) in INBOX/cur plus a few small folders.

It prints the median milliseconds of, each measured --repeat times:
- recalculation: the ledger missing, every directory listed (the first look, or
  one past the ledger's bound: Maildir++'s 5120 bytes, about 500 changes);
- settled: the ledger read, nothing else;
- after a delivery: the check after one more message (its line appended);
- after a flag change: one rename in cur/ (nothing to do for the ledger);
- reserve: a delivery's check and line under the ledger lock.
Message files are empty: the usage comes from the S= in their names, which is the
point.  Everything is under a temporary directory in --dir (default: the current
directory, a real disk), removed afterwards unless --keep.

    python scripts/bench_quota.py [--n 100000] [--folders 8] [--repeat 7] [--dir .] [--keep]
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from clevermail.store import MailStore  # noqa: E402
from clevermail.store import maildirsize  # noqa: E402
from clevermail.store.quota import Quotas  # noqa: E402

USER = "bench@example.test"


def timed(fn, repeat, before=lambda: None):
    times = []
    for _ in range(repeat):
        before()
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--folders", type=int, default=8, help="small folders besides INBOX")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--dir", default=".")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-quota-", dir=args.dir)
    try:
        store = MailStore(work)
        root = store.ensure_user(USER)
        for i in range(args.folders):
            store.create_folder(USER, f"Folder{i}")
            store.deliver_local("", [USER], b"Subject: x\r\n\r\nsmall\r\n")
        cur = os.path.join(root, "cur")
        for i in range(args.n):
            open(os.path.join(cur, f"{1700000000 + i}.M{i:06d}P1Q{i}.bench,S={4000 + i % 997},"
                                   f"W={4100 + i % 997}:2,S"), "wb").close()
        ledger = os.path.join(root, maildirsize.FILE_NAME)
        print(f"{args.n} messages in INBOX/cur, {args.folders} more folders; median of {args.repeat}")
        quotas = Quotas(store.users)
        recalc = timed(lambda: quotas.usage(USER), args.repeat,
                       lambda: os.path.exists(ledger) and os.unlink(ledger))
        usage = quotas.usage(USER)
        settled = timed(lambda: quotas.usage(USER), args.repeat)
        after_delivery = timed(lambda: quotas.usage(USER), args.repeat,
                               lambda: store.deliver_local("", [USER], b"Subject: y\r\n\r\nnew\r\n"))
        state = {"n": 0, "names": sorted(os.listdir(cur))}

        def rename():
            name = state["names"][state["n"]]
            state["n"] += 1
            os.rename(os.path.join(cur, name), os.path.join(cur, name + "F"))

        after_rename = timed(lambda: quotas.usage(USER), args.repeat, rename)
        reserve = timed(lambda: quotas.reserve(USER, 100).cancel(), args.repeat)
        print(f"usage: {usage.messages} messages, {usage.storage} bytes")
        print(f"recalculation (every directory listed) {recalc:9.2f} ms")
        print(f"settled (the ledger read)              {settled:9.3f} ms")
        print(f"after a delivery                       {after_delivery:9.3f} ms")
        print(f"after a flag change                    {after_rename:9.3f} ms")
        print(f"reserve (check + line, locked)         {reserve:9.3f} ms")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
