"""run_in_pty: a program with a pseudo-terminal as stdin, stdout and stderr, for what
behaves differently on a terminal (mutt's screen, the import progress bar)."""

import os
import pty
import select
import subprocess
import time


def run_in_pty(argv, env=None, timeout=60):
    """(exit status, everything written to the terminal); the program is killed when
    it is still running after `timeout` seconds (a bound, never a timing assertion)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                close_fds=True, start_new_session=True)
    finally:
        os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:         # EIO: every writer closed the terminal
                    break
                if not data:
                    break
                out += data
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
    return proc.returncode, bytes(out)
