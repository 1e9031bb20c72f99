"""`clevermail dkim`: the DKIM keys of the local domains (dkim/keys.py).

    keygen DOMAIN [--selector BASE]   a new rsa + ed25519 pair (selectors BASEr, BASEe;
                                      BASE defaults to the month, YYYYMM); prints the
                                      zone-file lines to publish; the pair signs from now on
    list                              every domain's selectors, which sign, their records
    delete DOMAIN SELECTOR            forget an old selector (never the one that signs)

A running server notices the change within a second (dkim/signer.py).
"""

import click

from ..accounts import AccountError, AccountStore, domain_to_ascii
from ..dkim.keys import DkimKeyError, KeyStore, key_dir, publishable
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
    click.echo(f"; DKIM keys for {domain}: publish these records; the new selectors "
               f"({', '.join(k.selector.name for k in keys)}) sign from now on.")
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
            state = "signs" if active[s.algorithm] == s else "old: keep published until deleted"
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


@dkim_group.command("delete")
@click.argument("domain")
@click.argument("selector")
@config_option
@click.pass_context
def dkim_delete(ctx, domain, selector):
    """Delete an old SELECTOR of DOMAIN (its key file too); remove its record afterwards."""
    settings = load_settings(ctx)
    try:
        gone = _store(settings).delete(_domain(ctx, domain), selector)
    except DkimKeyError as exc:
        click.echo(f"clevermail dkim: {exc}", err=True)
        ctx.exit(1)
    click.echo(f"deleted {gone.domain} selector {gone.name} ({gone.algorithm}); "
               f"its DNS record can go now")
