#!/usr/bin/env python3
"""IMAP benchmark: SELECT (first, again, after restart), FETCH 1:* (UID FLAGS) (first
and again on a raw socket, the first byte's time, and through imaplib), UID SEARCH
UNSEEN, FETCH of 100 full bodies, a QRESYNC resynchronisation after 10 flag changes
and 5 expunges (SELECT (QRESYNC ...) and FETCH 1:* (FLAGS) (CHANGEDSINCE m), RFC 7162),
SORT and THREAD of the whole folder (first, then again from another session), and the
memory of idle IDLE sessions.

The server runs as `python -m clevermail start` in its own process and session on
loopback (bench_imap_client.py); the client is a raw socket that times each command
from send to tagged reply.  Mailboxes are populated by writing Maildir files directly
(as a local MDA would).

    python scripts/bench_imap.py                       # 10,000 and 100,000 messages, 2,000 idlers
    python scripts/bench_imap.py --sizes 2000 --idle 200
    python scripts/bench_imap.py --dovecot --idle 0     # and the same against Dovecot
    python scripts/bench_imap.py --sizes 100000 --idle 0 --dovecot --rounds 3   # interleaved
    python scripts/bench_imap.py --sizes 100000 --idle 0 --dovecot --rounds 3 --quick --before ../main

Each round starts from a fresh hard-linked copy of one populated Maildir (CleverMail: a
new data dir, so no index or cache; Dovecot: a new user, so a new index), then times a
new session after a restart (Dovecot: a new imap process) on what the round left.
Rounds alternate the servers (ABBA; with --before DIR, an earlier checkout's server as a
third column: ABC CBA) and the table shows the medians.  --quick times only the first
SELECT and the FETCHes of flags.
"""

import argparse
import email.utils
import imaplib
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from clevermail.accounts import AccountStore  # noqa: E402
from clevermail.store import maildir  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_dovecot import Dovecot  # noqa: E402  (bench_imaptest.py takes it from here too)
from bench_imap_client import Client, link_copy, rss_mb, start_server, stop_server  # noqa: E402

TEXT = b"Hello, this is line of text.\n" * 40


def bench_message(i, n):
    """Message i of n: threads of five (a first message, then replies with In-Reply-To
    and References), 997 senders, sent dates shuffled against arrival, so SORT and
    THREAD have real work to do."""
    first, pos = i - i % 5, i % 5
    sender = (i * 7) % 997
    sent = email.utils.formatdate(1_600_000_000 + ((i * 7919) % max(n, 1)) * 60)
    head = (f"From: User {sender} <user{sender}@example.test>\nTo: user@example.test\n"
            f"Subject: {'Re: ' if pos else ''}benchmark topic {first // 5}\nDate: {sent}\n"
            f"Message-ID: <{i}@bench>\n")
    if pos:
        head += f"In-Reply-To: <{i - 1}@bench>\nReferences: " + " ".join(
            f"<{j}@bench>" for j in range(first, i)) + "\n"
    return head.encode() + b"\n" + TEXT


def populate(root, n):
    """n messages in INBOX/new, every third one \\Seen in cur/."""
    maildir.make_maildir(root)
    for i in range(n):
        data = bench_message(i, n)
        base = maildir.new_base(len(data), len(data) + data.count(b"\n"), 1_600_000_000 + i)
        if i % 3:
            path = os.path.join(root, "cur", base + ":2,S")
        else:
            path = os.path.join(root, "new", base)
        with open(path, "wb") as f:
            f.write(data)


def ms(seconds):
    return f"{seconds * 1000:8.1f} ms"


def measure(port, user, password, n, quick=False):
    """The timed command sequence, the same for every server; returns {name: seconds}.
    `quick`: the first SELECT and the FETCHes of flags only."""
    out = {}
    c = Client(port)
    c.cmd(f"LOGIN {user} {password}")
    out["SELECT first time"], _ = c.cmd("SELECT INBOX")
    # every message \Recent in this session; the client a raw socket
    out["FETCH 1:* (UID FLAGS)"], _ = c.cmd("FETCH 1:* (UID FLAGS)")
    out["  its first byte"] = c.first_byte
    out["FETCH 1:* (UID FLAGS) again"], _ = c.cmd("FETCH 1:* (UID FLAGS)")
    out.update(measure_imaplib(port, user, password))
    if quick:
        c.close()
        return out
    out["UID SEARCH UNSEEN"], _ = c.cmd("UID SEARCH UNSEEN")
    picks = random.Random(1).sample(range(1, n + 1), min(100, n))
    out["FETCH 100 BODY.PEEK[]"], _ = c.cmd("FETCH " + ",".join(map(str, sorted(picks))) + " BODY.PEEK[]")
    # SORT and THREAD of the whole folder (RFC 5256): the first reads every header
    out["SORT (DATE) first"], _ = c.cmd("SORT (DATE) US-ASCII ALL")
    for keys in ("ARRIVAL", "SUBJECT", "FROM", "ARRIVAL DATE SUBJECT FROM"):
        out[f"SORT ({keys})"], _ = c.cmd(f"SORT ({keys}) US-ASCII ALL")
    out["THREAD REFERENCES"], _ = c.cmd("THREAD REFERENCES US-ASCII ALL")
    c.close()
    c = Client(port)
    t0 = time.perf_counter()
    c.cmd(f"LOGIN {user} {password}")
    out["SELECT again"], _ = c.cmd("SELECT INBOX")
    out["LOGIN+SELECT again"] = time.perf_counter() - t0
    # the folder unchanged, another session: what a webmail's next page view costs
    out["SORT (DATE) again"], _ = c.cmd("SORT (DATE) US-ASCII ALL")
    out["THREAD REFERENCES again"], _ = c.cmd("THREAD REFERENCES US-ASCII ALL")
    c.close()
    out.update(measure_resync(port, user, password, n))
    return out


def measure_imaplib(port, user, password):
    """FETCH 1:* (UID FLAGS) through imaplib in a second session (no \\Recent there):
    what a Python client sees, its parsing of each line included."""
    m = imaplib.IMAP4("127.0.0.1", port)
    try:
        m.login(user, password)
        m.select("INBOX")
        t0 = time.perf_counter()
        typ, _ = m.fetch("1:*", "(UID FLAGS)")
        elapsed = time.perf_counter() - t0
        if typ != "OK":
            raise RuntimeError(f"imaplib FETCH: {typ}")
    finally:
        m.logout()
    return {"FETCH 1:* (UID FLAGS) imaplib": elapsed}


def measure_resync(port, user, password, n):
    """A client that knows the folder at modseq m comes back after another session
    changed the flags of 10 messages and expunged 5: SELECT (QRESYNC (v m)), and
    FETCH 1:* (FLAGS) (CHANGEDSINCE m) in an already selected folder (RFC 7162).
    Both should cost work in proportion to the changes, not to the folder."""
    out = {}
    a = Client(port)
    a.cmd(f"LOGIN {user} {password}")
    a.cmd("ENABLE QRESYNC")
    a.cmd("EXAMINE INBOX")
    validity = int(re.search(rb"\[UIDVALIDITY (\d+)\]", a.last).group(1))
    known = int(re.search(rb"\[HIGHESTMODSEQ (\d+)\]", a.last).group(1))
    b = Client(port)
    b.cmd(f"LOGIN {user} {password}")
    b.cmd("SELECT INBOX")
    picks = random.Random(2).sample(range(1, n + 1), min(15, n))
    for seq in picks[:10]:
        b.cmd(f"STORE {seq} +FLAGS.SILENT (\\Flagged)")
    b.cmd("STORE " + ",".join(map(str, picks[10:])) + " +FLAGS.SILENT (\\Deleted)")
    b.cmd("EXPUNGE")
    b.close()
    out["FETCH CHANGEDSINCE (10+5)"], _ = a.cmd(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {known})")
    a.cmd("UNSELECT")
    out["SELECT QRESYNC (10+5)"], _ = a.cmd(f"EXAMINE INBOX (QRESYNC ({validity} {known}))")
    vanished = a.last.count(b"* VANISHED (EARLIER)")
    changed = a.last.count(b" FETCH (")
    if vanished != 1 or changed != 10:
        raise RuntimeError(f"QRESYNC answered {vanished} VANISHED and {changed} FETCH lines, not 1 and 10")
    a.close()
    return out


def measure_restart(port, user, password):
    """A new session after the server restarted (CleverMail) or in a new process
    (Dovecot starts one imap process per login): the first SELECT, SORT and THREAD
    there read what the server kept on disk."""
    out = {}
    c = Client(port)
    c.cmd(f"LOGIN {user} {password}")
    out["restart: SELECT"], _ = c.cmd("SELECT INBOX")
    out["restart: SORT (DATE)"], _ = c.cmd("SORT (DATE) US-ASCII ALL")
    out["restart: THREAD REFERENCES"], _ = c.cmd("THREAD REFERENCES US-ASCII ALL")
    c.close()
    return out


def ours_round(workdir, template, n, repo=REPO, quick=False):
    """One CleverMail round (the server of checkout `repo`) on a data dir made afresh
    (no index, no cache), then a restart on the same data dir."""
    user = f"u{n}@example.test"
    data = os.path.join(workdir, "data")
    shutil.rmtree(data, ignore_errors=True)
    link_copy(template, os.path.join(data, "mail", "example.test", f"u{n}"))
    os.sync()
    cfg = os.path.join(workdir, "clevermail.ini")
    proc, port = start_server(cfg, repo)
    try:
        out = measure(port, user, "secret", n, quick)
    finally:
        stop_server(proc)
    if quick:
        return out
    proc, port = start_server(cfg, repo)
    try:
        out.update(measure_restart(port, user, "secret"))
    finally:
        stop_server(proc)
    return out


def dovecot_round(dovecot, template, n, r, quick=False):
    """The same round against the private Dovecot, a new user (so a new index) each."""
    user = f"u{n}r{r}"
    home = dovecot.home(user)
    link_copy(template, os.path.join(home, "Maildir"))
    dovecot.own(home, files=False)
    os.sync()
    out = measure(dovecot.port, user, "secret", n, quick)
    if not quick:
        out.update(measure_restart(dovecot.port, user, "secret"))
    return out


def bench_size(workdir, n, dovecot=None, rounds=1, before=None, quick=False):
    """`rounds` rounds, CleverMail's, an earlier checkout's (`before`) and Dovecot's
    alternating (ABC CBA ...), each on a fresh hard-linked copy of one populated
    Maildir; the medians side by side."""
    AccountStore(os.path.join(workdir, "users.ini"), ["example.test"]).add(f"u{n}@example.test", "secret")
    template = os.path.join(workdir, "template", str(n))
    t0 = time.perf_counter()
    populate(template, n)
    if dovecot:
        dovecot.own(template)       # the files' owner, shared by every linked copy
    os.sync()   # let write-back of the new files settle before anything is timed
    print(f"\n== {n:,} messages (populated in {time.perf_counter() - t0:.1f} s), {rounds} round(s), "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    results = {"clevermail": []}
    runs = [("clevermail", lambda r: ours_round(workdir, template, n, REPO, quick))]
    if before:
        results["before"] = []
        runs.append(("before", lambda r: ours_round(workdir, template, n, before, quick)))
    if dovecot:
        results["dovecot"] = []
        runs.append(("dovecot", lambda r: dovecot_round(dovecot, template, n, r, quick)))
    for r in range(rounds):
        for name, run in (runs if r % 2 == 0 else runs[::-1]):
            results[name].append(run(r))
        print(f"   round {r + 1} done, load average {os.getloadavg()[0]:.2f}", flush=True)
    print_table(results)


def print_table(results):
    """The medians; the ratio of each CleverMail column to Dovecot's."""
    names = list(results)
    peer = results.get("dovecot")
    ratios = [name for name in names if peer and name != "dovecot"]
    print(f"{'median of ' + str(len(results['clevermail'])):34}" + "".join(f" {name:>11}" for name in names)
          + "".join(f" {(name + '/dc')[:6]:>6}" if len(ratios) > 1 else f" {'ratio':>6}" for name in ratios))
    for row in results["clevermail"][0]:
        medians = {name: statistics.median(o[row] for o in runs) for name, runs in results.items()}
        print(f"{row:34}" + "".join(f" {ms(medians[name])}" for name in names)
              + "".join(f" {medians[name] / medians['dovecot']:6.2f}x" for name in ratios))


def bench_idle(workdir, count):
    accounts = AccountStore(os.path.join(workdir, "users.ini"), ["example.test"])
    accounts.add("idler@example.test", "secret")
    cfg = os.path.join(workdir, "clevermail.ini")
    proc, port = start_server(cfg, REPO)
    clients = []
    try:
        base = rss_mb(proc.pid)
        t0 = time.time()
        for i in range(count):
            if time.time() - t0 > 300:
                break
            c = Client(port)
            c.cmd("LOGIN idler@example.test secret")
            c.cmd("SELECT INBOX")
            c.sock.sendall(b"i IDLE\r\n")
            c._line()
            clients.append(c)
        time.sleep(1.0)
        rss = rss_mb(proc.pid)
        print(f"\n== {len(clients):,} idle sessions (IDLE on INBOX): server RSS {rss:.1f} MB "
              f"(idle server {base:.1f} MB, {(rss - base) * 1024 / max(1, len(clients)):.1f} kB per session)")
    finally:
        for c in clients:
            c.close()
        stop_server(proc)


def write_config(workdir):
    with open(os.path.join(workdir, "clevermail.ini"), "w") as f:
        f.write("[server]\ndata_dir = data\nusers_file = users.ini\ndomains = example.test,\n"
                "log_level = WARNING\n[smtp]\nlisten = 127.0.0.1:0,\n[pop3]\nlisten = 127.0.0.1:0,\n"
                "[imap]\nlisten = 127.0.0.1:0,\n[limits]\nconnections = 5000\n"
                "connections_per_client = 5000\nauth_failure_delay = 0\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=1,
                    help="rounds per size, CleverMail's and Dovecot's interleaved; medians printed")
    ap.add_argument("--dovecot", nargs="?", const="dovecot", metavar="BINARY",
                    help="also time a private Dovecot instance, side by side (Debian: dovecot-imapd)")
    ap.add_argument("--before", metavar="DIR",
                    help="also time the server of an earlier checkout DIR in the same rounds")
    ap.add_argument("--quick", action="store_true",
                    help="time only the first SELECT and the FETCHes of flags (no SORT, THREAD, restart)")
    args = ap.parse_args()
    binary = args.dovecot and shutil.which(args.dovecot, path=os.environ.get("PATH", "") + ":/usr/sbin")
    if args.dovecot and not binary:
        raise SystemExit(f"{args.dovecot}: not found (apt-get install dovecot-imapd)")
    with tempfile.TemporaryDirectory(prefix="cm-bench-imap-") as workdir:
        write_config(workdir)
        dovecot = Dovecot(workdir, binary) if binary else None
        try:
            for n in (int(s) for s in args.sizes.split(",") if s):
                bench_size(workdir, n, dovecot, args.rounds, args.before and os.path.abspath(args.before),
                           args.quick)
        finally:
            if dovecot:
                dovecot.stop()
    if args.idle:
        # its own data dir: the figure is what sessions cost, not the warmed-up folders
        with tempfile.TemporaryDirectory(prefix="cm-bench-idle-") as workdir:
            write_config(workdir)
            bench_idle(workdir, args.idle)


if __name__ == "__main__":
    main()
