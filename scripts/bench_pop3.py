#!/usr/bin/env python3
"""Benchmark the POP3 server: login + STAT + UIDL + LIST on large maildrops, and RETR
of every message, per operation.

For each maildrop size (default 10,000 and 100,000 messages) it fills a fresh INBOX by
writing Maildir files directly under the store's naming (maildir.new_base: sizes in
the name, so the server never opens a file for STAT/LIST/UIDL), starts a POP3Server on
127.0.0.1:0 and drives it with a raw socket client.

Reported per operation: server time (inside the session, from reading the command to
the end of its sendall, measured by a timing subclass of POP3Session) and client wall
time (command sent to last reply byte read), both the median of --repeat runs.
"login cold" is the first login after start (full directory scan and UID assignment),
"login warm" a later one (folder index kept in memory), "login restart" the first one
of a new process-like store (index loaded from clevermail-index).

Bounded: RETR stops after --retr-budget seconds per size and reports how many it did.

    python scripts/bench_pop3.py                     # 10k and 100k
    python scripts/bench_pop3.py --sizes 10000 --repeat 9
"""

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from clevermail.accounts import AccountStore  # noqa: E402
from clevermail.passwords import hash_password  # noqa: E402
from clevermail.netbase import Limits, SessionPolicy  # noqa: E402
from clevermail.pop3.handler import POP3FileHandler  # noqa: E402
from clevermail.pop3.server import POP3Server  # noqa: E402
from clevermail.pop3.session import POP3Session  # noqa: E402
from clevermail.store import MailStore, maildir  # noqa: E402

USER = "bench@bench.test"
PASSWORD = "bench-password"


class TimedSession(POP3Session):
    """Records the server-side time of every command by verb."""

    def handle_line(self, line):
        start = time.perf_counter()
        try:
            super().handle_line(line)
        finally:
            verb = line.split(b" ", 1)[0].strip().upper().decode("ascii", "replace")
            self.server.timings.setdefault(verb, []).append(time.perf_counter() - start)


class TimedServer(POP3Server):
    def __init__(self, address, handler, **kw):
        self.timings = {}
        super().__init__(address, handler, **kw)
        self.RequestHandlerClass = TimedSession     # socketserver's session factory


def populate(store, count):
    """Write `count` messages straight into the INBOX's cur/ (about 1.5 KB each)."""
    root = store.ensure_user(USER)
    cur = os.path.join(root, "cur")
    body = "".join(f"line {i} of a benchmark message body, some text to fill it up\n" for i in range(20))
    start = time.perf_counter()
    for n in range(count):
        disk = (f"From: sender@bench.test\nTo: {USER}\nSubject: bench {n}\n"
                f"Message-ID: <{n}@bench.test>\n\n.dot line\n{body}").encode()
        base = maildir.new_base(len(disk), len(disk) + disk.count(b"\n"))
        with open(os.path.join(cur, base + ":2,"), "wb") as f:
            f.write(disk)
    return time.perf_counter() - start


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.buf = b""
        self.line()

    def _fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def cmd(self, text, multi=False):
        self.sock.sendall(text.encode() + b"\r\n")
        first = self.line()
        if not first.startswith(b"+OK"):
            raise RuntimeError(f"{text}: {first!r}")
        if not multi:
            return first, b""
        while True:
            i = self.buf.find(b"\r\n.\r\n")
            if i >= 0:
                body, self.buf = self.buf[:i + 2], self.buf[i + 5:]
                return first, body
            if self.buf.startswith(b".\r\n"):
                self.buf = self.buf[3:]
                return first, b""
            self._fill()

    def close(self):
        self.sock.close()


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def ms(seconds):
    return f"{seconds * 1000:9.2f} ms"


def login(port):
    c = Client(port)
    c.cmd(f"USER {USER}")
    wall, _ = timed(lambda: c.cmd(f"PASS {PASSWORD}"))
    c.cmd("NOOP")       # its reply means the PASS timing has been recorded
    return c, wall


def bench_size(count, repeat, retr_budget, workdir):
    data = os.path.join(workdir, f"data-{count}")
    users = os.path.join(workdir, "users.ini")
    store = MailStore(data)
    fill = populate(store, count)
    print(f"\n== {count} messages (populated in {fill:.1f} s)")
    accounts = AccountStore(users, ["bench.test"])
    rows = []

    def serve(store):
        handler = POP3FileHandler(store, accounts)
        srv = TimedServer(("127.0.0.1", 0), handler, hostname="bench", limits=Limits(timeout=300),
                          policy=SessionPolicy(allow_plaintext_auth=True))
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return srv

    srv = serve(store)
    # warm the account cache so that logins measure the maildrop, not scrypt
    accounts.authenticate(USER, PASSWORD)
    c, wall = login(srv.port)
    rows.append(("login cold (scan + UIDs)", srv.timings["PASS"][-1], wall))
    c.cmd("QUIT")
    c.close()

    samples = {"login warm": [], "STAT": [], "UIDL": [], "LIST": []}
    for _ in range(repeat):
        srv.timings.clear()
        c, wall = login(srv.port)
        samples["login warm"].append((srv.timings["PASS"][-1], wall))
        for verb in ("STAT", "UIDL", "LIST"):
            wall, (first, body) = timed(lambda: c.cmd(verb, multi=verb != "STAT"))
            c.cmd("NOOP")
            samples[verb].append((srv.timings[verb][-1], wall))
            if verb == "STAT":
                assert first.split()[1] == str(count).encode(), first
            else:
                assert body.count(b"\r\n") == count
        c.cmd("QUIT")
        c.close()
    for name, pairs in samples.items():
        rows.append((name, statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)))

    # RETR every message, one command at a time like poplib/fetchmail, within budget
    srv.timings.clear()
    c, _ = login(srv.port)
    done = 0
    octets = 0
    start = time.perf_counter()
    for n in range(1, count + 1):
        first, body = c.cmd(f"RETR {n}", multi=True)
        octets += len(body)
        done += 1
        if time.perf_counter() - start > retr_budget:
            break
    wall = time.perf_counter() - start
    c.cmd("NOOP")
    server = sum(srv.timings["RETR"])
    c.cmd("QUIT")
    c.close()
    srv.shutdown()
    srv.server_close()
    store.save_indexes()
    rows.append((f"RETR x{done} total", server, wall))
    rows.append(("RETR per message", server / done, wall / done))

    # a fresh store on the same tree, as after a restart: the index cache is used
    store2 = MailStore(data)
    srv = serve(store2)
    c, wall = login(srv.port)
    rows.append(("login restart (index cache)", srv.timings["PASS"][-1], wall))
    c.cmd("QUIT")
    c.close()
    srv.shutdown()
    srv.server_close()

    print(f"{'operation':32} {'server':>12} {'client wall':>12}")
    for name, server, wall in rows:
        print(f"{name:32} {ms(server)} {ms(wall)}")
    print(f"RETR: {done} of {count} messages, {octets / 1e6:.1f} MB in {wall_fmt(rows, done)}")
    shutil.rmtree(data, ignore_errors=True)


def wall_fmt(rows, done):
    total = next(r for r in rows if r[0].startswith("RETR x"))
    return f"{total[2]:.2f} s ({done / total[2]:.0f} msg/s)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    ap.add_argument("--repeat", type=int, default=5, help="runs per warm operation (median reported)")
    ap.add_argument("--retr-budget", type=float, default=60.0, help="seconds of RETR per size at most")
    ap.add_argument("--dir", default=None, help="work directory (default: a temp dir, removed after)")
    args = ap.parse_args()
    workdir = args.dir or tempfile.mkdtemp(prefix="bench-pop3-")
    try:
        with open(os.path.join(workdir, "users.ini"), "w") as f:
            f.write(f"[{USER}]\npassword = {hash_password(PASSWORD)}\n")
        for count in args.sizes:
            bench_size(count, args.repeat, args.retr_budget, workdir)
    finally:
        if not args.dir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
