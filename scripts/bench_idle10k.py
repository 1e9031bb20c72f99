#!/usr/bin/env python3
"""10,000 concurrent IMAP sessions in IDLE (issue 18): open them all at once, hold them,
deliver one message, close them all at once, and stop the server with SIGTERM in each
phase.

The server is `python -m clevermail start` in its own process on loopback (one thread
per session, as always).  The client side is this process: one thread and one epoll
selector holding every socket, each connection a small state machine (greeting, LOGIN,
SELECT INBOX, IDLE).  What it measures, from /proc/PID of the server:

- open: the time until every session is in IDLE ("+ idling" read);
- held: resident memory (VmRSS) against the idle server's, descriptors (/proc/PID/fd),
  threads, CPU over a few seconds;
- one message delivered over SMTP to every user: the time until every session has
  read its "* n EXISTS";
- mass close: every client socket closed at once, then the time until the server's CPU
  is back to idle (under 2% of a core over a 0.5 s window) and its descriptors back;
- SIGTERM stop time, with [server] drain_time as the bound, once per phase, each on a
  fresh server: during the mass open, while held, during the mass close, and idle
  after the close.

    python3 scripts/bench_idle10k.py                    # 10,000 sessions, 1 user
    python3 scripts/bench_idle10k.py --sessions 2000 --users 100 --phases held

Limits: the open-file limit of both processes is raised to its hard maximum (the
client needs one descriptor per session, as does the server); the machine's limits
are printed first.  Needs about 1 GB of free memory at 10,000 sessions.
"""

import argparse
import errno
import os
import re
import resource
import selectors
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from clevermail.accounts import AccountStore  # noqa: E402

PASSWORD = "secret"
CONNECTING_AT_ONCE = 512        # connects in flight (the listen backlog is 256 a listener)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def user(i):
    return f"idler{i}@example.test"


# -- the server ------------------------------------------------------------------------
def write_config(workdir, sessions, drain_time):
    with open(os.path.join(workdir, "clevermail.ini"), "w") as f:
        f.write(f"""[server]
data_dir = data
users_file = users.ini
domains = example.test,
log_file = clevermail.log
drain_time = {drain_time}
[smtp]
listen = 127.0.0.1:0,
[pop3]
listen = 127.0.0.1:0,
[imap]
listen = 127.0.0.1:0,
[inbound]
checks = false
[limits]
connections = {sessions + 100}
connections_per_client = {sessions + 100}
auth_failure_delay = 0
imap_timeout = 3600
""")


class Server:
    def __init__(self, workdir):
        self.cfg = os.path.join(workdir, "clevermail.ini")
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        # to a file: a pipe nobody reads would fill and block the server's log writer
        stderr_path = os.path.join(workdir, "stderr.log")
        with open(stderr_path, "w") as stderr:
            self.proc = subprocess.Popen([sys.executable, "-m", "clevermail", "--config", self.cfg, "start"],
                                         stderr=stderr, cwd=workdir, env=env)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.proc.poll() is None:
            with open(stderr_path, errors="replace") as f:
                text = f.read()
            imap, smtp = re.search(r"\bimap \S+:(\d+)", text), re.search(r"\bsmtp \S+:(\d+)", text)
            if imap and smtp:
                self.imap, self.smtp = int(imap.group(1)), int(smtp.group(1))
                return
            time.sleep(0.1)
        self.kill()
        raise RuntimeError("server did not start")

    def status(self, key):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def rss_mb(self):
        return self.status("VmRSS") / 1024

    def threads(self):
        return self.status("Threads")

    def fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def cpu_seconds(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def cpu_share(self, seconds):
        """Share of one core the server used over `seconds`."""
        before, t0 = self.cpu_seconds(), time.monotonic()
        time.sleep(seconds)
        return (self.cpu_seconds() - before) / (time.monotonic() - t0)

    def sigterm(self, limit):
        """Seconds from SIGTERM to the process's end (None: still alive after `limit`;
        it is killed then)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        return time.monotonic() - t0

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop_log(self, workdir):
        """The log lines of the last stop (from "stopping:"), when --stop-log asked."""
        with open(os.path.join(workdir, "clevermail.log"), errors="replace") as f:
            lines = f.read().splitlines()
        starts = [i for i, line in enumerate(lines) if " stopping: " in line]
        return lines[starts[-1]:] if starts else lines[-20:]


# -- the clients -----------------------------------------------------------------------
class Conn:
    __slots__ = ("sock", "user", "buf", "state", "exists")

    def __init__(self, sock, user):
        self.sock, self.user, self.buf, self.state, self.exists = sock, user, b"", "connect", None


class Clients:
    """Every session's socket on one selector, driven by step()."""

    def __init__(self, port, count, users):
        self.port, self.count, self.users = port, count, users
        self.sel = selectors.DefaultSelector()
        self.conns = []
        self.idling = self.failed = self.started = 0
        self.errors = {}

    def _start_one(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        conn = Conn(sock, user(self.started % self.users))
        self.started += 1
        err = sock.connect_ex(("127.0.0.1", self.port))
        if err not in (0, errno.EINPROGRESS):
            self._fail(conn, os.strerror(err))
            return
        self.conns.append(conn)
        self.sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)

    def _fail(self, conn, why):
        self.failed += 1
        self.errors[why] = self.errors.get(why, 0) + 1
        try:
            self.sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()
        conn.state = "failed"

    def _send(self, conn, data):
        try:
            conn.sock.sendall(data)         # a few bytes: the socket buffer takes them
        except OSError as exc:
            self._fail(conn, f"send: {exc.strerror}")

    def _line(self, conn, line):
        state = conn.state
        if state == "greeting":
            if not line.startswith(b"* OK"):
                return self._fail(conn, "greeting: " + line[:40].decode(errors="replace"))
            conn.state = "login"
            self._send(conn, f'a LOGIN "{conn.user}" "{PASSWORD}"\r\n'.encode())
        elif state == "login" and line.startswith(b"a "):
            if not line.startswith(b"a OK"):
                return self._fail(conn, "login: " + line[:40].decode(errors="replace"))
            conn.state = "select"
            self._send(conn, b"b SELECT INBOX\r\n")
        elif state == "select" and line.startswith(b"b "):
            if not line.startswith(b"b OK"):
                return self._fail(conn, "select: " + line[:40].decode(errors="replace"))
            conn.state = "idle"
            self._send(conn, b"c IDLE\r\n")
        elif state == "idle" and line.startswith(b"+"):
            conn.state = "idling"
            self.idling += 1
        elif state == "idling" and line.endswith(b" EXISTS"):
            conn.exists = time.monotonic()
        elif line.startswith(b"* BYE"):
            conn.state = "bye"

    def step(self, timeout):
        """One round of the selector; keeps CONNECTING_AT_ONCE connects in flight."""
        while self.started < self.count and self.started - self.idling - self.failed < CONNECTING_AT_ONCE:
            self._start_one()
        for key, events in self.sel.select(timeout):
            conn = key.data
            if conn.state == "connect":
                err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    self._fail(conn, os.strerror(err))
                    continue
                conn.state = "greeting"
                self.sel.modify(conn.sock, selectors.EVENT_READ, conn)
                continue
            try:
                data = conn.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError as exc:
                self._fail(conn, f"recv: {exc.strerror}")
                continue
            if not data:
                if conn.state != "bye":
                    self._fail(conn, f"closed by the server in state {conn.state}")
                else:
                    self.sel.unregister(conn.sock)
                    conn.state = "closed"
                continue
            conn.buf += data
            while b"\r\n" in conn.buf and conn.state not in ("failed", "closed"):
                line, conn.buf = conn.buf.split(b"\r\n", 1)
                self._line(conn, line)

    def open_all(self, limit, until=None):
        """Drive the connections until every one is idling (or failed), `until()` is
        true, or `limit` seconds passed; the seconds it took."""
        t0 = time.monotonic()
        while self.idling + self.failed < self.count and time.monotonic() - t0 < limit:
            if until is not None and until():
                break
            self.step(0.05)
        return time.monotonic() - t0

    def stuck(self):
        """{state: count} of the connections neither idling nor failed."""
        out = {}
        for conn in self.conns:
            if conn.state not in ("idling", "failed", "closed"):
                out[conn.state] = out.get(conn.state, 0) + 1
        return out

    def close_all(self):
        for conn in self.conns:
            if conn.state not in ("failed", "closed"):
                try:
                    self.sel.unregister(conn.sock)
                except (KeyError, ValueError):
                    pass
                conn.sock.close()
                conn.state = "closed"
        self.sel.close()


# -- the phases --------------------------------------------------------------------------
def deliver(server, users):
    with smtplib.SMTP("127.0.0.1", server.smtp, timeout=120) as smtp:
        rcpts = [user(i) for i in range(users)]
        for start in range(0, len(rcpts), 100):
            smtp.sendmail("bench@remote.test", rcpts[start:start + 100],
                          b"From: bench@remote.test\r\nSubject: wake up\r\n\r\nnew mail\r\n")


def until_idle_cpu(server, limit, share=0.02, window=0.5):
    """Seconds until the server's CPU over `window` falls below `share` of a core."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if server.cpu_share(window) < share:
            return time.monotonic() - t0
    return None


def fmt(seconds):
    return "not within the limit" if seconds is None else f"{seconds:.2f} s"


def run_main(workdir, args):
    server = Server(workdir)
    clients = None
    try:
        base = dict(rss=server.rss_mb(), fds=server.fds(), threads=server.threads())
        print(f"idle server: RSS {base['rss']:.1f} MB, {base['fds']} descriptors, {base['threads']} threads")
        clients = Clients(server.imap, args.sessions, args.users)
        took = clients.open_all(args.limit)
        print(f"open: {clients.idling:,} of {args.sessions:,} sessions in IDLE in {took:.1f} s"
              + (f"; failed {clients.failed:,}: {clients.errors}" if clients.failed else "")
              + (f"; still opening: {clients.stuck()}" if clients.stuck() else ""))
        time.sleep(1.0)
        rss, fds, threads = server.rss_mb(), server.fds(), server.threads()
        n = max(1, clients.idling)
        print(f"held: RSS {rss:.1f} MB ({(rss - base['rss']) * 1024 / n:.1f} kB per session), "
              f"address space {server.status('VmSize') / 1024 / 1024:.1f} GB, "
              f"{fds:,} descriptors ({(fds - base['fds']) / n:.3f} per session), {threads:,} threads, "
              f"CPU {server.cpu_share(3.0) * 100:.1f}% of a core")
        t0, cpu0 = time.monotonic(), server.cpu_seconds()
        deliver(server, args.users)
        delivered = time.monotonic() - t0
        idlers = [c for c in clients.conns if c.state == "idling"]
        while time.monotonic() - t0 < args.limit and any(c.exists is None for c in idlers):
            clients.step(0.05)
        woken = [c.exists - t0 for c in idlers if c.exists is not None]
        woken.sort()
        cpu = server.cpu_seconds() - cpu0
        if woken:
            print(f"one message to {args.users} user(s) (SMTP took {delivered:.2f} s): {len(woken):,} of "
                  f"{len(idlers):,} sessions saw EXISTS; first {woken[0]:.3f} s, median "
                  f"{woken[len(woken) // 2]:.3f} s, last {woken[-1]:.3f} s; server CPU "
                  f"{cpu:.2f} s ({cpu * 1000 / len(woken):.2f} ms a session)")
        else:
            print("one message: no session saw EXISTS")
        t0, cpu0 = time.monotonic(), server.cpu_seconds()
        clients.close_all()
        clients = None
        closed = time.monotonic() - t0
        recovered = until_idle_cpu(server, args.limit)
        cpu = server.cpu_seconds() - cpu0
        print(f"mass close ({closed:.2f} s to close the client sockets): server back to idle CPU "
              f"after {fmt(recovered)} (CPU {cpu:.2f} s, {cpu * 1000 / n:.2f} ms a session); then "
              f"{server.fds():,} descriptors, {server.threads():,} threads, RSS {server.rss_mb():.1f} MB")
        stop = server.sigterm(args.limit)
        print(f"SIGTERM after the close: stopped in {fmt(stop)} (drain_time {args.drain_time} s)")
    finally:
        if clients is not None:
            clients.close_all()
        server.kill()


def run_sigterm(workdir, args, phase):
    """A fresh server, stopped with SIGTERM during `phase`; the stop time."""
    server = Server(workdir)
    clients = Clients(server.imap, args.sessions, args.users)
    try:
        if phase == "open":
            clients.open_all(args.limit, until=lambda: clients.idling >= args.sessions // 2)
            state = f"{clients.idling:,} in IDLE, {clients.started - clients.idling - clients.failed} opening"
            t0 = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            while server.proc.poll() is None and time.monotonic() - t0 < args.limit:
                clients.step(0.05)          # the opening goes on
            stop = time.monotonic() - t0 if server.proc.poll() is not None else None
            server.kill()
        elif phase == "held":
            clients.open_all(args.limit)
            state = f"{clients.idling:,} in IDLE"
            stop = server.sigterm(args.limit)
        else:       # during the mass close
            clients.open_all(args.limit)
            state = f"{clients.idling:,} in IDLE closed at once"
            clients.close_all()
            stop = server.sigterm(args.limit)
        print(f"SIGTERM during {phase} ({state}): stopped in {fmt(stop)} (drain_time {args.drain_time} s)")
    finally:
        clients.close_all()
        server.kill()


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def machine():
    with open("/proc/meminfo") as f:
        mem = {line.split(":")[0]: int(line.split()[1]) for line in f}
    read = lambda p: open(p).read().strip()  # noqa: E731
    return (f"{os.cpu_count()} cores, {mem['MemTotal'] // 1024:,} MB memory "
            f"({mem['MemAvailable'] // 1024:,} MB available), open files (hard) "
            f"{resource.getrlimit(resource.RLIMIT_NOFILE)[1]:,}, pid_max {read('/proc/sys/kernel/pid_max')}, "
            f"threads-max {read('/proc/sys/kernel/threads-max')}, local ports "
            f"{read('/proc/sys/net/ipv4/ip_local_port_range').replace(chr(9), '-')}, "
            f"Python {sys.version.split()[0]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--users", type=int, default=1, help="sessions are spread over this many users")
    ap.add_argument("--drain-time", type=float, default=10.0)
    ap.add_argument("--limit", type=float, default=300.0, help="seconds any phase may take")
    ap.add_argument("--phases", default="main,open,held,close",
                    help="main (open, hold, deliver, close, stop) and the SIGTERM runs: open, held, close")
    args = ap.parse_args()
    soft, _ = raise_fd_limit()
    print(machine())
    if soft < args.sessions + 100:
        raise SystemExit(f"open-file limit {soft} is below {args.sessions} sessions")
    with tempfile.TemporaryDirectory(prefix="cm-bench-idle10k-") as workdir:
        write_config(workdir, args.sessions, args.drain_time)
        accounts = AccountStore(os.path.join(workdir, "users.ini"), ["example.test"])
        for i in range(args.users):
            accounts.add(user(i), PASSWORD)
        for phase in args.phases.split(","):
            if phase == "main":
                run_main(workdir, args)
            elif phase in ("open", "held", "close"):
                run_sigterm(workdir, args, phase)
            else:
                raise SystemExit(f"unknown phase {phase!r}")


if __name__ == "__main__":
    main()
