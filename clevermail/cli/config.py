"""`clevermail config`: check a config file, show the effective one or the defaults."""

import click

from ..accounts import AccountStore
from ..config import ConfigError, format_config, load_config, read_config, render_defaults
from ..dkim.keys import KeyStore, key_dir
from . import main
from .common import config_option, load_settings


# -- config ----------------------------------------------------------------------------
@main.group("config")
def config_group():
    """Check and show configuration."""


@config_group.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@config_option
@click.pass_context
def config_check(ctx, path):
    """Validate a config file (default: the one in use); lists every problem, then
    warnings ("warning: ..."; the check still passes). Beyond the schema: TLS
    certificate and key files (readable, a matching pair), domain and host names."""
    from ..config_check import tls_problems, warnings

    try:
        settings = load_config(path or ctx.obj["config"])
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        ctx.exit(1)
    problems = tls_problems(settings.server.certificate, settings.server.key)
    for problem in problems:
        click.echo(f"{settings.source}: {problem}", err=True)
    keys = dkim_problems(settings)
    for problem in keys:
        click.echo(f"[dkim]: {problem}", err=True)
    if problems or keys:
        ctx.exit(1)
    for warning in warnings(settings):
        click.echo(f"warning: {warning}", err=True)
    click.echo("config ok")


def dkim_problems(settings):
    """The DKIM keys the server would refuse to start with (dkim/keys.py)."""
    if not settings.dkim.sign:
        return []
    domains = AccountStore(settings.server.users_file, settings.server.domains).domains
    return KeyStore(key_dir(settings.server.data_dir)).problems(domains)


@config_group.command("show")
@click.option("--defaults", is_flag=True, help="Print a documented example file with every default.")
@config_option
@click.pass_context
def config_show(ctx, defaults):
    """Print the effective configuration (secrets masked)."""
    if defaults:
        click.echo(render_defaults())
        return
    click.echo(format_config(load_settings(ctx, read_config)))
