"""relay.worker in processes of its own (tests/relay_procs.py): a worker killed in
the middle of a delivery loses nothing, two processes share one queue without
delivering anything twice."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

from clevermail.relay.queue import RelayQueue
from relay_sink import REPO
from relay_worker_env import ZONE, make_env  # noqa: F401 (make_env: a fixture)
from waiting import wait_for


def worker_process(queue_dir, port, hostname, mode):
    spec = {"queue_dir": str(queue_dir), "mx_port": port, "records": ZONE,
            "hostname": hostname, "mode": mode, "deadline": 60}
    return subprocess.Popen([sys.executable, str(REPO / "tests" / "relay_procs.py"), "worker",
                             json.dumps(spec)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_restart_after_kill_mid_delivery_loses_nothing(make_env):
    arrived, release = threading.Event(), threading.Event()

    def hold_first(msg):
        if not arrived.is_set():
            arrived.set()
            release.wait(20)
    env = make_env({"on_data": hold_first}, fake_clock=False)
    eid = env.enqueue(n=7)
    proc = worker_process(env.q.path, env.sink.port, "victim.test", "forever")
    try:
        assert arrived.wait(30), proc.stderr.read1().decode() if proc.poll() is not None else ""
        proc.send_signal(signal.SIGKILL)             # killed holding the claim, mid-DATA
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        release.set()
        proc.stdout.close()
        proc.stderr.close()
    assert [e.id for e in RelayQueue(env.q.path).list()] == [eid]   # still queued
    assert env.w.run_once() == 1                     # a fresh worker: claim is free
    assert env.q.list() == []
    # the held first copy is recorded by the sink's own thread once released: wait for it
    copies = lambda: [m for m in env.sink.messages if b"X-Test-Id: 7" in m.data]  # noqa: E731
    assert wait_for(lambda: len(copies()) == 2)
    assert "relay.here.test" in [m.helo for m in copies()]                    # duplicate, not loss


def test_two_processes_share_one_queue_without_double_delivery(make_env):
    env = make_env({"on_data": lambda m: time.sleep(0.005)}, fake_clock=False)
    n = 60
    domains = ["there.test", "else.test", "far.test"]
    for i in range(n):
        env.enqueue(rcpts=[f"u{i}@{domains[i % 3]}"], n=i, qid=f"Q{i}")
    procs = [worker_process(env.q.path, env.sink.port, f"p{k}.test", "drain") for k in (1, 2)]
    try:
        for p in procs:
            p.wait(90)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
    assert [p.returncode for p in procs] == [0, 0]
    ids = sorted(int(m.data.split(b"X-Test-Id: ")[1].split(b"\r\n")[0]) for m in env.sink.messages)
    assert ids == list(range(n))                     # every message exactly once
    assert env.q.list() == []
