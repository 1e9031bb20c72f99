"""What a MailService is made of, one factory per layer, and the observers it starts
last and stops first (the /metrics endpoint, the recent-errors buffer, the control
socket).  A variant of the service (the sandbox, sandbox/service.py) replaces
_make_accounts, _make_router, _make_sender_identity and _make_worker.

`ServiceParts` is a part of MailService (service.py), kept apart so that the service
module itself says the lifecycle: build, start, stop.
"""

import errno
import logging
import time

from . import control
from .accounts import AccountStore
from .dkim.keys import DkimKeyError, KeyStore, ensure_keys, key_dir
from .dkim.signer import Signer
from .inbound.checks import InboundChecks
from .inbound.defence import Defence
from .inbound.dnsbl import DNSLists
from .inbound.dnsclient import DnsClient
from .inbound.greylist import Greylist
from .inbound.rspamd import ContentFilter, RspamdClient
from .logs import RecentErrors
from .relay.worker import RelayWorker
from .routing import Router
from .smtp.sender_identity import SenderIdentity
from .store.quota import user_limits
from .workers import control_path

log = logging.getLogger("clevermail.service")


class StartupError(Exception):
    """A one-line reason why the service cannot start (port taken, data dir, TLS)."""


class ServiceParts:
    """MailService's factories and observers; see the module docstring."""

    def _make_worker(self, settings):
        """The relay worker (None: a variant that relays nothing, the sandbox)."""
        return RelayWorker(
            self.queue, settings.relay, self.dns,
            local_deliver=self.handlers["smtp"].deliver_queued,
            is_local=lambda address: self.accounts.is_local_domain(address.rpartition("@")[2]),
            metrics=self.metrics,
            sign_report=self.signer.sign_report if self.signer else None)

    def quota_limits(self, address):
        """The QuotaLimits of an account: its own values in users.ini where set, else
        the [quota] default of the settings in force (a reload swaps them)."""
        return user_limits(self.accounts.quota_of(address), self.settings.quota)

    def _bind_metrics(self):
        """The /metrics listener, bound now so that a taken port stops the start (after
        the drop to [server] user: a metrics port below 1024 needs the server run as
        root)."""
        self.metrics_endpoint = None
        address = self.settings.metrics.listen
        if address is None or self.worker_index:
            return
        try:
            self.metrics_endpoint = self.metrics.serve(address, self)
        except OSError as exc:
            why = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise StartupError(f"metrics: cannot listen on {address[0]}:{address[1]}: {why}") from None

    # -- who has a mailbox and where an address goes (the sandbox's seams) ----------
    def _make_accounts(self, settings):
        return AccountStore(settings.server.users_file, settings.server.domains)

    def _make_router(self, settings, srs):
        server = settings.server
        return Router(self.accounts, self.aliases, postmaster=server.postmaster,
                      abuse=server.abuse, srs=srs, separator=server.subaddress_separator)

    # -- the SMTP policies, built at start and again by reload ---------------------------
    def _make_sender_identity(self, settings):
        return SenderIdentity(self.accounts.is_local_domain, settings.senders.send_as,
                              owners=self.router.owners)

    def _make_inbound(self, settings):
        if not settings.inbound.checks:
            return None
        return InboundChecks(self.dns, settings.server.hostname, self.accounts.is_local_domain,
                             settings.inbound, metrics=self.metrics)

    def _make_defence(self, settings, previous=None):
        """The MX defences; a reload keeps the running greylist (its database
        connections may be in use by sessions) when greylisting stays on."""
        spam = settings.spam
        dnslists = DNSLists(DnsClient(self.dns), spam.dnsbl, spam.dnswl) if spam.dnsbl or spam.dnswl else None
        greylist = None
        if spam.greylist:
            old = previous.greylist if previous is not None else None
            greylist = old or Greylist(settings.server.data_dir, delay=spam.greylist_delay)
            greylist.delay = spam.greylist_delay
        # the content filter keeps no connection between messages: a reload swaps it whole
        content = ContentFilter(RspamdClient(*spam.rspamd, timeout=spam.rspamd_timeout),
                                spam.rspamd_fail, metrics=self.metrics) if spam.rspamd else None
        return Defence(spam, dnslists, greylist, content=content, metrics=self.metrics)

    def _build_signer(self, settings):
        """DKIM ([dkim] sign): keys for the local domains that have none (first start;
        the records to publish are logged), then every local domain's keys loaded; a
        key that cannot be read stops the start."""
        if not settings.dkim.sign:
            return None
        keys = KeyStore(key_dir(settings.server.data_dir))
        try:
            ensure_keys(keys, self.accounts.domains, logging.getLogger("clevermail.dkim"))
            return Signer(keys, self.accounts.domains,
                          report_domain=settings.server.postmaster.rpartition("@")[2] or None)
        except DkimKeyError as exc:
            raise StartupError(f"DKIM: {exc}") from None
        except OSError as exc:
            raise StartupError(f"DKIM: {exc.filename}: {exc.strerror}") from None

    def _start_observers(self):
        """The metrics endpoint, the recent-errors buffer and the control socket."""
        self.started_at = time.time()
        self.recent_errors = RecentErrors()
        logging.getLogger("clevermail").addHandler(self.recent_errors)
        if self.metrics_endpoint is not None:
            self.metrics_endpoint.start()
            log.info("metrics on %s", self.metrics_endpoint.url)
        path = control.socket_path(self.settings.server.data_dir)
        if self.worker_index:
            path = control_path(path, self.worker_index)
        try:
            self.control = control.ControlServer(path, {"status": lambda: control.status_of(self)}).start()
        except OSError as exc:      # the server runs on; only `clevermail status` cannot see it
            self.control = None
            log.warning("no control socket at %s (clevermail status will not see this server): %s",
                        path, exc)

    def _stop_observers(self):
        if getattr(self, "control", None) is not None:
            self.control.stop()
            self.control = None
        if getattr(self, "metrics_endpoint", None) is not None:
            self.metrics_endpoint.stop()
            self.metrics_endpoint = None
        if getattr(self, "recent_errors", None) is not None:
            logging.getLogger("clevermail").removeHandler(self.recent_errors)
            self.recent_errors = None

    @property
    def metrics_port(self):
        """The bound port of the metrics endpoint (None when [metrics] listen is off)."""
        endpoint = getattr(self, "metrics_endpoint", None)
        return endpoint.port if endpoint is not None else None
