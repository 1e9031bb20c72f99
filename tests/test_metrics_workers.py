"""/metrics with [server] workers = N (clevermail/metrics_workers.py): the main process's
endpoint adds each worker's samples to its own.  Pure tests of the merge on real
PromMetrics registries; end to end, a real `clevermail start` with workers = 2, the
process that serves a session chosen by freezing the other (as tests/test_workers.py
does), scraped over HTTP."""

import re
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from clevermail.accounts import AccountStore
from clevermail.metrics import PromMetrics
from clevermail.metrics_workers import REPORTING, WorkersRegistry, merge
from server_process import ServerProcess
from test_workers import _Frozen, _imap, _status


def samples_of(families):
    return {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}


def dump(metrics):
    """What a worker answers (worker_samples without a service's sessions)."""
    return [(f.name, s.name, s.labels, s.value) for f in metrics.registry.collect()
            for s in f.samples if not s.name.endswith("_created")]


# -- pure --------------------------------------------------------------------------------------
def test_merge_adds_counters_histograms_and_new_label_sets():
    main, worker = PromMetrics(), PromMetrics()
    main.session_opened("imap")
    main.login("imap", "LOGIN command", "ok")
    worker.session_opened("imap")
    worker.session_opened("imap")
    worker.session_opened("smtp")
    worker.login("imap", "PLAIN", "failed")                 # a label set the main never saw
    main.message_accepted(1, 0, 0.0)
    worker.message_accepted(2, 0, 0.0)
    merged = samples_of(merge(main.registry.collect(), [dump(worker)]))
    imap, smtp = frozenset({("protocol", "imap")}), frozenset({("protocol", "smtp")})
    assert merged["clevermail_sessions_total", imap] == 3
    assert merged["clevermail_sessions_total", smtp] == 1
    login = lambda mech, result: frozenset({("protocol", "imap"), ("mechanism", mech),  # noqa: E731
                                            ("result", result)})
    assert merged["clevermail_logins_total", login("login_command", "ok")] == 1
    assert merged["clevermail_logins_total", login("plain", "failed")] == 1
    local = {k: v for k, v in merged.items() if k[0] == "clevermail_local_delivery_seconds_count"}
    assert list(local.values()) == [2], local   # one message's copies in each process
    # a counter's creation time stays the main process's, never a sum of times
    created = {k: v for k, v in samples_of(main.registry.collect()).items() if k[0].endswith("_created")}
    assert created and all(merged[k] == v for k, v in created.items())


def test_without_workers_the_registry_is_served_as_is():
    class Service:
        pool = None
    metrics = PromMetrics()
    metrics.session_opened("pop3")
    families = WorkersRegistry(metrics.registry, Service()).collect()
    assert samples_of(families) == samples_of(metrics.registry.collect())
    assert REPORTING not in {f.name for f in families}


def test_a_restricted_scrape_keeps_the_named_samples_only():
    class Service:
        pool = None
    metrics = PromMetrics()
    metrics.session_opened("imap")
    kept = list(WorkersRegistry(metrics.registry, Service()).restricted_registry(
        ["clevermail_sessions_total"]).collect())
    assert {s.name for f in kept for s in f.samples} == {"clevermail_sessions_total"}


# -- end to end: a main process and one worker ------------------------------------------------
def scrape(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode("utf-8")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def start_two(tmp_path, write_config):
    """`clevermail start` with workers = 2 and /metrics on; (process, config, ports)."""
    cfg = write_config(tmp_path, server={"log_file": str(tmp_path / "cm.log"), "workers": 2,
                                         "drain_time": 2},
                       metrics={"listen": "127.0.0.1:0"})
    AccountStore(str(tmp_path / "users.ini"), ["example.test"]).add("a@example.test", "secret")
    proc = ServerProcess(cfg)
    assert proc.read_until(" running ("), proc.stderr
    assert proc.read_until("clevermail worker 1 running"), proc.stderr
    ports = {kind: int(port) for kind, port in
             re.findall(r"(\w+) listening on 127\.0\.0\.1:(\d+)\n", proc.stderr)}
    return proc, cfg, ports


@pytest.mark.e2e
def test_metrics_count_the_sessions_of_every_worker(tmp_path, write_config):
    proc, cfg, ports = start_two(tmp_path, write_config)
    try:
        status = _status(cfg)
        url, worker = status["metrics"], status["workers"][0]["pid"]
        imap = frozenset({("protocol", "imap")})
        login_ok = frozenset({("protocol", "imap"), ("mechanism", "login_command"), ("result", "ok")})
        with _Frozen(proc.pid):             # only the worker can take this one
            on_worker = _imap(ports["imap"])
        first = scrape(url)
        assert first[REPORTING, frozenset()] == 1
        assert first["clevermail_sessions_open", imap] == 1
        assert first["clevermail_sessions_total", imap] == 1
        assert first["clevermail_logins_total", login_ok] == 1
        with _Frozen(worker):               # and only the main process this one
            on_main = _imap(ports["imap"])
        second = scrape(url)
        assert second["clevermail_sessions_open", imap] == 2
        assert second["clevermail_sessions_total", imap] == 2
        assert second["clevermail_logins_total", login_ok] == 2
        on_worker.logout()
        on_main.logout()
    finally:
        proc.close()
