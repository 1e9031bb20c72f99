"""A relay worker on a queue in a temporary directory, relaying to a Sink, with a fake
clock and a recording local delivery: the `make_env` fixture of the worker's tests."""
import time

import pytest

from clevermail.metrics import NO_METRICS
from clevermail.relay.queue import RelayQueue
from clevermail.relay.settings import RelaySettings
from clevermail.relay.worker import RelayWorker
from relay_sink import FakeResolver, Sink, message, mx_zone

ZONE = mx_zone(["there.test", "else.test", "far.test"])


class Clock:
    def __init__(self):
        self.t = time.time()

    def __call__(self):
        return self.t

    def advance(self, seconds):
        self.t += seconds


class Env:
    def __init__(self, tmp_path, sink_kw, worker_kw, fake_clock=True):
        self.q = RelayQueue(tmp_path / "queue")
        self.clock = Clock() if fake_clock else time.time
        self.q.clock = self.clock
        self.sink = Sink(**sink_kw)
        self.local: list[tuple[str, bytes]] = []
        self.local_senders: list[str] = []
        self.local_fail = False
        resolver = worker_kw.pop("resolver", FakeResolver(ZONE))
        tls_context = worker_kw.pop("tls_context", None)
        self.metrics = worker_kw.pop("metrics", NO_METRICS)
        targets = worker_kw.pop("targets", None)        # address -> its destinations (aliases)
        settings = RelaySettings(**{"hostname": "relay.here.test", "mx_port": self.sink.port,
                                    "connect_timeout": 5, **worker_kw})
        self.w = RelayWorker(self.q, settings, resolver, self.deliver_local,
                             lambda a: a.endswith("@here.test"), tls_context=tls_context,
                             metrics=self.metrics, targets=targets)

    def deliver_local(self, sender, addresses, data, queue_id):
        if self.local_fail:
            raise OSError("mailbox unavailable")
        self.local.extend((address, data) for address in addresses)
        self.local_senders.append(sender)

    def enqueue(self, sender="alice@here.test", rcpts=("bob@there.test",), n=1, qid="Q1"):
        return self.q.enqueue(sender, list(rcpts), message(n), qid)

    def close(self):
        self.w.stop()
        self.sink.close()


@pytest.fixture
def make_env(tmp_path):
    envs = []

    def make(sink_kw=None, fake_clock=True, **worker_kw):
        env = Env(tmp_path / str(len(envs)), sink_kw or {}, worker_kw, fake_clock)
        envs.append(env)
        return env
    yield make
    for env in envs:
        env.close()
