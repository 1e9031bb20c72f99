#!/usr/bin/env python3
r"""Benchmark SMTP delivery: accepted messages per second, latency percentiles and CPU
milliseconds per message, for CleverMail against a bare fsync-per-message baseline and
any SMTP server already running on loopback (e.g. a local Postfix).

Servers.  CleverMail and the baseline each run in a separate process (this script with
--serve), started once and stopped at the end: CleverMail is
clevermail.service.MailService from a config in a temp dir (INFO logging to a file), the
baseline a bare socketserver.ThreadingTCPServer speaking just enough SMTP that writes
and fsyncs each message before its 250.
--external NAME=HOST:PORT (repeatable) adds a server that is already running, reported
as NAME; the script neither starts nor stops it, and it must accept mail from 127.0.0.1
for user0..user9@bench.test (Postfix recipe below).  NAME=HOST:PORT=DIR also empties the
Maildirs under DIR (their new/ cur/ tmp/ files) at the start, so that every server starts
with empty mailboxes, as ours do (Postfix: DIR=/var/vmail/bench.test).  Nothing is
deleted during the run: on ext4 without a journal (as on the development VM) the inode
allocator skips, at a cost, inodes freed in the last 30 seconds, so deleting a scenario's
messages slowed down whichever server created files next.  After emptying, the script
waits that out.

The work dir (--dir; default a new directory under $TMPDIR, else /var/tmp) is probed
first: the time to create a file there is printed, with a warning when it is slow.  On
the development VM's ext4 it rose to 400-550 us of CPU per created file, against 10-20
us normally, for minutes after many files near it were deleted: a Maildir there loses
any comparison, so compare only when that figure is normal.

Clients.  --client python (default): raw-socket SMTP clients in lockstep like smtplib
(no pipelining), spread over --procs processes; each message goes to one of 10 local
accounts.  --client smtp-source: Postfix's C load generator (Debian package postfix),
far cheaper in CPU, which matters when clients and server share 2 cores; it sends every
message to user0@bench.test, its body is --sizes bytes *plus* its own few headers, it
has no time bound (killed after --seconds + 60 and reported as an error) and no
latency figures ("-").

Scenarios are every combination of --sizes x --concurrency x --modes, where mode "conn"
opens one connection per message (connect ... QUIT) and "reuse" sends every message of
a session on one connection.  A scenario stops after -n messages or (python clients)
--seconds, whichever comes first (both are reported).  Latency: connect (conn) or MAIL
(reuse) to the 250 after the data.

CPU.  "cpu ms/msg" is the server process's user+system CPU (/proc/<pid>/stat, all its
threads) per message and "sys%" the kernel's share of it (socket calls, open/link/fsync);
"-" for an external server, whose work may be spread over many processes (Postfix:
smtpd, cleanup, qmgr, virtual).  For every server "mach ms/msg" is the whole machine's
busy CPU per message (user+nice+system+irq+softirq jiffies of /proc/stat, not idle,
iowait or steal): it includes the clients and anything else running, so it only
compares servers measured alike at about the same time (use smtp-source and --rounds);
it is counted in whole ticks less steal, unlike a process's CPU, so it can even come out
below "cpu ms/msg".  "steal ms/msg" is CPU time the hypervisor took from this VM
meanwhile: when it is high, all figures are shaky.

Mode "session" sends no message: connect, EHLO, QUIT and close, the cost of a new
session alone (its "msgs" are sessions; latency from connect to the 221; --sizes does not
apply, and the scenario is run once per size given, so give one).  Python clients only
(smtp-source always sends a message); for the baseline (--baseline all) it is the floor of
a bare thread-per-connection Python server.  Against a Postfix
as installed (Debian defaults, listening on 25) nothing needs configuring:

    python scripts/bench_smtp.py --modes session --sizes 0 --concurrency 20 --seconds 10 \
        --baseline all --external postfix=127.0.0.1:25 --rounds 3

Rounds.  --rounds K runs the plan K times; within a round each scenario is run against
every server in turn (clevermail, baseline, externals) so that a noisy machine affects
all alike, and a summary gives the median msg/s and mach ms/msg over the rounds.  After
each scenario the script waits --settle seconds, not measured, so that work a server
does after its 250 (Postfix's qmgr and virtual delivering the queue) is not billed to
the next server -- that tail is then missing from the server's own mach ms/msg.

--checks adds "clevermail-checks": the same server with the inbound checks on (SPF of
MAIL FROM and HELO, DKIM, DMARC, ARC, the Authentication-Results header), its DNS a
server on loopback in the serving process (tests/dns_server.py) whose answers the
resolver's cache keeps (TTL 300 s: warm after the first message); every client message
is then DKIM-signed (rsa-sha256, a 2048-bit key made for the run) by client.test, whose
DMARC policy is p=reject and whose SPF allows 127.0.0.1.  The other servers get the
same signed bytes (and check nothing: "clevermail" keeps its checks off).

    python scripts/bench_smtp.py                       # full: 20,000 per scenario
    python scripts/bench_smtp.py -n 3000 --seconds 20  # quicker
    python scripts/bench_smtp.py --sizes 4096 --concurrency 20 --baseline all
    python scripts/bench_smtp.py -n 2000 --sizes 4096 --concurrency 20 --client smtp-source \
        --external postfix=127.0.0.1:25=/var/vmail/bench.test --rounds 3

A Postfix for --external (Debian, as root; "Local only" at install):

    apt-get install postfix
    postconf -e inet_interfaces=loopback-only mynetworks=127.0.0.0/8 \
        virtual_mailbox_domains=bench.test virtual_mailbox_base=/var/vmail \
        virtual_mailbox_maps=hash:/etc/postfix/vmailbox \
        virtual_uid_maps=static:5000 virtual_gid_maps=static:5000
    postconf -e default_process_limit=200      # room for 100 concurrent smtpd
    for i in $(seq 0 9); do echo "user$i@bench.test bench.test/user$i/"; done \
        > /etc/postfix/vmailbox                  # trailing "/" = Maildir
    postmap /etc/postfix/vmailbox
    mkdir -p /var/vmail && chown 5000:5000 /var/vmail
    postfix start                                # or postfix reload
"""

import argparse
import base64
import dataclasses
import multiprocessing
import os
import shutil
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

DOMAIN = "bench.test"
USERS = [f"user{i}@{DOMAIN}" for i in range(10)]
TICK = os.sysconf("SC_CLK_TCK")


# -- servers (child process) ------------------------------------------------------------
def checks_zone(public_key_b64):
    """What the DNS server of the clevermail-checks run answers."""
    p = public_key_b64
    chunks = " ".join(f'"{p[i:i + 200]}"' for i in range(0, len(p), 200))
    return (f'client.test. 300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"\n'
            f'_dmarc.client.test. 300 IN TXT "v=DMARC1; p=reject"\n'
            f'bench._domainkey.client.test. 300 IN TXT "v=DKIM1; k=rsa; p=" {chunks}\n')


def make_dkim_key(base):
    """An RSA key for the signed bodies: the private PEM and public base64 in `base`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    with open(os.path.join(base, "dkim.pem"), "wb") as f:
        f.write(pem)
    with open(os.path.join(base, "dkim.pub"), "w") as f:
        f.write(base64.b64encode(der).decode())


def serve_clevermail(workdir, checks=False):
    from clevermail.accounts import hash_password
    from clevermail.config import load_config
    from clevermail.logs import setup_logging
    from clevermail.process import tune_process
    from clevermail.service import MailService

    dns = None
    if checks:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
        from dns_server import DNSServer

        with open(os.path.join(workdir, "..", "dkim.pub")) as f:
            dns = DNSServer(checks_zone(f.read().strip())).start()
    users = os.path.join(workdir, "users.ini")
    digest = hash_password("bench-password")
    with open(users, "w") as f:
        f.write("".join(f"[{u}]\npassword = {digest}\n" for u in USERS))
    conf = load_config(overrides={
        "server": {"hostname": "mx.bench.test", "data_dir": os.path.join(workdir, "data"),
                   "users_file": users, "domains": [DOMAIN]},
        "smtp": {"listen": ["127.0.0.1:0"]}, "pop3": {"listen": []}, "imap": {"listen": []},
        "limits": {"connections": 2000, "connections_per_client": 2000, "message_size": 1 << 20},
        # like for like with the Postfix side, which checks nothing, unless --checks
        "inbound": {"checks": checks},
        "relay": {"nameservers": [f"127.0.0.1:{dns.port}"] if checks else []},
    })
    # the production logging set-up (INFO, as `clevermail start` does), to a file
    setup_logging("INFO", os.path.join(workdir, "server.log"), console=False)
    tune_process()      # as `clevermail start` does: this child is the serving process
    svc = MailService(conf).start()

    def stop():
        svc.stop()
        if dns is not None:
            dns.stop()
    return svc.port("smtp"), stop


class BaselineHandler(socketserver.BaseRequestHandler):
    """Just enough SMTP; the message is written and fsynced before the 250."""

    def handle(self):
        sock, buf = self.request, bytearray()
        sock.sendall(b"220 baseline\r\n")
        while True:
            i = buf.find(b"\n")
            while i < 0:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
                i = buf.find(b"\n")
            verb = bytes(buf[:4]).upper()
            del buf[:i + 1]
            if verb == b"QUIT":
                sock.sendall(b"221 bye\r\n")
                return
            if verb != b"DATA":
                sock.sendall(b"250 ok\r\n")
                continue
            sock.sendall(b"354 go\r\n")
            while (end := buf.find(b"\r\n.\r\n")) < 0:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
            body = bytes(buf[:end + 2])
            del buf[:end + 5]
            path = os.path.join(self.server.spool, f"{threading.get_ident()}-{time.monotonic_ns()}")
            with open(path, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            sock.sendall(b"250 queued\r\n")


class BaselineServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def serve_baseline(workdir):
    server = BaselineServer(("127.0.0.1", 0), BaselineHandler)
    server.spool = os.path.join(workdir, "data", "mail", DOMAIN, "new")   # emptied like a Maildir
    os.makedirs(server.spool, exist_ok=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1], server.shutdown


def serve_main(kind, workdir):
    if kind == "baseline":
        port, stop = serve_baseline(workdir)
    else:
        port, stop = serve_clevermail(workdir, checks=kind == "clevermail-checks")
    print(f"PORT {port}", flush=True)
    sys.stdin.read()            # until the parent closes our stdin
    stop()


# -- client (worker processes) ----------------------------------------------------------------
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


# -- driver --------------------------------------------------------------------------------
def cpu_seconds(pid):
    """(user, system) CPU seconds of a process, all its threads (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def start_server(kind, workdir, script=__file__, extra=()):
    """Run `script --serve KIND --dir WORKDIR [extra]` (a server child that prints
    "PORT n" and serves until its stdin closes): (process, port)."""
    proc = subprocess.Popen([sys.executable, os.path.abspath(script), "--serve", kind, "--dir", workdir,
                             *extra],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise SystemExit(f"{kind} server did not start")
    return proc, int(line.split()[1])


def stop_server(proc):
    proc.stdin.close()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def pct(sorted_values, p):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]


def machine_jiffies():
    """(busy, steal) jiffies of the whole machine, from the first line of /proc/stat
    (user nice system idle iowait irq softirq steal ...): busy = user+nice+system+irq+
    softirq (guest time is already inside user); idle and iowait are no work done, steal
    is time the hypervisor gave to someone else."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return v[0] + v[1] + v[2] + v[5] + v[6], v[7]


@dataclasses.dataclass
class Server:
    """A server under test: one we started (proc, workdir) or an external one (None)."""
    name: str
    addr: tuple
    proc: subprocess.Popen = None
    workdir: str = None
    spool: str = None               # Maildirs emptied before each scenario


def external_server(spec):
    """NAME=HOST:PORT[=DIR] -> Server, after checking that it greets (fail before any run)."""
    name, eq, hostport = spec.partition("=")
    hostport, _, spool = hostport.partition("=")
    host, colon, port = hostport.rpartition(":")
    if not (eq and colon and name and host and port.isdigit()):
        raise SystemExit(f"--external {spec!r}: expected NAME=HOST:PORT or NAME=HOST:PORT=DIR")
    if spool and not os.path.isdir(spool):
        raise SystemExit(f"--external {spec!r}: {spool} is not a directory")
    if name in ("clevermail", "baseline"):
        raise SystemExit(f"--external {spec!r}: the name {name} is taken")
    try:
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            greeting = sock.recv(512)
            sock.sendall(b"QUIT\r\n")
    except OSError as exc:
        raise SystemExit(f"--external {spec!r}: cannot connect: {exc}")
    if not greeting.startswith(b"220"):
        raise SystemExit(f"--external {spec!r}: no SMTP greeting ({greeting[:60]!r})")
    return Server(name, (host, int(port)), spool=spool or None)


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


# File creation over this is a sign of trouble in the file system under the work dir:
# seen on the development VM's ext4 (no journal) after mass deletions, 400-550 us per file
# against 10-20 us normally (see RECENTLY_FREED_SECONDS).
SLOW_CREATE_US = 100


def default_parent():
    """Where the work dir goes: $TMPDIR if set, else /var/tmp (the place for large
    temporary data; /tmp may be a small tmpfs)."""
    if os.environ.get("TMPDIR"):
        return None
    return "/var/tmp" if os.access("/var/tmp", os.W_OK) else None


def file_create_cost(parent, files=200):
    """CPU microseconds per open(O_CREAT) of a Maildir-like name in a new subdirectory.
    The files are left for the work dir's removal: deleting them now would make the
    servers' first allocations skip their inodes (see RECENTLY_FREED_SECONDS)."""
    probe = tempfile.mkdtemp(prefix=".create-probe-", dir=parent)
    t = time.process_time()
    for i in range(files):
        os.close(os.open(os.path.join(probe, f"{i:06d}.M123456P1234Q{i}R0123abcd.host,S=4394,W=4456"),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return (time.process_time() - t) / files * 1e6


# ext4 without a journal does not reuse an inode within 30 s of its deletion; finding
# one it may use then reads the candidates' on-disk inodes (recently_deleted() in
# fs/ext4/ialloc.c), which made creating a file cost 400-550 us after mass deletions.
RECENTLY_FREED_SECONDS = 35


def empty_mailboxes(spool):
    """Delete the messages under `spool` (files in new/ cur/ tmp/), keep the directories;
    returns how many files were deleted."""
    deleted = 0
    for folder, _, files in os.walk(spool):
        if os.path.basename(folder) in ("new", "cur", "tmp"):
            for name in files:
                os.unlink(os.path.join(folder, name))
                deleted += 1
    return deleted


def run_scenario(server, mode, conc, size, args):
    cpu0 = cpu_seconds(server.proc.pid) if server.proc else None
    mach0, t0 = machine_jiffies(), time.perf_counter()
    if args.client == "python":
        done, latencies, errors = python_clients(server.addr, mode, conc, size, args.n, args.seconds,
                                                 args.procs)
    else:
        done, latencies, errors = smtp_source_clients(args.smtp_source, server.addr, mode, conc, size,
                                                      args.n, args.seconds)
    wall, mach1 = time.perf_counter() - t0, machine_jiffies()
    per_msg = (lambda seconds: seconds * 1e3 / done) if done else (lambda seconds: float("nan"))
    r = {"msgs": done, "secs": wall, "rate": done / wall if wall else 0, "errors": errors,
         "mach_ms": per_msg((mach1[0] - mach0[0]) / TICK), "steal_ms": per_msg((mach1[1] - mach0[1]) / TICK),
         "p50": None, "p90": None, "p99": None, "cpu_ms": None, "sys_pct": None}
    if latencies is not None:
        r.update(p50=pct(latencies, 50) * 1e3, p90=pct(latencies, 90) * 1e3, p99=pct(latencies, 99) * 1e3)
    if cpu0 is not None:
        cpu1 = cpu_seconds(server.proc.pid)
        user, system = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
        cpu = user + system
        r.update(cpu_ms=per_msg(cpu), sys_pct=100 * system / cpu if cpu else 0)
    return r


def fmt(value, width, spec):
    """A number, or "-" for a figure this server or client cannot give."""
    return f"{'-' if value is None else format(value, spec):>{width}}"


def median(values):
    values = [v for v in values if v == v]          # without NaN (scenarios with no message)
    return statistics.median(values) if values else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=20000, help="messages per scenario (default 20000)")
    ap.add_argument("--seconds", type=float, default=60,
                    help="time bound per scenario (default 60; smtp-source: killed after this + 60)")
    ap.add_argument("--sizes", default="4096,102400", help="message sizes in bytes")
    ap.add_argument("--concurrency", default="1,20,100", help="concurrent sessions")
    ap.add_argument("--modes", default="conn,reuse",
                    help="conn (one connection per message), reuse, session (connect, EHLO, QUIT: no message)")
    ap.add_argument("--baseline", choices=("target", "all", "none"), default="target",
                    help="baseline scenarios: target = 20 sessions x 4 KiB only (default)")
    ap.add_argument("--external", action="append", default=[], metavar="NAME=HOST:PORT[=DIR]",
                    help="also run every scenario against this already-running server (repeatable); "
                         "DIR: its Maildirs, emptied before each scenario")
    ap.add_argument("--client", choices=("python", "smtp-source"), default="python",
                    help="load generator: the Python clients (default) or Postfix's smtp-source")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the plan, servers interleaved (default 1)")
    ap.add_argument("--settle", type=float, default=1,
                    help="unmeasured pause after each scenario for a server's after-250 work (default 1)")
    ap.add_argument("--procs", type=int, default=2, help="Python client processes (default 2)")
    ap.add_argument("--dir", help="work directory (default: a temp dir, removed after)")
    ap.add_argument("--checks", action="store_true",
                    help="also run clevermail-checks: inbound SPF/DKIM/DMARC/ARC on, signed mail")
    ap.add_argument("--serve", choices=("clevermail", "clevermail-checks", "baseline"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve_main(args.serve, args.dir)

    sizes = [int(s) for s in args.sizes.split(",")]
    concs = [int(c) for c in args.concurrency.split(",")]
    modes = args.modes.split(",")
    if not set(modes) <= {"conn", "reuse", "session"}:
        raise SystemExit(f"--modes {args.modes}: conn, reuse or session")
    if "session" in modes and args.client != "python":
        raise SystemExit("--modes session: Python clients only (smtp-source always sends a message)")
    # check what can fail before starting anything
    externals = [external_server(spec) for spec in args.external]
    if len({x.name for x in externals}) < len(externals):
        raise SystemExit("--external: the names must differ")
    args.smtp_source = find_smtp_source() if args.client == "smtp-source" else None
    full = [(m, c, s) for s in sizes for c in concs for m in modes]
    plans = {"clevermail": full, **{x.name: full for x in externals}}
    if args.checks:
        plans["clevermail-checks"] = full
    if args.baseline != "none":
        plans["baseline"] = full if args.baseline == "all" else [(m, 20, 4096) for m in modes]
    # every scenario once, in plan order (the baseline target may be outside the full plan)
    scenarios = list(dict.fromkeys(sc for plan in plans.values() for sc in plan))

    base = args.dir or tempfile.mkdtemp(prefix="bench-smtp-", dir=default_parent())
    print(f"# {os.cpu_count()} CPUs, work dir {base}, n={args.n}, bound {args.seconds:g}s per scenario, "
          f"client {args.client}, {args.rounds} round(s), settle {args.settle:g}s")
    deleted = sum(empty_mailboxes(x.spool) for x in externals if x.spool)
    if deleted:
        os.sync()
        print(f"# emptied the external Maildirs ({deleted} files); waiting {RECENTLY_FREED_SECONDS}s "
              f"so that no server pays for their freed inodes", flush=True)
        time.sleep(RECENTLY_FREED_SECONDS)
    if args.checks:
        make_dkim_key(base)
        os.environ["BENCH_DKIM_KEY"] = os.path.join(base, "dkim.pem")     # the forked clients read it
    create_us = file_create_cost(base)
    print(f"# creating a file in the work dir costs {create_us:.0f} us of CPU", flush=True)
    if create_us > SLOW_CREATE_US:
        print("# WARNING: that is slow (usually 10-20 us): files deleted in the last half minute, or a "
              "block group out of free inodes; CleverMail's deliveries would pay it", flush=True)
    servers = []
    try:
        # started once for all rounds: a restart per scenario would measure warm-up
        for kind in ("clevermail", "clevermail-checks", "baseline"):
            if kind in plans:
                workdir = os.path.join(base, kind)
                os.makedirs(workdir, exist_ok=True)
                proc, port = start_server(kind, workdir)
                servers.append(Server(kind, ("127.0.0.1", port), proc, workdir,
                                      os.path.join(workdir, "data", "mail", DOMAIN)))
        servers += externals
        w = max([10] + [len(x.name) for x in servers])
        print(f"{'server':<{w}} {'mode':<5} {'conc':>4} {'size':>6} {'msgs':>6} {'secs':>6} {'msg/s':>7} "
              f"{'p50ms':>7} {'p90ms':>7} {'p99ms':>7} {'cpu ms/msg':>10} {'sys%':>4} "
              f"{'mach ms/msg':>11} {'steal ms/msg':>12}  errors", flush=True)
        results = {}
        for rnd in range(1, args.rounds + 1):
            if args.rounds > 1:
                print(f"# round {rnd}/{args.rounds}", flush=True)
            # each scenario against every server in turn, so that a slow spell of this
            # shared VM (other jobs, steal) lands on all servers rather than on one
            for mode, conc, size in scenarios:
                for server in servers:
                    if (mode, conc, size) not in plans[server.name]:
                        continue
                    r = run_scenario(server, mode, conc, size, args)
                    results.setdefault((server.name, mode, conc, size), []).append(r)
                    err = f"{len(r['errors'])} ({r['errors'][0]})" if r["errors"] else "0"
                    print(f"{server.name:<{w}} {mode:<5} {conc:>4} {size // 1024:>5}K {r['msgs']:>6} "
                          f"{r['secs']:>6.1f} {r['rate']:>7.0f} {fmt(r['p50'], 7, '.1f')} "
                          f"{fmt(r['p90'], 7, '.1f')} {fmt(r['p99'], 7, '.1f')} {fmt(r['cpu_ms'], 10, '.2f')} "
                          f"{fmt(r['sys_pct'], 4, '.0f')} {r['mach_ms']:>11.2f} {r['steal_ms']:>12.2f}  {err}",
                          flush=True)
                    time.sleep(args.settle)
        if args.rounds > 1:
            print(f"# median of {args.rounds} rounds")
            print(f"{'server':<{w}} {'mode':<5} {'conc':>4} {'size':>6} {'msg/s':>7} {'cpu ms/msg':>10} "
                  f"{'mach ms/msg':>11}  errors")
            for mode, conc, size in scenarios:
                for server in servers:
                    rs = results.get((server.name, mode, conc, size))
                    if rs:
                        errors = sum(len(r["errors"]) for r in rs)
                        cpu = None if rs[0]["cpu_ms"] is None else median(r["cpu_ms"] for r in rs)
                        print(f"{server.name:<{w}} {mode:<5} {conc:>4} {size // 1024:>5}K "
                              f"{median(r['rate'] for r in rs):>7.0f} {fmt(cpu, 10, '.2f')} "
                              f"{median(r['mach_ms'] for r in rs):>11.2f}  {errors}")
    finally:
        for server in servers:
            if server.proc:
                stop_server(server.proc)
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
