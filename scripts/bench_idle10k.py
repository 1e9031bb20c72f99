#!/usr/bin/env python3
"""10,000 concurrent IMAP sessions in IDLE (issue 18): open them all at once, hold them,
deliver one message, close them all at once, and stop the server with SIGTERM in each
phase.  With --wait command the sessions sit between two commands instead (LOGIN and
SELECT done, nothing more sent: the server's thread waits for the next command).

The server is `python -m clevermail start` in its own process on loopback (one thread
per session, as always).  The client side is this process: one thread and one epoll
selector holding every socket, each connection a small state machine (greeting, LOGIN,
SELECT INBOX, IDLE; scripts/idle10k_load.py).  What it measures, from /proc/PID of
the server:

- open: the time until every session is in IDLE ("+ idling" read) or has SELECTed;
- held: resident memory (VmRSS) against the idle server's, and its peak (VmHWM),
  split by kind (thread stacks, Python frame stacks, malloc arenas, ...: smaps),
  descriptors (/proc/PID/fd), threads, CPU over a few seconds;
- one message delivered over SMTP to every user (IDLE only): the time until every
  session has read its "* n EXISTS";
- mass close: every client socket closed at once, then the time until the server's CPU
  is back to idle (under 2% of a core over a 0.5 s window) and its descriptors back;
- SIGTERM stop time, with [server] drain_time as the bound, once per phase, each on a
  fresh server: during the mass open, while held, during the mass close, and idle
  after the close; split from the server's log into the signal taken, MailService.stop
  (the drain, a cut) and the process's exit.

    python3 scripts/bench_idle10k.py                    # 10,000 sessions, 1 user
    python3 scripts/bench_idle10k.py --sessions 2000 --users 100 --phases held
    python3 scripts/bench_idle10k.py --sessions 2000 --wait command --phases main,close
    python3 scripts/bench_idle10k.py --code /tmp/before --phases main   # an earlier checkout

Limits: the open-file limit of both processes is raised to its hard maximum (the
client needs one descriptor per session, as does the server); the machine's limits
are printed first.  Needs about 1 GB of free memory at 10,000 sessions.
"""

import argparse
import os
import resource
import signal
import smtplib
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

from clevermail.accounts import AccountStore  # noqa: E402
from idle10k_load import PASSWORD, REPO, Clients, Server, user, write_config  # noqa: E402


# -- the phases --------------------------------------------------------------------------
WHERE = {"idle": "in IDLE", "command": "between commands"}


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
    server = Server(workdir, args.code)
    clients = None
    try:
        base = dict(rss=server.rss_mb(), fds=server.fds(), threads=server.threads())
        print(f"idle server: RSS {base['rss']:.1f} MB, {base['fds']} descriptors, {base['threads']} threads")
        clients = Clients(server.imap, args.sessions, args.users, args.wait)
        took = clients.open_all(args.limit)
        print(f"open: {clients.idling:,} of {args.sessions:,} sessions {WHERE[args.wait]} in {took:.1f} s"
              + (f"; failed {clients.failed:,}: {clients.errors}" if clients.failed else "")
              + (f"; still opening: {clients.stuck()}" if clients.stuck() else ""))
        time.sleep(1.0)
        rss, fds, threads = server.rss_mb(), server.fds(), server.threads()
        n = max(1, clients.idling)
        print(f"held: RSS {rss:.1f} MB ({(rss - base['rss']) * 1024 / n:.1f} kB per session), "
              f"address space {server.status('VmSize') / 1024 / 1024:.1f} GB, "
              f"{fds:,} descriptors ({(fds - base['fds']) / n:.3f} per session), {threads:,} threads, "
              f"CPU {server.cpu_share(3.0) * 100:.1f}% of a core")
        split = ", ".join(f"{kind} {mb:.1f}" for kind, mb in server.memory_split().items())
        print(f"held memory: peak RSS {server.status('VmHWM') / 1024:.1f} MB; resident MB by kind: {split}")
        if args.hold:
            print(f"held {args.hold:.0f} s more (server pid {server.pid}): CPU "
                  f"{server.cpu_share(args.hold) * 100:.1f}% of a core", flush=True)
        if args.wait == "idle":
            deliver_to_all(server, clients, args)
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
        print(f"SIGTERM after the close: stopped in {fmt(stop)} (drain_time {args.drain_time} s): "
              f"{server.stop_split(workdir)}")
    finally:
        if clients is not None:
            clients.close_all()
        server.kill()


def deliver_to_all(server, clients, args):
    """One message to every user: the time until each IDLE session saw EXISTS."""
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


def run_sigterm(workdir, args, phase):
    """A fresh server, stopped with SIGTERM during `phase`; the stop time."""
    server = Server(workdir, args.code)
    clients = Clients(server.imap, args.sessions, args.users, args.wait)
    try:
        if phase == "open":
            clients.open_all(args.limit, until=lambda: clients.idling >= args.sessions // 2)
            state = f"{clients.idling:,} {WHERE[args.wait]}, {clients.started - clients.idling - clients.failed} opening"
            t0 = time.monotonic()
            server.sigterm_at = time.time()
            server.proc.send_signal(signal.SIGTERM)
            while server.proc.poll() is None and time.monotonic() - t0 < args.limit:
                clients.step(0.05)          # the opening goes on
            stop = time.monotonic() - t0 if server.proc.poll() is not None else None
            server.exited_at = time.time()
            server.kill()
        elif phase == "held":
            clients.open_all(args.limit)
            state = f"{clients.idling:,} {WHERE[args.wait]}"
            stop = server.sigterm(args.limit)
        else:       # during the mass close
            clients.open_all(args.limit)
            state = f"{clients.idling:,} {WHERE[args.wait]} closed at once"
            clients.close_all()
            stop = server.sigterm(args.limit)
        print(f"SIGTERM during {phase} ({state}): stopped in {fmt(stop)} (drain_time {args.drain_time} s): "
              f"{server.stop_split(workdir) if stop is not None else ''}")
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
    ap.add_argument("--wait", choices=("idle", "command"), default="idle",
                    help="where the sessions sit: in IDLE, or between commands after SELECT")
    ap.add_argument("--hold", type=float, default=0.0,
                    help="seconds to hold the sessions after the first look (the CPU they cost then)")
    ap.add_argument("--drain-time", type=float, default=10.0)
    ap.add_argument("--limit", type=float, default=300.0, help="seconds any phase may take")
    ap.add_argument("--code", default=REPO, metavar="DIR",
                    help="the checkout whose server runs (an earlier one, e.g. from git archive, "
                         "for before/after rounds; this script and its clients stay these)")
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
