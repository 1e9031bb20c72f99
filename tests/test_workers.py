"""[server] workers = N (clevermail/workers.py): the worker processes serve the same
listeners and data as the main one; stop, reload and status cover every worker.

The end-to-end tests run a real `clevermail start` with two processes.  Which process
takes a connection is the kernel's choice, so to be sure a given process serves a
session the other one is frozen with SIGSTOP while the client connects (the kernel
completes the handshake into the shared backlog; only the running process accepts)."""

import imaplib
import json
import os
import re
import signal
import smtplib
import socket
import time

import pytest

from clevermail import workers
from clevermail.accounts import AccountStore
from server_process import ServerProcess, run_cli
from waiting import wait_for


# -- pure: the environment a worker gets ------------------------------------------------------
def test_worker_environment_round_trips():
    value = workers.encode(2, 4242, [("smtp", 5), ("imap", 7), ("imap", 9)])
    assert value == "2:4242:smtp=5,imap=7,imap=9"
    assert workers.decode(value) == (2, 4242, [("smtp", 5), ("imap", 7), ("imap", 9)])


@pytest.mark.parametrize("value", ["", "x:1:smtp=5", "1:2:smtp=five", "1"])
def test_a_malformed_worker_environment_is_one_line_error(value):
    with pytest.raises(workers.WorkerError, match="CLEVERMAIL_WORKER="):
        workers.decode(value)


def test_no_worker_environment_means_the_main_process():
    assert workers.inherited({}) is None


def test_a_worker_whose_main_process_is_gone_does_not_start():
    environ = {workers.ENV: workers.encode(1, 1, [])}     # pid 1 is not our parent here
    assert os.getppid() != 1
    with pytest.raises(workers.WorkerError, match="main process 1 is gone"):
        workers.inherited(environ)
    assert workers.ENV not in environ       # taken out: nothing started later inherits it


def test_worker_command_uses_this_interpreter_and_an_absolute_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = workers.worker_argv("cm.ini")
    assert argv[1:] == ["-m", "clevermail", "--config", str(tmp_path / "cm.ini"), "worker"]


def test_the_worker_command_refuses_to_run_by_hand(tmp_path, write_config):
    result = run_cli(write_config(tmp_path), "worker")
    assert result.returncode == 2
    assert "started by `clevermail start`" in result.stderr


# -- end to end: a main process and one worker --------------------------------------------------
def _start(tmp_path, write_config, **server):
    log_file = tmp_path / "cm.log"
    cfg = write_config(tmp_path, server={"log_file": str(log_file), "workers": 2, "drain_time": 2,
                                         **server})
    AccountStore(str(tmp_path / "users.ini"), ["example.test"]).add("a@example.test", "secret")
    proc = ServerProcess(cfg)
    assert proc.read_until(" running ("), proc.stderr
    assert proc.read_until("clevermail worker 1 running"), proc.stderr
    ports = {kind: int(port) for kind, port in
             re.findall(r"(\w+) listening on 127\.0\.0\.1:(\d+)\n", proc.stderr)}
    return proc, cfg, ports, log_file


def _status(cfg):
    result = run_cli(cfg, "status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _worker_pid(cfg):
    (worker,) = _status(cfg)["workers"]
    return worker["pid"] if worker["alive"] else None


class _Frozen:
    """SIGSTOP a process for the block (SIGCONT after, whatever happens)."""

    def __init__(self, pid):
        self.pid = pid

    def __enter__(self):
        os.kill(self.pid, signal.SIGSTOP)
        # kill() returns before the process is stopped: wait until every thread is
        # (state T), or a thread still running could take the next connection
        assert wait_for(lambda: all(_state(self.pid, task) == "T"
                                    for task in os.listdir(f"/proc/{self.pid}/task")), timeout=10)

    def __exit__(self, *exc):
        os.kill(self.pid, signal.SIGCONT)


def _state(pid, task):
    try:
        with open(f"/proc/{pid}/task/{task}/stat") as f:
            return f.read().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return "T"                      # a thread that has ended is not running


def _imap(port):
    client = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    client.login("a@example.test", "secret")
    return client


@pytest.fixture(name="two_processes")
def _two_processes(tmp_path, write_config):
    proc, cfg, ports, log_file = _start(tmp_path, write_config)
    try:
        yield proc, cfg, ports, log_file
    finally:
        proc.close()


def test_each_process_serves_and_sees_the_others_delivery(two_processes):
    proc, cfg, ports, log_file = two_processes
    worker = _worker_pid(cfg)
    with _Frozen(proc.pid):             # only the worker can accept this one
        client = _imap(ports["imap"])
        client.select("INBOX")
        status = None
    try:
        status = _status(cfg)
        assert status["workers"][0]["sessions"]["imap"] == 1
        assert status["sessions"]["imap"] == 1          # summed over the processes
        client.send(b"I1 IDLE\r\n")
        assert client.readline().startswith(b"+ ")
        with _Frozen(worker):           # only the main process can accept the SMTP session
            with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as smtp:
                smtp.sendmail("s@else.test", ["a@example.test"], b"Subject: x\r\n\r\nbody\r\n")
        # the worker's IDLE session learns of the main process's delivery (inotify)
        client.sock.settimeout(10)
        assert client.readline() == b"* 1 EXISTS\r\n"
        client.send(b"DONE\r\n")
        while not (line := client.readline()).startswith(b"I1 "):
            assert line.startswith(b"* "), line         # * 1 RECENT
        assert line.startswith(b"I1 OK"), line
    finally:
        client.logout()
    text = log_file.read_text()
    assert text.count("relay worker started") == 1      # the relay runs in the main process only
    assert "imap listening on" in text and "(socket of the main process)" in text


def test_a_killed_worker_is_started_again_and_serves(two_processes):
    proc, cfg, ports, log_file = two_processes
    first = _worker_pid(cfg)
    os.kill(first, signal.SIGKILL)
    second = wait_for(lambda: (pid := _worker_pid(cfg)) not in (None, first) and pid, timeout=30)
    assert second, _status(cfg)
    assert wait_for(lambda: "clevermail worker 1 running (pid %d)" % second in log_file.read_text(), timeout=30)
    with _Frozen(proc.pid):
        client = _imap(ports["imap"])
    client.logout()
    st = _status(cfg)
    assert st["workers"][0]["restarts"] == 1
    assert "exited with SIGKILL" in log_file.read_text()
    if len(_usable()) >= 2:     # started again from the main process, on its own CPU still
        assert _cpus(second) == {(_usable()[1],)}


def test_sessions_spread_over_the_processes(two_processes):
    """accept_share.py: a process with more connections open lets the other take the
    next one (deterministic tests: test_accept_share.py)."""
    proc, cfg, ports, log_file = two_processes
    clients = []
    try:
        for _ in range(6):
            clients.append(_imap(ports["imap"]))
        status = _status(cfg)
        mine = status["sessions"]["imap"] - status["workers"][0]["sessions"]["imap"]
        assert status["sessions"]["imap"] == 6
        assert mine >= 2 and status["workers"][0]["sessions"]["imap"] >= 2, status
    finally:
        for client in clients:
            client.logout()


# -- [server] cpu_affinity (process.py) ---------------------------------------------------------
def _usable():
    return sorted(os.sched_getaffinity(0))


def _cpus(pid):
    """The CPU sets of every thread of `pid`."""
    found = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            found.add(tuple(sorted(os.sched_getaffinity(int(task)))))
        except ProcessLookupError:
            pass
    return found


@pytest.mark.skipif(len(_usable()) < 2, reason="needs two usable CPUs")
def test_each_process_keeps_to_a_cpu_of_its_own(two_processes):
    proc, cfg, ports, log_file = two_processes
    first, second = _usable()[:2]
    assert _cpus(proc.pid) == {(first,)}
    assert _cpus(_worker_pid(cfg)) == {(second,)}
    text = log_file.read_text()
    assert f"keeping to CPU {first} of " in text and f"keeping to CPU {second} of " in text


@pytest.mark.skipif(len(_usable()) < 2, reason="needs two usable CPUs")
def test_cpu_affinity_off_leaves_the_processes_on_every_cpu(tmp_path, write_config):
    proc, cfg, ports, log_file = _start(tmp_path, write_config, cpu_affinity="off")
    try:
        every = {tuple(_usable())}
        assert _cpus(proc.pid) == every
        assert _cpus(_worker_pid(cfg)) == every
    finally:
        proc.close()
    assert "keeping to CPU" not in log_file.read_text()


def test_reload_reaches_the_workers(two_processes, tmp_path):
    proc, cfg, ports, log_file = two_processes
    text = open(cfg).read().replace("hostname = mail.example.test", "hostname = mx2.example.test")
    open(cfg, "w").write(text)
    proc.signal(signal.SIGHUP)
    assert wait_for(lambda: log_file.read_text().count("configuration reloaded") == 2, timeout=30)
    with _Frozen(proc.pid):             # the worker's greeting
        with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as smtp:
            code, banner = smtp.noop()
            assert code == 250
            assert smtp.ehlo()[1].startswith(b"mx2.example.test")


def test_sigterm_stops_every_process_and_their_sessions(tmp_path, write_config):
    proc, cfg, ports, log_file = _start(tmp_path, write_config)
    try:
        worker = _worker_pid(cfg)
        with _Frozen(proc.pid):
            client = _imap(ports["imap"])
        client.select("INBOX")
        proc.signal(signal.SIGTERM)
        client.sock.settimeout(10)
        assert client.readline().startswith(b"* BYE")
        assert proc.wait(60) == 0
        assert wait_for(lambda: not os.path.exists(f"/proc/{worker}"), timeout=10)
    finally:
        proc.close()
    text = log_file.read_text()
    assert "worker 1 stopped" in text
    assert text.rstrip().endswith("clevermail stopped")


def test_a_worker_stops_when_its_main_process_is_killed(tmp_path, write_config):
    proc, cfg, ports, log_file = _start(tmp_path, write_config)
    try:
        worker = _worker_pid(cfg)
        proc.proc.kill()
        proc.wait(30)
        # PR_SET_PDEATHSIG: no worker left serving on the sockets of a dead server
        assert wait_for(lambda: not os.path.exists(f"/proc/{worker}") or
                        open(f"/proc/{worker}/stat").read().split()[2] == "Z", timeout=30)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", ports["imap"]), timeout=2).close()
    finally:
        proc.close()
    assert "worker 1 stopped" in log_file.read_text()
