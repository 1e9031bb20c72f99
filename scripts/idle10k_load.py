"""The two sides of scripts/bench_idle10k.py: the server under test (`python -m
clevermail start` in its own process, read through /proc/PID) and the clients (one
thread, one epoll selector holding every socket, each connection a small state
machine: greeting, LOGIN, SELECT INBOX, then IDLE or nothing more)."""

import datetime
import errno
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PASSWORD = "secret"
CONNECTING_AT_ONCE = 512        # connects in flight (the listen backlog is 256 a listener)
CLK_TCK = os.sysconf("SC_CLK_TCK")
ARENA_HEAP = 64 << 20           # glibc's non-main arenas are heaps of this size, so aligned


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
    def __init__(self, workdir, code=REPO):
        """`code`: the checkout whose clevermail runs (another one: a before/after pass)."""
        self.cfg = os.path.join(workdir, "clevermail.ini")
        env = dict(os.environ, PYTHONPATH=code + os.pathsep + os.environ.get("PYTHONPATH", ""))
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

    def memory_split(self):
        """Resident MB by kind of mapping (/proc/PID/smaps): thread stacks (512 KiB
        each), Python's per-thread frame stacks (16 KiB chunks), glibc's arena heaps
        (64 MiB-aligned) and main heap, other anonymous memory, files."""
        out = dict.fromkeys(("stacks", "frames", "arenas", "heap", "anon", "files"), 0)
        kind = None
        with open(f"/proc/{self.pid}/smaps") as f:
            for line in f:
                fields = line.split()
                if fields[0].endswith(":"):
                    if fields[0] == "Rss:":
                        out[kind] += int(fields[1])
                    continue
                start, end = (int(x, 16) for x in fields[0].split("-"))
                name = fields[5] if len(fields) > 5 else ""
                writable = fields[1].startswith("rw")
                if name == "[heap]":
                    kind = "heap"
                elif name:
                    kind = "files"
                elif writable and start % ARENA_HEAP == 0:
                    kind = "arenas"
                elif writable and end - start in (512 << 10, (512 << 10) - 4096):
                    kind = "stacks"
                elif writable and end - start == 16 << 10:
                    kind = "frames"
                else:
                    kind = "anon"
        return {k: v / 1024 for k, v in out.items()}

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
        self.sigterm_at = time.time()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        self.exited_at = time.time()
        return time.monotonic() - t0

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop_split(self, workdir):
        """Where the last stop's time went, from its log lines (their wall-clock
        stamps against the SIGTERM's): the signal taken, MailService.stop (the
        drain, and a cut if the drain time ran out), the process's exit."""
        with open(os.path.join(workdir, "clevermail.log"), errors="replace") as f:
            lines = f.read().splitlines()
        starts = [i for i, line in enumerate(lines) if " stopping: " in line]
        if not starts or getattr(self, "sigterm_at", None) is None:
            return "no stop in the log"
        stamps, cut = {}, ""
        for line in lines[starts[-1]:]:
            if " stopping: " in line:
                stamps["stopping"] = _stamp(line)
            elif "drain time over: cutting" in line:
                cut = " (" + line.split("drain time over: ", 1)[1] + ")"
            elif line.endswith("clevermail stopped"):
                stamps["stopped"] = _stamp(line)
        if len(stamps) < 2:
            return "the stop's log lines are incomplete"
        return (f"signal taken {stamps['stopping'] - self.sigterm_at:.2f} s, service stop "
                f"{stamps['stopped'] - stamps['stopping']:.2f} s{cut}, exit after "
                f"{self.exited_at - stamps['stopped']:.2f} s")


def _stamp(line):
    """The time.time() of a log line (2026-12-03T17:10:01.829+00:00 INFO ...)."""
    return datetime.datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()


# -- the clients -----------------------------------------------------------------------
class Conn:
    __slots__ = ("sock", "user", "buf", "state", "exists")

    def __init__(self, sock, user):
        self.sock, self.user, self.buf, self.state, self.exists = sock, user, b"", "connect", None


class Clients:
    """Every session's socket on one selector, driven by step()."""

    def __init__(self, port, count, users, wait="idle"):
        """`wait`: where the sessions sit once opened, "idle" (in IDLE) or "command"
        (after SELECT, between commands: the server's thread waits for the next one)."""
        self.port, self.count, self.users, self.wait = port, count, users, wait
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
            if self.wait == "command":
                conn.state = "idling"       # held: nothing more is sent
                self.idling += 1
                return
            conn.state = "idle"
            self._send(conn, b"c IDLE\r\n")
        elif state == "idle" and line.startswith(b"+"):
            conn.state = "idling"
            self.idling += 1
        elif state == "idling" and line.endswith(b" EXISTS"):   # (IDLE only)
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
