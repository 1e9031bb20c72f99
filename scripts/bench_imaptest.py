#!/usr/bin/env python3
"""imaptest bench, CleverMail and Dovecot side by side, rounds interleaved.

Each round runs a fresh CleverMail (scripts/imaptest_clevermail.sh: users
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

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "scripts"))

from bench_imap import Dovecot  # noqa: E402

USERS = [f"testuser{i}@example.test" for i in range(1, 6)]
PROFILES = (("login every round", ""), ("sessions kept", "logout=0"))
SUMMARY = re.compile(r"imaptest bench: total ([\d.]+) ops/sec .*errors=(\d+)")


class PrivateDovecot(Dovecot):
    """bench_imap's Dovecot with the imaptest users' homes made (owned by its mail user)."""

    def __init__(self, workdir, binary):
        super().__init__(workdir, binary)
        for user in USERS:
            home = os.path.join(self.base, "mail", user)
            os.makedirs(home)
            os.chown(home, self.uid, self.gid)


def bench(command, profile_extra, seconds, clients, env, cwd=None):
    env = dict(os.environ, IMAPTEST_EXTRA=profile_extra, **env)
    # cwd: the checkout whose server runs (`python3 -m clevermail` puts the current
    # directory first on sys.path, ahead of PYTHONPATH: run from another checkout,
    # the --before column would run that checkout's code)
    out = subprocess.run(command + ["bench", str(seconds), str(clients)], cwd=cwd,
                         env=env, capture_output=True, text=True, timeout=seconds * 4 + 180)
    text = out.stdout + out.stderr
    m = SUMMARY.search(text)        # run.sh counts imaptest's Error:/Panic:/Fatal: lines
    if not m:
        raise RuntimeError("imaptest printed no summary:\n" + text[-2000:])
    detail = [line for line in text.splitlines()
              if line.startswith(("imaptest bench: commands per second", "imaptest bench: mean latency"))]
    return float(m.group(1)), int(m.group(2)), detail


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
    results = {}            # (server, profile) -> [(ops, errors)]
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
                        ops, errors, detail = bench(["bash", os.path.join(repo, "scripts", "imaptest_clevermail.sh")],
                                            extra, args.seconds, args.clients,
                                            {"SHARED": args.shared, "TMPDIR": work,
                                             "IMAPTEST_WORKERS": name.rpartition("-w")[2]},
                                            cwd=repo)
                        results.setdefault((name, profile), []).append((ops, errors))
                        print(f"round {r + 1} {profile:18} {name:14} {ops:9.1f} ops/s  {errors} Error: lines",
                              flush=True)
                        if args.verbose:
                            print("\n".join("    " + line[16:] for line in detail), flush=True)
                        for line in error_lines(work):
                            print("    " + line[:300], flush=True)
                        continue
                    server = PrivateDovecot(work, binary)
                    try:
                        ops, errors, detail = bench(["bash", os.path.join(args.shared, "imaptest", "run.sh"),
                                             "127.0.0.1", str(server.port), "testuser%d@example.test", "secret"],
                                            extra, args.seconds, args.clients,
                                            {"IMAPTEST_OUTDIR": os.path.join(work, "out")})
                    finally:
                        server.stop()
                    results.setdefault((name, profile), []).append((ops, errors))
                    print(f"round {r + 1} {profile:18} {name:10} {ops:9.1f} ops/s  {errors} Error: lines",
                          flush=True)
                    if args.verbose:
                        print("\n".join("    " + line[16:] for line in detail), flush=True)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    print(f"\nimaptest bench, {args.clients} clients, {args.seconds} s, medians of {args.rounds} rounds")
    print(f"{'profile':20} {'server':14} {'ops/s':>10} {'dovecot':>10} {'ratio':>7} {'errors (cm/dc)':>15}")
    for profile, _ in profiles:
        dc = results.get(("dovecot", profile))
        dc_ops = statistics.median(o for o, _ in dc) if dc else None
        for name in variants:
            cm = results[(name, profile)]
            cm_ops = statistics.median(o for o, _ in cm)
            line = f"{profile:20} {name:14} {cm_ops:10.1f}"
            if dc:
                line += f" {dc_ops:10.1f} {cm_ops / dc_ops:6.2f}x"
                errs = f"{sum(e for _, e in cm)}/{sum(e for _, e in dc)}"
            else:
                line += f" {'-':>10} {'-':>7}"
                errs = f"{sum(e for _, e in cm)}/-"
            print(line + f" {errs:>15}")

if __name__ == "__main__":
    main()
