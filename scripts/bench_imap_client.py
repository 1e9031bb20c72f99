"""What bench_imap.py drives: a CleverMail server in its own process (started from a
checkout, found on loopback by its start line), and a raw-socket IMAP client that
times each command from its send to the tagged reply.

The server runs in a session of its own, as a daemon does and as Dovecot's processes
do: Linux's scheduler gives each session's group of processes (autogroup, on by
default) a fair share of the CPU, so a server left in the benchmark's session would
share one share with the client reading from it while Dovecot had one of its own, and
on a loaded machine that alone decides a comparison.
"""

import os
import re
import socket
import subprocess
import sys
import time


class Client:
    """A raw IMAP client on a blocking socket; `cmd` times a command and keeps the
    whole answer (`last`) and when its first byte came (`first_byte`)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=300)
        self.buf = b""
        self.n = 0
        self.last = b""
        self.first_byte = None
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
        data = bytearray(self.buf)
        self.buf = b""
        self.first_byte = 0.0 if data else None
        needle = b"\r\n" + tag + b" "
        scan = 0
        while True:
            # the tagged line starts the answer or follows a CRLF; only what came
            # since the last look is searched (a search of the whole answer after
            # every read costs the client more, the more reads a server's writes
            # make it do)
            if data.startswith(tag + b" "):
                start = 0
            else:
                i = data.find(needle, scan)
                start = i + 2 if i >= 0 else -1
            if start >= 0:
                end = data.find(b"\r\n", start)
                if end >= 0:
                    break
            else:
                scan = max(0, len(data) - len(needle) + 1)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError
            if self.first_byte is None:
                self.first_byte = time.perf_counter() - t0
            data += chunk
        elapsed = time.perf_counter() - t0
        status = bytes(data[start:end])
        self.buf = bytes(data[end + 2:])
        self.last = bytes(data[:end + 2])   # the whole answer, for a caller that reads it
        if b" OK" not in status:
            raise RuntimeError(f"{text}: {status!r}")
        return elapsed, end + 2

    def close(self):
        self.sock.close()


def start_server(cfg, repo):
    """`python -m clevermail start` from checkout `repo` with config `cfg`, in a
    session of its own (see the module docstring); returns (process, IMAP port)."""
    env = dict(os.environ, PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "clevermail", "--config", cfg, "start"],
                            stderr=subprocess.PIPE, text=True, cwd=os.path.dirname(cfg), env=env,
                            start_new_session=True)
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
        proc.wait()


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def link_copy(src, dst):
    """A fresh Maildir for one round: `src` copied as hard links (fast, the same page
    cache for every server; neither server writes into a message file)."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    subprocess.run(["cp", "-al", src, dst], check=True)
