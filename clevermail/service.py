"""MailService: builds everything from the typed settings, starts it, stops it in
reverse order.

The one lifecycle object used by `clevermail start` and by the tests (port 0 works;
`ports` reports what was bound).  Only this module and cli.py read configuration
(config.load_config's Settings); they pass each layer its own settings (Limits,
SessionPolicy, RelaySettings) or plain values.
"""

import errno
import logging
import os
import threading

from . import activation, privileges
from .accounts import AccountError, AccountStore, domain_to_ascii
from .aliases import AliasStore
from .imap.handler import IMAPFileHandler
from .imap.server import IMAPServer
from .login import AuthThrottle
from .netbase import listen_socket, make_server_context
from .pop3.handler import POP3FileHandler
from .pop3.server import POP3Server
from .relay.mx import make_resolver
from .relay.queue import RelayQueue
from .relay.worker import RelayWorker
from .routing import Router
from .smtp.handler import SMTPFileHandler
from .smtp.send_quota import SendQuota
from .smtp.sender_identity import SenderIdentity
from .smtp.server import SMTPServer
from .srs import SRS, SRSError, load_secret
from .store import MailStore

log = logging.getLogger("clevermail.service")

# How often a listener checks for shutdown: stop() waits up to this per listener.
POLL_INTERVAL = 0.05

# The server of each listener kind (config.LISTENER_KEYS), with its own arguments.
SERVERS = {
    "smtp": (SMTPServer, {"mode": "mx"}),
    "submission": (SMTPServer, {"mode": "submission"}),
    "submissions": (SMTPServer, {"mode": "submission"}),
    "pop3": (POP3Server, {}),
    "pop3s": (POP3Server, {}),
    "imap": (IMAPServer, {}),
    "imaps": (IMAPServer, {}),
}


class StartupError(Exception):
    """A one-line reason why the service cannot start (port taken, data dir, TLS)."""


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


class MailService:
    def __init__(self, settings, resolver=None, inherited=()):
        self.settings = settings        # config.load_config's Settings
        self.resolver = resolver
        # activation.listen_fds()' [(name, fd)]: sockets the service manager bound for us
        self.inherited = list(inherited)
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
            privileges.check_paths(run_as or privileges.current(), server.data_dir, server.users_file)
        except privileges.PrivilegeError as exc:
            raise StartupError(str(exc)) from None
        try:
            self.tls_context = make_server_context(server.certificate, server.key)
        except (OSError, ValueError) as exc:
            raise StartupError(f"cannot load TLS certificate/key: {exc}") from None
        sockets = self._listen_sockets()
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
        self.accounts = AccountStore(server.users_file, server.domains)
        self.aliases = AliasStore(server.aliases_file, server.domains)
        try:
            srs = SRS(load_secret(server.data_dir), domain_to_ascii(server.srs_domain or server.domains[0]))
        except (OSError, SRSError, AccountError) as exc:
            raise StartupError(f"cannot set up SRS for forwarding: {exc}") from None
        self.router = Router(self.accounts, self.aliases, postmaster=server.postmaster,
                             abuse=server.abuse, srs=srs, separator=server.subaddress_separator)
        self.throttle = AuthThrottle(settings.login.failures_per_client, settings.login.failure_window)
        self.queue = RelayQueue(os.path.join(server.data_dir, "queue"))
        self.send_quota = SendQuota(server.data_dir, settings.senders.messages_per_hour,
                                    settings.senders.recipients_per_hour)
        handlers = {
            "smtp": SMTPFileHandler(self.store, self.accounts, self.queue,
                                    postmaster=server.postmaster,
                                    senders=SenderIdentity(self.accounts.is_local_domain,
                                                           settings.senders.send_as,
                                                           owners=self.router.owners),
                                    quota=self.send_quota, router=self.router, srs=srs),
            "pop3": POP3FileHandler(self.store, self.accounts),
            "imap": IMAPFileHandler(self.store, self.accounts),
        }
        while sockets:
            listener, sock = sockets[0]
            server_class, own = SERVERS[listener.kind]
            srv = server_class(listener.address, handlers[listener.protocol], **own,
                               hostname=server.hostname, limits=settings.limits[listener.protocol],
                               policy=settings.policy, ssl_context=self.tls_context,
                               implicit_tls=listener.implicit_tls, throttle=self.throttle, sock=sock)
            sockets.pop(0)
            self.servers.append((listener.kind, srv))

        relay = settings.relay
        self.worker = RelayWorker(
            self.queue, relay, self.resolver or make_resolver(relay.nameservers),
            local_deliver=handlers["smtp"].deliver_queued,
            is_local=lambda address: self.accounts.is_local_domain(address.rpartition("@")[2]))

    def _listen_sockets(self):
        """[(Listener, socket)]: the inherited sockets (socket activation) or, without
        them, every listener bound here; a failure closes the ones made so far."""
        if self.inherited:
            try:
                return activation.match(self.settings.listeners, self.inherited)
            except activation.ActivationError as exc:
                raise StartupError(f"socket activation: {exc}") from None
        out = []
        for listener in self.settings.listeners:
            try:
                out.append((listener, listen_socket(listener.address)))
            except OSError as exc:
                for _, sock in out:
                    sock.close()
                raise StartupError(_listen_error(listener, exc)) from None
        return out

    # -- lifecycle --------------------------------------------------------------
    def start(self):
        """Bind every listener, start serving and the relay worker.  The process
        itself is left as it is (process.tune_process is for `clevermail start`)."""
        self.build()
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
            self.worker.start()
        except BaseException:
            self.stop()
            raise
        for kind, srv in self.servers:
            log.info("%s listening on %s:%d%s", kind, srv.server_address[0], srv.port,
                     " (socket from the service manager)" if self.inherited else "")
        if self.run_as is None:
            privileges.warn_if_root()
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
            self.store.stop_watching()
            self.store.save_indexes()
        if getattr(self, "send_quota", None) is not None:
            self.send_quota.close()
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
