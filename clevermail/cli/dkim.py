"""`clevermail dkim`: the DKIM keys of the local domains (dkim/keys.py).

    keygen DOMAIN [--selector BASE]   a new rsa + ed25519 pair (selectors BASEr, BASEe;
                                      BASE defaults to the month, YYYYMM); prints the
                                      zone-file lines to publish; a domain's first pair
                                      signs at once, a later one is pending
    activate DOMAIN SELECTOR [--force]
                                      switch signing to a pending pair (SELECTOR: the
                                      BASE, or one selector) once the configured resolver
                                      ([relay] nameservers) shows its records published
                                      with our keys; --force switches without looking
    list                              every domain's selectors, their state (signs,
                                      pending, old: keep published until deleted), records
    delete DOMAIN SELECTOR            forget an old or pending selector (never one that signs)

Rotation is publish-then-switch: keygen, publish, activate, and after a few days (mail
signed with the old key may still be verified) delete the old pair and its records.

A running server notices the change within a second (dkim/signer.py).
"""

import click

from ..accounts import AccountError, AccountStore, domain_to_ascii
from ..dkim.keys import DkimKeyError, KeyStore, key_dir, publishable
from ..dkim.records import same_key
from . import main
from .common import config_option, load_settings


def _store(settings):
    return KeyStore(key_dir(settings.server.data_dir))


def _local_domains(settings):
    # the A-labels the server signs for (as AccountStore spells [server] domains)
    return AccountStore(settings.server.users_file, settings.server.domains).domains


def _domain(ctx, domain):
    try:
        return domain_to_ascii(domain)
    except AccountError as exc:
        click.echo(f"clevermail dkim: {exc}", err=True)
        ctx.exit(1)


@main.group("dkim")
def dkim_group():
    """DKIM keys: make, list, delete; the DNS records to publish."""


@dkim_group.command("keygen")
@click.argument("domain")
@click.option("--selector", "base", default=None, metavar="BASE",
              help="Selector base: the keys are BASEr (rsa) and BASEe (ed25519); default YYYYMM.")
@config_option
@click.pass_context
def dkim_keygen(ctx, domain, base):
    """Make an rsa-sha256 and an ed25519-sha256 key for DOMAIN and print their records."""
    settings = load_settings(ctx)
    domain = _domain(ctx, domain)
    try:
        keys = _store(settings).generate(domain, base)
    except DkimKeyError as exc:
        click.echo(f"clevermail dkim: {exc}", err=True)
        ctx.exit(1)
    except OSError as exc:
        click.echo(f"clevermail dkim: {exc.filename}: {exc.strerror}", err=True)
        ctx.exit(1)
    names = ", ".join(k.selector.name for k in keys)
    if keys[0].selector.pending:
        base = keys[0].selector.name[:-1]
        click.echo(f"; DKIM keys for {domain}: the new selectors ({names}) are pending: publish "
                   f"these records, then `clevermail dkim activate {domain} {base}` switches "
                   "signing to them (it checks that they are published). Until then the keys "
                   "that sign now go on signing.")
    else:
        click.echo(f"; DKIM keys for {domain}: publish these records; the new selectors "
                   f"({names}) sign from now on.")
    if domain not in _local_domains(settings):
        click.echo(f"; note: {domain} is not in [server] domains: nothing is signed for it until it is.")
    for key in keys:
        click.echo(key.zone_line)


@dkim_group.command("list")
@config_option
@click.pass_context
def dkim_list(ctx):
    """Every domain's selectors (the newest of each algorithm signs) and their records."""
    settings = load_settings(ctx)
    store = _store(settings)
    local = _local_domains(settings)
    failed = False
    for domain in dict.fromkeys(local + store.domains()):
        try:
            selectors = store.selectors(domain)
        except DkimKeyError as exc:
            click.echo(f"{domain}: error: {exc}")
            failed = True
            continue
        note = "" if domain in local else " (not a local domain: not signed)"
        if not selectors:
            why = ("made at the next start" if publishable(domain)
                   else "none made: not a public DNS name")
            click.echo(f"{domain}: no keys ({why})")
            continue
        click.echo(f"{domain}{note}")
        active = store.active(selectors)
        records = []
        for s in selectors:
            state = STATES[store.state(s, active)]
            try:
                key = store.load(s)
            except DkimKeyError as exc:
                click.echo(f"  {s.name:<12} {s.algorithm:<8} {s.created}  error: {exc}")
                failed = True
                continue
            click.echo(f"  {s.name:<12} {s.algorithm:<8} {s.created}  {state}")
            records.append(key.zone_line)
        for line in records:
            click.echo(line)
    if failed:
        ctx.exit(1)


STATES = {"signs": "signs", "pending": "pending: publish, then `clevermail dkim activate`",
          "old": "old: keep published until deleted"}


@dkim_group.command("activate")
@click.argument("domain")
@click.argument("selector")
@click.option("--force", is_flag=True, help="Switch even when the records are not seen published.")
@config_option
@click.pass_context
def dkim_activate(ctx, domain, selector, force):
    """Sign DOMAIN's mail with SELECTOR (a keygen BASE: its rsa and ed25519 selectors;
    or one selector) once DNS publishes its keys; the keys that signed stay listed."""
    from ..inbound.dnsclient import DnsClient
    from ..relay.mx import make_resolver
    settings = load_settings(ctx)
    domain = _domain(ctx, domain)
    store = _store(settings)
    try:
        chosen = store.selectors_named(domain, selector)
        keys = [store.load(s) for s in chosen]
    except DkimKeyError as exc:
        click.echo(f"clevermail dkim: {exc}", err=True)
        ctx.exit(1)
    dns = DnsClient(make_resolver(settings.relay.nameservers, timeout=3.0, lifetime=8.0))
    wrong = [(key, why) for key in keys for why in [published_problem(dns, key)] if why]
    for key, why in wrong:
        click.echo(f"clevermail dkim: {why}; publish:\n{key.zone_line}", err=True)
    if wrong and not force:
        click.echo(f"clevermail dkim: not switched: {domain} signs with the keys it signed with "
                   "(--force switches anyway: receivers then fail the signatures until the "
                   "records are published)", err=True)
        ctx.exit(1)
    try:
        switched = store.activate(domain, [s.name for s in chosen])
    except DkimKeyError as exc:
        click.echo(f"clevermail dkim: {exc}", err=True)
        ctx.exit(1)
    listed = store.selectors(domain)
    old = [s.name for s in listed if store.state(s, store.active(listed)) == "old"]
    click.echo(f"{domain} now signs with {', '.join(s.name for s in switched)}"
               + (" (forced: records not seen published)" if wrong else ""))
    if old:
        click.echo(f"; keep the records of {', '.join(old)} published for a few days (mail signed "
                   f"with them is still verified), then `clevermail dkim delete {domain} SELECTOR` "
                   "and remove them")


def published_problem(dns, key):
    """Why `key`'s record is not (yet) what DNS publishes at its selector, or None."""
    from ..inbound.dnsclient import DnsTempError
    name = f"{key.selector.name}._domainkey.{key.selector.domain}"
    try:
        found = [r for r in dns.txt(name) if "p=" in r]
    except DnsTempError as exc:
        return f"{name}: the lookup failed ({exc})"
    if not found:
        return f"{name}: no key record published"
    if not any(same_key(key.record, r) for r in found):
        return f"{name} publishes another key than ours"
    return None


@dkim_group.command("delete")
@click.argument("domain")
@click.argument("selector")
@config_option
@click.pass_context
def dkim_delete(ctx, domain, selector):
    """Delete an old or pending SELECTOR of DOMAIN (its key file too); remove its record
    afterwards."""
    settings = load_settings(ctx)
    try:
        gone = _store(settings).delete(_domain(ctx, domain), selector)
    except DkimKeyError as exc:
        click.echo(f"clevermail dkim: {exc}", err=True)
        ctx.exit(1)
    click.echo(f"deleted {gone.domain} selector {gone.name} ({gone.algorithm}); "
               f"its DNS record can go now")
