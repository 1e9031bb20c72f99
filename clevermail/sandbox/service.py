"""The sandbox: a real MailService on loopback that accepts every recipient of every
domain into a mailbox named after it, never relays, and logs in any username with any
password (a users.ini account with its own password), plus its certificate, its
configuration file and, when asked, the JSON API.

SandboxService is MailService with the sandbox's collaborators (MailService's seams:
_make_accounts, _make_router, _make_sender_identity, server_classes): SandboxAccounts,
SandboxRouter, AnySender, and SMTP servers that apply the faults.  Nothing else in the
server knows it runs as a sandbox.  There is no relay worker (_make_worker): the
router gives every recipient a local mailbox, so nothing is ever queued, and nothing
could leave if it were.

Sandbox puts it together: the data directory (a temporary one unless given), the
self-signed certificate, `<data>/sandbox.ini` (the settings it runs with, usable with
`clevermail --config`), the service, the Mailboxes inspector and the API.
"""

import os
import shutil
import tempfile

from configobj import ConfigObj

from ..config import load_config
from ..service import SERVERS, MailService
from .accounts import SandboxAccounts
from .certificate import ensure_certificate
from .faults import NO_FAULTS, FaultySMTPServer
from .mailboxes import Mailboxes
from .routing import AnySender, SandboxRouter

# Listener kind -> [section] key of its address, in the order they are printed.
LISTENERS = (("smtp", "smtp", "listen"), ("submission", "smtp", "submission_listen"),
             ("imap", "imap", "listen"), ("pop3", "pop3", "listen"))
CONFIG_NAME = "sandbox.ini"


class SandboxService(MailService):
    server_classes = {**SERVERS, "smtp": (FaultySMTPServer, {"mode": "mx"}),
                      "submission": (FaultySMTPServer, {"mode": "submission"})}

    def __init__(self, settings, faults=NO_FAULTS, resolver=None):
        super().__init__(settings, resolver=resolver)
        self._faults = faults

    def _make_accounts(self, settings):
        return SandboxAccounts(settings.server.users_file, settings.server.domains)

    def _make_router(self, settings, srs):
        return SandboxRouter(self.accounts, separator=settings.server.subaddress_separator)

    def _make_sender_identity(self, settings):
        return AnySender()

    def _make_worker(self, settings):
        return None                     # nothing is ever queued, nothing may leave

    def _build_servers(self, sockets):
        super()._build_servers(sockets)
        self.faults = self._faults      # before the first connection is served

    @property
    def faults(self):
        return self._faults

    @faults.setter
    def faults(self, faults):
        """New faults for every SMTP session's next command (one reference each)."""
        self._faults = faults
        for _, srv in self.servers:
            if isinstance(srv, FaultySMTPServer):
                srv.faults = faults


def _address(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def write_config(data_dir, host, ports, log_file="", log_format="text", log_level="INFO",
                 overrides=None):
    """<data_dir>/sandbox.ini for these listeners, with `overrides` ({section: {key:
    value}}) merged over the sandbox's own values; returns its path."""
    cert, key_file = ensure_certificate(os.path.join(data_dir, "tls"))
    cfg = ConfigObj(encoding="utf-8")
    cfg.initial_comment = ["# clevermail sandbox: the settings it runs with (port 0: a free port, "
                           "printed at start)."]
    cfg["server"] = {
        "hostname": "localhost", "domains": ["localhost"],
        "data_dir": data_dir, "users_file": os.path.join(data_dir, "users.ini"),
        "log_file": log_file, "log_format": log_format, "log_level": log_level,
        # the sandbox's own clients may send as anyone from anywhere on loopback
        "trusted_networks": ["127.0.0.0/8", "::1/128"],
        "drain_time": 1.0,
    }
    for section in ("smtp", "imap", "pop3"):
        cfg[section] = {}
    for kind, section, key in LISTENERS:
        cfg[section][key] = [_address(host, ports.get(kind, 0))]
    cfg["tls"] = {"certificate": cert, "key": key_file}
    # mail from the application under test is not checked, limited or signed
    cfg["inbound"] = {"checks": False}
    cfg["spam"] = {"unknown_recipients": 0}
    cfg["senders"] = {"messages_per_hour": 0, "recipients_per_hour": 0}
    cfg["limits"] = {"auth_failure_delay": 0, "auth_failures_per_client": 1000000}
    cfg["dkim"] = {"sign": False}
    cfg["relay"] = {"mta_sts": False}
    for section, values in (overrides or {}).items():
        cfg.setdefault(section, {}).update(values)
    cfg.filename = os.path.join(data_dir, CONFIG_NAME)
    cfg.write()
    return cfg.filename


class Sandbox:
    """A sandbox server: start(), the ports and settings, the mailboxes, stop().

    `data_dir` None: a temporary directory, removed at stop.  `ports`: {kind: port}
    for 'smtp', 'submission', 'imap', 'pop3' (0 or missing: a free port); `api_port`
    None: no JSON API.  `resolver`: the DNS seam, and `overrides`, settings merged
    over the sandbox's ({section: {key: value}}), for tests."""

    def __init__(self, data_dir=None, host="127.0.0.1", ports=None, api_port=None, faults=NO_FAULTS,
                 resolver=None, log_file="", log_format="text", log_level="INFO", overrides=None):
        self.host = host
        self.requested_ports = dict(ports or {})
        self.api_port = api_port
        self.data_dir = data_dir
        self.temporary = data_dir is None
        self.resolver = resolver
        self.log = (log_file, log_format, log_level)
        self.overrides = overrides
        self._faults = faults
        self.service = self.api = self.mailboxes = None

    def start(self):
        from .api import SandboxAPI       # http.server only when an API is wanted

        if self.temporary:
            self.data_dir = tempfile.mkdtemp(prefix="clevermail-sandbox-")
        else:
            self.data_dir = os.path.abspath(self.data_dir)
            os.makedirs(self.data_dir, exist_ok=True)
        try:
            self.config_path = write_config(self.data_dir, self.host, self.requested_ports, *self.log,
                                            overrides=self.overrides)
            self.settings = load_config(self.config_path)
            self.service = SandboxService(self.settings, self._faults, resolver=self.resolver)
            self.service.start()
            self.mailboxes = Mailboxes(self.service.store)
            if self.api_port is not None:
                self.api = SandboxAPI(self.mailboxes, self.host, self.api_port).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        if self.api is not None:
            self.api.stop()
            self.api = None
        if self.service is not None:
            self.service.stop(drain=0)
            self.service = None
        if self.temporary and self.data_dir and os.path.isdir(self.data_dir):
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- what clients need ------------------------------------------------------------
    def port(self, kind):
        return self.service.port(kind)

    @property
    def cafile(self):
        """The certificate to verify the sandbox's TLS with (its own CA)."""
        return self.settings.server.certificate

    @property
    def api_url(self):
        return self.api.url if self.api is not None else None

    @property
    def faults(self):
        return self.service.faults if self.service is not None else self._faults

    @faults.setter
    def faults(self, faults):
        self._faults = faults
        if self.service is not None:
            self.service.faults = faults

    # -- accounts ---------------------------------------------------------------------
    def add_account(self, address, password):
        """A real account: only `password` logs in to it (users.ini, scrypt)."""
        return self.service.accounts.add(address, password).address

    def remove_account(self, address):
        self.service.accounts.remove(address)
