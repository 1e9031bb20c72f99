"""Reloading a running MailService (SIGHUP, `clevermail reload`): the new settings
applied where they can change under running sessions, each one frozen object swapped by
reference (a session sees the old or the new, never half of each), and a note for
every change that needs a restart (listeners, paths, the relay's threads and resolver).

`apply(service, settings)` is MailService.reload's work, kept apart because reloading is
its own job: what may change live and how each layer takes it.
"""

import logging
from dataclasses import fields

from .config import LISTENER_KEYS
from .dkim.keys import DkimKeyError, ensure_keys
from .logs import reopen as reopen_logs
from .service_parts import make_defence, make_inbound

log = logging.getLogger("clevermail.service")

# [server] keys reload() applies to the running service; any other key that changed is
# named as needing a restart (a key added later is safe by default).
LIVE_SERVER_KEYS = frozenset({"hostname", "domains", "postmaster", "abuse", "subaddress_separator",
                              "log_level", "certificate", "key", "drain_time"})
# RelaySettings fields the worker cannot take live (its thread pool, its resolver).
RESTART_RELAY_KEYS = {"concurrency": "concurrency", "nameservers": "nameservers",
                      "dnssec": "dnssec"}     # the resolver asks for the AD bit: built at start
# Where ServerSettings fields come from in the file, for the notes.
SERVER_SECTION = {"certificate": "tls", "key": "tls"}
# Settings layers reload() knows; another layer that changed is named as needing a restart.
RELOADED_LAYERS = frozenset({"source", "server", "limits", "policy", "login", "relay", "listeners",
                             "senders", "inbound", "spam", "quota", "sieve"})


def _listen(settings, section, key):
    """The addresses of one listener key ([smtp] listen, ...) in `settings`."""
    kinds = {k for k, _, s, name, _ in LISTENER_KEYS if (s, name) == (section, key)}
    return [listener.address for listener in settings.listeners if listener.kind in kinds]


def _reload_dkim(service):
    """A local domain added by the reload gets its keys (logged, as at first start)
    and is signed for; a key that cannot be read leaves the signer as it was."""
    signer = getattr(service, "signer", None)
    if signer is None or tuple(service.accounts.domains) == signer.domains:
        return []
    try:
        ensure_keys(signer.store, service.accounts.domains, logging.getLogger("clevermail.dkim"))
        old, signer.domains = signer.domains, tuple(service.accounts.domains)
        try:
            signer.reload()
        except DkimKeyError:
            signer.domains = old
            raise
    except (DkimKeyError, OSError) as exc:
        return [f"[dkim] keys for the new domains not loaded ({exc}): signing as before"]
    return []

def apply(service, settings):
    """Apply a new, already validated configuration (config.load_config's Settings)
    to the running service; returns notes, one a line, naming what changed but
    takes a restart (listeners, paths, the relay's threads and resolver) or could
    not be applied.  Each change is one reference swapped: new sessions see the new
    values; a session already running keeps its TLS and its timeouts."""
    old, service.settings = service.settings, settings
    notes = restart_notes(service.running, settings)
    server = settings.server
    service.accounts.reload(server.domains)      # users.ini re-read now, domains too
    service.aliases.reload(server.domains)       # aliases.ini at its next lookup
    service.handlers["smtp"].postmaster = server.postmaster
    service.router.postmaster, service.router.abuse = server.postmaster, server.abuse
    service.router.separator = server.subaddress_separator
    # the same throttle (the failures counted so far stay), with the new numbers
    service.throttle.limit = settings.login.failures_per_client
    service.throttle.window = settings.login.failure_window
    for kind, srv in service.servers:
        srv.hostname = server.hostname
        srv.limits = settings.limits[srv.protocol]
        srv.policy = settings.policy
    if service.worker is not None:
        service.worker.update_settings(settings.relay)
    notes += _reload_dkim(service)
    smtp = service.handlers["smtp"]
    smtp.senders = service._make_sender_identity(settings)
    # [sieve]: the next script stored and the next message filtered use them
    service.sieve_scripts.max_scripts = settings.sieve.max_scripts
    service.sieve_scripts.max_size = settings.sieve.max_script_size
    service.sieve.limits = settings.sieve.limits
    service.handlers["managesieve"].max_redirects = settings.sieve.limits.max_redirects
    service.send_quota.set_limits(settings.senders.messages_per_hour, settings.senders.recipients_per_hour)
    smtp.inbound = make_inbound(settings, service.dns, service.accounts.is_local_domain, service.metrics)
    previous, service.defence = service.defence, make_defence(settings, service.dns, service.metrics,
                                                          service.defence)
    if previous.greylist is not None and previous.greylist is not service.defence.greylist:
        service._retired.append(previous)      # sessions may still use it: closed at stop
    smtp.defence = service.defence
    if server.certificate or old.server.certificate:
        notes += _reload_tls(service, server)
    logging.getLogger("clevermail").setLevel(server.log_level)
    reopen_logs()
    log.info("configuration reloaded from %s", settings.source)
    return notes                    # the caller logs or prints them (lifecycle.py)

def _reload_tls(service, server):
    """Load the configured pair now, changed or not (its files may be new)."""
    try:
        service.tls.replace(server.certificate, server.key)
    except (OSError, ValueError) as exc:
        return [f"[tls] certificate/key not loaded ({exc}): the certificate loaded before stays in use"]
    log.info("TLS certificate %s loaded", server.certificate or "(none)")
    return []

def restart_notes(running, new):
    """One note per changed setting that only a restart applies."""
    notes = []
    for _, _, section, key, _ in LISTENER_KEYS:
        if _listen(running, section, key) != _listen(new, section, key):
            notes.append(f"[{section}] {key} changed: restart to apply")
    for f in fields(new.server):
        if f.name not in LIVE_SERVER_KEYS and getattr(running.server, f.name) != getattr(new.server, f.name):
            notes.append(f"[{SERVER_SECTION.get(f.name, 'server')}] {f.name} changed: restart to apply")
    for key, name in RESTART_RELAY_KEYS.items():
        if getattr(running.relay, key) != getattr(new.relay, key):
            notes.append(f"[relay] {name} changed: restart to apply")
    for f in fields(new):
        if f.name not in RELOADED_LAYERS and getattr(running, f.name) != getattr(new, f.name):
            notes.append(f"[{f.name}] changed: restart to apply")
    return notes
