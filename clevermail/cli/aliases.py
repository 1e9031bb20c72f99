"""`clevermail alias`: addresses that are not accounts (aliases.ini beside users.ini;
works while the server runs, which sees a change at its next lookup)."""

import json
import logging

import click

from ..aliases import AliasError, AliasStore
from ..routing import Router, RoutingError
from . import main
from .common import account_store, config_option, load_settings

log = logging.getLogger("clevermail.admin")


def _stores(ctx):
    settings = load_settings(ctx)
    server = settings.server
    accounts = account_store(settings)
    aliases = AliasStore(server.aliases_file, server.domains)
    return accounts, aliases, Router(accounts, aliases, postmaster=server.postmaster,
                                     abuse=server.abuse, separator=server.subaddress_separator)


@main.group()
def alias():
    """Aliases: lists, forwards and catch-alls (@domain) of the local domains."""


@alias.command("add")
@click.argument("address")
@click.argument("targets", nargs=-1, required=True)
@config_option
@click.pass_context
def alias_add(ctx, address, targets):
    """Add ADDRESS (or @domain, the catch-all) delivering to TARGETS: local accounts,
    other aliases or external addresses (forwarded with SRS)."""
    accounts, aliases, router = _stores(ctx)
    try:
        name, now = aliases.add(address, targets)
    except (AliasError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    log.info("alias %s set to %s (clevermail alias add)", name, ", ".join(now))
    click.echo(f"{name} -> {', '.join(now)}")
    for target in now:
        domain = target.rpartition("@")[2]
        if router.is_local_domain(domain):
            try:
                router.resolve(target)
            except RoutingError:
                click.echo(f"warning: {target} is neither an account nor an alias (yet)", err=True)


@alias.command("del")
@click.argument("address")
@click.argument("targets", nargs=-1)
@config_option
@click.pass_context
def alias_del(ctx, address, targets):
    """Delete ADDRESS, or only the given TARGETS of it."""
    _, aliases, _ = _stores(ctx)
    try:
        name, left = aliases.remove(address, targets)
    except (AliasError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    if left:
        log.info("alias %s now %s (clevermail alias del)", name, ", ".join(left))
        click.echo(f"{name} -> {', '.join(left)}")
    else:
        log.info("alias %s deleted (clevermail alias del)", name)
        click.echo(f"deleted {name}")


@alias.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@config_option
@click.pass_context
def alias_list(ctx, as_json):
    """List aliases and their targets."""
    _, aliases, _ = _stores(ctx)
    table = aliases.list()
    if as_json:
        click.echo(json.dumps({name: list(targets) for name, targets in table}, indent=2))
        return
    for name, targets in table:
        click.echo(f"{name} -> {', '.join(targets)}")
