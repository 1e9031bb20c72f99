"""`clevermail user`: accounts in the users file (works while the server runs)."""

import sys

import click

from ..accounts import AccountError
from . import main
from .common import account_store, config_option, load_settings


# -- user ----------------------------------------------------------------------------
@main.group()
def user():
    """Manage accounts in users.ini (works while the server runs)."""


def _read_password(password_stdin, confirm=True):
    if password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=confirm)


@user.command("add")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password as one line from standard input.")
@config_option
@click.pass_context
def user_add(ctx, name, password_stdin):
    """Add an account (NAME or NAME@domain; a bare name gets the first local domain)."""
    from ..store import MailStore, StoreError

    settings = load_settings(ctx)
    accounts = account_store(settings)
    try:
        accounts.canonical(name)
        account = accounts.add(name, _read_password(password_stdin))
        MailStore(settings.server.data_dir).ensure_user(account.address)
    except (AccountError, StoreError) as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    click.echo(f"added {account.address}")


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password as one line from standard input.")
@config_option
@click.pass_context
def user_passwd(ctx, name, password_stdin):
    """Set a new password for an account."""
    settings = load_settings(ctx)
    accounts = account_store(settings)
    try:
        address = accounts.canonical(name)
        if accounts.lookup(address) is None:
            raise AccountError(f"no such account: {address}")
        accounts.set_password(address, _read_password(password_stdin))
    except AccountError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    click.echo(f"password changed for {address}")


@user.command("del")
@click.argument("name")
@click.option("--keep-mail", is_flag=True, help="Keep the mailbox on disk.")
@click.option("--yes", "-y", is_flag=True, help="Delete the mail without asking.")
@config_option
@click.pass_context
def user_del(ctx, name, keep_mail, yes):
    """Delete an account (and, after confirmation, its mail)."""
    from ..store import MailStore

    settings = load_settings(ctx)
    accounts = account_store(settings)
    try:
        address = accounts.canonical(name)
        if accounts.lookup(address) is None:
            raise AccountError(f"no such account: {address}")
        delete_mail = not keep_mail and (yes or click.confirm(f"Delete all mail of {address} too?", default=False))
        accounts.remove(address)
    except AccountError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    if delete_mail:
        MailStore(settings.server.data_dir).remove_user(address)
        click.echo(f"deleted {address} and its mail")
    else:
        click.echo(f"deleted {address} (mail kept)")


@user.command("list")
@config_option
@click.pass_context
def user_list(ctx):
    """List accounts."""
    for address in account_store(load_settings(ctx)).list():
        click.echo(address)
