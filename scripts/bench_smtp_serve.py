"""bench_smtp.py's servers, each run in a child process (`bench_smtp.py --serve KIND`):
CleverMail as `clevermail start` runs it (MailService from a config file in the work
dir, INFO logging to a file, the process tuned and kept to a CPU, and with --workers N the N-1 worker
processes of [server] workers on the same listener), optionally with the inbound
checks and their loopback DNS (clevermail-checks); and the baseline, a bare
thread-per-connection server that fsyncs each message before its 250.  Also the
work dir's file-system helpers (the cost of creating a file, emptying Maildirs).
"""

import base64
import os
import socketserver
import sys
import tempfile
import threading
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

DOMAIN = "bench.test"
USERS = [f"user{i}@{DOMAIN}" for i in range(10)]


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


def serve_clevermail(workdir, checks=False, workers=1):
    from configobj import ConfigObj

    from clevermail.accept_share import NO_BOARD, LoadBoard
    from clevermail.passwords import hash_password
    from clevermail.config import load_config
    from clevermail.logs import setup_logging
    from clevermail.process import CPUS_ENV, encode_cpus, place, tune_process, usable_cpus
    from clevermail.service import MailService
    from clevermail.workers import WorkerPool, worker_argv

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
    log_file = os.path.join(workdir, "server.log")
    # a config file, as `clevermail start` reads it: the worker processes read it too
    config = ConfigObj({
        "server": {"hostname": "mx.bench.test", "data_dir": os.path.join(workdir, "data"),
                   "users_file": users, "domains": [DOMAIN], "workers": workers,
                   "log_level": "INFO", "log_file": log_file},
        "smtp": {"listen": ["127.0.0.1:0"]}, "pop3": {"listen": []}, "imap": {"listen": []},
        "limits": {"connections": 2000, "connections_per_client": 2000, "message_size": 1 << 20},
        # like for like with the Postfix side, which checks nothing, unless --checks
        "inbound": {"checks": checks},
        "relay": {"nameservers": [f"127.0.0.1:{dns.port}"] if checks else []},
    })
    config.filename = os.path.join(workdir, "clevermail.ini")
    config.write()
    conf = load_config(config.filename)
    # the production logging set-up (INFO, as `clevermail start` does), to a file
    setup_logging("INFO", log_file, console=False)
    tune_process()      # as `clevermail start` does: this child is the serving process
    cpus = usable_cpus()
    place(conf.server.cpu_affinity, 0, cpus)
    board = LoadBoard.create(workers) if workers > 1 else NO_BOARD
    svc = MailService(conf, board=board).start()
    if workers > 1:
        # as `clevermail start` does: the other processes on the socket just bound
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
        # `clevermail worker` logs to the file and to its stderr, ours: not onto the terminal
        err = os.open(os.devnull, os.O_WRONLY)
        os.dup2(err, 2)
        os.close(err)
        svc.pool = WorkerPool(svc, workers - 1, worker_argv(config.filename),
                              environ={**os.environ, CPUS_ENV: encode_cpus(cpus)}, board=board).start()
        wait_for_workers(log_file, workers - 1)

    def stop():
        if svc.pool is not None:
            svc.pool.stop(5.0)
        svc.stop()
        if dns is not None:
            dns.stop()
            # bench_slices.py reports it: a warm cache asks a handful per TTL
            with open(os.path.join(workdir, "dns-queries"), "w") as f:
                f.write(f"{len(dns.queries)} ({', '.join(sorted(set(f'{n} {t}' for n, t in dns.queries)))})\n")
    return svc.port("smtp"), stop


def wait_for_workers(log_file, count, seconds=60):
    """Until the log says every worker serves (`clevermail worker N running`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with open(log_file, errors="replace") as f:
            running = {line.partition("clevermail worker ")[2].split()[0] for line in f
                       if "clevermail worker " in line and " running" in line}
        if len(running) >= count:
            return
        time.sleep(0.1)
    raise SystemExit(f"workers not running after {seconds} s (see {log_file})")


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


def serve_main(kind, workdir, workers=1):
    if kind == "baseline":
        port, stop = serve_baseline(workdir)
    else:
        port, stop = serve_clevermail(workdir, checks=kind == "clevermail-checks", workers=workers)
    print(f"PORT {port}", flush=True)
    sys.stdin.read()            # until the parent closes our stdin
    stop()



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

