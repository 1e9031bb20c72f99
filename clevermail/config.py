"""Configuration: the one schema (defaults, types, help), its loader, and the typed
settings each layer is built from.

CONFIGSPEC below is the single source of defaults: with no file at all the server
runs on it (unprivileged loopback ports, data under the working directory).  A file
given with `--config` or CLEVERMAIL_CONFIG is an INI file read by configobj and
checked against the spec by `validate`; every problem (a misspelt key included) is
collected and reported at once as "file: [section] key: why", never as a traceback.

read_config() returns the checked values section by section (what `config show`
prints); load_config() turns them into settings.Settings, frozen dataclasses per
layer: ServerSettings, a netbase.Limits per protocol, the netbase.SessionPolicy,
LoginSettings, relay.settings.RelaySettings, DkimSettings and the Listeners.  host:port values (listeners, the
smarthost, nameservers) are parsed once, by the schema's types (config_types.py), into
(host, port) tuples.

Only cli.py and service.py read configuration; everything else takes these settings
or plain values as constructor arguments.
"""

import difflib
import os
import socket
from types import MappingProxyType

from configobj import ConfigObj, flatten_errors, get_extra_values
from validate import ValidateError, Validator

from .inbound.checks import InboundPolicy
from .inbound.defence import SpamSettings
from .netbase import Limits, SessionPolicy
from .privileges import check_names
from .relay.settings import RelaySettings
from .config_types import CHECKS, is_loopback
from .store.quota import QuotaLimits
from .settings import (DkimSettings, Listener, LoginSettings, MetricsSettings, SenderSettings,
                       ServerSettings, Settings)

CONFIG_ENV = "CLEVERMAIL_CONFIG"

# Each key is preceded by its help text; `clevermail config show --defaults` prints
# this as a documented example file, so keep the help to one or two lines.
CONFIGSPEC = """
[server]
# Name this server gives itself in greetings, Received headers and EHLO ("" = the machine's FQDN, or its host name when the FQDN is localhost).
hostname = string(default='')
# Where mailboxes (mail/) and the relay queue (queue/) live; relative paths are taken from the config file's folder (or the working directory).
data_dir = string(default='maildata')
# The account file shared by SMTP, POP3 and IMAP.
users_file = string(default='users.ini')
# Addresses that are not accounts: lists, forwards, catch-alls (`clevermail alias`; "" = aliases.ini beside users_file).
aliases_file = string(default='')
# Account for abuse@<any local domain> when no alias says otherwise (RFC 2142; "" = the postmaster's).
abuse = string(default='')
# Separates an address from its detail ("alice+lists@"; RFC 5233); "" = no details.
subaddress_separator = string(max=1, default='+')
# Domain of the SRS sender that forwarded mail leaves with ("" = the first local domain).
srs_domain = string(default='')
# Domains whose mail is delivered here; the first one is used for bare user names.
domains = force_list(default=list('localhost'))
# Also log to this file ("" = stderr only).
log_file = string(default='')
log_level = option('DEBUG', 'INFO', 'WARNING', 'ERROR', default='INFO')
# Log lines as text, or as one JSON object per line (time, level, logger, message, session and queue ids).
log_format = option('text', 'json', default='text')
# Clients in these networks may relay without authenticating (CIDR list). Empty = nobody: never an open relay.
trusted_networks = cidr_list(default=list())
# Account that gets mail for postmaster@<any local domain> when no such account exists (RFC 5321 4.5.1; "" = the first account in users.ini).
postmaster = string(default='')
# Allow AUTH/LOGIN/USER-PASS without TLS from non-loopback clients. Leave off unless behind a TLS proxy.
allow_plaintext_auth = boolean(default=False)
# Log each message an IMAP FETCH or POP3 RETR sends (uid, user, folder) at INFO, for `clevermail trace` (no = at DEBUG only).
log_retrievals = boolean(default=False)
# Started as root, run as this user once the ports are bound ("" = stay as started; root gets a warning).
user = string(default='')
# ...and this group ("" = the user's own group).
group = string(default='')
# Seconds a stop waits for commands in progress (a message being received) before the remaining sessions are cut; idle ones are closed at once.
drain_time = float(min=0, default=10)
# Listener kinds behind a load balancer (smtp, submission, submissions, pop3, pop3s, imap, imaps, managesieve): each connection must come from proxy_networks and begin with a PROXY header (v1 or v2, HAProxy's send-proxy) naming the client.
proxy_protocol = force_list(default=list())
# The load balancers' addresses (CIDR list) for proxy_protocol.
proxy_networks = cidr_list(default=list())
# Processes serving the listeners (1 = one process; a busy server sets its number of cores): each a threaded server on the same sockets and data.
workers = integer(min=1, max=64, default=1)

[smtp]
# MX listeners (host:port, IPv6 as [::1]:25): local domains from anyone, any domain once authenticated.
listen = listen_list(default=list('127.0.0.1:2525'))
# Submission listeners (usually :587): every transaction needs AUTH.
submission_listen = listen_list(default=list())
# Implicit-TLS submission listeners (usually :465); needs [tls].
submissions_listen = listen_list(default=list())

[pop3]
listen = listen_list(default=list('127.0.0.1:1110'))
# Implicit-TLS POP3 listeners (usually :995); needs [tls].
tls_listen = listen_list(default=list())

[imap]
listen = listen_list(default=list('127.0.0.1:1143'))
# Implicit-TLS IMAP listeners (usually :993); needs [tls].
tls_listen = listen_list(default=list())

[managesieve]
# ManageSieve listeners (RFC 5804, usually :4190; STARTTLS, no implicit TLS): users manage their Sieve filters from Roundcube or Thunderbird. Empty = off.
listen = listen_list(default=list())

[tls]
# PEM certificate chain and private key; both set = STARTTLS/STLS offered and TLS listeners allowed.
certificate = string(default='')
key = string(default='')

[inbound]
# SPF, DKIM, DMARC and ARC checks of mail from outside, with an Authentication-Results header (RFC 8601).
checks = boolean(default=True)
# A DMARC failure whose domain says p=reject: refuse it (550 5.7.1), deliver it to Junk, or only tag it.
dmarc_reject = option('reject', 'quarantine', 'tag', default='reject')
# A DMARC failure whose domain says p=quarantine: deliver it to Junk, or only tag it.
dmarc_quarantine = option('quarantine', 'tag', default='quarantine')
# An SPF fail of a domain without a DMARC policy: only tag it, or refuse it.
spf_fail = option('tag', 'reject', default='tag')

[spam]
# DNS block lists (RFC 5782) asked about each client of the MX port (e.g. zen.spamhaus.org,); a listed client gets 554 5.7.1 with the list's reason.
dnsbl = force_list(default=list())
# DNS allow lists, asked first: a client listed there skips the block lists.
dnswl = force_list(default=list())
# Greylisting (RFC 6647): 451 4.7.1 for an unknown (client /24 or /64, sender, recipient) until it retries after greylist_delay seconds.
greylist = boolean(default=False)
greylist_delay = float(min=0, default=300)
# Per client address and minute (0 = no limit): connections (421) and messages (450 4.7.1).
connections_per_minute = integer(min=0, default=0)
messages_per_minute = integer(min=0, default=0)
# Unknown recipients one session may try before it is cut off with 421 (directory harvesting; 0 = no limit).
unknown_recipients = integer(min=0, default=5)
# Refuse (554) a client that talks before the banner, as postscreen does, watching for pregreet_wait seconds first (0 = only what has arrived already: the banner is not delayed).
pregreet = boolean(default=False)
pregreet_wait = float(min=0, max=30, default=0)
# rspamd's normal worker (host:port, e.g. 127.0.0.1:11333; "" = no content filter), asked at the end of DATA for mail from outside: reject -> 550 5.7.1, soft reject/greylist -> 451 4.7.1, add header/rewrite subject -> X-Spam headers and the Junk folder.
rspamd = hostport(default='')
rspamd_timeout = float(min=0.1, max=600, default=10)
# rspamd slow or down: accept the mail unscanned with a WARNING (open), or answer 451 4.7.1 (tempfail).
rspamd_fail = option('open', 'tempfail', default='open')

[senders]
# What accounts may send as besides their own address and its +detail forms: "account=pattern" items, * matching any text (noreply@example.org=*@example.org).
send_as = send_as_list(default=list())
# Messages and recipients one authenticated user may send per hour (0 = no limit); past them 450 4.7.1.
messages_per_hour = integer(min=0, default=500)
recipients_per_hour = integer(min=0, default=2000)

[quota]
# Default mailbox quota of every account (store/quota.py): bytes (or 500M, 2G...) and messages over all its folders; "none" = no limit. Per-user values: `clevermail user quota`.
storage = quota_storage(default='none')
messages = quota_messages(default='none')

[limits]
# Largest message accepted (bytes), advertised as SMTP SIZE and used as the IMAP literal limit.
message_size = integer(min=1024, default=26214400)
# Recipients per SMTP transaction (452 past it).
recipients = integer(min=1, default=100)
# Concurrent connections per protocol listener group, and per client address.
connections = integer(min=1, default=1000)
connections_per_client = integer(min=1, default=50)
# Idle timeouts in seconds (RFC 5321 suggests 5 min, RFC 1939 10 min, RFC 3501 at least 30 min; RFC 5804 says none).
smtp_timeout = float(min=1, default=300)
pop3_timeout = float(min=1, default=600)
imap_timeout = float(min=1, default=1800)
managesieve_timeout = float(min=1, default=600)
# Seconds a failed authentication waits before it is answered.
auth_failure_delay = float(min=0, default=1.5)
# Failed authentications per client address within auth_failure_window seconds before it is refused outright.
auth_failures_per_client = integer(min=1, default=10)
auth_failure_window = float(min=1, default=300)
# Protocol errors in one session before it is disconnected.
errors_per_session = integer(min=1, default=20)

[relay]
# Seconds between queue scans (the worker is also woken on every enqueue).
interval = float(min=0.1, default=60)
# DNS servers for MX lookups (address, address:port or [v6]:port; port 53 if none); empty = the system's resolver.
nameservers = nameserver_list(default=list())
# Port used to reach MX hosts (25 on the internet; tests and staging use sinks elsewhere).
mx_port = integer(min=1, max=65535, default=25)
# Send all external mail through this host:port instead of MX lookup ("" = direct delivery).
smarthost = hostport(default='')
smarthost_user = string(default='')
smarthost_password = string(default='')
smarthost_tls = option('none', 'starttls', 'implicit', default='starttls')
# Seconds between delivery attempts; the last value repeats (jitter is added).
retry_schedule = int_list(min=1, default=list(300, 600, 1200, 2400, 4800, 9600, 14400))
# Seconds after which an undelivered recipient fails and is bounced.
queue_lifetime = integer(min=60, default=432000)
# Seconds after which the sender is warned of a delay, once (a "delayed" DSN, RFC 3464),
# for recipients whose NOTIFY includes DELAY or who gave no NOTIFY (0 = never).
delay_warning = integer(min=0, default=14400)
# Deliveries run in parallel (one slow domain does not hold up the others).
concurrency = integer(min=1, max=64, default=4)
# Seconds to wait for an MX host or smarthost to answer a connection.
connect_timeout = float(min=1, default=30)
# PEM CA certificate(s) that verify the smarthost's certificate ("" = the system CAs).
smarthost_ca_file = string(default='')
# SHA-256 fingerprint of the smarthost's certificate (hex, colons allowed): it must match ("" = not pinned).
smarthost_fingerprint = fingerprint(default='')
# The nameservers validate DNSSEC and the path to them is trusted: their AD bit is believed, and DANE (RFC 7672) applies to MX hosts with secure TLSA records.
dnssec = boolean(default=False)
# Apply recipient domains' MTA-STS policies (RFC 8461), fetched over HTTPS and cached under data_dir/mta-sts.
mta_sts = boolean(default=True)

[metrics]
# Prometheus metrics at http://host:port/metrics ("" = off). No authentication: loopback only unless allow_remote.
listen = listen_hostport(default='')
# Serve the metrics on a non-loopback address (anyone who reaches it reads them).
allow_remote = boolean(default=False)

[dkim]
# Sign mail of authenticated clients and the server's reports for local domains (RFC 6376, rsa-sha256 + ed25519-sha256); keys in <data_dir>/dkim, see `clevermail dkim list`.
sign = boolean(default=True)
"""

SECRET_KEYS = {("relay", "smarthost_password")}
PATH_KEYS = (("server", "data_dir"), ("server", "users_file"), ("server", "aliases_file"), ("server", "log_file"),
             ("tls", "certificate"), ("tls", "key"), ("relay", "smarthost_ca_file"))


class ConfigError(Exception):
    """Every problem found in a configuration, one line each."""

    def __init__(self, problems):
        super().__init__("\n".join(problems))
        self.problems = list(problems)


# -- the typed settings ---------------------------------------------------------------
PROTOCOLS = ("smtp", "pop3", "imap", "managesieve")

# Every listener key: (kind, protocol, section, key, implicit TLS).  The kind names the
# listener in logs and in MailService.ports; SMTP's kind also says its mode.
LISTENER_KEYS = (
    ("smtp", "smtp", "smtp", "listen", False),
    ("submission", "smtp", "smtp", "submission_listen", False),
    ("submissions", "smtp", "smtp", "submissions_listen", True),
    ("pop3", "pop3", "pop3", "listen", False),
    ("pop3s", "pop3", "pop3", "tls_listen", True),
    ("imap", "imap", "imap", "listen", False),
    ("imaps", "imap", "imap", "tls_listen", True),
    ("managesieve", "managesieve", "managesieve", "listen", False),
)


# -- loading ---------------------------------------------------------------------------------
def _spec():
    return ConfigObj(CONFIGSPEC.splitlines(), list_values=False, _inspec=True)


def load_config(path=None, overrides=None):
    """Read, validate and type a configuration: the Settings every layer is built from.

    `path` None means: CLEVERMAIL_CONFIG if set, else embedded defaults only.
    `overrides` is a nested dict applied over the file (tests build config this way).
    Raises ConfigError listing every problem.
    """
    return settings_from(read_config(path, overrides))


def read_config(path=None, overrides=None):
    """The checked configuration as plain values, section by section (what `config
    show` prints); arguments and errors as load_config."""
    if path is None:
        path = os.environ.get(CONFIG_ENV) or None
    source = "<defaults>"
    try:
        if path is not None:
            source = str(path)
            if not os.path.isfile(path):
                raise ConfigError([f"{source}: file not found"])
            cfg = ConfigObj(str(path), configspec=_spec(), encoding="utf-8", file_error=True)
        else:
            cfg = ConfigObj(configspec=_spec(), encoding="utf-8")
    except ConfigError:
        raise
    except Exception as exc:  # configobj raises ParseError subclasses with line numbers
        # several parse errors come as one "Parsing failed with several errors": list each
        errors = getattr(exc, "errors", None) or [exc]
        raise ConfigError([f"{source}: {e}" for e in errors]) from None
    if overrides:
        cfg.merge(overrides)

    result = cfg.validate(Validator(CHECKS), preserve_errors=True)
    problems = []
    for sections, key, error in flatten_errors(cfg, result):
        where = "[" + "/".join(sections) + "]" + (f" {key}" if key else "")
        why = str(error) if isinstance(error, (ValidateError, Exception)) else "missing section"
        problems.append(f"{source}: {where}: {why}")
    for sections, name in get_extra_values(cfg):
        problems.append(f"{source}: {_unknown(cfg, sections, name)}")
    base = os.path.dirname(os.path.abspath(path)) if path else os.getcwd()
    conf = cfg.dict()
    if not problems:
        problems.extend(f"{source}: {p}" for p in _check_semantics(conf))
    if problems:
        raise ConfigError(problems)
    for section, key in PATH_KEYS:
        if conf[section][key]:
            conf[section][key] = os.path.normpath(os.path.join(base, conf[section][key]))
    conf["server"]["hostname"] = conf["server"]["hostname"] or default_hostname()
    conf["server"]["domains"] = [d.strip().lower() for d in conf["server"]["domains"]]
    conf["source"] = source
    return conf


def _unknown(cfg, sections, name):
    """'[limits] mesage_size: unknown key (did you mean 'message_size'?)'."""
    spec, node = _spec(), cfg
    for section in sections:
        spec, node = spec.get(section, {}), node[section]
    if isinstance(node[name], dict):
        where, known = f"[{'/'.join((*sections, name))}]: unknown section", spec.sections
    elif sections:
        where, known = f"[{'/'.join(sections)}] {name}: unknown key", spec.scalars
    else:
        where, known = f"top level: {name}: unknown key (keys belong in a [section])", []
    close = difflib.get_close_matches(name, known, n=1)
    return where + (f" (did you mean {close[0]!r}?)" if close else "")


def _check_semantics(conf):
    """Rules that span keys, which the per-key checks cannot see."""
    problems = []
    if not conf["server"]["domains"] or not all(d.strip() for d in conf["server"]["domains"]):
        problems.append("[server] domains: at least one local domain is needed")
    tls = conf["tls"]
    if bool(tls["certificate"]) != bool(tls["key"]):
        problems.append("[tls]: certificate and key must be set together")
    needs_tls = [f"[{section}] {key}" for _, _, section, key, tls_key in LISTENER_KEYS
                 if tls_key and conf[section][key]]
    if needs_tls and not tls["certificate"]:
        problems.append(f"{', '.join(needs_tls)}: TLS listeners need [tls] certificate and key")
    problems.extend(check_names(conf["server"]["user"].strip(), conf["server"]["group"].strip()))
    problems.extend(_proxy_problems(conf["server"]))
    problems.extend(_name_problems(conf["server"]))
    # int_list(min=1) bounds the list's length (never empty), not its values
    if any(delay < 1 for delay in conf["relay"]["retry_schedule"]):
        problems.append("[relay] retry_schedule: every delay is at least 1 second")
    relay = conf["relay"]
    if relay["smarthost_tls"] == "none":
        if relay["smarthost_password"]:
            problems.append("[relay] smarthost_password: the password would travel in clear "
                            "with smarthost_tls = none (use starttls or implicit)")
        pinned = [k for k in ("smarthost_ca_file", "smarthost_fingerprint") if relay[k]]
        if pinned:
            problems.append(f"[relay] {', '.join(pinned)}: needs smarthost_tls = starttls or implicit")
    metrics = conf["metrics"]
    if metrics["listen"] and not metrics["allow_remote"] and not is_loopback(metrics["listen"][0]):
        problems.append(f"[metrics] listen: {metrics['listen'][0]} is not a loopback address and the "
                        "metrics have no authentication; set [metrics] allow_remote = yes to serve them there")
    return problems


def _proxy_problems(server):
    kinds = [k.strip() for k in server["proxy_protocol"] if k.strip()]
    known = [kind for kind, *_ in LISTENER_KEYS]
    out = [f"[server] proxy_protocol: {k!r} is not a listener kind ({', '.join(known)})"
           for k in kinds if k not in known]
    if kinds and not server["proxy_networks"]:
        out.append("[server] proxy_protocol: set proxy_networks to the load balancers' addresses")
    return out


def _name_problems(server):
    """The syntax of [server] domains (IDNA 2008, as accounts.py normalises them) and
    hostname (a host name in A-labels: it goes into EHLO and Received as it is)."""
    from .accounts import AccountError, check_domain

    problems = []
    for domain in server["domains"]:
        if domain.strip():
            try:
                check_domain(domain)
            except AccountError as exc:
                problems.append(f"[server] domains: {exc}")
    hostname = server["hostname"].strip()
    if hostname:
        try:
            ascii_name = check_domain(hostname)
            if ascii_name != hostname.lower().rstrip("."):
                problems.append(f"[server] hostname: {hostname!r} is an international name: "
                                f"write it as {ascii_name!r}")
        except AccountError as exc:
            problems.append(f"[server] hostname: {str(exc).replace('invalid domain', 'invalid host name')}")
    return problems


def default_hostname():
    """The machine's name when [server] hostname is empty: its FQDN, or its host name
    when the FQDN lookup only finds "localhost" (a common /etc/hosts, and containers)."""
    fqdn = socket.getfqdn()
    if _is_localhost(fqdn):
        name = socket.gethostname()
        if name and not _is_localhost(name):
            return name
    return fqdn


def _is_localhost(name):
    name = name.lower().rstrip(".")
    return name == "localhost" or name.startswith("localhost.") or name.endswith(".localhost")


def settings_from(conf):
    """The typed Settings of a checked configuration (read_config's values)."""
    server, tls, lim, relay = conf["server"], conf["tls"], conf["limits"], conf["relay"]
    shared = {key: lim[key] for key in ("message_size", "recipients", "connections",
                                        "connections_per_client", "auth_failure_delay",
                                        "errors_per_session")}
    return Settings(
        source=conf["source"],
        server=ServerSettings(
            hostname=server["hostname"], domains=tuple(server["domains"]),
            data_dir=server["data_dir"], users_file=server["users_file"],
            aliases_file=server["aliases_file"] or os.path.join(
                os.path.dirname(server["users_file"]), "aliases.ini"),
            abuse=server["abuse"],
            subaddress_separator=server["subaddress_separator"], srs_domain=server["srs_domain"],
            postmaster=server["postmaster"], log_file=server["log_file"],
            log_level=server["log_level"], log_format=server["log_format"],
            certificate=tls["certificate"], key=tls["key"],
            user=server["user"].strip(), group=server["group"].strip(),
            drain_time=server["drain_time"], workers=server["workers"],
            proxy_protocol=tuple(k.strip() for k in server["proxy_protocol"] if k.strip()),
            proxy_networks=tuple(server["proxy_networks"])),
        limits=MappingProxyType({protocol: Limits(timeout=lim[f"{protocol}_timeout"], **shared)
                                 for protocol in PROTOCOLS}),
        policy=SessionPolicy(allow_plaintext_auth=server["allow_plaintext_auth"],
                             log_retrievals=server["log_retrievals"],
                             trusted_networks=tuple(server["trusted_networks"])),
        login=LoginSettings(failures_per_client=lim["auth_failures_per_client"],
                            failure_window=lim["auth_failure_window"]),
        inbound=InboundPolicy(**conf["inbound"]),
        spam=SpamSettings(**{**conf["spam"], "dnsbl": tuple(z for z in conf["spam"]["dnsbl"] if z.strip()),
                             "dnswl": tuple(z for z in conf["spam"]["dnswl"] if z.strip())}),
        senders=SenderSettings(send_as=tuple(conf["senders"]["send_as"]),
                               messages_per_hour=conf["senders"]["messages_per_hour"],
                               recipients_per_hour=conf["senders"]["recipients_per_hour"]),
        relay=RelaySettings(
            hostname=server["hostname"], interval=relay["interval"], mx_port=relay["mx_port"],
            nameservers=tuple(relay["nameservers"]),
            retry_schedule=tuple(relay["retry_schedule"]),
            queue_lifetime=relay["queue_lifetime"],
            delay_warning=relay["delay_warning"] or None,   # 0 = never
            smarthost=relay["smarthost"], smarthost_user=relay["smarthost_user"] or None,
            smarthost_password=relay["smarthost_password"] or None,
            smarthost_tls=relay["smarthost_tls"], concurrency=relay["concurrency"],
            connect_timeout=relay["connect_timeout"], dnssec=relay["dnssec"],
            mta_sts=relay["mta_sts"],
            mta_sts_cache=os.path.join(server["data_dir"], "mta-sts"),
            smarthost_ca_file=relay["smarthost_ca_file"] or None,
            smarthost_fingerprint=bytes.fromhex(relay["smarthost_fingerprint"]) or None),
        listeners=tuple(Listener(kind, protocol, address, implicit_tls)
                        for kind, protocol, section, key, implicit_tls in LISTENER_KEYS
                        for address in conf[section][key]),
        metrics=MetricsSettings(listen=conf["metrics"]["listen"],
                                allow_remote=conf["metrics"]["allow_remote"]),
        dkim=DkimSettings(sign=conf["dkim"]["sign"]),
        quota=QuotaLimits(storage=conf["quota"]["storage"], messages=conf["quota"]["messages"]),
    )


def masked(conf):
    """A copy of `conf` with secrets replaced, for `config show` and logs."""
    out = {s: dict(v) if isinstance(v, dict) else v for s, v in conf.items()}
    for section, key in SECRET_KEYS:
        if out.get(section, {}).get(key):
            out[section][key] = "********"
    return out


def render_defaults():
    """The spec as a documented example config file with every default filled in."""
    lines = ["# CleverMail configuration: every key with its default.", ""]
    spec, validator = _spec(), Validator(CHECKS)
    for section in spec.sections:
        lines.append(f"[{section}]")
        sub = spec[section]
        for key in sub.scalars:
            lines.extend(c.strip() for c in sub.comments.get(key, []) if c.strip())
            lines.append(f"{key} = {_ini(validator.get_default_value(sub[key]))}")
        lines.append("")
    return "\n".join(lines)


def format_config(conf):
    """Effective config (read_config's values) as INI text, secrets masked."""
    shown = masked(conf)
    lines = []
    for section in _spec().sections:
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_ini(value)}" for key, value in shown[section].items())
        lines.append("")
    return "\n".join(lines)


def _ini(value):
    """A checked value as the INI text that reads back to it."""
    if isinstance(value, list):     # one item needs its comma to stay a list
        return ", ".join(_ini(v) for v in value) + ("," if len(value) == 1 else "") or '""'
    if isinstance(value, tuple):    # host:port
        host, port = value
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "":
        return '""'
    return str(value)
