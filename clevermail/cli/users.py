"""`clevermail user`: accounts in the users file (works while the server runs).

Never a traceback: a users file or data directory that cannot be written is a
one-line error and exit 1. `user add` is all or nothing: the mailbox is made first
(invisible without an account) and the account written last; if either fails, what
this command made is taken away again. Every change goes to the admin log (audit.py).
"""

import contextlib
import os
import shutil
import sys

import click

from ..accounts import AccountError
from . import main
from .audit import record
from .common import account_store, config_option, load_settings


# -- user ----------------------------------------------------------------------------
@main.group()
def user():
    """Manage accounts in users.ini (works while the server runs)."""


def _read_password(password_stdin, confirm=True):
    if password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    # default "": an empty answer comes back (and is refused with a message) instead
    # of click asking again without a word
    return click.prompt("Password", hide_input=True, confirmation_prompt=confirm,
                        default="", show_default=False)


def _fail(ctx, message):
    click.echo(f"error: {message}", err=True)
    ctx.exit(1)


def _os_error(exc):
    return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")


def _open_store(ctx, settings):
    from ..store import MailStore

    try:
        return MailStore(settings.server.data_dir)
    except OSError as exc:
        _fail(ctx, f"cannot use the data directory {settings.server.data_dir}: {_os_error(exc)}")


@user.command("add")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password as one line from standard input.")
@config_option
@click.pass_context
def user_add(ctx, name, password_stdin):
    """Add an account (NAME or NAME@domain; a bare name gets the first local domain)."""
    from ..store import StoreError

    settings = load_settings(ctx)
    accounts = account_store(settings)
    try:
        address = accounts.canonical(name)
        if accounts.lookup(address) is not None:
            raise AccountError(f"{address} already exists")
        password = _read_password(password_stdin)
        if not password:
            raise AccountError("empty password")
    except AccountError as exc:
        _fail(ctx, exc)
    store = _open_store(ctx, settings)
    root = store.user_root(address)
    # what this command makes, and only that, is taken away on failure: mail kept
    # from an earlier account of this name stays, always
    made = [d for d in (os.path.dirname(root), root) if not os.path.exists(d)]
    stage = f"the mailbox of {address} in {settings.server.data_dir}"
    try:
        store.ensure_user(address)
        stage = f"the users file {settings.server.users_file}"
        accounts.add(address, password)
    except (AccountError, StoreError, OSError) as exc:
        if root in made:
            shutil.rmtree(root, ignore_errors=True)
        if os.path.dirname(root) in made:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(root))      # only if empty: another user's is not
        if isinstance(exc, OSError):
            _fail(ctx, f"cannot add {address}: cannot write {stage}: {_os_error(exc)}")
        _fail(ctx, exc)
    record(settings, "user add", "%s: account added", address)
    click.echo(f"added {address}")


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
        address = _existing(accounts, name)
        accounts.set_password(address, _read_password(password_stdin))
    except AccountError as exc:
        _fail(ctx, exc)
    except OSError as exc:
        _fail(ctx, f"cannot write the users file {settings.server.users_file}: {_os_error(exc)}")
    record(settings, "user passwd", "%s: password changed", address)
    click.echo(f"password changed for {address}")


@user.command("del")
@click.argument("name")
@click.option("--keep-mail", is_flag=True, help="Keep the mailbox on disk.")
@click.option("--yes", "-y", is_flag=True, help="Delete the mail without asking.")
@config_option
@click.pass_context
def user_del(ctx, name, keep_mail, yes):
    """Delete an account (and, after confirmation, its mail)."""
    settings = load_settings(ctx)
    accounts = account_store(settings)
    try:
        address = _existing(accounts, name)
        delete_mail = not keep_mail and (yes or click.confirm(
            f"The account {address} will be deleted. Delete all mail of {address} too?",
            default=False))
        accounts.remove(address)
    except AccountError as exc:
        _fail(ctx, exc)
    except OSError as exc:
        _fail(ctx, f"cannot write the users file {settings.server.users_file}: {_os_error(exc)}")
    if not delete_mail:
        record(settings, "user del", "%s: account deleted, mail kept", address)
        click.echo(f"deleted {address} (mail kept)")
        return
    try:
        _open_store(ctx, settings).remove_user(address)
    except OSError as exc:
        record(settings, "user del", "%s: account deleted, its mail could not be removed", address)
        _fail(ctx, f"deleted {address}, but its mail could not be removed: {_os_error(exc)}")
    record(settings, "user del", "%s: account and mail deleted", address)
    click.echo(f"deleted {address} and its mail")


@user.command("list")
@click.option("--quota", "with_quota", is_flag=True, help="Show each account's quota and usage too.")
@config_option
@click.pass_context
def user_list(ctx, with_quota):
    """List accounts."""
    settings = load_settings(ctx)
    accounts = account_store(settings)
    store = _open_store(ctx, settings) if with_quota else None
    for address in accounts.list():
        if with_quota:
            click.echo(f"{address}\t{_quota_text(settings, accounts, store, address)}")
        else:
            click.echo(address)


# -- quota ---------------------------------------------------------------------------
def _quota_text(settings, accounts, store, address):
    """'storage 12M of 1G (from the default), messages 40 of none (own)' for one account."""
    from ..store.quota import format_messages, format_storage, user_limits

    own = accounts.quota_of(address)
    limits = user_limits(own, settings.quota)
    usage = store.quota.usage(address) if store is not None else None
    parts = []
    for i, (name, fmt) in enumerate((("storage", format_storage), ("messages", format_messages))):
        used = f"{usage[i]} used, " if usage is not None else ""
        origin = "default" if isinstance(own[i], str) else "own"
        parts.append(f"{name} {used}limit {fmt(limits[i])} ({origin})")
    return "; ".join(parts)


@user.command("quota")
@click.argument("name")
@click.option("--storage", help="Storage limit: bytes or a size like 500M, 1G; 'none' = no limit.")
@click.option("--messages", help="Message limit: a number; 'none' = no limit.")
@click.option("--none", "no_limit", is_flag=True, help="No limit at all for this account.")
@click.option("--default", "use_default", is_flag=True,
              help="Drop the account's own values: the [quota] defaults apply.")
@config_option
@click.pass_context
def user_quota(ctx, name, storage, messages, no_limit, use_default):
    """Show or set an account's mailbox quota (storage and messages over all its
    folders); without options, show it with the current usage."""
    from ..accounts import UNSET
    from ..store.quota import parse_messages, parse_storage

    settings = load_settings(ctx)
    accounts = account_store(settings)
    values = {}
    try:
        address = _existing(accounts, name)
        if no_limit + use_default + (storage is not None or messages is not None) > 1:
            raise AccountError("give --none, --default, or --storage/--messages")
        if no_limit or use_default:
            value = None if no_limit else UNSET
            values = {"storage": value, "messages": value}
        try:
            if storage is not None:
                values["storage"] = parse_storage(storage)
            if messages is not None:
                values["messages"] = parse_messages(messages)
        except ValueError as exc:
            raise AccountError(str(exc)) from None
        if values:
            accounts.set_quota(address, **values)
    except AccountError as exc:
        _fail(ctx, exc)
    except OSError as exc:
        _fail(ctx, f"cannot write the users file {settings.server.users_file}: {_os_error(exc)}")
    if values:
        record(settings, "user quota", "%s: quota set (%s)", address,
               ", ".join(f"{k} {v}" for k, v in values.items()))
    click.echo(f"{address}: {_quota_text(settings, accounts, _open_store(ctx, settings), address)}")


@user.command("show")
@click.argument("name")
@config_option
@click.pass_context
def user_show(ctx, name):
    """Show an account: its address, its mailbox quota and what it uses, and whether it
    can log in with SCRAM-SHA-256 (keys are written when a password is set)."""
    settings = load_settings(ctx)
    accounts = account_store(settings)
    try:
        address = _existing(accounts, name)
    except AccountError as exc:
        _fail(ctx, exc)
    store = _open_store(ctx, settings)
    click.echo(f"address: {address}")
    click.echo(f"mailbox: {store.user_root(address)}")
    click.echo(f"quota: {_quota_text(settings, accounts, store, address)}")
    keys = accounts.scram_credentials(address)[1]
    click.echo("scram-sha-256: " + ("yes" if keys is not None else "no (set the password again to add it)"))


def _existing(accounts, name):
    """The canonical address of account `name`; AccountError when there is none."""
    address = accounts.canonical(name)
    if accounts.lookup(address) is None:
        raise AccountError(f"no such account: {address}")
    return address
