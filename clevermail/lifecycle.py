"""The serving process of `clevermail start`, from a started MailService to its exit.

Signals only set flags (Signals): SIGINT and SIGTERM ask for a stop, SIGHUP for a
reload; the C-level handler also writes to a wake-up pipe (signal.set_wakeup_fd), so
the main loop (Runner.run), asleep in select(), wakes at once and does the work itself,
never inside a handler, where it could interrupt the very code it needs.

Runner.run writes the pid file (pidfile.py), logs the start line (version, config
file, listeners, data directory, user), tells systemd READY=1 with a STATUS line
(sdnotify.py), then loops: a reload re-reads the config file with config.load_config
(a bad file: every problem logged, the running configuration kept; a good one:
service.reload(settings), each note it returns logged as a WARNING), bracketed by
RELOADING=1 and READY=1; a stop says STOPPING=1, logs the stop line with its reason,
stops the service and removes the pid file.  The STATUS line (listeners, sessions)
is refreshed while it runs.
"""

import logging
import os
import select
import signal
import sys

from . import __version__
from .activation import describe
from .config import ConfigError, load_config
from .pidfile import PidFile, path_for
from .sdnotify import Notifier
from .workers import KILL_GRACE

log = logging.getLogger("clevermail")

# Seconds between refreshes of systemd's STATUS line (sent only when it changed).
STATUS_INTERVAL = 5.0

SIGNAL_REASONS = {signal.SIGINT: "SIGINT (Ctrl-C)", signal.SIGTERM: "SIGTERM"}


class Signals:
    """SIGINT/SIGTERM -> stop_reason, SIGHUP -> reload_wanted; wait() sleeps until
    one arrives.  install() from the main thread, before the service starts (a
    signal during start-up must still end in a clean stop); restore() at the end."""

    def __init__(self):
        self.stop_reason = None
        self.reload_wanted = False
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self._saved = None

    def install(self):
        old_fd = signal.set_wakeup_fd(self._w, warn_on_full_buffer=False)
        old = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        self._saved = (old_fd, old)
        return self

    def _handle(self, signum, frame):
        # only plain assignments here: no locks, no I/O, no logging
        if signum == signal.SIGHUP:
            self.reload_wanted = True
        elif self.stop_reason is None:
            self.stop_reason = SIGNAL_REASONS.get(signum, signal.Signals(signum).name)

    def request_stop(self, reason):
        """For callers other than a signal (tests, an embedding program)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        os.write(self._w, b"\0")

    def take_reload(self):
        wanted, self.reload_wanted = self.reload_wanted, False
        return wanted

    def wait(self, timeout):
        """Sleep until a signal arrives or `timeout` seconds pass."""
        if self.stop_reason is None and not self.reload_wanted:
            select.select([self._r], [], [], timeout)
        try:
            while os.read(self._r, 512):
                pass
        except BlockingIOError:
            pass

    def restore(self):
        if self._saved is not None:
            old_fd, old = self._saved
            signal.set_wakeup_fd(old_fd)
            for sig, handler in old.items():
                signal.signal(sig, handler)
            self._saved = None
        for fd in (self._r, self._w):
            os.close(fd)


def listener_text(service):
    """'smtp 127.0.0.1:25, imap [::]:143' of a started service."""
    return ", ".join(f"{kind} {describe(srv.socket)}" for kind, srv in service.servers)


def say(text, *args):
    """An INFO line of the server's life (start, stop): logged, so that it reaches the
    log file, and written to stderr all the same when log_level hides INFO."""
    if log.isEnabledFor(logging.INFO):
        log.info(text, *args)
    else:
        print(f"clevermail: {text % args}", file=sys.stderr, flush=True)


def config_name(settings):
    """The config file as an absolute path (or '<defaults>')."""
    source = settings.source
    return source if source.startswith("<") else os.path.abspath(source)


def session_count(service):
    return sum(len(srv.sessions) for _, srv in service.servers)


class Runner:
    """Runs a started MailService until a stop signal; see the module docstring."""

    def __init__(self, service, signals, config_path=None, notifier=None, loader=load_config):
        # service.worker_index > 0: a worker process of [server] workers (workers.py):
        # no pid file (the main process owns it), its own lines say which worker it is
        self.service = service
        self.signals = signals
        self.config_path = config_path      # None: CLEVERMAIL_CONFIG or the defaults, as at start
        self.notifier = notifier if notifier is not None else Notifier()
        self.loader = loader
        self.pidfile = None
        self._status = None

    @property
    def settings(self):
        return self.service.settings

    def status_line(self):
        count = session_count(self.service)
        return f"{listener_text(self.service)}; {count} session{'' if count == 1 else 's'}"

    @property
    def worker_index(self):
        return getattr(self.service, "worker_index", 0)

    def start_line(self):
        server = self.settings.server
        if self.worker_index:
            return f"clevermail worker {self.worker_index} running (pid {os.getpid()})"
        run_as = getattr(self.service, "run_as", None)
        user = f"; user {run_as.user}" if run_as is not None else ""
        activated = " (sockets from the service manager)" if getattr(self.service, "inherited", None) else ""
        return (f"clevermail {__version__} running ({listener_text(self.service)}){activated}; "
                f"config {config_name(self.settings)}; data in {server.data_dir}{user}")

    def run(self):
        """Serve until a stop is asked for; returns the stop's reason."""
        if not self.worker_index:
            self.pidfile = PidFile(path_for(self.settings.server.data_dir)).acquire()
        try:
            say("%s", self.start_line())
            self._status = self.status_line()
            self.notifier.ready(self._status)
            while True:
                self.signals.wait(STATUS_INTERVAL)
                if self.signals.stop_reason is not None:
                    break
                if self.signals.take_reload():
                    self.reload()
                self._refresh_status()
            return self._stop(self.signals.stop_reason)
        finally:
            if self.pidfile is not None:
                self.pidfile.release()

    def _refresh_status(self):
        status = self.status_line()
        if status != self._status:
            self._status = status
            self.notifier.status(status)

    def reload(self):
        """Re-read the config file and apply it; a bad file changes nothing."""
        self.notifier.reloading()
        source = self.config_path or "the configuration"
        log.info("reloading %s (SIGHUP)", source)
        try:
            try:
                settings = self.loader(self.config_path)
            except ConfigError as exc:
                for problem in exc.problems:
                    log.error("config error: %s", problem)
                log.error("reload failed: %d problem(s); still running with the configuration loaded before",
                          len(exc.problems))
                return False
            for note in self.service.reload(settings):
                log.warning("%s", note)
            if getattr(self.service, "pool", None) is not None:
                self.service.pool.reload()      # each worker re-reads the file itself
            return True
        finally:
            self._status = self.status_line()
            self.notifier.ready(self._status)

    def _stop(self, reason):
        self.notifier.stopping(f"stopping: {reason}")
        if self.worker_index:
            say("worker %d stopping: %s", self.worker_index, reason)
            self.service.stop()
            say("worker %d stopped", self.worker_index)
            return reason
        say("stopping: %s; clevermail %s, config %s, data in %s", reason, __version__,
                 config_name(self.settings), self.settings.server.data_dir)
        pool = getattr(self.service, "pool", None)
        if pool is not None:
            pool.begin_stop()           # the workers drain their sessions meanwhile
        self.service.stop()
        if pool is not None:
            pool.wait(self.settings.server.drain_time + KILL_GRACE)
        say("clevermail stopped")
        return reason
