"""`clevermail sieve`: users' Sieve scripts (RFC 5228) under their mail root, the
same store the ManageSieve server uses (sieve/scripts.py); works while the server
runs, which reads the active script at each delivery.

    put USER NAME FILE|-     store a script after a full syntax check
    get USER NAME            print it
    list USER                names, the active one marked
    activate USER NAME       make it the one that runs (--none, or deactivate USER)
    delete USER NAME         remove it (not the active one)
    check FILE|-             the syntax check alone: errors with their line, exit 1

Changes go to the admin log (audit.py).  Errors are one line and exit 1.
"""

import sys

import click

from ..accounts import AccountError
from ..sieve import SieveSyntaxError, parse
from ..sieve.errors import SieveError
from ..sieve.scripts import SieveScripts
from . import main
from .audit import record
from .common import account_store, config_option, load_settings


def _fail(ctx, message):
    click.echo(f"error: {message}", err=True)
    ctx.exit(1)


def _open(ctx, user):
    """(settings, SieveScripts, the account's canonical address)."""
    settings = load_settings(ctx)
    accounts = account_store(settings)
    try:
        account = accounts.lookup(accounts.canonical(user))
    except AccountError as exc:
        _fail(ctx, str(exc))
    if account is None:
        _fail(ctx, f"no such account: {user}")
    scripts = SieveScripts.for_data_dir(settings.server.data_dir, max_scripts=settings.sieve.max_scripts,
                                        max_size=settings.sieve.max_script_size)
    return settings, scripts, account.address


def _read(ctx, source):
    try:
        if source == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(source, "rb") as f:
                data = f.read()
        return data.decode("utf-8")
    except OSError as exc:
        _fail(ctx, f"cannot read {source}: {exc.strerror or exc}")
    except UnicodeDecodeError:
        _fail(ctx, f"{source}: a script must be UTF-8")


def _checked(ctx, source, text):
    try:
        return parse(text)
    except SieveSyntaxError as exc:
        where = f"{source}:{exc.line}: " if exc.line else f"{source}: "
        click.echo(f"{where}error: {exc.message}", err=True)
        ctx.exit(1)


@main.group()
def sieve():
    """Users' Sieve filters (works while the server runs)."""


@sieve.command("check")
@click.argument("source", metavar="FILE|-")
@config_option
@click.pass_context
def sieve_check(ctx, source):
    """Check a script's syntax: errors with their line, exit 1 on error."""
    script = _checked(ctx, source, _read(ctx, source))
    used = ", ".join(sorted(script.extensions)) or "none"
    click.echo(f"{source}: ok (extensions: {used})")


@sieve.command("put")
@click.argument("user")
@click.argument("name")
@click.argument("source", metavar="FILE|-")
@config_option
@click.pass_context
def sieve_put(ctx, user, name, source):
    """Store script NAME of USER from FILE (or standard input) after a syntax check."""
    settings, scripts, address = _open(ctx, user)
    text = _read(ctx, source)
    _checked(ctx, source, text)
    try:
        scripts.put(address, name, text)
    except (SieveError, OSError) as exc:
        _fail(ctx, str(exc))
    record(settings, "sieve put", "%s: sieve script %r stored", address, name)
    click.echo(f"{address}: stored {name}")


@sieve.command("get")
@click.argument("user")
@click.argument("name")
@config_option
@click.pass_context
def sieve_get(ctx, user, name):
    """Print script NAME of USER."""
    _, scripts, address = _open(ctx, user)
    try:
        click.echo(scripts.get(address, name), nl=False)
    except (SieveError, OSError) as exc:
        _fail(ctx, str(exc))


@sieve.command("list")
@click.argument("user")
@config_option
@click.pass_context
def sieve_list(ctx, user):
    """List USER's scripts; the active one is marked."""
    _, scripts, address = _open(ctx, user)
    try:
        for name, active in scripts.list(address):
            click.echo(f"{name}{'  (active)' if active else ''}")
    except (SieveError, OSError) as exc:
        _fail(ctx, str(exc))


def _activate(ctx, user, name):
    settings, scripts, address = _open(ctx, user)
    try:
        if name is not None:
            # never make a script active that the delivery could not run
            _checked(ctx, name, scripts.get(address, name))
        scripts.activate(address, name)
    except (SieveError, OSError) as exc:
        _fail(ctx, str(exc))
    if name is None:
        record(settings, "sieve deactivate", "%s: sieve scripts deactivated", address)
        click.echo(f"{address}: no active script")
    else:
        record(settings, "sieve activate", "%s: sieve script %r activated", address, name)
        click.echo(f"{address}: {name} is active")


@sieve.command("activate")
@click.argument("user")
@click.argument("name", required=False)
@click.option("--none", "none", is_flag=True, help="Deactivate: no script runs.")
@config_option
@click.pass_context
def sieve_activate(ctx, user, name, none):
    """Make script NAME the one that runs for USER (--none: no script)."""
    if none == (name is not None):
        _fail(ctx, "give a script NAME or --none")
    _activate(ctx, user, None if none else name)


@sieve.command("deactivate")
@click.argument("user")
@config_option
@click.pass_context
def sieve_deactivate(ctx, user):
    """No script runs for USER."""
    _activate(ctx, user, None)


@sieve.command("delete")
@click.argument("user")
@click.argument("name")
@config_option
@click.pass_context
def sieve_delete(ctx, user, name):
    """Delete script NAME of USER (not the active one)."""
    settings, scripts, address = _open(ctx, user)
    try:
        scripts.delete(address, name)
    except (SieveError, OSError) as exc:
        _fail(ctx, str(exc))
    record(settings, "sieve delete", "%s: sieve script %r deleted", address, name)
    click.echo(f"{address}: deleted {name}")
