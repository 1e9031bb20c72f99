"""MailService: builds everything from the typed settings, starts it, stops it in
reverse order (draining sessions first), and applies a new configuration live.

The one lifecycle object used by `clevermail start` and by the tests (port 0 works;
`ports` reports what was bound).  Only this module and cli.py read configuration
(config.load_config's Settings); they pass each layer its own settings (Limits,
SessionPolicy, RelaySettings) or plain values.

stop(drain=...) is the graceful stop: listeners closed first, then every session told
the server is going (at once when it waits for a command, after its command when it
is in one; netbase's drain), the rest cut after the drain time, then the indexes saved
and the relay worker stopped.  reload(settings) swaps the settings that can change
under running sessions (each one frozen object replaced by reference, so a session
sees the old or the new, never half of each) and names those that need a restart.

Beside it: service_parts.py (the listening sockets, a factory per layer, the Observers:
/metrics, recent errors, the control socket) and service_reload.py (reload()'s work),
functions given what they need; the seams a variant replaces stay methods here.
"""

import logging
import os
import ssl
import threading
import time

from . import metrics, privileges, service_reload
from .accept_share import NO_BOARD
from .accounts import AccountError, AccountStore, domain_to_ascii
from .aliases import AliasStore
from .imap.sortcache import FILE_NAME as SORT_CACHE_FILE
from .imap.handler import IMAPFileHandler
from .imap.server import IMAPServer
from .login import AuthThrottle
from .managesieve.handler import SieveFileHandler
from .managesieve.server import ManageSieveServer
from .pop3.handler import POP3FileHandler
from .pop3.server import POP3Server
from .relay.mx import make_resolver
from .relay.queue import RelayQueue
from .relay.worker import RelayWorker
from .routing import Router
from .sieve import EXTENSIONS as SIEVE_EXTENSIONS
from .sieve import parse as parse_sieve
from .sieve.scripts import SieveScripts
from .smtp.dsn_owed import targets as destinations
from .smtp.handler import SMTPFileHandler
from .smtp.send_quota import SendQuota
from .smtp.sender_identity import SenderIdentity
from .smtp.server import SMTPServer
from .sieve.deliver import SieveFilter
from .srs import SRS, SRSError, load_secret
from .store import MailStore
from .store.quota import user_limits
from .service_parts import (Observers, StartupError, bind_metrics, listen_sockets, make_defence,
                            make_inbound, make_signer)
from .tls_context import CHECK_INTERVAL, ServerContext

log = logging.getLogger("clevermail.service")

# How often a listener checks for shutdown: stop() waits up to this per listener.
POLL_INTERVAL = 0.05

# The protocols whose listeners share new connections out by the processes' open
# sessions of [server] workers (accept_share.py); the others' accept freely.
BOARD_PROTOCOLS = frozenset({"imap"})

# The server of each listener kind (config.LISTENER_KEYS), with its own arguments.
SERVERS = {
    "smtp": (SMTPServer, {"mode": "mx"}),
    "submission": (SMTPServer, {"mode": "submission"}),
    "submissions": (SMTPServer, {"mode": "submission"}),
    "pop3": (POP3Server, {}),
    "pop3s": (POP3Server, {}),
    "imap": (IMAPServer, {}),
    "imaps": (IMAPServer, {}),
    "managesieve": (ManageSieveServer, {}),
}


class MailService:
    # The server class of each listener kind; a variant of the service (the sandbox,
    # clevermail/sandbox/service.py) hands its own, with _make_accounts, _make_router,
    # _make_sender_identity and _make_worker.
    server_classes = SERVERS

    def __init__(self, settings, resolver=None, inherited=(), tls_check_interval=CHECK_INTERVAL,
                 worker_index=0, board=NO_BOARD):
        self.settings = settings        # config.load_config's Settings, the current ones
        self.running = settings         # what the restart-only settings were built from
        self.resolver = resolver
        self.tls_check_interval = tls_check_interval    # seconds between certificate stats
        # activation.listen_fds()' [(name, fd)]: sockets the service manager bound for us
        self.inherited = list(inherited)
        # 0: the main process; N: worker N of [server] workers (workers.py), which
        # serves the same listeners but leaves the relay, /metrics and the pid file
        # to the main process
        self.worker_index = worker_index
        # with [server] workers: the connections open in each process, which their
        # accept loops share out by (accept_share.py)
        self.board = board
        self.pool = None                # the main process's workers.WorkerPool, if any
        self.run_as = None              # privileges.RunAs once dropped to [server] user
        self.servers = []            # (kind, server)
        self._threads = []
        self.worker = None
        self.started = False

    # -- construction ---------------------------------------------------------
    def _check_data_dir(self, data_dir):
        try:
            os.makedirs(data_dir, exist_ok=True)
            probe = os.path.join(data_dir, f".write-test-{os.getpid()}")
            with open(probe, "w") as f:
                f.write("ok")
            os.unlink(probe)
        except OSError as exc:
            raise StartupError(f"data directory {data_dir} is not writable: {exc.strerror}") from None

    def build(self):
        settings = self.settings
        server = settings.server
        # Root binds the ports and reads the TLS key, then becomes [server] user before
        # anything creates a file or serves a connection (privileges.py).
        try:
            run_as = privileges.plan(server.user, server.group)
            privileges.check_paths(run_as or privileges.current(), server.data_dir,
                                   {"users file": server.users_file, "aliases file": server.aliases_file},
                                   server.log_file)
        except privileges.PrivilegeError as exc:
            raise StartupError(str(exc)) from None
        try:
            # one holder for every listener: a renewed certificate is picked up by all
            self.tls = ServerContext(server.certificate, server.key,
                                     check_interval=self.tls_check_interval)
        except (OSError, ValueError) as exc:
            raise StartupError(f"cannot load TLS certificate/key: {exc}") from None
        sockets = listen_sockets(self.settings.listeners, self.inherited)
        try:
            if run_as is not None:
                privileges.drop(run_as)
                self.run_as = run_as
            self._check_data_dir(server.data_dir)
        except (privileges.PrivilegeError, StartupError) as exc:
            for _, sock in sockets:
                sock.close()
            raise StartupError(str(exc)) from None
        try:
            self._build_servers(sockets)
        except BaseException:
            for _, sock in sockets:         # those no server took yet
                sock.close()
            self._close_servers()
            raise

    def _build_servers(self, sockets):
        """The store, accounts, queue, handlers and a server per listener, each
        adopting its socket (taken off `sockets`), then the relay worker."""
        settings = self.settings
        server = settings.server
        self.store = MailStore(server.data_dir)
        self.accounts = self._make_accounts(settings)
        # mailbox quotas: users.ini's per-user values over [quota], both read live
        self.store.quota.limits = self.quota_limits
        self.aliases = AliasStore(server.aliases_file, server.domains)
        try:
            srs = SRS(load_secret(server.data_dir), domain_to_ascii(server.srs_domain or server.domains[0]))
        except (OSError, SRSError, AccountError) as exc:
            raise StartupError(f"cannot set up SRS for forwarding: {exc}") from None
        self.router = self._make_router(settings, srs)
        self.throttle = AuthThrottle(settings.login.failures_per_client, settings.login.failure_window)
        self.queue = RelayQueue(os.path.join(server.data_dir, "queue"))
        # one resolver (and its TTL cache) for every lookup: relay, inbound checks
        self.dns = self.resolver or make_resolver(settings.relay.nameservers,
                                                  dnssec=settings.relay.dnssec)
        self._retired = []                  # defences replaced by a reload, closed at stop
        self.metrics = metrics.for_settings(settings.metrics)     # the checks below count
        self.defence = make_defence(settings, self.dns, self.metrics)
        inbound = make_inbound(settings, self.dns, self.accounts.is_local_domain, self.metrics)
        self.signer = make_signer(settings, self.accounts.domains)
        self.send_quota = SendQuota(server.data_dir, settings.senders.messages_per_hour,
                                    settings.senders.recipients_per_hour)
        # users' Sieve scripts (ManageSieve and the CLI manage them), run at final delivery
        self.sieve_scripts = SieveScripts.for_data_dir(server.data_dir,
                                                       max_scripts=settings.sieve.max_scripts,
                                                       max_size=settings.sieve.max_script_size)
        self.sieve = sieve = SieveFilter(self.sieve_scripts, self.store, self.queue, server.hostname,
                                         srs=srs, router=self.router, signer=self.signer,
                                         limits=settings.sieve.limits)
        self.handlers = handlers = {
            "smtp": SMTPFileHandler(self.store, self.accounts, self.queue,
                                    postmaster=server.postmaster,
                                    senders=self._make_sender_identity(settings),
                                    quota=self.send_quota, router=self.router, srs=srs,
                                    inbound=inbound, defence=self.defence, metrics=self.metrics,
                                    signer=self.signer, sieve=sieve),
            "pop3": POP3FileHandler(self.store, self.accounts),
            "imap": IMAPFileHandler(self.store, self.accounts),
            "managesieve": SieveFileHandler(self.sieve_scripts, self.accounts, parse=parse_sieve,
                                            extensions=SIEVE_EXTENSIONS,
                                            max_redirects=settings.sieve.limits.max_redirects),
        }
        while sockets:
            listener, sock = sockets[0]
            server_class, own = self.server_classes[listener.kind]
            srv = server_class(listener.address, handlers[listener.protocol], **own,
                               hostname=server.hostname, limits=settings.limits[listener.protocol],
                               policy=settings.policy, ssl_context=self.tls,
                               implicit_tls=listener.implicit_tls, throttle=self.throttle, sock=sock,
                               metrics=self.metrics)
            sockets.pop(0)
            # only IMAP's sessions live for hours and pile up on the quickest process;
            # SMTP's, POP3's and ManageSieve's last a moment and even out by themselves,
            # and a deferred accept cost their new sessions 5x (20 concurrent connect,
            # EHLO, QUIT at [server] workers = 2: 2,100/s, against 8,800/s for one process)
            srv.board = self.board if listener.protocol in BOARD_PROTOCOLS else NO_BOARD
            if listener.kind in server.proxy_protocol:      # behind a load balancer
                srv.proxy_networks = server.proxy_networks
            self.servers.append((listener.kind, srv))

        try:
            self.worker = self._make_worker(settings)
        except (OSError, ssl.SSLError) as exc:
            self._close_servers()
            raise StartupError(f"[relay] smarthost_ca_file {settings.relay.smarthost_ca_file}: {exc}") from None
        if self.worker is not None:
            handlers["smtp"].reports = self.worker.reports      # NOTIFY=SUCCESS, local mailboxes
        # bound now (a taken port stops the start), started last by start(), stopped by stop()
        self.observers = Observers(self, bind_metrics(settings, self.metrics, self, self.worker_index))


    # -- the seams of a variant (the sandbox: sandbox/service.py) ----------------------
    def _make_accounts(self, settings):
        return AccountStore(settings.server.users_file, settings.server.domains)

    def _make_router(self, settings, srs):
        server = settings.server
        return Router(self.accounts, self.aliases, postmaster=server.postmaster,
                      abuse=server.abuse, srs=srs, separator=server.subaddress_separator)

    def _make_sender_identity(self, settings):
        return SenderIdentity(self.accounts.is_local_domain, settings.senders.send_as,
                              owners=self.router.owners)

    def _make_worker(self, settings):
        """The relay worker (None: a variant that relays nothing)."""
        handler = self.handlers["smtp"]
        return RelayWorker(self.queue, settings.relay, self.dns,
                           local_deliver=handler.deliver_queued,
                           # an alias of several targets is reported "expanded" (relay/local.py)
                           targets=lambda a: destinations(handler.resolve_recipient(a, may_relay=False)),
                           is_local=lambda address: self.accounts.is_local_domain(address.rpartition("@")[2]),
                           metrics=self.metrics,
                           sign_report=self.signer.sign_report if self.signer else None)

    def quota_limits(self, address):
        """An account's QuotaLimits: its users.ini values where set, else the [quota]
        default of the settings in force (a reload swaps them)."""
        return user_limits(self.accounts.quota_of(address), self.settings.quota)

    @property
    def metrics_port(self):
        """The bound port of the metrics endpoint (None when [metrics] listen is off)."""
        observers = getattr(self, "observers", None)
        endpoint = observers.endpoint if observers is not None else None
        return endpoint.port if endpoint is not None else None

    def reload(self, settings):
        """Apply a new, already validated configuration; the notes of what needs a
        restart or could not be applied (service_reload.py)."""
        return service_reload.apply(self, settings)

    def _imap_caches(self):
        """(cache, its file) of the IMAP caches kept across restarts here: SORT/THREAD
        keys (imap/sortcache.py).  FETCH metadata is kept in each folder's journal as it
        is made (imap/fetch_journal.py)."""
        imap, data_dir = self.handlers["imap"], self.settings.server.data_dir
        return ((imap.sort_cache, os.path.join(data_dir, SORT_CACHE_FILE)),)

    # -- lifecycle --------------------------------------------------------------
    def start(self):
        """Bind every listener, start serving and the relay worker.  The process
        itself is left as it is (process.tune_process is for `clevermail start`)."""
        self.build()
        # the FETCH metadata and sort keys the last run made
        for cache, path in self._imap_caches():
            cache.load(path)
        self.store.start_watching()     # inotify: other processes' changes reach IDLE
        for kind, srv in self.servers:
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": POLL_INTERVAL},
                                 name=f"clevermail-{kind}-{srv.port}", daemon=True)
            t.start()
            self._threads.append(t)
        self.started = True
        self._warm_stop = threading.Event()
        self._warm = threading.Thread(target=self.store.warm_up, args=(self._warm_stop,),
                                      name="clevermail-warm-up", daemon=True)
        self._warm.start()
        try:
            if self.worker is not None and not self.worker_index:
                self.worker.start()
        except BaseException:
            self.stop()
            raise
        source = (" (socket of the main process)" if self.worker_index
                  else " (socket from the service manager)" if self.inherited else "")
        for kind, srv in self.servers:
            log.info("%s listening on %s:%d%s", kind, srv.server_address[0], srv.port, source)
        if self.run_as is None and not self.worker_index:    # said once, by the main process
            privileges.warn_if_root()
        self.started_at = time.time()
        self.observers.start()
        return self


    def port(self, kind):
        """The first bound port of a listener kind ('smtp', 'submission', 'pop3', ...)."""
        for k, srv in self.servers:
            if k == kind:
                return srv.port
        raise KeyError(kind)

    @property
    def ports(self):
        out = {}
        for kind, srv in self.servers:
            out.setdefault(kind, []).append(srv.port)
        return out

    def stop(self, timeout=5.0, drain=None):
        """Stop gracefully, in reverse order: close the listeners; drain the sessions
        (idle ones get the shutdown reply now, a command in progress may finish within
        `drain` seconds, default [server] drain_time); cut what is left; save the
        indexes; stop the relay worker (a delivery in flight is not acknowledged: its
        queue entry stays).  `timeout` bounds each wait for threads after the cut.
        The control socket and the metrics endpoint, started last, go first."""
        if getattr(self, "observers", None) is not None:
            self.observers.stop()
            self.observers = None
        if drain is None:
            drain = self.settings.server.drain_time
        if getattr(self, "_warm", None) is not None:
            self._warm_stop.set()
            self._warm.join(timeout)
            self._warm = None
        servers = [srv for _, srv in reversed(self.servers)]
        for srv in servers:
            if self.started:
                srv.shutdown()          # the accept loop ends...
        self._close_servers()           # ...and the listening sockets close
        for srv in servers:
            srv.start_drain()
        deadline = time.monotonic() + max(0.0, drain)
        for srv in servers:
            srv.wait_sessions(deadline)
        for srv in servers:
            srv.cut_sessions()
        deadline = time.monotonic() + timeout
        for srv in servers:
            srv.wait_sessions(deadline)
        for srv in servers:
            srv.close_all()             # stuck ones (a write to a stalled client)
        for t in self._threads:
            t.join(timeout)
        for srv in servers:
            srv.threads.join(timeout)
        for srv in servers:
            if srv.threads.size == 0:   # a thread still alive may poll it yet
                srv.close_drain_fd()
        if self.started:
            self.store.stop_watching()
            self.store.save_indexes()
            for cache, path in self._imap_caches():
                try:
                    cache.save(path)
                except OSError as exc:      # only a speed-up: the next start reads again
                    log.warning("-: %s not saved: %s", path, exc)
            self.handlers["imap"].fetch_cache.close()     # the folders' journal files
        if self.worker is not None:
            self.worker.stop(timeout)
        if getattr(self, "send_quota", None) is not None:
            self.send_quota.close()
        if getattr(self, "defence", None) is not None:
            for defence in [self.defence, *self._retired]:
                defence.close()
            self._retired = []
        self._threads = []
        self.started = False


    def _close_servers(self):
        for _, srv in self.servers:
            try:
                srv.server_close()
            except OSError:
                pass
        if not self.started:
            self.servers = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


