#!/usr/bin/env python3
"""imaptest bench, CleverMail and Dovecot side by side, rounds interleaved.

Each round starts a fresh CleverMail (python -m clevermail start, users
testuser1..5@example.test with password "secret", data in a new directory) and a fresh
private Dovecot (scripts/bench_imap.py's Dovecot: its own config on a free loopback
port, any password), and runs Dovecot's imaptest (../shared/imaptest/run.sh) against
each in turn for both profiles: a login every round (imaptest's default) and sessions
kept (logout=0).  It prints per-round figures, then the medians, the ratio, and the
`Error:` lines each server caused.  The machine is shared: only ratios from one pass
mean anything.

    python scripts/bench_imaptest.py                     # 3 rounds, 10 clients, 10 s
    python scripts/bench_imaptest.py --rounds 5 --clients 50 --seconds 30
    python scripts/bench_imaptest.py --no-dovecot        # CleverMail alone
"""

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "scripts"))
sys.path.insert(0, REPO)

from bench_imap import Dovecot  # noqa: E402
from clevermail.accounts import AccountStore  # noqa: E402

USERS = [f"testuser{i}@example.test" for i in range(1, 6)]
PROFILES = (("login every round", ""), ("sessions kept", "logout=0"))
SUMMARY = re.compile(r"imaptest bench: total ([\d.]+) ops/sec .*errors=(\d+)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


class CleverMail:
    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "clevermail")
        os.makedirs(self.dir)
        self.port = free_port()
        self.config = os.path.join(self.dir, "clevermail.ini")
        with open(self.config, "w") as f:
            f.write(f"""[server]
hostname = mail.example.test
data_dir = {self.dir}/data
users_file = {self.dir}/users.ini
domains = example.test,
[smtp]
listen = ,
submission_listen = ,
[pop3]
listen = ,
[imap]
listen = 127.0.0.1:{self.port},
[limits]
auth_failure_delay = 0
auth_failures_per_client = 1000000
connections_per_client = 1000
""")
        env = dict(os.environ, PYTHONPATH=REPO)
        accounts = AccountStore(os.path.join(self.dir, "users.ini"), ["example.test"])
        for user in USERS:
            accounts.add(user, "secret")
        self.log = open(os.path.join(self.dir, "server.log"), "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "clevermail", "--config", self.config, "start"],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()


class PrivateDovecot(Dovecot):
    """bench_imap's Dovecot with the imaptest users' homes made (owned by its mail user)."""

    def __init__(self, workdir, binary):
        super().__init__(workdir, binary)
        for user in USERS:
            home = os.path.join(self.base, "mail", user)
            os.makedirs(home)
            os.chown(home, self.uid, self.gid)


def bench(port, profile_extra, seconds, clients, shared, outdir):
    env = dict(os.environ, IMAPTEST_EXTRA=profile_extra, IMAPTEST_OUTDIR=outdir)
    out = subprocess.run(["bash", os.path.join(shared, "imaptest", "run.sh"), "127.0.0.1", str(port),
                          "testuser%d@example.test", "secret", "bench", str(seconds), str(clients)],
                         env=env, capture_output=True, text=True, timeout=seconds * 4 + 120)
    text = out.stdout + out.stderr
    m = SUMMARY.search(text)        # run.sh counts imaptest's Error:/Panic:/Fatal: lines
    if not m:
        raise RuntimeError("imaptest printed no summary:\n" + text[-2000:])
    return float(m.group(1)), int(m.group(2))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--shared", default=os.path.join(REPO, "..", "shared"),
                    help="the directory holding imaptest/run.sh (default ../shared)")
    ap.add_argument("--no-dovecot", action="store_true")
    args = ap.parse_args()
    binary = None if args.no_dovecot else shutil.which("dovecot", path=os.environ.get("PATH", "") + ":/usr/sbin")
    if not args.no_dovecot and not binary:
        raise SystemExit("dovecot: not found (apt-get install dovecot-imapd), or --no-dovecot")
    results = {}            # (server, profile) -> [(ops, errors)]
    top = tempfile.mkdtemp(prefix="bench-imaptest-", dir="/tmp")
    os.chmod(top, 0o711)
    try:
        for r in range(args.rounds):
            for profile, extra in PROFILES:
                servers = [("clevermail", CleverMail)] + ([("dovecot", None)] if binary else [])
                if r % 2:
                    servers.reverse()       # interleaved: neither always runs first
                for name, _ in servers:
                    work = tempfile.mkdtemp(dir=top)
                    os.chmod(work, 0o711)
                    server = CleverMail(work) if name == "clevermail" else PrivateDovecot(work, binary)
                    try:
                        ops, errors = bench(server.port, extra, args.seconds, args.clients, args.shared,
                                            os.path.join(work, "out"))
                    finally:
                        server.stop()
                    results.setdefault((name, profile), []).append((ops, errors))
                    print(f"round {r + 1} {profile:18} {name:10} {ops:9.1f} ops/s  {errors} Error: lines",
                          flush=True)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    print(f"\nimaptest bench, {args.clients} clients, {args.seconds} s, medians of {args.rounds} rounds")
    print(f"{'profile':20} {'clevermail':>12} {'dovecot':>12} {'ratio':>7} {'errors (cm/dc)':>15}")
    for profile, _ in PROFILES:
        cm = results[("clevermail", profile)]
        dc = results.get(("dovecot", profile))
        cm_ops = statistics.median(o for o, _ in cm)
        line = f"{profile:20} {cm_ops:12.1f}"
        if dc:
            dc_ops = statistics.median(o for o, _ in dc)
            line += f" {dc_ops:12.1f} {cm_ops / dc_ops:6.2f}x"
            errs = f"{sum(e for _, e in cm)}/{sum(e for _, e in dc)}"
        else:
            line += f" {'-':>12} {'-':>7}"
            errs = f"{sum(e for _, e in cm)}/-"
        print(line + f" {errs:>15}")


if __name__ == "__main__":
    main()
