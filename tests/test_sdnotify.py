"""sd_notify: the Notifier against datagram sockets the test owns, and `clevermail start`
telling READY=1, STATUS=, RELOADING=1 + MONOTONIC_USEC then READY=1, STOPPING=1 to a
NOTIFY_SOCKET, as systemd's Type=notify expects."""

import os
import secrets
import shutil
import signal
import socket
import tempfile
import time

import pytest

from clevermail.sdnotify import Notifier, monotonic_usec, socket_address
from server_process import ServerProcess


class Receiver:
    """A NOTIFY_SOCKET: an AF_UNIX datagram socket at a path or an abstract name."""

    def __init__(self, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.dir = None
        if abstract:
            name = f"clevermail-test-{secrets.token_hex(6)}"
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            # sun_path holds 108 bytes: pytest's tmp_path can be longer than that
            self.dir = tempfile.mkdtemp(prefix="cm-notify-", dir="/tmp")
            self.env = os.path.join(self.dir, "notify")
            self.sock.bind(self.env)

    def messages(self, count, timeout=60):
        """The next `count` datagrams as {key: value} dicts, in order."""
        out = []
        self.sock.settimeout(timeout)
        for _ in range(count):
            data = self.sock.recv(4096).decode()
            out.append(dict(line.split("=", 1) for line in data.split("\n")))
        return out

    def until(self, predicate, limit=20):
        """Read datagrams until one satisfies `predicate`; returns it (STATUS updates
        before it, e.g. for short sessions of the test's own, are skipped)."""
        for _ in range(limit):
            (message,) = self.messages(1)
            if predicate(message):
                return message
        raise AssertionError(f"no matching notification in {limit}")

    def close(self):
        self.sock.close()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(params=[False, True], ids=["path", "abstract"])
def receiver(request):
    r = Receiver(abstract=request.param)
    yield r
    r.close()


# -- the Notifier -------------------------------------------------------------------------------
def test_socket_address_forms():
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@abstract/name") == "\0abstract/name"
    assert socket_address("") is None and socket_address(None) is None
    assert socket_address("relative/path") is None


def test_no_notify_socket_is_a_no_op():
    n = Notifier(environ={})
    assert not n.enabled
    assert n.ready("x") is False and n.notify(STATUS="y") is False
    assert n._sock is None       # nothing opened at all


def test_fields_reach_the_socket(receiver):
    n = Notifier(environ={"NOTIFY_SOCKET": receiver.env})
    try:
        assert n.ready("smtp 127.0.0.1:25;\n0 sessions")
        assert n.reloading()
        assert n.stopping("stopping: SIGTERM")
        ready, reloading, stopping = receiver.messages(3)
    finally:
        n.close()
    # a newline in STATUS would start a new assignment: it is folded into one line
    assert ready == {"READY": "1", "STATUS": "smtp 127.0.0.1:25; 0 sessions"}
    assert reloading["RELOADING"] == "1"
    assert 0 < int(reloading["MONOTONIC_USEC"]) <= monotonic_usec()
    assert stopping == {"STOPPING": "1", "STATUS": "stopping: SIGTERM"}


def test_failed_send_is_logged_once_and_never_raises(tmp_path, caplog):
    n = Notifier(environ={"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    with caplog.at_level("WARNING", logger="clevermail.sdnotify"):
        assert n.ready() is False
        assert n.status("x") is False
    n.close()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "cannot notify the service manager" in warnings[0]


# -- `clevermail start` ---------------------------------------------------------------------------
def test_start_reload_stop_notifications(tmp_path, write_config, receiver):
    cfg = write_config(tmp_path)
    server = ServerProcess(cfg, env={"NOTIFY_SOCKET": receiver.env})
    try:
        (ready,) = receiver.messages(1)
        assert ready["READY"] == "1"
        # READY comes once every listener is bound: each one named in STATUS answers
        listeners, sessions = ready["STATUS"].split("; ")
        assert sessions == "0 sessions"
        kinds = dict(item.split(" ") for item in listeners.split(", "))
        assert sorted(kinds) == ["imap", "pop3", "smtp"]
        for address in kinds.values():
            host, port = address.rsplit(":", 1)
            socket.create_connection((host, int(port)), timeout=10).close()

        # STATUS follows the sessions while it runs
        with socket.create_connection(("127.0.0.1", int(kinds["imap"].rsplit(":", 1)[1])), timeout=10) as c:
            assert c.recv(100).startswith(b"* OK")
            # (the probes above were sessions too, maybe still counted at the first update)
            status = receiver.until(lambda m: m.get("STATUS", "").endswith("; 1 session"))
            assert status == {"STATUS": f"{listeners}; 1 session"}

        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        server.signal(signal.SIGHUP)
        # the closed IMAP session may be reported first
        reloading = receiver.until(lambda m: "RELOADING" in m)
        assert reloading["RELOADING"] == "1" and int(reloading["MONOTONIC_USEC"]) >= before
        (ready_again,) = receiver.messages(1)
        assert ready_again["READY"] == "1"

        server.signal(signal.SIGTERM)
        stopping = receiver.until(lambda m: "STOPPING" in m)
        assert stopping == {"STOPPING": "1", "STATUS": "stopping: SIGTERM"}
        assert server.wait() == 0, server.stderr
    finally:
        server.close()
    assert "Traceback" not in server.stderr


def test_start_without_notify_socket_runs_as_before(tmp_path, write_config):
    server = ServerProcess(write_config(tmp_path), env={"NOTIFY_SOCKET": ""})
    try:
        assert server.read_until(" running ("), server.stderr
        assert server.stop() == 0
    finally:
        server.close()
    assert "cannot notify" not in server.stderr and "Traceback" not in server.stderr
