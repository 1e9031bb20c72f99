"""Configuration: the one schema (defaults, types, help) and its loader.

CONFIGSPEC below is the single source of defaults: with no file at all the server
runs on it (unprivileged loopback ports, data under the working directory).  A file
given with `--config` or CLEVERMAIL_CONFIG is an INI file read by configobj and
checked against the spec by `validate`; every problem is collected and reported at
once as "file: [section] key: why", never as a traceback.

Only cli.py and service.py read configuration; everything else takes plain
constructor arguments built from the dict returned here.
"""

import ipaddress
import os
import socket

from configobj import ConfigObj, flatten_errors, get_extra_values
from validate import ValidateError, Validator, VdtValueError

CONFIG_ENV = "CLEVERMAIL_CONFIG"

# Each key is preceded by its help text; `clevermail config show --defaults` prints
# this as a documented example file, so keep the help to one or two lines.
CONFIGSPEC = """
[server]
# Name this server gives itself in greetings, Received headers and EHLO ("" = the machine's FQDN).
hostname = string(default='')
# Where mailboxes (mail/) and the relay queue (queue/) live; relative paths are taken from the config file's folder (or the working directory).
data_dir = string(default='maildata')
# The account file shared by SMTP, POP3 and IMAP.
users_file = string(default='users.ini')
# Domains whose mail is delivered here; the first one is used for bare user names.
domains = force_list(default=list('localhost'))
# Also log to this file ("" = stderr only).
log_file = string(default='')
log_level = option('DEBUG', 'INFO', 'WARNING', 'ERROR', default='INFO')
# Clients in these networks may relay without authenticating (CIDR list). Empty = nobody: never an open relay.
trusted_networks = cidr_list(default=list())
# Account that gets mail for postmaster@<any local domain> when no such account exists (RFC 5321 4.5.1; "" = the first account in users.ini).
postmaster = string(default='')
# Allow AUTH/LOGIN/USER-PASS without TLS from non-loopback clients. Leave off unless behind a TLS proxy.
allow_plaintext_auth = boolean(default=False)

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

[tls]
# PEM certificate chain and private key; both set = STARTTLS/STLS offered and TLS listeners allowed.
certificate = string(default='')
key = string(default='')

[limits]
# Largest message accepted (bytes), advertised as SMTP SIZE and used as the IMAP literal limit.
message_size = integer(min=1024, default=26214400)
# Recipients per SMTP transaction (452 past it).
recipients = integer(min=1, default=100)
# Concurrent connections per protocol listener group, and per client address.
connections = integer(min=1, default=1000)
connections_per_client = integer(min=1, default=50)
# Idle timeouts in seconds (RFC 5321 suggests 5 min, RFC 1939 10 min, RFC 3501 at least 30 min).
smtp_timeout = float(min=1, default=300)
pop3_timeout = float(min=1, default=600)
imap_timeout = float(min=1, default=1800)
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
# DNS servers for MX lookups ("host" or "host:port"); empty = the system's resolver.
nameservers = force_list(default=list())
# Port used to reach MX hosts (25 on the internet; tests and staging use sinks elsewhere).
mx_port = integer(min=1, max=65535, default=25)
# Send all external mail through this host:port instead of MX lookup ("" = direct delivery).
smarthost = string(default='')
smarthost_user = string(default='')
smarthost_password = string(default='')
smarthost_tls = option('none', 'starttls', 'implicit', default='starttls')
# Seconds between delivery attempts; the last value repeats (jitter is added).
retry_schedule = int_list(min=1, default=list(300, 600, 1200, 2400, 4800, 9600, 14400))
# Seconds after which an undelivered recipient fails and is bounced.
queue_lifetime = integer(min=60, default=432000)
# Seconds after which the sender is warned of a delay (0 = never).
delay_warning = integer(min=0, default=0)
# Deliveries run in parallel (one slow domain does not hold up the others).
concurrency = integer(min=1, max=64, default=4)
# Seconds to wait for an MX host or smarthost to answer a connection.
connect_timeout = float(min=1, default=30)
"""

SECRET_KEYS = {("relay", "smarthost_password")}
PATH_KEYS = (("server", "data_dir"), ("server", "users_file"), ("server", "log_file"),
             ("tls", "certificate"), ("tls", "key"))


class ConfigError(Exception):
    """Every problem found in a configuration, one line each."""

    def __init__(self, problems):
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def parse_hostport(value):
    """'host:port' or '[v6]:port' -> (host, port); raises ValueError."""
    value = value.strip()
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        if not sep:
            raise ValueError(f"{value!r} is not [address]:port")
    else:
        host, sep, port = value.rpartition(":")
        if not sep or ":" in host:
            raise ValueError(f"{value!r} is not host:port (IPv6 goes in brackets)")
    if not host:
        raise ValueError(f"{value!r} has no host")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} has no valid port")
    return host, int(port)


def _listen_list(value):
    if isinstance(value, str):
        value = [value] if value.strip() else []
    try:
        return [parse_hostport(v) for v in value]
    except ValueError as exc:
        raise VdtValueError(str(exc)) from None


def _cidr_list(value):
    if isinstance(value, str):
        value = [value] if value.strip() else []
    try:
        return [ipaddress.ip_network(v.strip(), strict=False) for v in value]
    except ValueError as exc:
        raise VdtValueError(str(exc)) from None


def _spec():
    return ConfigObj(CONFIGSPEC.splitlines(), list_values=False, _inspec=True)


def load_config(path=None, overrides=None):
    """Read, validate and complete a configuration.

    `path` None means: CLEVERMAIL_CONFIG if set, else embedded defaults only.
    `overrides` is a nested dict applied over the file (tests build config this way).
    Returns a plain nested dict; raises ConfigError listing every problem.
    """
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

    validator = Validator({"listen_list": _listen_list, "cidr_list": _cidr_list})
    result = cfg.validate(validator, preserve_errors=True)
    problems = []
    for sections, key, error in flatten_errors(cfg, result):
        where = "[" + "/".join(sections) + "]" + (f" {key}" if key else "")
        why = str(error) if isinstance(error, (ValidateError, Exception)) else "missing section"
        problems.append(f"{source}: {where}: {why}")
    for sections, name in get_extra_values(cfg):
        where = "[" + "/".join(sections) + "]" if sections else "top level"
        problems.append(f"{source}: {where}: unknown key or section {name!r}")
    base = os.path.dirname(os.path.abspath(path)) if path else os.getcwd()
    conf = cfg.dict()
    if not problems:
        # `nameservers = ""` (as `config show --defaults` writes it) means none, not ['']
        conf["relay"]["nameservers"] = [n.strip() for n in conf["relay"]["nameservers"] if n.strip()]
        problems.extend(f"{source}: {p}" for p in _check_semantics(conf))
    if problems:
        raise ConfigError(problems)
    for section, key in PATH_KEYS:
        if conf[section][key]:
            conf[section][key] = os.path.normpath(os.path.join(base, conf[section][key]))
    conf["server"]["hostname"] = conf["server"]["hostname"] or socket.getfqdn()
    conf["server"]["domains"] = [d.strip().lower() for d in conf["server"]["domains"]]
    conf["source"] = source
    return conf


def _check_semantics(conf):
    """Rules that span keys, which the per-key checks cannot see."""
    problems = []
    if not conf["server"]["domains"] or not all(d.strip() for d in conf["server"]["domains"]):
        problems.append("[server] domains: at least one local domain is needed")
    tls = conf["tls"]
    if bool(tls["certificate"]) != bool(tls["key"]):
        problems.append("[tls]: certificate and key must be set together")
    needs_tls = [f"[{s}] {k}" for s, k in (("smtp", "submissions_listen"), ("pop3", "tls_listen"),
                                           ("imap", "tls_listen")) if conf[s][k]]
    if needs_tls and not tls["certificate"]:
        problems.append(f"{', '.join(needs_tls)}: TLS listeners need [tls] certificate and key")
    relay = conf["relay"]
    if relay["smarthost"]:
        try:
            parse_hostport(relay["smarthost"])
        except ValueError as exc:
            problems.append(f"[relay] smarthost: {exc}")
    for ns in relay["nameservers"]:
        host = ns.strip()
        try:
            if host.startswith("[") or host.count(":") == 1:
                host = parse_hostport(host)[0]
            ipaddress.ip_address(host)
        except ValueError:
            problems.append(f"[relay] nameservers: {ns!r} is not an address or address:port")
    return problems


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
    spec = _spec()
    for section in spec.sections:
        lines.append(f"[{section}]")
        sub = spec[section]
        for key in sub.scalars:
            for comment in sub.comments.get(key, []):
                if comment.strip():
                    lines.append(comment.strip())
            lines.append(f"{key} = {_default_text(sub[key])}")
        lines.append("")
    return "\n".join(lines)


def _default_text(check):
    """Turn "integer(min=1, default=100)" into the INI text of its default."""
    start = check.find("default=")
    if start < 0:
        return ""
    text = check[start + len("default="):check.rfind(")")]
    if text.startswith("list(") and text.endswith(")"):
        items = [i.strip().strip("'") for i in text[5:-1].split(",") if i.strip()]
        return ", ".join(items) if len(items) > 1 else (items[0] + "," if items else '""')
    return text.strip("'") if text not in ("''",) else '""'


def format_config(conf):
    """Effective config as INI text (secrets masked)."""
    shown = masked(conf)
    lines = []
    for section in _spec().sections:
        lines.append(f"[{section}]")
        for key, value in shown[section].items():
            if isinstance(value, list):
                value = ", ".join(_show(v) for v in value) + ("," if len(value) == 1 else "")
                value = value or '""'
            elif isinstance(value, bool):
                value = "yes" if value else "no"
            lines.append(f"{key} = {value}")
        lines.append("")
    return "\n".join(lines)


def _show(value):
    if isinstance(value, tuple):
        host, port = value
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(value)
