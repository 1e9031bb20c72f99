#!/usr/bin/env python3
"""imaptest bench, CleverMail and Dovecot side by side, rounds interleaved.

Each round runs a fresh CleverMail (scripts/imaptest_clevermail.sh: users
testuser1..5@example.test with password "secret", data in a new directory) and a fresh
private Dovecot (scripts/bench_imap.py's Dovecot: its own config on a free loopback
port, any password), and runs Dovecot's imaptest (../shared/imaptest/run.sh) against
each in turn for both profiles: a login every round (imaptest's default) and sessions
kept (logout=0).  It prints per-round figures, then the medians, the ratio, and the
`Error:` lines each server caused.  The machine is shared: only ratios from one pass
mean anything.  Beside the ops/s: each server's CPU (user + system, all its processes,
scripts/proc_cpu.py) per imaptest command, the work it does for the same load, and the
machine's steal time in the round (the CPU a virtual machine's host gave to other
guests: at 20-30% a round's ops/s falls by about as much, so compare rounds whose
steal is alike, or the CPU per command).

    python scripts/bench_imaptest.py                     # 3 rounds, 10 clients, 10 s
    python scripts/bench_imaptest.py --rounds 5 --clients 50 --seconds 30
    python scripts/bench_imaptest.py --no-dovecot        # CleverMail alone
    python scripts/bench_imaptest.py --workers 1,2       # [server] workers = 1, then 2
    python scripts/bench_imaptest.py --profile kept --verbose   # logout=0 only, per-command figures

With several --workers values each is its own column (clevermail-w1, clevermail-w2, ...),
run in the same interleaved rounds.  --before DIR adds an earlier checkout's server
(DIR/scripts/imaptest_clevermail.sh, columns before-w1, ...) to the same rounds: a
change measured before and after in one pass.
"""

import argparse
import glob
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "scripts"))

from bench_imap import Dovecot  # noqa: E402
from proc_cpu import CpuWindow, pids_running  # noqa: E402

USERS = [f"testuser{i}@example.test" for i in range(1, 6)]
PROFILES = (("login every round", ""), ("sessions kept", "logout=0"))
SUMMARY = re.compile(r"imaptest bench: total ([\d.]+) ops/sec .*errors=(\d+)")
COMMANDS = re.compile(r"imaptest bench: total .*commands=(\d+)")


class PrivateDovecot(Dovecot):
    """bench_imap's Dovecot with the imaptest users' homes made (owned by its mail user)."""

    def master_pids(self):
        """[the master's PID] (its run/master.pid), or [] while there is none."""
        try:
            with open(os.path.join(self.base, "run", "master.pid")) as f:
                return [int(f.read().split()[0])]
        except (OSError, ValueError, IndexError):
            return []

    def __init__(self, workdir, binary):
        super().__init__(workdir, binary)
        for user in USERS:
            home = os.path.join(self.base, "mail", user)
            os.makedirs(home)
            os.chown(home, self.uid, self.gid)


def bench(command, profile_extra, seconds, clients, env, cwd=None, roots=None):
    """Run one imaptest bench; (ops/s, Error: lines, detail lines, server CPU ms per
    command or None, the machine's steal share meanwhile or None).  roots(): the
    server's root PIDs (proc_cpu.CpuWindow), read from run.sh's first line (the server
    is up, imaptest not yet started) to its summary."""
    env = dict(os.environ, IMAPTEST_EXTRA=profile_extra, **env)
    # cwd: the checkout whose server runs (`python3 -m clevermail` puts the current
    # directory first on sys.path, ahead of PYTHONPATH: run from another checkout,
    # the --before column would run that checkout's code)
    proc = subprocess.Popen(command + ["bench", str(seconds), str(clients)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    window = CpuWindow(roots) if roots is not None else None
    done = threading.Event()

    def sample():           # the last reading before the server stops counts
        while not done.wait(0.2):
            if window.first is not None and window.roots():
                window.stop()
    lines = []
    sampler = threading.Thread(target=sample, daemon=True) if window else None
    try:
        for line in proc.stdout:
            lines.append(line)
            if window is not None and window.first is None and line.startswith("run-imaptest:"):
                window.start()
                sampler.start()
            elif window is not None and SUMMARY.search(line) and window.roots():
                window.stop()
                done.set()
        proc.wait(timeout=seconds * 4 + 180)
    finally:
        done.set()
        if proc.poll() is None:
            proc.kill()
    text = "".join(lines)
    m = SUMMARY.search(text)        # run.sh counts imaptest's Error:/Panic:/Fatal: lines
    if not m:
        raise RuntimeError("imaptest printed no summary:\n" + text[-2000:])
    detail = [line for line in text.splitlines()
              if line.startswith(("imaptest bench: commands per second", "imaptest bench: mean latency"))]
    commands = COMMANDS.search(text)
    cpu = None
    if window is not None and window.seconds is not None and commands and int(commands.group(1)):
        cpu = window.seconds * 1000 / int(commands.group(1))
    steal = window.steal if window is not None else None
    return float(m.group(1)), int(m.group(2)), detail, cpu, steal


def error_lines(work, most=3):
    """The first `Error:`/`Panic:`/`Fatal:` lines imaptest wrote under `work` (run.sh
    leaves its imaptest.out and imaptest.err there): printed, since `work` is removed."""
    lines = []
    for path in sorted(glob.glob(os.path.join(work, "**", "imaptest.*"), recursive=True)):
        with open(path, errors="replace") as f:
            lines += [line.rstrip() for line in f if line.startswith(("Error:", "Panic:", "Fatal:"))]
    return lines[:most]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--shared", default=os.path.join(REPO, "..", "shared"),
                    help="the directory holding imaptest/run.sh (default ../shared)")
    ap.add_argument("--no-dovecot", action="store_true")
    ap.add_argument("--profile", choices=("both", "login", "kept"), default="both",
                    help="a login every round, sessions kept (logout=0), or both (default)")
    ap.add_argument("--verbose", action="store_true",
                    help="print each run's commands per second and mean latency per command")
    ap.add_argument("--before", metavar="DIR",
                    help="also run the CleverMail checked out in DIR (e.g. a git worktree of main)")
    ap.add_argument("--workers", default="1",
                    help="CleverMail's [server] workers, comma-separated to run several (default 1)")
    args = ap.parse_args()
    profiles = [p for p in PROFILES if args.profile == "both" or (args.profile == "kept") == bool(p[1])]
    variants = [f"clevermail-w{int(n)}" for n in args.workers.split(",")]
    if args.before:
        variants += [f"before-w{int(n)}" for n in args.workers.split(",")]
    repos = {"clevermail": REPO, "before": args.before}
    binary = None if args.no_dovecot else shutil.which("dovecot", path=os.environ.get("PATH", "") + ":/usr/sbin")
    if not args.no_dovecot and not binary:
        raise SystemExit("dovecot: not found (apt-get install dovecot-imapd), or --no-dovecot")
    results = {}            # (server, profile) -> [(ops, errors, CPU ms per command or None)]
    top = tempfile.mkdtemp(prefix="bench-imaptest-", dir="/tmp")
    os.chmod(top, 0o711)
    try:
        for r in range(args.rounds):
            for profile, extra in profiles:
                servers = variants + (["dovecot"] if binary else [])
                if r % 2:
                    servers.reverse()       # interleaved: neither always runs first
                for name in servers:
                    work = tempfile.mkdtemp(dir=top)
                    os.chmod(work, 0o711)
                    if not name.startswith("dovecot"):
                        # the compliance script's server: fresh data, users testuser1..5
                        repo = repos[name.partition("-w")[0]]
                        ops, errors, detail, cpu, steal = bench(
                            ["bash", os.path.join(repo, "scripts", "imaptest_clevermail.sh")],
                            extra, args.seconds, args.clients,
                            {"SHARED": args.shared, "TMPDIR": work,
                             "IMAPTEST_WORKERS": name.rpartition("-w")[2]},
                            cwd=repo, roots=lambda work=work: pids_running(f"--config {work}/"))
                        results.setdefault((name, profile), []).append((ops, errors, cpu))
                        print(f"round {r + 1} {profile:18} {name:14} {ops:9.1f} ops/s  {errors} Error: lines"
                              f"  {_ms(cpu)} ms CPU/command  steal {_share(steal)}", flush=True)
                        if args.verbose:
                            print("\n".join("    " + line[16:] for line in detail), flush=True)
                        for line in error_lines(work):
                            print("    " + line[:300], flush=True)
                        continue
                    server = PrivateDovecot(work, binary)
                    try:
                        ops, errors, detail, cpu, steal = bench(
                            ["bash", os.path.join(args.shared, "imaptest", "run.sh"),
                             "127.0.0.1", str(server.port), "testuser%d@example.test", "secret"],
                            extra, args.seconds, args.clients,
                            {"IMAPTEST_OUTDIR": os.path.join(work, "out")}, roots=server.master_pids)
                    finally:
                        server.stop()
                    results.setdefault((name, profile), []).append((ops, errors, cpu))
                    print(f"round {r + 1} {profile:18} {name:10} {ops:9.1f} ops/s  {errors} Error: lines"
                          f"  {_ms(cpu)} ms CPU/command  steal {_share(steal)}", flush=True)
                    if args.verbose:
                        print("\n".join("    " + line[16:] for line in detail), flush=True)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    print(f"\nimaptest bench, {args.clients} clients, {args.seconds} s, medians of {args.rounds} rounds;"
          " CPU: the server's processes, user + system, ms per imaptest command")
    print(f"{'profile':20} {'server':14} {'ops/s':>10} {'dovecot':>10} {'ratio':>7} {'errors (cm/dc)':>15}"
          f" {'CPU cm':>8} {'CPU dc':>8}")
    for profile, _ in profiles:
        dc = results.get(("dovecot", profile))
        dc_ops = statistics.median(r[0] for r in dc) if dc else None
        for name in variants:
            cm = results[(name, profile)]
            cm_ops = statistics.median(r[0] for r in cm)
            line = f"{profile:20} {name:14} {cm_ops:10.1f}"
            if dc:
                line += f" {dc_ops:10.1f} {cm_ops / dc_ops:6.2f}x"
                errs = f"{sum(r[1] for r in cm)}/{sum(r[1] for r in dc)}"
            else:
                line += f" {'-':>10} {'-':>7}"
                errs = f"{sum(r[1] for r in cm)}/-"
            print(line + f" {errs:>15} {_ms(_median_cpu(cm)):>8} {_ms(_median_cpu(dc)):>8}")


def _median_cpu(runs):
    cpus = [r[2] for r in runs or () if r[2] is not None]
    return statistics.median(cpus) if cpus else None


def _ms(cpu):
    return "-" if cpu is None else f"{cpu:.3f}"


def _share(fraction):
    return "-" if fraction is None else f"{fraction * 100:.0f}%"


if __name__ == "__main__":
    main()
