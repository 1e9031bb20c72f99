"""The `clevermail` command (click): start, user, queue, config.

Each command loads the config, calls one function of the package, and prints.  No
protocol logic lives here.  Errors a user can cause (bad config, taken port, unknown
account) end with a one-line message and a non-zero exit, never a traceback.
"""

import json
import logging
import os
import signal
import sys
import threading
import time

import click

from . import __version__
from .accounts import AccountError, AccountStore
from .config import ConfigError, format_config, load_config, read_config, render_defaults


def _load(ctx, loader=load_config):
    """The Settings of the config in use (or, with loader=read_config, its values)."""
    try:
        return loader(ctx.obj["config"])
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"config error: {problem}", err=True)
        ctx.exit(2)


def _accounts(settings):
    return AccountStore(settings.server.users_file, settings.server.domains)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Config file (default: $CLEVERMAIL_CONFIG, else built-in defaults).")
@click.version_option(__version__, prog_name="clevermail")
@click.pass_context
def main(ctx, config_path):
    """CleverMail: SMTP, POP3 and IMAP server with a relay queue."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config_path


# -- start -------------------------------------------------------------------------
@main.command()
@click.pass_context
def start(ctx):
    """Run the server in the foreground until SIGINT or SIGTERM."""
    from .logs import setup_logging
    from .process import tune_process
    from .service import MailService, StartupError

    settings = _load(ctx)
    try:
        setup_logging(settings.server.log_level, settings.server.log_file)
    except OSError as exc:
        click.echo(f"clevermail: cannot start: log file {settings.server.log_file}: {exc.strerror}", err=True)
        ctx.exit(1)
    # handlers first: a SIGTERM that arrives while the listeners start must still
    # lead to a clean stop, not to the default kill
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    tune_process()      # the serving process only, never a library user's or a test's
    service = MailService(settings)
    try:
        service.start()
    except StartupError as exc:
        click.echo(f"clevermail: cannot start: {exc}", err=True)
        ctx.exit(1)
    listening = ", ".join(f"{kind} {port}" for kind, ports in service.ports.items() for port in ports)
    click.echo(f"clevermail {__version__} running ({listening}); data in {settings.server.data_dir}. "
               "Ctrl-C stops.", err=True)
    while not stop.wait(1.0):
        pass
    click.echo("clevermail: stopping", err=True)
    service.stop()


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
@click.pass_context
def user_add(ctx, name, password_stdin):
    """Add an account (NAME or NAME@domain; a bare name gets the first local domain)."""
    from .store import MailStore, StoreError

    settings = _load(ctx)
    accounts = _accounts(settings)
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
@click.pass_context
def user_passwd(ctx, name, password_stdin):
    """Set a new password for an account."""
    settings = _load(ctx)
    accounts = _accounts(settings)
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
@click.pass_context
def user_del(ctx, name, keep_mail, yes):
    """Delete an account (and, after confirmation, its mail)."""
    from .store import MailStore

    settings = _load(ctx)
    accounts = _accounts(settings)
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
@click.pass_context
def user_list(ctx):
    """List accounts."""
    for address in _accounts(_load(ctx)).list():
        click.echo(address)


# -- queue ---------------------------------------------------------------------------
@main.group()
def queue():
    """Inspect and manage the relay queue (works while the server runs)."""


def _queue(ctx):
    from .relay.queue import RelayQueue

    return RelayQueue(os.path.join(_load(ctx).server.data_dir, "queue"))


@queue.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def queue_list(ctx, as_json):
    """List queued messages with per-recipient state."""
    entries = _queue(ctx).list()
    if as_json:
        click.echo(json.dumps([e.to_json() for e in entries], indent=2))
        return
    if not entries:
        click.echo("queue is empty")
        return
    now = time.time()
    for e in entries:
        click.echo(e.describe(now))


def _on_entry(ctx, entry_id, action):
    """Run `action(queue)` for one entry; unknown or damaged entries end with exit 1."""
    from .relay.queue import NoSuchEntry

    try:
        return action(_queue(ctx))
    except (NoSuchEntry, FileNotFoundError):
        click.echo(f"error: no queue entry {entry_id}", err=True)
    except ValueError as exc:
        click.echo(f"error: queue entry {entry_id} is damaged: {exc}", err=True)
    ctx.exit(1)


@queue.command("show")
@click.argument("entry_id")
@click.pass_context
def queue_show(ctx, entry_id):
    """Show one entry: envelope, history, message headers."""
    entry, headers = _on_entry(ctx, entry_id, lambda q: (q.get(entry_id), q.read_headers(entry_id)))
    click.echo(entry.describe(history=True))
    click.echo("\n" + headers.decode("utf-8", "replace").rstrip())


@queue.command("flush")
@click.argument("entry_id", required=False)
@click.pass_context
def queue_flush(ctx, entry_id):
    """Make one entry (or all) due now; the running worker picks them up within a second."""
    n = _on_entry(ctx, entry_id, lambda q: q.flush(entry_id))
    click.echo(f"{n} entr{'y' if n == 1 else 'ies'} due now")


@queue.command("delete")
@click.argument("entry_id")
@click.pass_context
def queue_delete(ctx, entry_id):
    """Delete an entry without delivering or bouncing it."""
    qid = _on_entry(ctx, entry_id, lambda q: q.delete(entry_id))
    logging.getLogger("clevermail.relay").info("%s: entry %s deleted from the queue", qid, entry_id)
    click.echo(f"deleted {entry_id}")


@queue.command("bounce")
@click.argument("entry_id")
@click.pass_context
def queue_bounce(ctx, entry_id):
    """Fail an entry now: its undelivered recipients are bounced to the sender."""
    _on_entry(ctx, entry_id, lambda q: q.mark_bounce(entry_id))
    click.echo(f"{entry_id} will be bounced")


# -- config ----------------------------------------------------------------------------
@main.group("config")
def config_group():
    """Check and show configuration."""


@config_group.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@click.pass_context
def config_check(ctx, path):
    """Validate a config file (default: the one in use); lists every problem."""
    try:
        load_config(path or ctx.obj["config"])
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        ctx.exit(1)
    click.echo("config ok")


@config_group.command("show")
@click.option("--defaults", is_flag=True, help="Print a documented example file with every default.")
@click.pass_context
def config_show(ctx, defaults):
    """Print the effective configuration (secrets masked)."""
    if defaults:
        click.echo(render_defaults())
        return
    click.echo(format_config(_load(ctx, read_config)))


if __name__ == "__main__":
    main()
