#!/usr/bin/env python3
"""IMAP benchmark: SELECT (first, again, after restart), FETCH 1:* (UID FLAGS),
UID SEARCH UNSEEN, FETCH of 100 full bodies, and the memory of idle IDLE sessions.

The server runs as `python -m clevermail start` in its own process on loopback; the
client is a raw socket that times each command from send to tagged reply.  Mailboxes
are populated by writing Maildir files directly (as a local MDA would).

    python scripts/bench_imap.py                       # 10,000 and 100,000 messages, 2,000 idlers
    python scripts/bench_imap.py --sizes 2000 --idle 200
"""

import argparse
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from clevermail.accounts import AccountStore  # noqa: E402
from clevermail.store import maildir  # noqa: E402

BODY = (b"From: Bench <bench@example.test>\nTo: user@example.test\nSubject: benchmark message %d\n"
        b"Date: Mon, 7 Feb 2022 21:52:25 -0800\nMessage-ID: <%d@bench>\n\n" + b"Hello, this is line of text.\n" * 40)


def populate(root, n):
    """n messages in INBOX/new, every third one \\Seen in cur/."""
    maildir.make_maildir(root)
    for i in range(n):
        data = BODY % (i, i)
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
        m = re.search(r"imap (\d+)", line)
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


def bench_size(workdir, n):
    user = f"u{n}@example.test"
    accounts = AccountStore(os.path.join(workdir, "users.ini"), ["example.test"], failure_delay=0)
    accounts.add(user, "secret")
    root = os.path.join(workdir, "data", "mail", "example.test", f"u{n}")
    t0 = time.perf_counter()
    populate(root, n)
    os.sync()   # let write-back of the new files settle before anything is timed
    print(f"\n== {n:,} messages (populated in {time.perf_counter() - t0:.1f} s)")
    cfg = os.path.join(workdir, "clevermail.ini")
    proc, port = start_server(cfg)
    try:
        c = Client(port)
        c.cmd(f"LOGIN {user} secret")
        t, _ = c.cmd("SELECT INBOX")
        print(f"SELECT first time           {ms(t)}")
        t, size = c.cmd("FETCH 1:* (UID FLAGS)")
        print(f"FETCH 1:* (UID FLAGS)       {ms(t)}  ({size / 1e6:.1f} MB)")
        t, _ = c.cmd("UID SEARCH UNSEEN")
        print(f"UID SEARCH UNSEEN           {ms(t)}")
        picks = random.Random(1).sample(range(1, n + 1), min(100, n))
        t, size = c.cmd("FETCH " + ",".join(map(str, sorted(picks))) + " BODY.PEEK[]")
        print(f"FETCH 100 BODY.PEEK[]       {ms(t)}  ({size / 1e3:.0f} kB)")
        c.close()
        c = Client(port)
        t0 = time.perf_counter()
        c.cmd(f"LOGIN {user} secret")
        t, _ = c.cmd("SELECT INBOX")
        print(f"LOGIN+SELECT again          {ms(time.perf_counter() - t0)}  (SELECT {ms(t).strip()})")
        c.close()
    finally:
        stop_server(proc)
    for settle in (0, 3):
        # at once: races the start-up warm-up of saved indexes; after a pause: warmed
        proc, port = start_server(cfg)
        try:
            time.sleep(settle)
            c = Client(port)
            c.cmd(f"LOGIN {user} secret")
            t, _ = c.cmd("SELECT INBOX")
            print(f"SELECT after restart (+{settle}s) {ms(t)}")
            c.close()
        finally:
            stop_server(proc)


def bench_idle(workdir, count):
    accounts = AccountStore(os.path.join(workdir, "users.ini"), ["example.test"], failure_delay=0)
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
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cm-bench-imap-") as workdir:
        write_config(workdir)
        for n in (int(s) for s in args.sizes.split(",") if s):
            bench_size(workdir, n)
    if args.idle:
        # its own data dir: the figure is what sessions cost, not the warmed-up folders
        with tempfile.TemporaryDirectory(prefix="cm-bench-idle-") as workdir:
            write_config(workdir)
            bench_idle(workdir, args.idle)


if __name__ == "__main__":
    main()
