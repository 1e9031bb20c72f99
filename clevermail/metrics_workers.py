"""/metrics over every process of `[server] workers = N` (workers.py): the main
process's endpoint adds each worker's figures to its own, so that a scrape counts every
session, login and message whichever process served it.

Each worker records into its own PromMetrics (the same counters and histograms as the
main process) but serves no endpoint; it answers the request "metrics" on its control
socket (<data_dir>/clevermail.sock.wN, control.py) with worker_samples(): every sample
of its registry and its open sessions, as JSON.  WorkersRegistry is what the main
endpoint renders: at each scrape it asks every live worker and adds its samples to the
main registry's, sample by sample (the same name and labels: counters, histogram
buckets, sums and counts, and the open-sessions gauge all add up).  The relay queue's
gauges are the main process's alone (one queue directory for all), and a counter's
`_created` stays the main process's.  A worker that does not answer (starting,
stopping, killed) is left out of that scrape, and
clevermail_worker_processes_reporting says how many were counted in.
"""

import logging

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.samples import Sample

from . import control
from .metrics import open_sessions
from .workers import control_path

log = logging.getLogger("clevermail.metrics")

REQUEST = "metrics"             # the control request a worker answers
ASK_TIMEOUT = 2.0               # seconds a scrape waits for one worker
SESSIONS_OPEN = "clevermail_sessions_open"
REPORTING = "clevermail_worker_processes_reporting"


def worker_samples(service):
    """A worker's answer to REQUEST: {"samples": [[family, sample, labels, value]]}."""
    samples = []
    for family in service.metrics.registry.collect():
        for sample in family.samples:
            if not sample.name.endswith("_created"):    # a time, not a count
                samples.append([family.name, sample.name, sample.labels, sample.value])
    for protocol, count in open_sessions(service.servers).items():
        samples.append([SESSIONS_OPEN, SESSIONS_OPEN, {"protocol": protocol}, count])
    return {"samples": samples}


def merge(families, answers):
    """The metric families of the main registry with every worker's samples added:
    `answers` is one list of [family, sample, labels, value] per worker."""
    extra = {}          # family -> {(sample, labels): value}
    for samples in answers:
        for family, name, labels, value in samples:
            key = (name, tuple(sorted(labels.items())))
            into = extra.setdefault(family, {})
            into[key] = into.get(key, 0) + value
    out = []
    for family in families:
        more = extra.pop(family.name, {})
        merged = Metric(family.name, family.documentation, family.type, family.unit)
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            if key in more:
                sample = sample._replace(value=sample.value + more.pop(key))
            merged.samples.append(sample)
        # label sets only the workers have seen (a login method the main process never had)
        merged.samples.extend(Sample(name, dict(labels), value) for (name, labels), value in more.items())
        out.append(merged)
    return out


class WorkersRegistry:
    """What the main process's /metrics renders: `registry` (its own PromMetrics
    registry, with the scrape-time ServiceCollector) plus the workers of `service.pool`
    (None: no workers, the registry alone)."""

    def __init__(self, registry, service):
        self.registry = registry
        self.service = service

    def collect(self):
        families = list(self.registry.collect())
        pool = getattr(self.service, "pool", None)
        if pool is None:
            return families
        answers = self._ask(pool)
        reporting = GaugeMetricFamily(REPORTING, "Worker processes ([server] workers) whose "
                                      "figures this scrape adds to the main process's.")
        reporting.add_metric([], len(answers))
        return merge(families, answers) + [reporting]

    def _ask(self, pool):
        base = control.socket_path(self.service.settings.server.data_dir)
        answers = []
        for worker in pool.status():
            if not worker["alive"]:
                continue
            try:
                answer = control.request(control_path(base, worker["index"]), REQUEST, timeout=ASK_TIMEOUT)
                samples = answer["samples"]
                if not isinstance(samples, list):
                    raise TypeError("samples is not a list")
                answers.append([(str(f), str(n), dict(labels), float(v)) for f, n, labels, v in samples])
            except (control.NotRunning, OSError, ValueError, KeyError, TypeError) as exc:
                log.debug("metrics: worker %d left out of this scrape: %s", worker["index"], exc)
        return answers

    def restricted_registry(self, names):
        """Only the samples named (/metrics?name[]=...), as prometheus_client asks."""
        return _Restricted(self, set(names))


class _Restricted:
    def __init__(self, whole, names):
        self.whole, self.names = whole, names

    def collect(self):
        for family in self.whole.collect():
            samples = [s for s in family.samples if s.name in self.names]
            if samples:
                kept = Metric(family.name, family.documentation, family.type, family.unit)
                kept.samples = samples
                yield kept
