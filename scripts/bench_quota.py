#!/usr/bin/env python3
"""Benchmark the quota check (store/quota.py): what `Quotas.usage` costs for a user
with N messages (default 100,000) in INBOX/cur plus a few small folders.

It prints the median milliseconds of, each measured --repeat times:
- cold: a fresh Quotas (a new process): every directory listed;
- settled: nothing changed since the last look: only stat() calls;
- after a delivery: one file more in new/, only new/ is listed again;
- after a flag change: one rename in cur/, the big cur/ is listed again (the worst
  case: a client setting \\Seen just before a delivery's RCPT check).
Message files are empty: the usage comes from the S= in their names, which is the
point.  The directories' mtimes are made old (os.utime) so that the listings are
trusted (a listing made within RACY_NS of a change is not).  Everything is under a
temporary directory in --dir (default: the current directory, a real disk), removed
afterwards unless --keep.

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
from clevermail.store.quota import Quotas  # noqa: E402

USER = "bench@example.test"


def settle(store, *paths):
    """Directories (default: every one of the user) an hour older than the time
    they changed: listings of them are trusted, and each still differs from the
    mtime the cache saw before its change."""
    if not paths:
        paths = [dirpath for dirpath, _, _ in os.walk(store.user_root(USER))]
    for path in paths:
        old = os.stat(path).st_mtime - 3600
        os.utime(path, (old, old))


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
        settle(store)
        print(f"{args.n} messages in INBOX/cur, {args.folders} more folders; median of {args.repeat}")
        cold = timed(lambda: Quotas(store.users).usage(USER), args.repeat)
        quotas = Quotas(store.users)
        usage = quotas.usage(USER)
        settled = timed(lambda: quotas.usage(USER), args.repeat)
        state = {"n": 0}

        def deliver():
            store.deliver_local("", [USER], b"Subject: y\r\n\r\nnew\r\n")
            settle(store, os.path.join(root, "new"))

        after_delivery = timed(lambda: quotas.usage(USER), args.repeat, deliver)

        def rename():
            names = sorted(os.listdir(cur))
            name = names[state["n"]]
            state["n"] += 1
            os.rename(os.path.join(cur, name), os.path.join(cur, name + "F"))
            settle(store, cur)

        after_rename = timed(lambda: quotas.usage(USER), args.repeat, rename)
        print(f"usage: {usage.messages} messages, {usage.storage} bytes")
        print(f"cold (every directory listed)      {cold:9.2f} ms")
        print(f"settled (stat calls only)          {settled:9.3f} ms")
        print(f"after a delivery (new/ listed)     {after_delivery:9.3f} ms")
        print(f"after a flag change (cur/ listed)  {after_rename:9.2f} ms")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
