"""[server] workers = N: N processes serve the same listeners (issue 18, both cores).

The main process (`clevermail start`) binds every listener (or inherits them from
systemd), drops privileges, starts its own MailService, then spawns N-1 worker
processes: `python -m clevermail worker` with the listening sockets passed as open
descriptors (subprocess pass_fds: fork+exec, safe in a threaded parent) and named in
CLEVERMAIL_WORKER ("index:parent-pid:kind=fd,kind=fd,...").  Each worker is the same
threaded server (its three ThreadingTCPServers and the ManageSieve one on the same
sockets), on the same data directory: the store is safe across processes and its
inotify watch brings one worker's changes to the others' IDLE sessions at once.

Who does what:
- Every process accepts on the shared sockets, made non-blocking: all wake on a
  connection, one accept() wins, the others get EAGAIN (socketserver drops it).  A
  process with more connections open than another lets that one take it first
  (accept_share.py: a board in shared memory), so long-lived IMAP sessions spread.
- The relay worker runs in the main process only (its claims are exclusive anyway, and
  an enqueue in a worker reaches it within a second through the queue directory's
  mtime); the pid file, systemd notifications and the [metrics] endpoint are the main
  process's.  Each worker answers `status` on its own control socket
  (<data_dir>/clevermail.sock.wN) and the main one folds them into its answer.
- Stop: SIGTERM/SIGINT to the main process is passed to every worker, each drains its
  own sessions within drain_time, the main one waits for them (SIGKILL after the drain
  time and a grace period).  Reload: SIGHUP is passed on; each process re-reads the
  config file itself.  A worker that dies unasked is started again (with a growing
  pause when it keeps dying); a worker whose main process is gone stops itself
  (PR_SET_PDEATHSIG).
"""

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from . import accept_share
from .accept_share import NO_BOARD

log = logging.getLogger("clevermail.workers")

ENV = "CLEVERMAIL_WORKER"
# Seconds between looks at the workers (exit codes) in the supervising thread.
SUPERVISE_INTERVAL = 0.5
# Pause before restarting a worker that died: doubles for one that keeps dying, up to
# RESTART_MAX; reset once a worker has lived STABLE seconds.
RESTART_MIN, RESTART_MAX, STABLE = 1.0, 30.0, 60.0
# Seconds a stop waits past the drain time before killing a worker.
KILL_GRACE = 5.0
PR_SET_PDEATHSIG = 1


class WorkerError(Exception):
    """A malformed CLEVERMAIL_WORKER (one line)."""


# -- the worker side ----------------------------------------------------------------------
def encode(index, parent, sockets):
    """CLEVERMAIL_WORKER's value for worker `index`: sockets is [(kind, fd)]."""
    return f"{index}:{parent}:" + ",".join(f"{kind}={fd}" for kind, fd in sockets)


def decode(value):
    """(index, parent pid, [(kind, fd)]) of CLEVERMAIL_WORKER's value."""
    try:
        index, parent, pairs = value.split(":", 2)
        sockets = []
        for pair in filter(None, pairs.split(",")):
            kind, _, fd = pair.partition("=")
            sockets.append((kind, int(fd)))
        return int(index), int(parent), sockets
    except ValueError:
        raise WorkerError(f"{ENV}={value!r} is not index:parent:kind=fd,...") from None


def inherited(environ=None):
    """This worker's (index, [(kind, fd)]) from the environment (removed from it, so
    nothing this process starts takes the sockets), or None in a main process.  Each
    descriptor is made close-on-exec; a worker whose parent is already gone exits."""
    environ = os.environ if environ is None else environ
    value = environ.pop(ENV, None)
    if value is None:
        return None
    index, parent, sockets = decode(value)
    die_with_parent()
    if os.getppid() != parent:      # the main process died before the line above
        raise WorkerError(f"worker {index}: main process {parent} is gone")
    for _, fd in sockets:
        os.set_inheritable(fd, False)
    return index, sockets


def die_with_parent(sig=signal.SIGTERM):
    """Ask the kernel for `sig` when the main process dies (Linux prctl), so that a
    killed main process never leaves workers serving on its sockets."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        pass                # not Linux: the worker still stops when asked


def control_path(base, index):
    """The control socket of worker `index` beside the main one."""
    return f"{base}.w{index}"


# -- the main side ------------------------------------------------------------------------
class Worker:
    """One worker process and what the supervisor knows of it."""

    def __init__(self, index):
        self.index = index
        self.process = None
        self.started = 0.0
        self.restarts = 0
        self.pause = RESTART_MIN
        self.due = 0.0          # when a dead one may be started again

    @property
    def pid(self):
        return self.process.pid if self.process is not None else None

    def alive(self):
        return self.process is not None and self.process.poll() is None


class WorkerPool:
    """The N-1 worker processes of a main MailService (see the module docstring)."""

    def __init__(self, service, count, argv, environ=None, board=NO_BOARD):
        self.service = service
        # accept_share.LoadBoard of every process's open connections: its descriptor
        # goes to each worker; a worker that died is marked there as not running
        self.board = board
        self.count = count              # workers besides the main process
        self.argv = list(argv)          # the command of a worker, without its sockets
        self.environ = dict(os.environ if environ is None else environ)
        # systemd's notify socket is the main process's (NotifyAccess=main)
        for key in ("NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            self.environ.pop(key, None)
        self.workers = [Worker(i) for i in range(1, count + 1)]
        self._lock = threading.Lock()   # spawning vs stopping
        self._stopping = threading.Event()
        self._thread = None

    def _sockets(self):
        return [(kind, srv.socket.fileno()) for kind, srv in self.service.servers]

    def start(self):
        # (the listeners are non-blocking already, netbase.py: the losers of each race
        # for a connection get EAGAIN, not an accept() that hangs until the next one)
        sockets = self._sockets()
        for worker in self.workers:
            self._spawn(worker, sockets)
        self._thread = threading.Thread(target=self._supervise, name="clevermail-workers", daemon=True)
        self._thread.start()
        return self

    def _spawn(self, worker, sockets=None):
        sockets = sockets if sockets is not None else self._sockets()
        env = dict(self.environ)
        env[ENV] = encode(worker.index, os.getpid(), sockets)
        fds = [fd for _, fd in sockets]
        if self.board is not NO_BOARD:
            env[accept_share.ENV] = self.board.environ_value()
            fds.append(self.board.fd)
        with self._lock:
            if self._stopping.is_set():
                return
            worker.process = subprocess.Popen(self.argv, env=env, pass_fds=fds,
                                              stdin=subprocess.DEVNULL)
            worker.started = time.monotonic()
        log.info("worker %d started (pid %d)", worker.index, worker.process.pid)

    def _supervise(self):
        while not self._stopping.wait(SUPERVISE_INTERVAL):
            now = time.monotonic()
            for worker in self.workers:
                if worker.alive():
                    if now - worker.started > STABLE:
                        worker.pause = RESTART_MIN
                    continue
                if worker.due == 0.0:
                    self.board.gone(worker.index)   # its connections went with it
                    code = worker.process.returncode if worker.process is not None else None
                    worker.due = now + worker.pause
                    log.warning("worker %d (pid %s) exited with %s; starting it again in %.0f s",
                                worker.index, worker.pid, _exit_text(code), worker.pause)
                    worker.pause = min(RESTART_MAX, worker.pause * 2)
                elif now >= worker.due:
                    worker.due = 0.0
                    worker.restarts += 1
                    try:
                        self._spawn(worker)
                    except OSError as exc:
                        log.error("worker %d cannot start: %s", worker.index, exc)

    def signal_all(self, sig):
        for worker in self.workers:
            if worker.alive():
                try:
                    worker.process.send_signal(sig)
                except ProcessLookupError:
                    pass

    def reload(self):
        """Pass SIGHUP on: each worker re-reads the config file and logs its notes."""
        self.signal_all(signal.SIGHUP)

    def begin_stop(self):
        """No more restarts; SIGTERM to every worker (each drains its own sessions)."""
        with self._lock:
            self._stopping.set()
        self.signal_all(signal.SIGTERM)

    def wait(self, timeout):
        """Wait for the workers to exit; kill what is left after `timeout` seconds."""
        if self._thread is not None:
            self._thread.join(SUPERVISE_INTERVAL * 4)
            self._thread = None
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            if worker.process is None:
                continue
            try:
                worker.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %d (pid %d) did not stop in time: killed", worker.index, worker.pid)
                worker.process.kill()
                worker.process.wait()

    def stop(self, drain):
        self.begin_stop()
        self.wait(drain + KILL_GRACE)

    def status(self):
        """[{index, pid, alive, restarts}] for `clevermail status`."""
        return [{"index": w.index, "pid": w.pid, "alive": w.alive(), "restarts": w.restarts}
                for w in self.workers]


def worker_argv(config_path):
    """The command that starts a worker for this config (the same interpreter)."""
    argv = [sys.executable, "-m", "clevermail"]
    if config_path:
        argv += ["--config", os.path.abspath(config_path)]
    return argv + ["worker"]


def _exit_text(code):
    if code is None:
        return "no code"
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"
