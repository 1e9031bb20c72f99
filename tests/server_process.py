"""`clevermail start` as a real process for the service tests (systemd integration,
socket activation, privileges, stop/reload): start it, read its stderr until a line
shows up, signal it, reap it.  Always reaped (killed if need be) by close()."""

import os
import select
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Moves the descriptors named in CM_FDS to 3, 4, ... as systemd passes them, sets
# LISTEN_PID to this process, and becomes `clevermail start` (same pid) with exec.
ACTIVATION_SHIM = """
import fcntl, os, sys
fds = [int(fd) for fd in os.environ.pop("CM_FDS").split(",")]
high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]    # out of the way of 3, 4, ... first
for fd in fds:
    os.close(fd)
for i, fd in enumerate(high):
    os.dup2(fd, 3 + i)
    os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = str(len(fds))
os.execv(sys.executable, [sys.executable] + sys.argv[1:])
"""


def command(config_path, *args):
    return [sys.executable, "-m", "clevermail", "--config", config_path, *args]


class ServerProcess:
    def __init__(self, config_path, env=None, inherit=None, names=None):
        """inherit: listening sockets handed over as systemd would (LISTEN_FDS), with
        their FileDescriptorName= values in names (LISTEN_FDNAMES)."""
        environ = dict(os.environ, PYTHONPATH=ROOT, **(env or {}))
        argv = command(config_path, "start")
        pass_fds = ()
        if inherit:
            pass_fds = tuple(s.fileno() for s in inherit)
            environ["CM_FDS"] = ",".join(map(str, pass_fds))
            if names is not None:
                environ["LISTEN_FDNAMES"] = ":".join(names)
            argv = [sys.executable, "-c", ACTIVATION_SHIM] + argv[1:]
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=environ, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, pass_fds=pass_fds)
        self.err = b""

    @property
    def pid(self):
        return self.proc.pid

    def read_until(self, text, timeout=60):
        """Read stderr until `text` is in it (True) or the process exits or the time is
        up (False); the whole stderr so far is in .stderr."""
        fd = self.proc.stderr.fileno()
        needle = text.encode()
        deadline = time.monotonic() + timeout
        while needle not in self.err:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return False
            chunk = os.read(fd, 65536)
            if not chunk:
                return False
            self.err += chunk
        return True

    @property
    def stderr(self):
        return self.err.decode("utf-8", "replace")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=60):
        """Wait for the exit; returns the exit code, with the rest of stderr read."""
        _, err = self.proc.communicate(timeout=timeout)
        self.err += err
        return self.proc.returncode

    def stop(self, timeout=60):
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def close(self):
        if self.proc.returncode is not None:
            return                  # reaped by wait(): its output is in .err already
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait(30)


def run_cli(config_path, *args, timeout=120):
    """A short `clevermail` command: CompletedProcess with text stdout/stderr."""
    return subprocess.run(command(config_path, *args), cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                          capture_output=True, text=True, timeout=timeout)
