#!/usr/bin/env python3
"""IMAP benchmark: SELECT (first, again, after restart), FETCH 1:* (UID FLAGS),
UID SEARCH UNSEEN, FETCH of 100 full bodies, a QRESYNC resynchronisation after 10 flag
changes and 5 expunges (SELECT (QRESYNC ...) and FETCH 1:* (FLAGS) (CHANGEDSINCE m),
RFC 7162), SORT and THREAD of the whole folder (first, then again from another
session), and the memory of idle IDLE sessions.

The server runs as `python -m clevermail start` in its own process on loopback; the
client is a raw socket that times each command from send to tagged reply.  Mailboxes
are populated by writing Maildir files directly (as a local MDA would).

    python scripts/bench_imap.py                       # 10,000 and 100,000 messages, 2,000 idlers
    python scripts/bench_imap.py --sizes 2000 --idle 200
    python scripts/bench_imap.py --dovecot --idle 0     # and the same against Dovecot
    python scripts/bench_imap.py --sizes 100000 --idle 0 --dovecot --rounds 3   # interleaved

Each round starts from a fresh hard-linked copy of one populated Maildir (CleverMail: a
new data dir, so no index or cache; Dovecot: a new user, so a new index), then times a
new session after a restart (Dovecot: a new imap process) on what the round left.
Rounds alternate the servers (ABBA) and the table shows the medians.
"""

import argparse
import email.utils
import os
import random
import re
import shutil
import statistics
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from clevermail.accounts import AccountStore  # noqa: E402
from clevermail.store import maildir  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_dovecot import Dovecot  # noqa: E402  (bench_imaptest.py takes it from here too)

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


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=300)
        self.buf = b""
        self.n = 0
        self._line()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def cmd(self, text):
        """Send a command, read to its tagged reply; returns (seconds, bytes received)."""
        self.n += 1
        tag = b"b%d" % self.n
        t0 = time.perf_counter()
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        received = 0
        data = bytearray(self.buf)
        self.buf = b""
        needle = b"\r\n" + tag + b" "
        while True:
            i = data.find(needle)
            if i >= 0 or data.startswith(tag + b" "):
                end = data.find(b"\r\n", i + 2 if i >= 0 else 0)
                while end < 0:
                    data += self.sock.recv(1 << 20)
                    end = data.find(b"\r\n", i + 2 if i >= 0 else 0)
                status = bytes(data[(i + 2 if i >= 0 else 0):end])
                break
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError
            data += chunk
        elapsed = time.perf_counter() - t0
        received = len(data)
        self.last = bytes(data)         # the whole answer, for a caller that reads it
        if b" OK" not in status:
            raise RuntimeError(f"{text}: {status!r}")
        return elapsed, received

    def close(self):
        self.sock.close()


def start_server(cfg):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "clevermail", "--config", cfg, "start"],
                            stderr=subprocess.PIPE, text=True, cwd=os.path.dirname(cfg), env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stderr.readline()
        # the start line, "... running (smtp 127.0.0.1:P, pop3 ..., imap 127.0.0.1:PORT); ..."
        m = re.search(r"\bimap \S+:(\d+)", line)
        if m:
            return proc, int(m.group(1))
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("server did not start")


def stop_server(proc):
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def ms(seconds):
    return f"{seconds * 1000:8.1f} ms"


def measure(port, user, password, n):
    """The timed command sequence, the same for every server; returns {name: seconds}."""
    out = {}
    c = Client(port)
    c.cmd(f"LOGIN {user} {password}")
    out["SELECT first time"], _ = c.cmd("SELECT INBOX")
    out["FETCH 1:* (UID FLAGS)"], _ = c.cmd("FETCH 1:* (UID FLAGS)")
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


def link_copy(src, dst):
    """A fresh Maildir for one round: `src` copied as hard links (fast, the same page
    cache for every server; neither server writes into a message file)."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    subprocess.run(["cp", "-al", src, dst], check=True)


def ours_round(workdir, template, n):
    """One CleverMail round on a data dir made afresh (no index, no cache), then a
    restart on the same data dir."""
    user = f"u{n}@example.test"
    data = os.path.join(workdir, "data")
    shutil.rmtree(data, ignore_errors=True)
    link_copy(template, os.path.join(data, "mail", "example.test", f"u{n}"))
    os.sync()
    cfg = os.path.join(workdir, "clevermail.ini")
    proc, port = start_server(cfg)
    try:
        out = measure(port, user, "secret", n)
    finally:
        stop_server(proc)
    proc, port = start_server(cfg)
    try:
        out.update(measure_restart(port, user, "secret"))
    finally:
        stop_server(proc)
    return out


def dovecot_round(dovecot, template, n, r):
    """The same round against the private Dovecot, a new user (so a new index) each."""
    user = f"u{n}r{r}"
    home = dovecot.home(user)
    link_copy(template, os.path.join(home, "Maildir"))
    dovecot.own(home, files=False)
    os.sync()
    out = measure(dovecot.port, user, "secret", n)
    out.update(measure_restart(dovecot.port, user, "secret"))
    return out


def bench_size(workdir, n, dovecot=None, rounds=1):
    """`rounds` rounds, CleverMail's and Dovecot's alternating (ABBA), each on a fresh
    hard-linked copy of one populated Maildir; the medians side by side."""
    AccountStore(os.path.join(workdir, "users.ini"), ["example.test"]).add(f"u{n}@example.test", "secret")
    template = os.path.join(workdir, "template", str(n))
    t0 = time.perf_counter()
    populate(template, n)
    if dovecot:
        dovecot.own(template)       # the files' owner, shared by every linked copy
    os.sync()   # let write-back of the new files settle before anything is timed
    print(f"\n== {n:,} messages (populated in {time.perf_counter() - t0:.1f} s), {rounds} round(s)",
          flush=True)
    ours, theirs = [], []
    for r in range(rounds):
        runs = [lambda: ours.append(ours_round(workdir, template, n))]
        if dovecot:
            runs.append(lambda: theirs.append(dovecot_round(dovecot, template, n, r)))
        for run in (runs if r % 2 == 0 else runs[::-1]):
            run()
        print(f"   round {r + 1} done", flush=True)
    print_table(ours, theirs)


def print_table(ours, theirs):
    print(f"{'median of ' + str(len(ours)):34} {'clevermail':>11}"
          + (f" {'dovecot':>11} {'ratio':>6}" if theirs else ""))
    for name in ours[0]:
        secs = statistics.median(o[name] for o in ours)
        row = f"{name:34} {ms(secs)}"
        if theirs and name in theirs[0]:
            peer = statistics.median(t[name] for t in theirs)
            row += f" {ms(peer)} {secs / peer:6.2f}x"
        print(row)


def bench_idle(workdir, count):
    accounts = AccountStore(os.path.join(workdir, "users.ini"), ["example.test"])
    accounts.add("idler@example.test", "secret")
    cfg = os.path.join(workdir, "clevermail.ini")
    proc, port = start_server(cfg)
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
    args = ap.parse_args()
    binary = args.dovecot and shutil.which(args.dovecot, path=os.environ.get("PATH", "") + ":/usr/sbin")
    if args.dovecot and not binary:
        raise SystemExit(f"{args.dovecot}: not found (apt-get install dovecot-imapd)")
    with tempfile.TemporaryDirectory(prefix="cm-bench-imap-") as workdir:
        write_config(workdir)
        dovecot = Dovecot(workdir, binary) if binary else None
        try:
            for n in (int(s) for s in args.sizes.split(",") if s):
                bench_size(workdir, n, dovecot, args.rounds)
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
