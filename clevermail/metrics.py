"""Prometheus metrics: the one instrumentation object the servers, handlers and relay
worker call, and the HTTP endpoint that serves it (Prometheus text exposition format,
https://prometheus.io/docs/instrumenting/exposition_formats/, via prometheus_client).

`Metrics` is the collaborator every instrumented layer takes: a method per event
(session_opened, login, smtp_refused, message_accepted, relay_results, and for mail
from outside auth_result, inbound_verdict, defence, rspamd_scanned, rspamd_failed).  The base
class does nothing, so with `[metrics] listen` empty (the default) the hot path pays
one call of an empty method per event.  `PromMetrics` records into its own
CollectorRegistry (never prometheus_client's global one: tests run many MailServices
in one process), with the labelled children looked up once, not per event.

What is read rather than counted comes from a collector at scrape time
(`ServiceCollector`): open sessions per protocol (the servers' live session sets) and
the relay queue (RelayQueue.summary: entries and recipients by state, the oldest
entry's age, bytes, damaged envelopes), so neither costs anything between scrapes.  Every name starts with `clevermail_`.

`MetricsEndpoint` binds the listener when the service is built (a taken port is a
start-up error like any listener's) and serves /metrics on its own thread, started
and stopped by MailService.  With `[server] workers = N` only the main process serves
it, adding every worker's figures to its own (metrics_workers.py).
"""

import socket
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Counter, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer

PROTOCOLS = ("smtp", "pop3", "imap", "managesieve")

# Seconds from the end of SMTP DATA to the local copies committed (fsync-bound).
LOCAL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Seconds from enqueue to final delivery by the relay (retries take hours).
RELAY_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0, 5 * 86400.0)

# Seconds rspamd took to scan a message (its default timeout is 10 s).
RSPAMD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# rspamd's actions (https://rspamd.com/doc/configuration/metrics.html) -> the label;
# anything else it may say is "other".
RSPAMD_ACTIONS = {"no action": "no_action", "add header": "add_header",
                  "rewrite subject": "rewrite_subject", "greylist": "greylist",
                  "soft reject": "soft_reject", "reject": "reject"}
# The MX port's checks (inbound/): methods of the Authentication-Results field, their
# RFC 8601 results, the verdicts of the [inbound] policy, the built-in defences.
AUTH_METHODS = ("spf", "spf_helo", "dkim", "dmarc", "arc")
VERDICTS = ("accept", "quarantine", "reject", "tempfail")
DEFENCES = ("dnsbl", "greylist", "connection_rate", "message_rate")

# A relay recipient's state after an attempt -> the outcome label.
OUTCOMES = {"delivered": "delivered", "deferred": "deferred", "failed": "bounced",
            "bounced": "bounced"}


def mechanism_label(method):
    """'PLAIN', 'LOGIN', 'LOGIN command', 'USER/PASS' -> a label value."""
    return method.lower().replace(" ", "_").replace("/", "_")


class Metrics:
    """The no-op instrumentation: what every layer calls when metrics are off."""

    enabled = False

    def session_opened(self, protocol):
        """A session was admitted."""

    def session_refused(self, protocol):
        """A connection was turned away (too many connections)."""

    def login(self, protocol, method, result):
        """A login ended: result 'ok', 'failed' or 'throttled'."""

    def smtp_refused(self, reason):
        """An SMTP transaction command, or a client at connect, was refused
        (unknown_user, relay_denied, dnsbl, harvest, pregreet, ...: replies.Reply.reason)."""

    def message_accepted(self, n_local, n_remote, data_end):
        """SMTP answered 250 to a message; data_end: time.monotonic() at its end."""

    def local_delivered(self, n):
        """n local copies committed (SMTP or the relay's local delivery)."""

    def relay_results(self, entry, results, now):
        """One relay attempt's results recorded into `entry` (its new states)."""

    def store_error(self, operation):
        """Storing mail failed (nothing was acknowledged)."""

    def auth_result(self, method, result):
        """An inbound check's result (method: spf, spf_helo, dkim per signature,
        dmarc, arc; result: RFC 8601's pass, fail, none, ...)."""

    def inbound_verdict(self, verdict):
        """The [inbound] policy's verdict on a message: accept, quarantine, reject, tempfail."""

    def defence(self, check, refused):
        """A built-in defence was asked (dnsbl, greylist, connection_rate,
        message_rate) and refused the client or let it pass."""

    def rspamd_scanned(self, action, seconds):
        """rspamd answered with `action` after `seconds`."""

    def rspamd_failed(self, reason, outcome):
        """rspamd could not answer (reason: timeout, unreachable, http_error,
        bad_reply); outcome: accepted_unscanned (fail open) or tempfail."""

    def internal_error(self, protocol):
        """A session hit an unexpected exception (answered with a temporary failure)."""

    def serve(self, address, service):
        """The endpoint for `address`, or None: the no-op has nothing to serve."""
        return None


NO_METRICS = Metrics()


class PromMetrics(Metrics):
    """Metrics recorded with prometheus_client into `self.registry`."""

    enabled = True

    def __init__(self):
        self.registry = reg = CollectorRegistry(auto_describe=True)
        self._sessions = Counter("clevermail_sessions", "Sessions admitted, by protocol.",
                                 ["protocol"], registry=reg)
        self._refused_sessions = Counter(
            "clevermail_sessions_refused", "Connections turned away (too many connections), by protocol.",
            ["protocol"], registry=reg)
        self._logins = Counter("clevermail_logins", "Logins by protocol, mechanism and result "
                               "(ok, failed, throttled).", ["protocol", "mechanism", "result"],
                               registry=reg)
        self._refused = Counter(
            "clevermail_smtp_refused", "SMTP MAIL/RCPT/DATA/BDAT (and clients at connect) refused, by "
            "reason: unknown_user, relay_denied, too_big, too_many_recipients, rate, policy, syntax, "
            "content, loop, dns, local_error, mailbox_full, dnsbl, greylist, harvest, pregreet.",
            ["reason"], registry=reg)
        self._accepted = Counter("clevermail_messages_accepted",
                                 "Messages SMTP accepted (250 after the data).", registry=reg)
        self._local = Counter("clevermail_local_deliveries",
                              "Copies committed to local mailboxes (SMTP and relay).", registry=reg)
        self._relay = Counter("clevermail_relay_attempts", "Relay delivery attempts per recipient, "
                              "by outcome (delivered, deferred, bounced).", ["outcome"], registry=reg)
        self._store_errors = Counter("clevermail_store_errors", "Failures to store mail "
                                     "(nothing acknowledged), by operation.", ["operation"],
                                     registry=reg)
        self._internal = Counter("clevermail_internal_errors", "Unexpected exceptions in a "
                                 "session (answered with a temporary failure), by protocol.",
                                 ["protocol"], registry=reg)
        self._local_latency = Histogram(
            "clevermail_local_delivery_seconds", "Seconds from the end of SMTP DATA to the "
            "local copies committed.", buckets=LOCAL_BUCKETS, registry=reg)
        self._relay_latency = Histogram(
            "clevermail_relay_delivery_seconds", "Seconds from enqueue to final delivery "
            "by the relay.", buckets=RELAY_BUCKETS, registry=reg)
        self._auth = Counter("clevermail_inbound_auth_results", "Results of the inbound "
                             "authentication checks of mail from outside (RFC 8601), by method "
                             "(spf, spf_helo, dkim per signature, dmarc, arc) and result.",
                             ["method", "result"], registry=reg)
        self._verdicts = Counter("clevermail_inbound_verdicts", "What the [inbound] policy "
                                 "decided for a message from outside: accept, quarantine, "
                                 "reject, tempfail.", ["verdict"], registry=reg)
        self._defences = Counter("clevermail_defence_checks", "Built-in MX defences asked "
                                 "(dnsbl, greylist, connection_rate, message_rate), by outcome "
                                 "(refused, passed).", ["check", "outcome"], registry=reg)
        self._rspamd = Counter("clevermail_rspamd_scans", "Messages rspamd scanned, by the "
                               "action it answered.", ["action"], registry=reg)
        self._rspamd_failures = Counter(
            "clevermail_rspamd_failures", "Messages rspamd could not scan, by reason (timeout, "
            "unreachable, http_error, bad_reply) and outcome (accepted_unscanned: fail open; "
            "tempfail).", ["reason", "outcome"], registry=reg)
        self._rspamd_latency = Histogram("clevermail_rspamd_seconds", "Seconds rspamd took to "
                                         "scan a message.", buckets=RSPAMD_BUCKETS, registry=reg)
        # labelled children, once: labels() costs a dict lookup under a lock
        self._session_of = {p: self._sessions.labels(p) for p in PROTOCOLS}
        for p in PROTOCOLS:
            self._refused_sessions.labels(p)
            self._internal.labels(p)
        for outcome in ("delivered", "deferred", "bounced"):
            self._relay.labels(outcome)
        self._verdict_of = {v: self._verdicts.labels(v) for v in VERDICTS}
        self._defence_of = {(check, refused): self._defences.labels(check, "refused" if refused else "passed")
                            for check in DEFENCES for refused in (True, False)}
        self._action_of = {name: self._rspamd.labels(label) for name, label in RSPAMD_ACTIONS.items()}

    def session_opened(self, protocol):
        self._session_of[protocol].inc()

    def session_refused(self, protocol):
        self._refused_sessions.labels(protocol).inc()

    def login(self, protocol, method, result):
        self._logins.labels(protocol, mechanism_label(method), result).inc()

    def smtp_refused(self, reason):
        self._refused.labels(reason).inc()

    def message_accepted(self, n_local, n_remote, data_end):
        self._accepted.inc()
        if n_local:
            self._local.inc(n_local)
            self._local_latency.observe(time.monotonic() - data_end)

    def local_delivered(self, n):
        self._local.inc(n)

    def relay_results(self, entry, results, now):
        states = {r.address: r.state for r in entry.recipients}
        for address in results:
            outcome = OUTCOMES.get(states.get(address))
            if outcome is None:
                continue
            self._relay.labels(outcome).inc()
            if outcome == "delivered":
                self._relay_latency.observe(max(0.0, now - entry.arrival))

    def store_error(self, operation):
        self._store_errors.labels(operation).inc()

    def auth_result(self, method, result):
        self._auth.labels(method, result).inc()

    def inbound_verdict(self, verdict):
        self._verdict_of[verdict].inc()

    def defence(self, check, refused):
        self._defence_of[check, refused].inc()

    def rspamd_scanned(self, action, seconds):
        child = self._action_of.get(action)
        (child if child is not None else self._rspamd.labels("other")).inc()
        self._rspamd_latency.observe(seconds)

    def rspamd_failed(self, reason, outcome):
        self._rspamd_failures.labels(reason, outcome).inc()

    def internal_error(self, protocol):
        self._internal.labels(protocol).inc()

    def serve(self, address, service):
        """Bind `address` for /metrics, with `service`'s sessions and queue read at
        scrape time; start() serves it.  OSError if the address cannot be bound."""
        from .metrics_workers import WorkersRegistry     # (it imports control, which imports us)
        self.registry.register(ServiceCollector(service))
        # with [server] workers > 1, each worker's figures are added in at scrape time
        return MetricsEndpoint(address, WorkersRegistry(self.registry, service))


def for_settings(settings):
    """PromMetrics when `[metrics] listen` is set, else the shared no-op."""
    return PromMetrics() if settings.listen else NO_METRICS


# -- read at scrape time ------------------------------------------------------------------
def open_sessions(servers):
    """Live sessions per protocol of a service's (kind, server) pairs."""
    out = dict.fromkeys(PROTOCOLS, 0)
    for _, srv in servers:
        out[srv.protocol] = out.get(srv.protocol, 0) + len(srv.sessions)
    return out


class ServiceCollector:
    """Gauges read from a MailService when scraped: open sessions, the queue."""

    def __init__(self, service):
        self.service = service

    def describe(self):
        # names only: registering must not read the queue
        return self._families({p: 0 for p in PROTOCOLS}, None)

    def collect(self):
        service = self.service
        return self._families(open_sessions(service.servers), service.queue.summary())

    @staticmethod
    def _families(sessions, summary):
        """`summary`: a relay.select.QueueSummary, or None (names only)."""
        open_ = GaugeMetricFamily("clevermail_sessions_open", "Sessions open now, by protocol.",
                                  labels=["protocol"])
        for protocol, n in sessions.items():
            open_.add_metric([protocol], n)
        entries = GaugeMetricFamily("clevermail_queue_entries", "Relay queue entries by state "
                                    "(active, deferred, held, bounce).", labels=["state"])
        rcpts = GaugeMetricFamily("clevermail_queue_recipients", "Relay queue recipients by "
                                  "state (pending, deferred, delivered, failed, bounced).",
                                  labels=["state"])
        oldest = GaugeMetricFamily("clevermail_queue_oldest_age_seconds",
                                   "Age of the oldest relay queue entry (0 when empty).")
        size = GaugeMetricFamily("clevermail_queue_bytes", "Bytes of the queued messages.")
        damaged = GaugeMetricFamily("clevermail_queue_damaged_entries",
                                    "Relay queue envelopes that cannot be read.")
        if summary is not None:
            for state, n in summary.by_state.items():
                entries.add_metric([state], n)
            for state, n in sorted(summary.recipients_by_state.items()):
                rcpts.add_metric([state], n)
            oldest.add_metric([], summary.oldest_age or 0.0)
            size.add_metric([], summary.size)
            damaged.add_metric([], summary.damaged)
        return [open_, entries, rcpts, oldest, size, damaged]


# -- the endpoint ------------------------------------------------------------------------
class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass                # scrapes every few seconds would drown the log


class _Server(ThreadingWSGIServer):
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class MetricsEndpoint:
    """/metrics over HTTP on `address` ((host, port); port 0 = any free port)."""

    def __init__(self, address, registry):
        host, port = address
        server_class = _Server6 if ":" in host else _Server
        self.httpd = make_server(host, port, make_wsgi_app(registry), server_class,
                                 handler_class=_QuietHandler)
        self.host = host
        self.port = self.httpd.server_port
        self._thread = None

    @property
    def url(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def start(self):
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"clevermail-metrics-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout=5.0):
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout)
            self._thread = None
        self.httpd.server_close()
