"""MailService: builds everything from config, starts it, stops it in reverse order.

The one lifecycle object used by `clevermail start` and by the tests (port 0 works;
`ports` reports what was bound).  Only this module and cli.py read configuration;
they pass plain values to the store, the accounts, the servers and the relay.
"""

import errno
import logging
import os
import threading

from .accounts import AccountStore
from .imap.handler import IMAPFileHandler
from .imap.server import IMAPServer
from .login import AuthThrottle
from .netbase import Limits, make_server_context
from .pop3.handler import POP3FileHandler
from .pop3.server import POP3Server
from .relay.mx import make_resolver
from .relay.queue import RelayQueue
from .relay.worker import RelayWorker
from .smtp.handler import SMTPFileHandler
from .smtp.server import SMTPServer
from .store import MailStore

log = logging.getLogger("clevermail.service")

# How often a listener checks for shutdown: stop() waits up to this per listener.
POLL_INTERVAL = 0.05


class StartupError(Exception):
    """A one-line reason why the service cannot start (port taken, data dir, TLS)."""


class MailService:
    def __init__(self, conf, resolver=None):
        self.conf = conf
        self.resolver = resolver
        self.servers = []            # (kind, server)
        self._threads = []
        self.worker = None
        self.started = False

    # -- construction ---------------------------------------------------------
    def _limits(self, timeout):
        lim = self.conf["limits"]
        return Limits(message_size=lim["message_size"], recipients=lim["recipients"],
                      connections=lim["connections"], connections_per_client=lim["connections_per_client"],
                      timeout=timeout, auth_failure_delay=lim["auth_failure_delay"],
                      errors_per_session=lim["errors_per_session"])

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
        conf = self.conf
        server, lim = conf["server"], conf["limits"]
        self._check_data_dir(server["data_dir"])
        try:
            self.tls_context = make_server_context(conf["tls"]["certificate"], conf["tls"]["key"])
        except (OSError, ValueError) as exc:
            raise StartupError(f"cannot load TLS certificate/key: {exc}") from None
        self.store = MailStore(server["data_dir"])
        self.accounts = AccountStore(server["users_file"], server["domains"])
        self.throttle = AuthThrottle(lim["auth_failures_per_client"], lim["auth_failure_window"])
        self.queue = RelayQueue(os.path.join(server["data_dir"], "queue"))
        hostname = server["hostname"]
        options = {"allow_plaintext_auth": server["allow_plaintext_auth"],
                   "trusted_networks": server["trusted_networks"]}
        common = dict(hostname=hostname, ssl_context=self.tls_context, throttle=self.throttle)

        smtp_handler = SMTPFileHandler(self.store, self.accounts, self.queue, hostname=hostname,
                                       postmaster=server["postmaster"])
        smtp_limits = self._limits(lim["smtp_timeout"])
        plan = []
        for addr in conf["smtp"]["listen"]:
            plan.append(("smtp", lambda a, **kw: SMTPServer(a, smtp_handler, mode="mx", **kw), addr, smtp_limits, False))
        for addr in conf["smtp"]["submission_listen"]:
            plan.append(("submission", lambda a, **kw: SMTPServer(a, smtp_handler, mode="submission", **kw), addr, smtp_limits, False))
        for addr in conf["smtp"]["submissions_listen"]:
            plan.append(("submissions", lambda a, **kw: SMTPServer(a, smtp_handler, mode="submission", **kw), addr, smtp_limits, True))
        pop3_handler = POP3FileHandler(self.store, self.accounts)
        pop3_limits = self._limits(lim["pop3_timeout"])
        for key, tls in (("listen", False), ("tls_listen", True)):
            for addr in conf["pop3"][key]:
                plan.append(("pop3s" if tls else "pop3", lambda a, **kw: POP3Server(a, pop3_handler, **kw), addr, pop3_limits, tls))
        imap_handler = IMAPFileHandler(self.store, self.accounts)
        imap_limits = self._limits(lim["imap_timeout"])
        for key, tls in (("listen", False), ("tls_listen", True)):
            for addr in conf["imap"][key]:
                plan.append(("imaps" if tls else "imap", lambda a, **kw: IMAPServer(a, imap_handler, **kw), addr, imap_limits, tls))
        for kind, factory, addr, limits, tls in plan:
            try:
                srv = factory(addr, limits=limits, implicit_tls=tls, options=options, **common)
            except OSError as exc:
                self._close_servers()
                why = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
                raise StartupError(f"{kind}: cannot listen on {addr[0]}:{addr[1]}: {why}") from None
            self.servers.append((kind, srv))

        relay = conf["relay"]
        smarthost = relay["smarthost"]
        host, port = (smarthost.rsplit(":", 1)[0].strip("[]"), int(smarthost.rsplit(":", 1)[1])) if smarthost else (None, 587)
        self.worker = RelayWorker(
            self.queue, hostname=hostname,
            resolver=self.resolver or make_resolver(relay["nameservers"]),
            local_deliver=self.store.deliver_local,
            is_local=lambda address: self.accounts.is_local_domain(address.rpartition("@")[2]),
            interval=relay["interval"], mx_port=relay["mx_port"],
            retry_schedule=tuple(relay["retry_schedule"]), queue_lifetime=relay["queue_lifetime"],
            delay_warning=relay["delay_warning"] or None,
            smarthost=host, smarthost_port=port, smarthost_user=relay["smarthost_user"] or None,
            smarthost_password=relay["smarthost_password"] or None, smarthost_tls=relay["smarthost_tls"],
            concurrency=relay["concurrency"], connect_timeout=relay["connect_timeout"])

    # -- lifecycle --------------------------------------------------------------
    def start(self):
        """Bind every listener, start serving and the relay worker.  The process
        itself is left as it is (process.tune_process is for `clevermail start`)."""
        self.build()
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
            self.worker.start()
        except BaseException:
            self.stop()
            raise
        for kind, srv in self.servers:
            log.info("%s listening on %s:%d", kind, srv.server_address[0], srv.port)
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

    def stop(self, timeout=5.0):
        """Stop in reverse order: relay worker, then listeners and their sessions."""
        if getattr(self, "_warm", None) is not None:
            self._warm_stop.set()
            self._warm.join(timeout)
            self._warm = None
        if self.worker is not None:
            self.worker.stop()
        for kind, srv in reversed(self.servers):
            if self.started:
                srv.shutdown()
            srv.close_all()
        self._close_servers()
        for t in self._threads:
            t.join(timeout)
        for _, srv in self.servers:
            srv.threads.join(timeout)     # session threads: ended by close_all
        if self.started:
            self.store.save_indexes()
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
