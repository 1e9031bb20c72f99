#!/usr/bin/env python3
"""What one look at a folder costs after another process changed it (workers = 2).

Two MailStore objects on one temporary data dir stand for two worker processes: the
writer makes imaptest-like changes to an INBOX of --messages messages (a flag rename
of one message twice as often as an APPEND or a STORE +\\Deleted then an EXPUNGE,
whichever keeps the folder's size), and after
each change the reader syncs its own Folder of the INBOX (Folder.sync, what every
IMAP session does after each command) and its session's view looks
(FolderView.changes).  Printed per look: CPU time of the reader's sync and of the
view's look (time.process_time over every round), and, with --count, the system
calls the reader's sync made (os and builtins wrapped in this process).

Same seed, same changes, whatever code runs: compare checkouts by PYTHONPATH, or
let --compare run two of them alternately (rounds interleaved, medians):

    python3 scripts/bench_sync.py [--messages 40,5000] [--changes 2000] [--count]
    python3 scripts/bench_sync.py --compare /work/main,/work/wt/wsync --rounds 5
"""

import argparse
import builtins
import collections
import fcntl
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

USER = "bench@example.test"
BODY = b"From: a@example.org\r\nTo: bench@example.test\r\nSubject: sync bench\r\n\r\n" + b"x" * 2000 + b"\r\n"
KEYWORDS = ("S", "F", "a", "b")      # \Seen, \Flagged, two keywords' letters


class Counter:
    """Counts calls of the wrapped os/builtins functions while `on`."""

    NAMES = (("os", "stat"), ("os", "listdir"), ("os", "scandir"), ("os", "open"),
             ("os", "read"), ("os", "write"), ("os", "fstat"), ("builtins", "open"),
             ("fcntl", "flock"))

    def __init__(self):
        self.on = False
        self.counts = collections.Counter()
        modules = {"os": os, "builtins": builtins, "fcntl": fcntl}
        for mod, name in self.NAMES:
            real = getattr(modules[mod], name)
            setattr(modules[mod], name, self._wrap(f"{mod}.{name}", real))

    def _wrap(self, key, real):
        def wrapper(*args, **kwargs):
            if self.on:
                self.counts[key] += 1
            return real(*args, **kwargs)
        return wrapper


def run(messages, changes, seed, count):
    from clevermail.store import MailStore
    from clevermail.store.view import FolderView, ViewMode

    counter = Counter() if count else None
    base = tempfile.mkdtemp(prefix="bench-sync-", dir=os.environ.get("TMPDIR", "/var/tmp"))
    try:
        data = os.path.join(base, "data")
        writer_store, reader_store = MailStore(data), MailStore(data)
        writer = writer_store.open_folder(USER, "INBOX")
        for start in range(0, messages, 1000):
            writer.append_many([(BODY, "", None)] * min(1000, messages - start))
        reader = reader_store.open_folder(USER, "INBOX")
        view = FolderView(reader, "INBOX", ViewMode.SELECT)
        rng = random.Random(seed)
        plan = ["flags", "flags", "size"]
        sync_cpu = look_cpu = 0.0
        looks = 0
        clock = time.process_time

        def look():
            nonlocal sync_cpu, look_cpu, looks
            if counter:
                counter.on = True
            t0 = clock()
            reader.sync()
            t1 = clock()
            if counter:
                counter.on = False
            got = view.changes()
            t2 = clock()
            for uid in got.expunged:
                view.forget(uid)
            sync_cpu += t1 - t0
            look_cpu += t2 - t0
            looks += 1

        for _ in range(changes):
            writer.sync()
            kind = rng.choice(plan)
            if kind == "flags":
                uid = rng.choice(writer.uids)
                letter = rng.choice(KEYWORDS)
                mode = "-" if letter in writer.entry(uid).flags else "+"
                writer.store_flags([uid], letter, mode)
            elif len(writer.uids) <= messages:     # the folder's size kept: append, expunge
                writer.append(BODY, rng.choice(("", "S", "Sa")))
            else:
                uid = rng.choice(writer.uids)
                writer.store_flags([uid], "T", "+")
                look()
                writer.expunge_flagged("T", [uid])
            look()
        reader.sync()
        writer.sync()
        assert reader.uids == writer.uids, "the reader's index differs from the writer's"
        assert all(reader.entry(u).flags == writer.entry(u).flags for u in reader.uids)
        result = {"messages": messages, "looks": looks,
                  "sync_us": 1e6 * sync_cpu / looks, "look_us": 1e6 * look_cpu / looks}
        if counter:
            result["calls"] = {k: round(v / looks, 2) for k, v in sorted(counter.counts.items())}
        return result
    finally:
        shutil.rmtree(base, ignore_errors=True)


def compare(repos, sizes, changes, rounds, seed):
    """Alternate the checkouts round by round; medians of each one's rounds."""
    results = {(repo, size): [] for repo in repos for size in sizes}
    for r in range(rounds):
        order = repos if r % 2 == 0 else list(reversed(repos))
        for size in sizes:
            for repo in order:
                out = subprocess.run(
                    [sys.executable, os.path.abspath(__file__), "--messages", str(size),
                     "--changes", str(changes), "--seed", str(seed), "--json"],
                    env=dict(os.environ, PYTHONPATH=repo), check=True, capture_output=True,
                    text=True).stdout
                results[(repo, size)].append(json.loads(out.strip().splitlines()[-1])[0])
    print(f"{'checkout':40} {'messages':>8} {'sync us':>9} {'look us':>9}   (medians of {rounds})")
    for size in sizes:
        for repo in repos:
            rows = results[(repo, size)]
            print(f"{repo:40} {size:8} {statistics.median(r['sync_us'] for r in rows):9.1f} "
                  f"{statistics.median(r['look_us'] for r in rows):9.1f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", default="40,5000", help="folder sizes, comma-separated")
    ap.add_argument("--changes", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--count", action="store_true", help="count the reader's system calls")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--compare", help="checkouts (PYTHONPATH roots), comma-separated")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    sizes = [int(s) for s in args.messages.split(",")]
    if args.compare:
        compare(args.compare.split(","), sizes, args.changes, args.rounds, args.seed)
        return
    results = [run(size, args.changes, args.seed, args.count) for size in sizes]
    if args.json:
        print(json.dumps(results))
        return
    for r in results:
        print(f"{r['messages']:6} messages: {r['looks']} looks, reader sync {r['sync_us']:.1f} us, "
              f"sync + view look {r['look_us']:.1f} us (CPU per look)")
        if "calls" in r:
            print("        calls per sync:", ", ".join(f"{k} {v}" for k, v in r["calls"].items()))


if __name__ == "__main__":
    main()
