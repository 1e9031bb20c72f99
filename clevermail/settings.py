"""The typed settings of a whole configuration: one frozen dataclass per layer.

config.py builds a Settings from the checked configuration file; MailService and the
CLI read it.  The layers the servers and the relay take themselves are defined beside
their code and only gathered here: netbase.Limits (one per protocol: the idle
timeouts differ), netbase.SessionPolicy and relay.settings.RelaySettings.  Frozen and
built by keyword: a misspelt setting is a TypeError, never a silently ignored value.
"""

from dataclasses import dataclass
from typing import Mapping

from .inbound.checks import InboundPolicy
from .inbound.defence import SpamSettings
from .netbase import Limits, SessionPolicy
from .relay.settings import RelaySettings
from .sieve.interp import SieveLimits
from .store.quota import QuotaLimits


@dataclass(frozen=True)
class Listener:
    """One listening socket: its kind (see LISTENER_KEYS), protocol and address."""

    kind: str
    protocol: str
    address: tuple[str, int]
    implicit_tls: bool


@dataclass(frozen=True)
class ServerSettings:
    """Who this server is and where its files are ([server] and [tls])."""

    hostname: str
    domains: tuple[str, ...]
    data_dir: str
    users_file: str
    postmaster: str = ""
    aliases_file: str = "aliases.ini"
    abuse: str = ""
    subaddress_separator: str = "+"
    srs_domain: str = ""
    log_file: str = ""
    log_level: str = "INFO"
    log_format: str = "text"            # or "json": one object per line
    certificate: str = ""
    key: str = ""
    user: str = ""                      # run as this user once the ports are bound ("" = as started)
    group: str = ""                     # ...and group ("" = the user's own)
    drain_time: float = 10.0    # seconds MailService.stop lets commands in progress finish
    workers: int = 1            # processes serving the listeners (workers.py)
    cpu_affinity: str = "auto"  # or "off": each serving process keeps to one CPU (process.py)
    proxy_protocol: tuple = ()  # listener kinds whose connections begin with a PROXY header
    proxy_networks: tuple = ()  # ...from these load balancers (ipaddress networks)


@dataclass(frozen=True)
class LoginSettings:
    """login.AuthThrottle's numbers: failed logins per client address within a window.
    (The delay before a failure is answered is in each protocol's Limits.)"""

    failures_per_client: int = 10
    failure_window: float = 300.0


@dataclass(frozen=True)
class SenderSettings:
    """[senders]: whom authenticated users may send as besides themselves
    (smtp/sender_identity.py) and how much per hour (smtp/send_quota.py)."""

    send_as: tuple[tuple[str, str], ...] = ()   # (account, pattern), canonical
    messages_per_hour: int = 500                # 0 = no limit
    recipients_per_hour: int = 2000


@dataclass(frozen=True)
class MetricsSettings:
    """The Prometheus endpoint ([metrics]): where it listens (None = off)."""

    listen: tuple[str, int] | None = None
    allow_remote: bool = False


@dataclass(frozen=True)
class DkimSettings:
    """[dkim]: whether outgoing mail is signed (the keys are under <data_dir>/dkim)."""

    sign: bool = True


@dataclass(frozen=True)
class SieveSettings:
    """[sieve]: how many scripts of what size a user may keep (sieve/scripts.py) and
    what one run may do (sieve/interp.SieveLimits)."""

    max_scripts: int = 20               # 0: no limit
    max_script_size: int = 65536        # bytes; 0: no limit
    limits: SieveLimits = SieveLimits()


@dataclass(frozen=True)
class Settings:
    """A whole configuration, one frozen value per layer."""

    source: str                         # the file, or "<defaults>"
    server: ServerSettings
    limits: Mapping[str, Limits]        # per protocol: "smtp", "pop3", "imap", "managesieve"
    policy: SessionPolicy
    login: LoginSettings
    relay: RelaySettings
    listeners: tuple[Listener, ...]
    senders: SenderSettings = SenderSettings()
    inbound: InboundPolicy = InboundPolicy()
    metrics: MetricsSettings = MetricsSettings()
    spam: SpamSettings = SpamSettings()
    dkim: DkimSettings = DkimSettings()
    quota: QuotaLimits = QuotaLimits()  # [quota]: the default mailbox limits (store/quota.py)
    sieve: SieveSettings = SieveSettings()      # [sieve]: users' filters
