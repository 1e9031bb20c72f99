"""`clevermail doctor`: what to publish in DNS and what is wrong, in one command
(doctor/checks.py does the checking, through the server's resolver, `[relay]
nameservers`).

    doctor [--address IP ...] [--json]   every check: ok / warn / FAIL, with the
                                         zone-file line to publish; exit 1 on a FAIL
    doctor --records DOMAIN              the zone-file lines DOMAIN should publish

--address names this server's public addresses when the host cannot know them (behind
NAT): the hostname must resolve to them, SPF must pass for them, their PTR must name
the hostname.  Without it, the hostname's own A/AAAA records are taken as ours.
"""

import json

import click

from ..accounts import AccountStore
from ..aliases import AliasStore
from ..dkim.keys import KeyStore, key_dir, publishable
from ..doctor import Doctor
from ..doctor import records as zone
from ..doctor.checks import FAIL, OK, WARN
from ..inbound.dnsclient import DnsClient, DnsTempError
from ..relay import mta_sts
from ..relay.mx import make_resolver
from ..routing import Router, RoutingError
from . import main
from .common import config_option, load_settings


def _doctor(settings, addresses):
    server = settings.server
    resolver = make_resolver(settings.relay.nameservers, timeout=3.0, lifetime=8.0)
    accounts = AccountStore(server.users_file, server.domains)
    router = Router(accounts, AliasStore(server.aliases_file, server.domains),
                    postmaster=server.postmaster, abuse=server.abuse,
                    separator=server.subaddress_separator)
    keys = KeyStore(key_dir(server.data_dir))

    def dkim(domain):
        # the keys that sign, then the pending ones (`dkim activate` looks them up)
        active = keys.load_active(domain)
        pending = [keys.load(s) for s in keys.selectors(domain) if s.pending]
        return ([(k.selector.name, k.record, k.zone_line, "signs") for _, k in sorted(active.items())]
                + [(k.selector.name, k.record, k.zone_line, "pending") for k in pending])

    def deliverable(address):
        try:
            route = router.resolve(address)
        except RoutingError as exc:
            return f"{exc.__class__.__name__}: {exc}"
        return None if route.accounts or route.external else "no destination"

    return Doctor(DnsClient(resolver), server.hostname,
                  [d for d in accounts.domains if publishable(d)], addresses=addresses,
                  dkim=dkim if settings.dkim.sign else None, certificate=server.certificate,
                  deliverable=deliverable,
                  mta_sts_fetch=mta_sts.Fetcher(resolver=resolver, timeout=10.0).fetch), keys


@main.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: every check, and a summary.")
@click.option("--records", "records_for", metavar="DOMAIN", default=None,
              help="Print the zone-file lines DOMAIN should publish, and nothing else.")
@click.option("--address", "addresses", multiple=True, metavar="IP",
              help="A public address of this server (repeat for IPv4 and IPv6).")
@config_option
@click.pass_context
def doctor(ctx, as_json, records_for, addresses):
    """Check the DNS records, reverse DNS, TLS certificate and role addresses of every
    local domain; print what to publish.  Exit 1 when a check fails."""
    settings = load_settings(ctx)
    try:
        doc, keys = _doctor(settings, addresses)
    except ValueError as exc:           # an --address that is no address
        click.echo(f"clevermail doctor: {exc}", err=True)
        ctx.exit(2)
    if records_for is not None:
        _print_records(doc, keys, records_for.lower().rstrip("."), settings.dkim.sign)
        return
    checks = doc.run()
    counts = {s: sum(1 for c in checks if c.status == s) for s in (OK, WARN, FAIL)}
    if as_json:
        click.echo(json.dumps({"hostname": doc.hostname, "domains": doc.domains,
                               "checks": [c.to_json() for c in checks], "summary": counts},
                              indent=2))
    else:
        scope = None
        for c in checks:
            if c.scope != scope:
                scope = c.scope
                click.echo(f"[{scope}]")
            click.echo(f"  {c.status.upper() if c.status == FAIL else c.status:<5} {c.name:<10} {c.detail}")
            for line in c.fix:
                click.echo(f"        {'publish: ' if not line.startswith(';') else ''}{line}")
        click.echo(f"{counts[OK]} ok, {counts[WARN]} warnings, {counts[FAIL]} failed")
    ctx.exit(1 if counts[FAIL] else 0)


def _print_records(doc, keys, domain, sign):
    try:
        addresses = doc.given or doc.host_addresses(doc.hostname)
    except DnsTempError:
        addresses = []
    dkim_lines = []
    if sign:
        try:
            dkim_lines = [k.zone_line for _, k in sorted(keys.load_active(domain).items())]
            # a pending pair is published before `dkim activate` switches to it
            dkim_lines += [keys.load(s).zone_line for s in keys.selectors(domain) if s.pending]
        except Exception as exc:
            dkim_lines = [f"; DKIM keys of {domain} cannot be loaded: {exc}"]
        if not dkim_lines:
            dkim_lines = [f"; no DKIM key yet: clevermail dkim keygen {domain}"]
    for line in zone.domain_records(domain, doc.hostname, addresses=addresses, spf_ips=doc.given,
                                    dkim_lines=dkim_lines):
        click.echo(line)
