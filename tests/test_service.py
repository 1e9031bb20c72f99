"""Tests for clevermail.service.MailService and `clevermail start` as a real process:
listeners and relay worker started, bound ports reported, reverse-order stop, no threads
left, one-line start-up failures, clean SIGTERM."""

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from clevermail.service import MailService, StartupError
from waiting import wait_for

pytestmark = pytest.mark.e2e

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GREETINGS = {"smtp": b"220 ", "submission": b"220 ", "pop3": b"+OK", "imap": b"* OK"}


def greeting(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        return s.recv(200)


@pytest.fixture
def held_port():
    """A port on 127.0.0.1 that something else is listening on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    yield s.getsockname()[1]
    s.close()


@pytest.fixture
def unwritable_data_dir(tmp_path):
    """Tests run as root, so permissions do not stop writes: a path under a regular
    FILE cannot be created by anyone."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    return str(blocker / "data")


# -- MailService in this process ----------------------------------------------------------------
def test_start_reports_ports_and_stops_clean(tmp_path, make_config, thread_guard):
    conf = make_config(tmp_path, smtp={"submission_listen": ["127.0.0.1:0"]})
    service = MailService(conf).start()
    try:
        ports = service.ports
        assert sorted(ports) == ["imap", "pop3", "smtp", "submission"]
        assert all(len(p) == 1 and p[0] > 0 for p in ports.values())
        assert len({p[0] for p in ports.values()}) == 4
        assert service.port("smtp") == ports["smtp"][0]
        with pytest.raises(KeyError):
            service.port("pop3s")
        for kind, (port,) in ports.items():
            assert greeting(port).startswith(GREETINGS[kind]), kind
        names = {t.name for t in threading.enumerate()} - {t.name for t in thread_guard}
        assert "relay-worker" in names
        assert {f"clevermail-{k}-{p[0]}" for k, p in ports.items()} <= names
    finally:
        service.stop()
    assert service.started is False
    for port in (p[0] for p in ports.values()):
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_each_listener_gets_its_protocol_limits_policy_and_mode(tmp_path, make_config, thread_guard):
    conf = make_config(tmp_path, smtp={"submission_listen": ["127.0.0.1:0"]},
                       server={"allow_plaintext_auth": True, "trusted_networks": ["192.0.2.0/24"]},
                       limits={"smtp_timeout": 11, "pop3_timeout": 22, "imap_timeout": 33})
    service = MailService(conf).start()
    try:
        servers = dict(service.servers)
        assert {kind: srv.limits.timeout for kind, srv in servers.items()} == {
            "smtp": 11, "submission": 11, "pop3": 22, "imap": 33}
        assert all(srv.limits == conf.limits[srv.protocol] for srv in servers.values())
        assert all(srv.policy == conf.policy and srv.policy.allow_plaintext_auth for srv in servers.values())
        assert (servers["smtp"].mode, servers["submission"].mode) == ("mx", "submission")
        assert not any(srv.implicit_tls for srv in servers.values())
    finally:
        service.stop()


def test_context_manager(tmp_path, make_config, thread_guard):
    with MailService(make_config(tmp_path)) as service:
        assert service.started
        assert greeting(service.port("pop3")).startswith(b"+OK")
    assert not service.started


def test_stop_ends_idle_sessions(tmp_path, make_config, thread_guard):
    service = MailService(make_config(tmp_path)).start()
    clients = []
    try:
        for kind in ("smtp", "pop3", "imap"):
            c = socket.create_connection(("127.0.0.1", service.port(kind)), timeout=10)
            assert c.recv(200).startswith(GREETINGS[kind])
            clients.append(c)
        sessions = sum(len(srv.sessions) for _, srv in service.servers)
        assert sessions == 3
    finally:
        service.stop()
    try:
        for c in clients:
            c.settimeout(10)
            data = b""
            try:
                while True:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except ConnectionResetError:
                pass
    finally:
        for c in clients:
            c.close()


def test_session_threads_are_kept_for_the_next_connection(tmp_path, make_config, thread_guard):
    """One thread per session, but a finished session's thread serves the next
    connection instead of a new thread being started; stop() ends them all."""
    service = MailService(make_config(tmp_path)).start()
    try:
        srv = dict(service.servers)["smtp"]
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", service.port("smtp")), timeout=10) as c:
                assert c.recv(200).startswith(b"220 ")
                c.sendall(b"QUIT\r\n")
                assert c.recv(200).startswith(b"221 ")
            assert wait_for(lambda: srv.threads.waiting == 1, timeout=5), srv.threads.waiting
        assert srv.threads.size == 1
        # a burst of concurrent sessions: each its own thread, all greeted
        burst = [socket.create_connection(("127.0.0.1", service.port("smtp")), timeout=10)
                 for _ in range(30)]
        try:
            for c in burst:
                assert c.recv(200).startswith(b"220 ")
            assert srv.threads.size == 30 and len(srv.sessions) == 30
        finally:
            for c in burst:
                c.close()
    finally:
        service.stop()
    assert srv.threads.size == 0


def test_accept_failures_pause_and_warn_once_then_serving_goes_on(tmp_path, make_config, thread_guard, caplog):
    """Out of file descriptors, accept() fails while the connection stays in the backlog:
    the server must neither die nor spin and flood the log; once descriptors are back,
    the waiting client is served."""
    import errno
    service = MailService(make_config(tmp_path)).start()
    try:
        srv = dict(service.servers)["smtp"]
        real, failures = srv.get_request, []

        def get_request():
            if len(failures) < 3:
                failures.append(1)
                raise OSError(errno.EMFILE, "Too many open files")
            return real()

        srv.get_request = get_request
        with caplog.at_level("WARNING", logger="clevermail.smtp"):
            assert greeting(service.port("smtp")).startswith(b"220 ")
        assert len(failures) == 3
        warnings = [r for r in caplog.records if "cannot accept connections" in r.getMessage()]
        assert len(warnings) == 1 and "Too many open files" in warnings[0].getMessage()
    finally:
        service.stop()


def test_start_leaves_the_process_alone(tmp_path, make_config, thread_guard):
    """Process-wide tuning is `clevermail start`'s (process.tune_process): a library user
    or a test starting a service keeps its interpreter's settings."""
    import resource
    saved = sys.getswitchinterval(), resource.getrlimit(resource.RLIMIT_NOFILE)
    soft, hard = saved[1]
    # values that tuning would change, whatever ran in this process before
    sys.setswitchinterval(0.005)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 1024, hard - 1), hard))
    before = sys.getswitchinterval(), resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        service = MailService(make_config(tmp_path)).start()
        try:
            assert (sys.getswitchinterval(), resource.getrlimit(resource.RLIMIT_NOFILE)) == before
        finally:
            service.stop()
    finally:
        sys.setswitchinterval(saved[0])
        resource.setrlimit(resource.RLIMIT_NOFILE, saved[1])


def test_stop_in_reverse_order(tmp_path, make_config, thread_guard):
    service = MailService(make_config(tmp_path)).start()
    events = []
    real_worker_stop = service.worker.stop
    service.worker.stop = lambda *a, **k: (events.append("worker"), real_worker_stop(*a, **k))[1]
    for kind, srv in service.servers:
        real = srv.shutdown
        srv.shutdown = (lambda k, r: lambda: (events.append(k), r())[1])(kind, real)
    service.stop()
    # listeners first (no new sessions), the relay worker last: mail accepted while the
    # sessions drain is queued and kicked to a worker that is still there
    assert events == ["imap", "pop3", "smtp", "worker"]
    assert [k for k, _ in service.servers] == ["smtp", "pop3", "imap"]   # built in this order


def test_port_taken_is_a_startup_error(tmp_path, make_config, held_port, thread_guard):
    service = MailService(make_config(tmp_path, imap={"listen": [f"127.0.0.1:{held_port}"]}))
    with pytest.raises(StartupError) as info:
        service.start()
    assert str(info.value) == f"imap: cannot listen on 127.0.0.1:{held_port}: address already in use"
    assert service.servers == []           # the SMTP and POP3 listeners bound first were closed
    assert not service.started


def test_unwritable_data_dir_is_a_startup_error(tmp_path, make_config, unwritable_data_dir, thread_guard):
    service = MailService(make_config(tmp_path, server={"data_dir": unwritable_data_dir}))
    with pytest.raises(StartupError) as info:
        service.start()
    assert str(info.value) == f"data directory {unwritable_data_dir} is not writable: Not a directory"


def test_restart_after_stop_on_same_data(tmp_path, make_config, thread_guard):
    conf = make_config(tmp_path)
    first = MailService(conf).start()
    first.store.deliver_local("", ["alice@example.test"], b"Subject: x\r\n\r\nx\r\n")
    first.stop()
    second = MailService(conf).start()
    try:
        folder = second.store.open_folder("alice@example.test", "INBOX")
        assert len(folder) == 1
        second.store.release_folder(folder)
    finally:
        second.stop()


# -- `clevermail start` as a process ----------------------------------------------------------------
def _start(config_path, text=True):
    return subprocess.Popen([sys.executable, "-m", "clevermail", "--config", config_path, "start"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=text)


def _reap(proc):
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)


def _run(config_path):
    """`clevermail start` that is expected to exit by itself: (returncode, stderr)."""
    proc = _start(config_path)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        _reap(proc)
    return proc.returncode, err


def test_cli_start_port_taken(tmp_path, write_config, held_port):
    cfg = write_config(tmp_path, smtp={"listen": [f"127.0.0.1:{held_port}"]})
    returncode, err = _run(cfg)
    assert returncode == 1
    assert err.strip().splitlines()[-1] == (
        f"clevermail: cannot start: smtp: cannot listen on 127.0.0.1:{held_port}: address already in use")
    assert len([line for line in err.splitlines() if "cannot" in line]) == 1
    assert "Traceback" not in err


def test_cli_start_unwritable_data_dir(tmp_path, write_config, unwritable_data_dir):
    cfg = write_config(tmp_path, server={"data_dir": unwritable_data_dir})
    returncode, err = _run(cfg)
    assert returncode == 1
    assert err.strip().splitlines() == [
        f"clevermail: cannot start: data directory {unwritable_data_dir} is not writable: Not a directory"]


def test_cli_start_unwritable_log_file(tmp_path, write_config, unwritable_data_dir):
    log_file = os.path.join(os.path.dirname(unwritable_data_dir), "cm.log")
    cfg = write_config(tmp_path, server={"log_file": log_file})
    returncode, err = _run(cfg)
    assert returncode == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"clevermail: cannot start: log file {log_file}: ")


def test_cli_start_bad_config(tmp_path):
    bad = tmp_path / "bad.ini"
    bad.write_text("[smtp]\nlisten = nowhere\n")
    returncode, err = _run(str(bad))
    assert returncode == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"config error: {bad}: [smtp] listen:")


def test_cli_start_sigterm_stops_cleanly(tmp_path, write_config):
    cfg = write_config(tmp_path)
    proc = _start(cfg, text=False)
    seen = b""
    fd = proc.stderr.fileno()
    try:
        # raw reads (not readline on the buffered pipe, which select cannot see into)
        deadline = time.monotonic() + 60
        while b"running (" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            seen += chunk
        lines = seen.decode().splitlines()
        running = [line for line in lines if "running (" in line]
        assert running, seen.decode()
        assert "smtp " in running[0] and "pop3 " in running[0] and "imap " in running[0]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        _reap(proc)
    err = (seen + err).decode()
    assert proc.returncode == 0, err
    assert "clevermail: stopping" in err
    assert "Traceback" not in err
