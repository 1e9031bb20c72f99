"""bench_slices.py --callgrind N: each server of a pair run alone under valgrind's
callgrind, and the instructions it executes per message (user space, every thread;
the kernel's work is not counted) over N messages sent by 4 lockstep sessions after
N/4 unmeasured ones.  Unlike a rate or CPU time, the count does not move with what else
the machine runs: it shows what a change to the Python side of the path does, to a
fraction of a percent, on a machine too busy for timings.

Caveat: OpenSSL picks its code by CPU features, and under valgrind it takes other paths
(RSA in particular): callgrind counted an RSA-2048 signature as about 7.3 million
instructions, against 0.3 ms natively, so a crypto-heavy difference (DKIM signing,
on/off 0.13 by this count) says nothing about its native share.  Compare timings
(the slices) for crypto, counts for Python.
"""

import os
import subprocess
import threading
import time

import bench_smtp


def send_messages(work, addr, mode, size, count, sessions):
    """`count` messages to `addr` over `sessions` threads in lockstep, as the slices send."""
    def run(thread, share):
        payload, conn = work.prepare(size), None
        for n in range(share):
            if conn is None:
                conn = work.open(addr, thread)
            work.send(conn, thread, n, payload)
            if mode == "conn" or n == share - 1:
                conn.cmd(b"QUIT\r\n", 221)
                conn.sock.close()
                conn = None
    pool = [threading.Thread(target=run, args=(i, count // sessions)) for i in range(sessions)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def callgrind_pass(work, base, name, mode, size, count, sessions=4):
    """Instructions (user space, all threads) per message of server `name` run under
    valgrind's callgrind, counted over `count` messages after count // 4 unmeasured."""
    out = os.path.join(base, f"callgrind-{name}-{mode}.out")
    prefix = ("valgrind", "--tool=callgrind", "--dump-instr=no", f"--callgrind-out-file={out}",
              f"--log-file={out}.log")
    os.makedirs(os.path.join(base, name), exist_ok=True)
    proc, port = work.start(base, names=(name,), prefix=lambda _: prefix)[name]
    try:
        addr = ("127.0.0.1", port)
        send_messages(work, addr, mode, size, max(sessions, count // 4), sessions)
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
        send_messages(work, addr, mode, size, count, sessions)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
        deadline = time.monotonic() + 60
        while not os.path.exists(out + ".1") and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)                   # written whole
        with open(out + ".1") as f:
            total = next(int(line.split()[1]) for line in f if line.startswith(("summary:", "totals:")))
    finally:
        bench_smtp.stop_server(proc)
    return total / (count // sessions * sessions)


def main(work, args, base, names):
    """--callgrind N: each server's instructions per message, on and off, per mode."""
    print(f"# {args.workload}: instructions per message under callgrind (user space, every thread of "
          f"the server; kernel time not included), {args.callgrind} messages per server and mode, "
          f"4 sessions, {args.sizes} bytes")
    print(f"{'mode':<5} {'size':>5} {'on Ir/msg':>10} {'off Ir/msg':>10} {'off/on':>6}")
    for mode in args.modes.split(","):
        for size in (int(x) for x in args.sizes.split(",")):
            on, off = (callgrind_pass(work, base, name, mode, size, args.callgrind) for name in names)
            print(f"{mode:<5} {size // 1024:>4}K {on:>10.0f} {off:>10.0f} {off / on:>6.2f}", flush=True)
