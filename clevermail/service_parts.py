"""What a MailService is made of, one factory per layer, and the observers it starts
last and stops first (the /metrics endpoint, the recent-errors buffer, the control
socket).  The seams a variant of the service replaces (the sandbox's accounts,
router, sender identity and relay worker) stay methods of MailService.

Functions, each given what it builds from (settings, the resolver, the metrics, the
service for the observers that report on it), so that service.py itself says the
lifecycle: build, start, stop.
"""

import errno
import logging

from . import activation, control, metrics_workers
from .dkim.keys import DkimKeyError, KeyStore, ensure_keys, key_dir
from .dkim.signer import Signer
from .inbound.checks import InboundChecks
from .inbound.defence import Defence
from .inbound.dnsbl import DNSLists
from .inbound.dnsclient import DnsClient
from .inbound.greylist import Greylist
from .inbound.rspamd import ContentFilter, RspamdClient
from .logs import RecentErrors
from .netbase import listen_socket
from .workers import control_path

log = logging.getLogger("clevermail.service")


class StartupError(Exception):
    """A one-line reason why the service cannot start (port taken, data dir, TLS)."""


def listen_sockets(listeners, inherited):
    """[(Listener, socket)]: the inherited sockets (socket activation, or a worker's
    from the main process) or, without them, every listener bound here; a failure
    closes the ones made so far."""
    if inherited:
        try:
            return activation.match(listeners, inherited)
        except activation.ActivationError as exc:
            raise StartupError(f"socket activation: {exc}") from None
    out = []
    for listener in listeners:
        try:
            out.append((listener, listen_socket(listener.address)))
        except OSError as exc:
            for _, sock in out:
                sock.close()
            raise StartupError(_listen_error(listener, exc)) from None
    return out


def _listen_error(listener, exc):
    if exc.errno == errno.EADDRINUSE:
        why = "address already in use"
    elif exc.errno == errno.EACCES:
        why = ("permission denied (ports below 1024 need root with [server] user set, "
               "CAP_NET_BIND_SERVICE, or socket activation)")
    else:
        why = exc.strerror or str(exc)
    host, port = listener.address
    return f"{listener.kind}: cannot listen on {host}:{port}: {why}"


def make_inbound(settings, dns, is_local_domain, metrics):
    """The SPF/DKIM/DMARC/ARC checks of mail from outside, or None when off."""
    if not settings.inbound.checks:
        return None
    return InboundChecks(dns, settings.server.hostname, is_local_domain, settings.inbound,
                         metrics=metrics)


def make_defence(settings, dns, metrics, previous=None):
    """The MX defences; a reload keeps the running greylist (its database
    connections may be in use by sessions) when greylisting stays on."""
    spam = settings.spam
    dnslists = DNSLists(DnsClient(dns), spam.dnsbl, spam.dnswl) if spam.dnsbl or spam.dnswl else None
    greylist = None
    if spam.greylist:
        old = previous.greylist if previous is not None else None
        greylist = old or Greylist(settings.server.data_dir, delay=spam.greylist_delay)
        greylist.delay = spam.greylist_delay
    # the content filter keeps no connection between messages: a reload swaps it whole
    content = ContentFilter(RspamdClient(*spam.rspamd, timeout=spam.rspamd_timeout),
                            spam.rspamd_fail, metrics=metrics) if spam.rspamd else None
    return Defence(spam, dnslists, greylist, content=content, metrics=metrics)


def make_signer(settings, domains):
    """DKIM ([dkim] sign): keys for the local domains that have none (first start;
    the records to publish are logged), then every local domain's keys loaded; a
    key that cannot be read stops the start."""
    if not settings.dkim.sign:
        return None
    keys = KeyStore(key_dir(settings.server.data_dir))
    try:
        ensure_keys(keys, domains, logging.getLogger("clevermail.dkim"))
        return Signer(keys, domains, report_domain=settings.server.postmaster.rpartition("@")[2] or None)
    except DkimKeyError as exc:
        raise StartupError(f"DKIM: {exc}") from None
    except OSError as exc:
        raise StartupError(f"DKIM: {exc.filename}: {exc.strerror}") from None


def bind_metrics(settings, metrics, service, worker_index):
    """The /metrics endpoint of a service, bound now so that a taken port stops the
    start (after the drop to [server] user: a metrics port below 1024 needs the
    server run as root); None when off, and in a worker process (workers.py)."""
    address = settings.metrics.listen
    if address is None or worker_index:
        return None
    try:
        return metrics.serve(address, service)
    except OSError as exc:
        why = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise StartupError(f"metrics: cannot listen on {address[0]}:{address[1]}: {why}") from None


class Observers:
    """What reports on a running service, started last and stopped first: the /metrics
    endpoint (bound earlier, bind_metrics), the recent-errors buffer and the control
    socket (its own in a worker process, which also gives the main process's /metrics
    the worker's figures: metrics_workers.py)."""

    def __init__(self, service, endpoint):
        self.service = service
        self.endpoint = endpoint
        self.recent_errors = None
        self.control = None

    def start(self):
        service = self.service
        self.recent_errors = RecentErrors()
        logging.getLogger("clevermail").addHandler(self.recent_errors)
        if self.endpoint is not None:
            self.endpoint.start()
            log.info("metrics on %s", self.endpoint.url)
        path = control.socket_path(service.settings.server.data_dir)
        if service.worker_index:
            path = control_path(path, service.worker_index)
        requests = {"status": lambda: control.status_of(service)}
        if service.metrics.enabled:     # the main process's /metrics adds a worker's in
            requests[metrics_workers.REQUEST] = lambda: metrics_workers.worker_samples(service)
        try:
            self.control = control.ControlServer(path, requests).start()
        except OSError as exc:      # the server runs on; only `clevermail status` cannot see it
            log.warning("no control socket at %s (clevermail status will not see this server): %s",
                        path, exc)
        return self

    def stop(self):
        if self.control is not None:
            self.control.stop()
            self.control = None
        if self.endpoint is not None:
            self.endpoint.stop()
            self.endpoint = None
        if self.recent_errors is not None:
            logging.getLogger("clevermail").removeHandler(self.recent_errors)
            self.recent_errors = None
