"""Where log lines go: `LogWriter` (one background thread writes them, many at a time,
to a descriptor), the log file (`open_log_file`, `reopen` after logrotate), stderr
(`console_handler`), and whether stderr is the systemd journal (`stderr_is_journal`:
systemd.exec(5) JOURNAL_STREAM, the device and inode of the stream it connected).
logs.py configures the logger tree over these."""

import logging
import os
import queue
import sys
import threading
import time
import weakref

# How long the log writer gathers lines before writing them together (see LogWriter).
FLUSH_DELAY = 0.02
# Lines waiting for the writer at most; past this they are dropped and counted (a log on
# a pipe nobody reads, a stalled disk) rather than growing the process without bound.
MAX_PENDING_LINES = 100_000


class LogWriter(logging.Handler):
    """Log lines written by one background thread, many at a time, with os.write on a
    descriptor: a log file opened O_APPEND, or stderr.

    A session only formats its line and puts it on a queue: no lock, no syscall, so no
    GIL hand-off mid-session.  (logging.FileHandler holds its lock across the write and
    flush, so under load every session that logs queues behind the one in the kernel.)
    The writer wakes at the first line, gathers what arrives within FLUSH_DELAY and
    writes it with one os.write: at 20 SMTP sessions this gave about 7% more messages/s
    than one write per line.  A line reaches the file at most FLUSH_DELAY late; flush()
    waits for everything logged before it, and close() (logging.shutdown runs it at
    exit) writes the rest.  A write error is reported once on stderr and never reaches
    a session: logging must not stop mail.  Neither may a log that cannot keep up: past
    MAX_PENDING_LINES waiting, lines are dropped, and how many is written when it can."""

    def __init__(self, fd, close_fd=False):
        super().__init__()
        self.fd = fd
        self._close_fd = close_fd
        self._failed = False
        self._dropped = 0
        self.max_pending = MAX_PENDING_LINES
        self._start_writer()
        _writers.add(self)

    def _start_writer(self):
        self._queue = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name="clevermail-log", daemon=True)
        self._writer.start()

    def createLock(self):
        self.lock = None                   # acquire()/release() become no-ops

    def emit(self, record):
        if self._queue.qsize() >= self.max_pending:
            self._dropped += 1             # not exact across threads; a count for humans
            return
        try:
            self._queue.put(self.format(record) + "\n")
        except Exception:
            self.handleError(record)

    def _write_loop(self):
        while True:
            item = self._queue.get()
            time.sleep(FLUSH_DELAY)
            lines, flushed, stop = [], [], False
            while True:
                if isinstance(item, str):
                    lines.append(item)
                elif item is None:
                    stop = True
                else:
                    flushed.append(item)   # a flush() waiting for what came before it
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            dropped, self._dropped = self._dropped, 0
            if dropped:
                lines.append(f"clevermail: {dropped} log lines dropped: the log could not keep up\n")
            if lines:
                self._write("".join(lines).encode("utf-8", "replace"))
            for event in flushed:
                event.set()
            if stop:
                return

    def _write(self, data):
        try:
            while data:
                data = data[os.write(self.fd, data):]
        except OSError as exc:
            if not self._failed:
                self._failed = True
                try:
                    sys.__stderr__.write(f"clevermail: cannot write the log: {exc}\n")
                except Exception:
                    pass

    def flush(self):
        if self._writer.is_alive() and self._writer is not threading.current_thread():
            done = threading.Event()
            self._queue.put(done)
            done.wait(5)

    def close(self):
        if self._writer.is_alive():
            self._queue.put(None)
            self._writer.join(5)
        fd, self.fd = self.fd, -1
        if self._close_fd and fd >= 0:
            os.close(fd)
        super().close()


_writers = weakref.WeakSet()


def _restart_writers_after_fork():
    for handler in list(_writers):
        if handler.fd >= 0:
            handler._start_writer()    # the writer thread does not survive fork()


os.register_at_fork(after_in_child=_restart_writers_after_fork)


def open_log_file(path):
    """A LogWriter appending to `path` (created 0640 if missing)."""
    fd = os.open(os.path.abspath(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    writer = LogWriter(fd, close_fd=True)
    writer.path = os.path.abspath(path)         # for reopen()
    return writer


def reopen():
    """Open every log file again by its name (logrotate renamed it: lines logged from
    now on go to a new file there).  What was logged before goes to the old file, and
    its descriptor is closed only once the writer thread is done with it (a flush on
    each side of the swap).  A file that cannot be opened is reported, the old kept."""
    for writer in list(_writers):
        path = getattr(writer, "path", None)
        if path is None or writer.fd < 0:
            continue
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            logging.getLogger("clevermail").error("cannot reopen the log file %s: %s", path, exc)
            continue
        writer.flush()
        old, writer.fd = writer.fd, fd      # the writer's next os.write goes to the new file
        writer.flush()
        writer._failed = False
        os.close(old)


def console_handler():
    """stderr through a LogWriter; a StreamHandler when it has no descriptor (a test's)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return logging.StreamHandler(sys.stderr)
    return LogWriter(fd)


def stderr_is_journal():
    """True when stderr is the journal stream systemd connected (it sets JOURNAL_STREAM
    to "<device>:<inode>" of it; a redirect by the unit or a shell leaves the variable
    but changes the stream, so both are compared, as systemd.exec(5) says to)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(part) for part in value.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, AttributeError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)
