"""Configuration: the one schema (defaults, types, help), its loader, and the typed
settings each layer is built from.

CONFIGSPEC (config_schema.py) is the single source of defaults: with no file at all the server
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
from .config_schema import CONFIGSPEC
from .config_types import CHECKS, is_loopback
from .store.quota import QuotaLimits
from .settings import (DkimSettings, Listener, LoginSettings, MetricsSettings, SenderSettings,
                       ServerSettings, Settings, SieveSettings)
from .sieve.interp import SieveLimits

CONFIG_ENV = "CLEVERMAIL_CONFIG"

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
    if conf["sieve"]["vacation_min_days"] > conf["sieve"]["vacation_max_days"]:
        problems.append("[sieve] vacation_min_days: more than vacation_max_days")
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


def _sieve_settings(sieve):
    return SieveSettings(
        max_scripts=sieve["max_scripts"], max_script_size=sieve["max_script_size"],
        limits=SieveLimits(max_actions=sieve["max_actions"], max_redirects=sieve["max_redirects"],
                           vacation_min_days=sieve["vacation_min_days"],
                           vacation_max_days=sieve["vacation_max_days"]))


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
            cpu_affinity=server["cpu_affinity"],
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
        sieve=_sieve_settings(conf["sieve"]),
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
