#!/usr/bin/env python3
"""FETCH under imaptest's bench mix on two workers of one data dir, counted per command.

Two IMAPFileHandlers on one data dir, each with its own MailStore and caches (two
processes of `[server] workers = 2` as tests/test_imap_fetch_cache.py's worker_b makes
them, here in one process), two sessions on each over socketpairs, all with INBOX
selected.  Each round, driven from one thread with a fixed seed (the same commands every
run): one session APPENDs a message of the mbox (imaptest's bench.mbox by default; with
flags and a date); then every session NOOPs (it learns the others' changes) and sends
imaptest's LIST "" * and STATUS "INBOX" (MESSAGES UNSEEN RECENT), its FETCH
(client-state.c STATE_FETCH: min(messages, 100) random sequence numbers, 1-4 items of UID
FLAGS ENVELOPE INTERNALDATE BODY BODYSTRUCTURE RFC822.SIZE or BODY.PEEK[HEADER.FIELDS (1-4
of its 7 names)]), its FETCH2 (one message: UID and one of BODY.PEEK[HEADER],
RFC822.HEADER, BODY.PEEK[], BODY.PEEK[1], BODY.PEEK[TEXT]) and its STORE (STATE_STORE:
random flags, added, removed or replaced, on up to a fifth of the messages); and once the
folder holds more than --keep messages one session marks the oldest \\Deleted and
EXPUNGEs them (imaptest's folder stays about that size).

Printed: the server threads' CPU per command (time.thread_time around IMAPSession.run,
so the client's side is not counted), FETCH's per message it answered, message files
read and metadata renders per handler:

    PYTHONPATH=$PWD python3 scripts/bench_fetch.py [--rounds 300] [--warm 60]

Instructions (repeatable on a busy machine): the whole mix under callgrind for --warm +
--rounds rounds and for --warm alone, the difference per round and per FETCH (every
command of the mix and the client's side are in it: compare runs, not commands):

    PYTHONPATH=$PWD python3 scripts/bench_fetch.py --callgrind [--rounds 100]
"""

import argparse
import collections
import ctypes
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [REPO, os.path.join(REPO, "tests"), HERE]

from bench_mime import MBOX, mbox_messages  # noqa: E402
from clevermail.imap import fetch  # noqa: E402
from clevermail.imap.handler import IMAPFileHandler  # noqa: E402
from clevermail.imap.session import IMAPSession  # noqa: E402
from clevermail.process import settle_heap  # noqa: E402
from clevermail.store import MailStore  # noqa: E402
from imap_helpers import FakeServer, append, close_handler, make_handler, read_greeting, start_session  # noqa: E402

FIELDS = ("UID", "FLAGS", "ENVELOPE", "INTERNALDATE", "BODY", "BODYSTRUCTURE", "RFC822.SIZE")
HEADER_FIELDS = ("From", "To", "Cc", "Subject", "References", "In-Reply-To", "Message-ID")
STORE_FLAGS = ("\\Seen", "\\Flagged", "\\Answered", "\\Draft", "$Label1", "$Label2")
FETCH2 = ("BODY.PEEK[HEADER]", "RFC822.HEADER", "BODY.PEEK[]", "BODY.PEEK[1]", "BODY.PEEK[TEXT]")
_EXISTS = re.compile(r"\* (\d+) EXISTS$")
_EXPUNGE = re.compile(r"\* \d+ EXPUNGE$")


class Counted:
    """Server thread CPU seconds and count per command name (IMAPSession.run wrapped);
    under callgrind (`toggle`: a function that toggles its collection in the calling
    thread) the commands `collect` names are the ones counted."""

    def __init__(self, toggle=None, collect=()):
        self.cpu = collections.Counter()
        self.count = collections.Counter()
        self.on = False
        original = IMAPSession.run

        def run(session, cmd):
            if not self.on:
                return original(session, cmd)
            name = cmd.name
            counted = toggle is not None and (name in collect or "ALL" in collect)
            if counted:
                toggle()
            t0 = time.thread_time()
            try:
                return original(session, cmd)
            finally:
                self.cpu[name] += time.thread_time() - t0
                self.count[name] += 1
                if counted:
                    toggle()
        IMAPSession.run = run


_TOGGLE_C = r"""
#include <valgrind/callgrind.h>
void toggle(void) { CALLGRIND_TOGGLE_COLLECT; }
"""


def build_toggle(tmp):
    """A tiny C library (built with gcc and valgrind's header) whose toggle() is
    CALLGRIND_TOGGLE_COLLECT; its path.  Built before valgrind starts: a child process
    under it would write its own (empty) profile over the one asked for."""
    src, lib = os.path.join(tmp, "toggle.c"), os.path.join(tmp, "toggle.so")
    with open(src, "w") as f:
        f.write(_TOGGLE_C)
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", lib, src], check=True)
    return lib


class Tracked:
    """A client and the message count its session was told of."""

    failed = collections.Counter()      # command word -> answers other than OK

    def __init__(self, client):
        self.client, self.exists = client, 0

    def command(self, text):
        return self.told(text, self.client.command(text))

    def append(self, data, extra):
        return self.told("APPEND", append(self.client, "INBOX", data, extra))

    def told(self, text, reply):
        status = reply.tagged.split(" ", 2)[1]
        if status != "OK":
            Tracked.failed[text.split(" ", 1)[0]] += 1
            if status == "BAD":
                print("BAD:", text[:200], reply.tagged, file=sys.stderr)
        for line in reply.untagged:
            m = _EXISTS.match(line)
            if m:
                self.exists = int(m.group(1))
            elif _EXPUNGE.match(line):
                self.exists -= 1
        return reply


def fetch_command(rnd, n):
    """imaptest's STATE_FETCH over n messages."""
    seqs = sorted({rnd.randrange(n) + 1 for _ in range(min(n, 100))})
    items = []
    for _ in range(rnd.randrange(4) + 1):
        if rnd.randrange(4):
            items.append(rnd.choice(FIELDS))
        else:
            names = [rnd.choice(HEADER_FIELDS) for _ in range(rnd.randrange(4) + 1)]
            items.append("BODY.PEEK[HEADER.FIELDS (%s)]" % " ".join(names))
    return "FETCH %s (%s)" % (ranges(seqs), " ".join(items))


def ranges(seqs):
    """Ascending numbers as an IMAP set of ranges ("1:3,5"), as imaptest writes them."""
    out, k = [], 0
    while k < len(seqs):
        j = k
        while j + 1 < len(seqs) and seqs[j + 1] == seqs[j] + 1:
            j += 1
        out.append(str(seqs[k]) if j == k else "%d:%d" % (seqs[k], seqs[j]))
        k = j + 1
    return ",".join(out)


def store_command(rnd, n):
    """imaptest's STATE_STORE: a random set of up to min(n / 5, 50) messages (all of
    them below 10), +, - or replaced flags, .SILENT half the time."""
    count = max(1, rnd.randrange(n if n < 10 else max(1, min(n // 5, 50))))
    seqs = sorted({rnd.randrange(n) + 1 for _ in range(count)})
    flags = " ".join(sorted({rnd.choice(STORE_FLAGS) for _ in range(rnd.randrange(3) + 1)}))
    return "STORE %s %sFLAGS%s (%s)" % (ranges(seqs), rnd.choice(("+", "-", "")),
                                       rnd.choice(("", ".SILENT")), flags)


def fetch2_command(rnd, n):
    return "FETCH %d (UID %s)" % (rnd.randrange(n) + 1, rnd.choice(FETCH2))


def run(args):
    messages = mbox_messages(args.mbox)
    rnd = random.Random(args.seed)
    tmp = tempfile.mkdtemp(prefix="bench-fetch.")
    # the collection state toggled is the calling thread's
    toggle = ctypes.CDLL(args.toggle).toggle if args.collect else None
    counted = Counted(toggle, args.collect.split(",") if args.collect else ())
    reads = collections.Counter()
    original_read = IMAPFileHandler.read_message

    def read_message(handler, view, msg):
        reads[handler.bench_name] += 1
        return original_read(handler, view, msg)
    IMAPFileHandler.read_message = read_message
    renders = collections.Counter()
    for name in ("bodystructure", "envelope"):
        def counting(*a, _f=getattr(fetch, name), _name=name, **kw):
            renders[_name] += 1
            return _f(*a, **kw)
        setattr(fetch, name, counting)

    handlers = []
    try:
        import pathlib
        a = make_handler(pathlib.Path(tmp))
        b = IMAPFileHandler(MailStore(pathlib.Path(tmp) / "data"), a.accounts)
        a.bench_name, b.bench_name = "A", "B"
        handlers = [a, b]
        sessions = []
        for handler in (a, a, b, b):
            client = start_session(FakeServer(handler))
            read_greeting(client)
            client.login()
            sessions.append(Tracked(client))
        appended = 0

        def add(session):
            nonlocal appended
            data = messages[appended % len(messages)]
            appended += 1
            flags = rnd.choice(("", " (\\Seen)", " ($Label1)"))
            session.append(data, flags + ' "7-Feb-1994 21:52:25 -0800"')

        for _ in range(args.keep):
            add(sessions[0])
        for s in sessions:
            s.command("SELECT INBOX")
        settle_heap()       # as the server once started (GC thresholds, start-up frozen)
        total = args.warm + args.rounds
        for r in range(total):
            if r == args.warm:
                counted.on = True
                reads.clear()
                renders.clear()
                t_all = time.process_time()
            add(rnd.choice(sessions))
            for s in sessions:
                s.command("NOOP")
                s.command('LIST "" *')
                s.command('STATUS "INBOX" (MESSAGES UNSEEN RECENT)')
                if s.exists:
                    s.command(fetch_command(rnd, s.exists))
                    s.command(fetch2_command(rnd, s.exists))
                    s.command(store_command(rnd, s.exists))
            deleter = rnd.choice(sessions)
            deleter.command("NOOP")
            extra = deleter.exists - args.keep
            if extra > 0:
                deleter.command("STORE 1:%d +FLAGS.SILENT (\\Deleted)" % extra)
                deleter.command("EXPUNGE")
        t_all = time.process_time() - t_all if args.rounds else 0.0
        for s in sessions:
            s.client.close()
    finally:
        for h in handlers:
            close_handler(h)
        shutil.rmtree(tmp, ignore_errors=True)
    return counted, reads, renders, t_all


def report(args, counted, reads, renders, t_all):
    print(f"# {args.rounds} rounds after {args.warm} unmeasured, seed {args.seed}, folder "
          f"~{args.keep} messages, 2 handlers x 2 sessions")
    print(f"{'command':<10} {'count':>7} {'us/cmd':>9}")
    for name in sorted(counted.count, key=lambda k: -counted.cpu[k]):
        print(f"{name:<10} {counted.count[name]:>7} {counted.cpu[name] / counted.count[name] * 1e6:>9.1f}")
    total_cpu = sum(counted.cpu.values())
    print(f"all server commands: {total_cpu / args.rounds * 1e6:.0f} us/round; process "
          f"(client too) {t_all / args.rounds * 1e6:.0f} us/round")
    print(f"files read per round: A {reads['A'] / args.rounds:.2f}  B {reads['B'] / args.rounds:.2f};"
          f" renders per round: BODY(STRUCTURE) {renders['bodystructure'] / args.rounds:.2f}"
          f"  ENVELOPE {renders['envelope'] / args.rounds:.2f}")
    if Tracked.failed:
        print("answers other than OK:", dict(Tracked.failed))


def callgrind(args):
    """Instructions of the server's work on the commands named by --callgrind (ALL: every
    command), counted in the session threads only, per command."""
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep_profile or os.path.join(tmp, "cg.out")
        cmd = ["valgrind", "--tool=callgrind", "--collect-atstart=no", f"--callgrind-out-file={out}",
               sys.executable, __file__, "--rounds", str(args.rounds), "--warm", str(args.warm),
               "--seed", str(args.seed), "--keep", str(args.keep), "--mbox", args.mbox,
               "--collect", args.callgrind, "--toggle", build_toggle(tmp), "--counts"]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        with open(out) as f:
            total = int(re.search(r"^summary: (\d+)", f.read(), re.M).group(1))
    names = args.callgrind.split(",")
    n = sum(int(v) for k, v in (line.split()[1:] for line in done.stdout.splitlines()
                                  if line.startswith("count "))
            if "ALL" in names or k in names)
    print(f"callgrind: {total / n:,.0f} instructions per command of {args.callgrind} ({n} commands; "
          f"{total / args.rounds:,.0f} per round; {args.rounds} rounds after {args.warm}, seed {args.seed})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mbox", default=MBOX)
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--warm", type=int, default=60)
    ap.add_argument("--keep", type=int, default=36)
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--callgrind", nargs="?", const="FETCH", default=None,
                    help="count the instructions of these commands (comma-separated, ALL: every one)")
    ap.add_argument("--keep-profile", help="with --callgrind: write callgrind's profile to this file")
    ap.add_argument("--collect", default="", help=argparse.SUPPRESS)   # under callgrind
    ap.add_argument("--toggle", help=argparse.SUPPRESS)
    ap.add_argument("--counts", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.callgrind:
        callgrind(args)
        return
    results = run(args)
    if args.counts:
        for name, n in results[0].count.items():
            print("count", name.replace(" ", "_"), n)
    elif args.rounds:
        report(args, *results)


if __name__ == "__main__":
    main()
