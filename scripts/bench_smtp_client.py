"""bench_smtp.py's load generators: the raw-socket Python clients (lockstep like
smtplib, spread over processes) and Postfix's smtp-source."""

import multiprocessing
import os
import shutil
import socket
import subprocess
import threading
import time

from bench_smtp_serve import USERS


class Conn:
    def __init__(self, addr):
        self.sock = socket.create_connection(addr, timeout=60)
        self.buf = b""

    def reply(self):
        """The code of one (possibly multi-line) reply."""
        while True:
            while b"\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise EOFError("server closed")
                self.buf += data
            line, _, self.buf = self.buf.partition(b"\n")
            if line[3:4] != b"-":
                return int(line[:3])

    def cmd(self, data, want):
        self.sock.sendall(data)
        code = self.reply()
        if code != want:
            raise RuntimeError(f"{data[:20]!r}: {code}")

    def send_message(self, rcpt, body):
        self.cmd(b"MAIL FROM:<bench@client.test>\r\n", 250)
        self.cmd(b"RCPT TO:<" + rcpt.encode() + b">\r\n", 250)
        self.cmd(b"DATA\r\n", 354)
        self.cmd(body, 250)

    def close(self):
        self.sock.close()


def make_body(size):
    head = b"From: bench@client.test\r\nTo: someone@bench.test\r\nSubject: benchmark\r\n\r\n"
    line = b"x" * 76 + b"\r\n"
    lines = max(1, (size - len(head)) // len(line))
    message = head + line * lines
    key = os.environ.get("BENCH_DKIM_KEY")
    if key:                     # --checks: signed once, the same bytes for every message
        import dkim
        with open(key, "rb") as f:
            message = dkim.sign(message, b"bench", b"client.test", f.read(),
                                include_headers=[b"from", b"to", b"subject"]) + message
    return message + b".\r\n"


def client_worker(addr, threads, mode, size, counter, total, deadline, out):
    body = make_body(size)
    latencies, errors = [], []

    def take():
        with counter.get_lock():
            if counter.value >= total or time.time() > deadline:
                return None
            counter.value += 1
            return counter.value

    def run():
        conn = None
        try:
            while (n := take()) is not None:
                rcpt = USERS[n % len(USERS)]
                start = time.perf_counter()
                if mode == "session":
                    # a session and nothing else: the cost of accepting, greeting, EHLO
                    conn = Conn(addr)
                    if conn.reply() != 220:
                        raise RuntimeError("no greeting")
                    conn.cmd(b"EHLO client.test\r\n", 250)
                    conn.cmd(b"QUIT\r\n", 221)
                    conn.close()
                    conn = None
                    latencies.append(time.perf_counter() - start)
                elif mode == "conn":
                    conn = Conn(addr)
                    if conn.reply() != 220:
                        raise RuntimeError("no greeting")
                    conn.cmd(b"EHLO client.test\r\n", 250)
                    conn.send_message(rcpt, body)
                    latencies.append(time.perf_counter() - start)
                    conn.cmd(b"QUIT\r\n", 221)
                    conn.close()
                    conn = None
                else:
                    if conn is None:
                        conn = Conn(addr)
                        conn.reply()
                        conn.cmd(b"EHLO client.test\r\n", 250)
                        start = time.perf_counter()
                    conn.send_message(rcpt, body)
                    latencies.append(time.perf_counter() - start)
        except Exception as exc:                       # reported, never hidden
            errors.append(f"{exc.__class__.__name__}: {exc}")
        finally:
            if conn is not None:
                try:
                    conn.cmd(b"QUIT\r\n", 221)
                except Exception:
                    pass
                conn.close()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    out.put((latencies, errors))


def find_smtp_source():
    # /usr/sbin is often not on an ordinary user's PATH
    exe = shutil.which("smtp-source") or shutil.which("smtp-source", path="/usr/sbin:/usr/local/sbin")
    if not exe:
        raise SystemExit("--client smtp-source: smtp-source not found (Debian: apt-get install postfix)")
    return exe


def python_clients(addr, mode, conc, size, n, seconds, procs):
    """Run the Python clients: (messages, sorted latencies, errors)."""
    ctx = multiprocessing.get_context("fork")
    counter, out = ctx.Value("l", 0), ctx.Queue()
    nprocs = max(1, min(procs, conc))
    shares = [conc // nprocs + (1 if i < conc % nprocs else 0) for i in range(nprocs)]
    deadline = time.time() + seconds
    workers = [ctx.Process(target=client_worker, args=(addr, k, mode, size, counter, n, deadline, out))
               for k in shares]
    for w in workers:
        w.start()
    results = [out.get() for _ in workers]
    for w in workers:
        w.join()
    latencies = sorted(x for lat, _ in results for x in lat)
    return len(latencies), latencies, [e for _, errs in results for e in errs]


def smtp_source_clients(exe, addr, mode, conc, size, n, seconds):
    """Run smtp-source: (messages, None, errors).  -c prints a counter after each DATA
    (one short write per message), so that a failed or killed run still says how many
    messages got through."""
    cmd = [exe, "-c", "-s", str(conc), "-l", str(size), "-m", str(n), "-f", "bench@client.test",
           "-t", USERS[0], "-M", "client.test"]
    if mode == "reuse":
        cmd.append("-d")                # keep the connection for the next message
    cmd.append(f"{addr[0]}:{addr[1]}")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    errors = []
    limit = seconds + 60                # it has no time bound of its own
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()   # the output so far is kept across the timeout
        errors.append(f"smtp-source killed after {limit:g}s")
    else:
        if proc.returncode:
            last = err.strip().splitlines()[-1:] or [""]
            errors.append(f"smtp-source exit {proc.returncode}: {last[0]}")
    counts = [c for c in out.split() if c.isdigit()]     # "1\r2\r..." (\r read as \n)
    return (int(counts[-1]) if counts else 0), None, errors

