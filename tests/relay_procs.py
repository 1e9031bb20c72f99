"""A relay worker or a sink in a process of its own (run as a script):

    python tests/relay_procs.py worker '<json spec>'   # see worker_main()
    python tests/relay_procs.py sink                   # see sink_main()
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from relay_sink import REPO, FakeResolver, Sink  # noqa: E402


def worker_main(spec: dict) -> int:
    """A worker in its own process. spec: queue_dir, mx_port, records, hostname,
    mode ('drain': run passes until the queue is empty; 'forever': the thread)."""
    import logging
    sys.path.insert(0, str(REPO))
    from clevermail.relay.queue import RelayQueue
    from clevermail.relay.settings import RelaySettings
    from clevermail.relay.worker import RelayWorker

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"{spec.get('hostname', 'w')} %(message)s")
    q = RelayQueue(spec["queue_dir"])

    def no_local(sender, addresses, data, queue_id):
        raise RuntimeError("no local delivery in this test")

    settings = RelaySettings(hostname=spec.get("hostname", "worker.test"), mx_port=spec["mx_port"],
                             interval=1.0, connect_timeout=5.0)
    w = RelayWorker(q, settings, FakeResolver(spec["records"]), no_local, lambda a: False)
    if spec.get("mode") == "forever":
        w.start()
        print("started", flush=True)
        while True:
            time.sleep(1)
    deadline = time.monotonic() + spec.get("deadline", 60)
    print("started", flush=True)
    while q.scan() and time.monotonic() < deadline:
        w.run_once()
        time.sleep(0.01)
    return 0 if not q.scan() else 1


def sink_main() -> int:
    """A sink in its own process (benchmarks): prints its port, runs until stdin
    closes, then prints how many messages it accepted."""
    with Sink() as sink:
        print(sink.port, flush=True)
        sys.stdin.read()
        print(len(sink.messages), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        sys.exit(worker_main(json.loads(sys.argv[2])))
    if len(sys.argv) == 2 and sys.argv[1] == "sink":
        sys.exit(sink_main())
    sys.exit("usage: relay_procs.py worker SPEC_JSON | relay_procs.py sink")
