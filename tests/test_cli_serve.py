"""`clevermail start|stop|reload` and the serving process's main loop (lifecycle.py):
the pid file (written after start, removed on stop, a stale one replaced), stop and
reload through it, SIGHUP re-reading the config (a bad file keeps the old one), the
start and stop lines in the log file, signals that only set flags."""

import logging
import os
import signal
import subprocess
import sys
import threading

import pytest

from clevermail import lifecycle, pidfile
from clevermail.config import load_config
from clevermail.lifecycle import Runner, Signals
from server_process import ServerProcess, run_cli
from waiting import wait_for

pytestmark = pytest.mark.e2e


def pid_path(tmp_path):
    return str(tmp_path / "data" / "clevermail.pid")


def dead_pid():
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- the pid file ----------------------------------------------------------------------------------
def test_pid_file_lock_says_who_runs(tmp_path):
    path = str(tmp_path / "clevermail.pid")
    assert pidfile.running(path) is None
    held = pidfile.PidFile(path).acquire()
    try:
        assert pidfile.running(path) == os.getpid()
        with open(path) as f:
            assert f.read() == f"{os.getpid()}\n"
        with pytest.raises(pidfile.AlreadyRunning) as info:
            pidfile.PidFile(path).acquire()
        assert info.value.pid == os.getpid()
    finally:
        held.release()
    assert not os.path.exists(path) and pidfile.running(path) is None


def test_a_probe_holding_the_lock_for_an_instant_does_not_stop_a_start(tmp_path, monkeypatch):
    """running() (status, stop) takes a shared lock for an instant; a server starting
    at that moment waits it out instead of failing "already running (pid None)"."""
    import fcntl

    path = str(tmp_path / "clevermail.pid")
    probe = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(probe, fcntl.LOCK_SH)           # the probe, caught holding its lock
    real_sleep = pidfile.time.sleep

    def sleep_then_let_go(seconds):             # the start is retrying: the probe ends
        fcntl.flock(probe, fcntl.LOCK_UN)
        real_sleep(seconds)

    monkeypatch.setattr(pidfile.time, "sleep", sleep_then_let_go)
    try:
        held = pidfile.PidFile(path).acquire()
    finally:
        os.close(probe)
    try:
        assert pidfile.running(path) == os.getpid()
    finally:
        held.release()


def test_stale_pid_file_is_taken_over(tmp_path):
    path = str(tmp_path / "clevermail.pid")
    gone = dead_pid()
    with open(path, "w") as f:
        f.write(f"{gone}\n")
    assert pidfile.running(path) is None and pidfile.stale_pid(path) == gone
    held = pidfile.PidFile(path).acquire()
    try:
        assert pidfile.running(path) == os.getpid()
    finally:
        held.release()


def test_process_gone():
    assert pidfile.process_gone(dead_pid())
    assert not pidfile.process_gone(os.getpid())
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        # exited but not reaped yet: it serves nothing any more
        assert wait_for(lambda: pidfile.process_gone(zombie.pid), timeout=30)
    finally:
        zombie.wait()


# -- start, stop, reload as processes ----------------------------------------------------------------
def test_start_writes_pid_file_and_stop_stops_it(tmp_path, write_config):
    log_file = tmp_path / "cm.log"
    cfg = write_config(tmp_path, server={"log_file": str(log_file)})
    server = ServerProcess(cfg)
    try:
        assert server.read_until(" running ("), server.stderr
        assert wait_for(lambda: pidfile.running(pid_path(tmp_path)) == server.pid)

        again = run_cli(cfg, "start")
        assert again.returncode == 1
        assert again.stderr.strip().splitlines() == [
            f"clevermail: cannot start: clevermail is already running (pid {server.pid}, "
            f"data in {tmp_path / 'data'})"]

        result = run_cli(cfg, "stop")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            f"clevermail: sent SIGTERM to pid {server.pid}; waiting for it to exit",
            f"clevermail: stopped (pid {server.pid})"]
        assert server.wait() == 0
    finally:
        server.close()
    assert not os.path.exists(pid_path(tmp_path))
    # the start and stop lines went through the logger: they are in the log file too
    logged = log_file.read_text()
    start = [line for line in logged.splitlines() if " running (" in line]
    assert len(start) == 1
    assert f"config {cfg};" in start[0] and f"data in {tmp_path / 'data'}" in start[0]
    assert "clevermail 0." in start[0] and "smtp 127.0.0.1:" in start[0]
    stop = [line for line in logged.splitlines() if "stopping: " in line]
    assert len(stop) == 1 and "stopping: SIGTERM; clevermail" in stop[0]
    assert logged.rstrip().endswith("clevermail stopped")


def test_stale_pid_file_does_not_stop_a_start(tmp_path, write_config):
    cfg = write_config(tmp_path)
    os.makedirs(tmp_path / "data")
    with open(pid_path(tmp_path), "w") as f:
        f.write(f"{dead_pid()}\n")
    server = ServerProcess(cfg)
    try:
        assert server.read_until(" running ("), server.stderr
        assert wait_for(lambda: pidfile.running(pid_path(tmp_path)) == server.pid)
        assert server.stop() == 0
    finally:
        server.close()


def test_stop_and_reload_when_not_running(tmp_path, write_config):
    cfg = write_config(tmp_path)
    for verb in ("stop", "reload"):
        result = run_cli(cfg, verb)
        assert result.returncode == 1
        assert result.stderr.splitlines() == [f"clevermail: not running (no pid file at {pid_path(tmp_path)})"]
    os.makedirs(tmp_path / "data")
    gone = dead_pid()
    with open(pid_path(tmp_path), "w") as f:
        f.write(f"{gone}\n")
    result = run_cli(cfg, "stop")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"clevermail: not running (stale pid file {pid_path(tmp_path)} (process {gone} is gone))"]


def test_reload_rereads_the_config_and_a_bad_one_changes_nothing(tmp_path, write_config):
    cfg = write_config(tmp_path)
    server = ServerProcess(cfg)
    try:
        assert server.read_until(" running ("), server.stderr
        assert wait_for(lambda: pidfile.running(pid_path(tmp_path)) == server.pid)
        good = open(cfg).read()
        with open(cfg, "a") as f:
            f.write("[tls]\ncertificat = x\nkei = y\n")
        result = run_cli(cfg, "reload")
        # the command itself reads the file too: a broken one is reported, no signal sent
        assert result.returncode == 2 and result.stderr.startswith("config error: ")

        os.kill(server.pid, signal.SIGHUP)          # as systemctl reload (ExecReload=) does
        assert server.read_until("reload failed: "), server.stderr
        errors = [line for line in server.stderr.splitlines() if " ERROR " in line]
        assert any("config error: " in line and "[tls] certificat: unknown key" in line for line in errors)
        assert any("config error: " in line and "[tls] kei: unknown key" in line for line in errors)
        assert "still running with the configuration loaded before" in errors[-1]

        # a good file, with a listener moved: applied, and the move named as needing a restart
        with open(cfg, "w") as f:
            f.write(good.replace("[imap]\nlisten = 127.0.0.1:0,", "[imap]\nlisten = 127.0.0.1:1,"))
        result = run_cli(cfg, "reload")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"clevermail: sent SIGHUP to pid {server.pid}")
        assert server.read_until("[imap] listen changed: restart to apply", timeout=60), server.stderr
        assert f"reloading {cfg} (SIGHUP)" in server.stderr
        assert f"configuration reloaded from {cfg}" in server.stderr
        note = next(line for line in server.stderr.splitlines() if "[imap] listen changed" in line)
        assert " WARNING " in note
        assert server.proc.poll() is None          # SIGHUP never kills it
        assert server.stop() == 0
    finally:
        server.close()
    assert "Traceback" not in server.stderr


# -- the main loop, in this process ----------------------------------------------------------------------
class FakeService:
    """MailService's contract as the main loop uses it: settings, servers, run_as,
    inherited, reload(settings) -> notes, stop()."""

    def __init__(self, settings, notes=()):
        self.settings = settings
        self.servers = []
        self.run_as = None
        self.inherited = []
        self.notes = list(notes)
        self.calls = []

    def reload(self, settings):
        self.calls.append(("reload", settings))
        self.settings = settings
        return self.notes

    def stop(self):
        self.calls.append(("stop",))


class FakeNotifier:
    def __init__(self):
        self.sent = []

    def ready(self, status=None):
        self.sent.append(("READY", status))

    def status(self, status):
        self.sent.append(("STATUS", status))

    def reloading(self):
        self.sent.append(("RELOADING",))

    def stopping(self, status=None):
        self.sent.append(("STOPPING", status))


def test_reload_applies_new_settings_and_logs_each_note(tmp_path, write_config, caplog):
    cfg = write_config(tmp_path)
    service = FakeService(load_config(cfg), notes=["[smtp] listen changed: restart to apply",
                                                   "[server] user changed: restart to apply"])
    notifier = FakeNotifier()
    runner = Runner(service, signals=None, config_path=cfg, notifier=notifier)
    write_config(tmp_path, relay={"concurrency": 9})
    with caplog.at_level(logging.INFO, logger="clevermail"):
        assert runner.reload() is True
    (call,) = service.calls
    assert call[0] == "reload" and call[1].relay.concurrency == 9
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == service.notes
    assert notifier.sent == [("RELOADING",), ("READY", "; 0 sessions")]


def test_reload_with_a_bad_file_keeps_the_running_settings(tmp_path, write_config, caplog):
    cfg = write_config(tmp_path)
    service = FakeService(load_config(cfg))
    notifier = FakeNotifier()
    runner = Runner(service, signals=None, config_path=cfg, notifier=notifier)
    write_config(tmp_path, limits={"message_size": 1, "recipients": 0})
    with caplog.at_level(logging.INFO, logger="clevermail"):
        assert runner.reload() is False
    assert service.calls == []
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 3
    assert "[limits] message_size" in errors[0] and "[limits] recipients" in errors[1]
    assert errors[2].startswith("reload failed: 2 problem(s)")
    # systemd is told the reload is over even so (it would wait for READY=1 otherwise)
    assert notifier.sent == [("RELOADING",), ("READY", "; 0 sessions")]


def test_run_loop_reloads_then_stops_with_the_reason(tmp_path, write_config, thread_guard):
    cfg = write_config(tmp_path)
    os.makedirs(tmp_path / "data")
    service = FakeService(load_config(cfg))
    notifier = FakeNotifier()
    signals = Signals()
    runner = Runner(service, signals, config_path=cfg, notifier=notifier)
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("reason", runner.run()))
    t.start()
    try:
        assert wait_for(lambda: pidfile.running(pid_path(tmp_path)) == os.getpid())
        signals.reload_wanted = True
        signals.request_stop("stand-in for SIGHUP, then a stop")
        # a stop wins over a reload that arrives with it: the loop checks stop first
    finally:
        t.join(30)
        signals.restore()
    assert result["reason"] == "stand-in for SIGHUP, then a stop"
    assert service.calls == [("stop",)]
    assert notifier.sent[0] == ("READY", "; 0 sessions")
    assert notifier.sent[-1] == ("STOPPING", "stopping: stand-in for SIGHUP, then a stop")
    assert not os.path.exists(pid_path(tmp_path))


def test_signal_handlers_only_set_flags_and_wake_the_loop():
    # what restore() must put back: the dispositions pytest's process inherited
    # (SIGHUP is SIG_IGN under nohup, SIG_DFL otherwise)
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM)}
    signals = Signals().install()
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        signals.wait(30)
        assert signals.reload_wanted and signals.stop_reason is None
        assert signals.take_reload() and not signals.reload_wanted
        os.kill(os.getpid(), signal.SIGTERM)
        signals.wait(30)
        assert signals.stop_reason == "SIGTERM"
        os.kill(os.getpid(), signal.SIGINT)           # the first reason stays
        signals.wait(30)
        assert signals.stop_reason == "SIGTERM"
    finally:
        signals.restore()
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_status_line_counts_sessions():
    class Server:
        def __init__(self, sessions):
            import socket
            self.socket = socket.socket()
            self.socket.bind(("127.0.0.1", 0))
            self.sessions = set(range(sessions))

    service = FakeService(None)
    service.servers = [("smtp", Server(2)), ("imap", Server(1))]
    try:
        runner = Runner(service, signals=None, notifier=FakeNotifier())
        line = runner.status_line()
        smtp_port = service.servers[0][1].socket.getsockname()[1]
        assert line.startswith(f"smtp 127.0.0.1:{smtp_port}, imap 127.0.0.1:")
        assert line.endswith("; 3 sessions")
    finally:
        for _, srv in service.servers:
            srv.socket.close()
    assert lifecycle.STATUS_INTERVAL > 0


def test_start_and_stop_lines_show_when_info_is_hidden(tmp_path, write_config):
    server = ServerProcess(write_config(tmp_path, server={"log_level": "WARNING"}))
    try:
        assert server.read_until("clevermail: clevermail 0."), server.stderr
        assert server.stop() == 0
    finally:
        server.close()
    lines = server.stderr.splitlines()
    assert any(line.startswith("clevermail: clevermail 0.") and " running (" in line for line in lines)
    assert "clevermail: stopping: SIGTERM; clevermail 0." in server.stderr
    assert lines[-1] == "clevermail: clevermail stopped"
    assert " INFO " not in server.stderr
