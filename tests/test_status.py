"""`clevermail status` (click's CliRunner) against a running MailService built from the
same config file, over the control socket (clevermail.control): the text and --json
answers, the LSB exit codes (0 running, 3 not running, 4 unknown), the socket's
permissions, a stale socket left by a crash, and hostile requests."""

import json
import logging
import os
import socket
import smtplib
import stat
import threading

import pytest
from click.testing import CliRunner

from clevermail import __version__
from clevermail.cli import main
from clevermail.control import ControlServer, request, socket_path
from relay_sink import Replies, ServiceEnv
from waiting import wait_for

pytestmark = pytest.mark.e2e

REMOTE = "carol@there.test"


@pytest.fixture
def replies():
    return Replies(451, "4.7.1 greylisted, try later")


def status(config_path, *args):
    return CliRunner().invoke(main, ["status", "--config", config_path, *args])


def test_status_of_a_running_server(relay_env):
    env = relay_env
    env.send([REMOTE], b"Subject: wait\r\n\r\nlater\r\n")
    assert wait_for(env.deferred)
    logging.getLogger("clevermail.test-status").warning("the disk is %d%% full", 97)
    with smtplib.SMTP("127.0.0.1", env.service.port("smtp"), timeout=10) as s:
        s.ehlo("client.example.test")
        assert wait_for(lambda: json.loads(status(env.config_path, "--json").output)["sessions"]["smtp"] == 1)
        result = status(env.config_path)
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"clevermail {__version__} is running (pid {os.getpid()})" in out
    assert f"smtp 127.0.0.1:{env.service.port('smtp')}" in out
    assert f"imap 127.0.0.1:{env.service.port('imap')}" in out
    assert "open sessions: smtp 1, pop3 0, imap 0" in out
    assert "queue: 1 entry, 1 recipient: 0 active, 1 deferred, 0 held, 0 bounce; oldest " in out
    assert "metrics: off" in out
    assert "WARNING clevermail.test-status: the disk is 97% full" in out

    result = status(env.config_path, "--json")
    assert result.exit_code == 0, result.output
    st = json.loads(result.output)
    assert st["running"] is True and st["version"] == __version__ and st["uptime"] >= 0
    assert {(item["kind"], item["port"]) for item in st["listeners"]} == {
        (kind, port) for kind, ports in env.service.ports.items() for port in ports}
    assert st["sessions"] == {"smtp": 0, "pop3": 0, "imap": 0, "managesieve": 0}
    assert st["queue"]["entries"] == 1 and st["queue"]["recipients_by_state"] == {"deferred": 1}
    assert st["queue"]["oldest_age"] >= 0 and st["queue"]["by_state"]["deferred"] == 1
    assert [e["message"] for e in st["errors"] if e["logger"] == "clevermail.test-status"] == [
        "the disk is 97% full"]


def test_the_control_socket_is_private_and_goes_away_with_the_server(tmp_path, make_config, write_config,
                                                                     thread_guard):
    from clevermail.service import MailService
    path = write_config(tmp_path)
    settings = make_config(tmp_path)
    service = MailService(settings).start()
    sock = socket_path(settings.server.data_dir)
    try:
        mode = os.stat(sock).st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
        assert [n for n in os.listdir(settings.server.data_dir) if n.startswith(".ctl")] == []
        assert status(path).exit_code == 0
    finally:
        service.stop()
    assert not os.path.exists(sock)
    result = status(path)
    assert result.exit_code == 3
    assert "clevermail is not running" in result.output
    result = status(path, "--json")
    assert result.exit_code == 3 and json.loads(result.output)["running"] is False


def test_not_running_without_any_data_dir(tmp_path, write_config):
    result = status(write_config(tmp_path))
    assert result.exit_code == 3, result.output
    assert "not running" in result.output


def test_a_stale_socket_from_a_crash_is_replaced(tmp_path, make_config, write_config, thread_guard):
    from clevermail.service import MailService
    settings = make_config(tmp_path)
    os.makedirs(settings.server.data_dir)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(socket_path(settings.server.data_dir))
    stale.close()                           # the file stays, nobody listens: a crash
    path = write_config(tmp_path)
    assert status(path).exit_code == 3
    with MailService(settings):
        assert status(path).exit_code == 0


def test_a_second_server_on_the_same_data_dir_leaves_the_first_ones_socket(tmp_path, make_config,
                                                                          thread_guard, caplog):
    from clevermail.service import MailService
    settings = make_config(tmp_path)
    sock = socket_path(settings.server.data_dir)
    with MailService(settings) as first:
        with caplog.at_level(logging.WARNING, logger="clevermail.service"):
            with MailService(settings) as second:
                assert second.observers.control is None
                assert any("no control socket" in r.getMessage() for r in caplog.records)
            assert os.path.exists(sock)
        assert request(sock)["pid"] == os.getpid() and first.observers.control is not None


def test_a_server_without_control_socket_is_running_by_its_pid_file(tmp_path, make_config, write_config):
    from clevermail.pidfile import PidFile, path_for
    settings = make_config(tmp_path)
    os.makedirs(settings.server.data_dir)
    path = write_config(tmp_path)
    held = PidFile(path_for(settings.server.data_dir))
    held.acquire()
    try:
        result = status(path)
        assert result.exit_code == 0, result.output
        assert f"clevermail is running (pid {os.getpid()}, from its pid file), but its control socket" in result.output
        result = status(path, "--json")
        assert result.exit_code == 0 and json.loads(result.output)["pid"] == os.getpid()
    finally:
        held.release()
    assert status(path).exit_code == 3


def test_hostile_requests_get_errors_and_the_server_answers_on(tmp_path, make_config, thread_guard):
    from clevermail.service import MailService
    settings = make_config(tmp_path)
    with MailService(settings):
        sock = socket_path(settings.server.data_dir)

        def ask(data):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
                c.settimeout(10)
                c.connect(sock)
                c.sendall(data)
                return json.loads(c.makefile("rb").readline())
        assert "malformed request" in ask(b"not json\n")["error"]
        assert "malformed request" in ask(b"[1, 2]\n")["error"]
        assert "unknown request 'shutdown'" in ask(b'{"request": "shutdown"}\n')["error"]
        assert ask(b"x" * 10000 + b"\n")["error"] == "request too long"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.connect(sock)                 # connects and leaves without a word
        assert request(sock)["running"] is True


def test_something_else_on_the_socket_is_status_unknown(tmp_path, make_config, write_config):
    settings = make_config(tmp_path)
    os.makedirs(settings.server.data_dir)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path(settings.server.data_dir))
    listener.listen(1)

    def answer_nonsense():
        conn, _ = listener.accept()
        with conn:
            conn.recv(100)
            conn.sendall(b"hello, I am not clevermail\n")
    t = threading.Thread(target=answer_nonsense)
    t.start()
    try:
        result = status(write_config(tmp_path))
    finally:
        t.join(10)
        listener.close()
    assert result.exit_code == 4
    assert "status unknown" in result.output


def test_control_server_alone_answers_its_requests(tmp_path, thread_guard):
    path = str(tmp_path / "c.sock")
    server = ControlServer(path, {"ping": lambda: {"pong": True}}).start()
    try:
        assert request(path, "ping") == {"pong": True}
    finally:
        server.stop()
    assert not os.path.exists(path)
