"""The pid file of a running server: <data_dir>/clevermail.pid.

The server writes its pid there once it has started and holds an exclusive flock on
the file for as long as it runs; `clevermail stop` and `reload` read it.  The lock, not
the file's presence, says whether a server is running: a file left by a process that
died (kill -9, a crash, a power cut) is not locked by anyone, so it is stale, and the
next server simply takes it over.  A pid that the kernel has since given to another
process is never signalled for that reason.
"""

import fcntl
import os
import time

NAME = "clevermail.pid"


class AlreadyRunning(Exception):
    """Another live server holds the pid file (its pid in .pid)."""

    def __init__(self, path, pid):
        super().__init__(f"clevermail is already running (pid {pid}, pid file {path})")
        self.path, self.pid = path, pid


def path_for(data_dir):
    return os.path.join(data_dir, NAME)


# Seconds a lock may be held by someone else before the pid file counts as taken: far
# longer than a probe holds it, far shorter than any server runs.
PROBE_GRACE = 1.0


class PidFile:
    """The pid file this process holds while it serves."""

    def __init__(self, path):
        self.path = path
        self.fd = None

    def acquire(self):
        """Lock the file and write this process's pid; raises AlreadyRunning."""
        busy_since = None
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _read(fd)
                os.close(fd)
                # running() (`clevermail status`, `stop`) holds a shared lock for an
                # instant to probe the file; only a lock that stays is a server
                now = time.monotonic()
                busy_since = busy_since or now
                if now - busy_since < PROBE_GRACE:
                    time.sleep(0.01)
                    continue
                raise AlreadyRunning(self.path, pid) from None
            # the server that held it may have unlinked the file between our open and
            # our lock: a lock on a file no longer at the path protects nothing
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self):
        """Remove the file (still ours: we hold its lock) and let the lock go."""
        if self.fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None


def running(path):
    """The pid of the live server holding `path`, or None (no file, or a stale one)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd)
        return None
    finally:
        os.close(fd)


def stale_pid(path):
    """The pid written in a file nobody holds (for messages), or None."""
    try:
        with open(path, "rb") as f:
            return _parse(f.read())
    except OSError:
        return None


def _read(fd):
    return _parse(os.pread(fd, 64, 0))


def _parse(data):
    try:
        pid = int(data.strip() or b"0")
    except ValueError:
        return None
    return pid if pid > 0 else None


def process_gone(pid):
    """True once `pid` has exited (a zombie not yet reaped by its parent counts as gone:
    it serves nothing and holds no port)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass                 # alive, another user's
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    # "pid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ')'
    state = stat[stat.rfind(b")") + 2:][:1]
    return state in (b"Z", b"X")
