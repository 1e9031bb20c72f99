"""`clevermail import` and `clevermail export`: moving an account's mail in from a
Maildir, Maildir++ tree, mbox file or directory of mbox files, and out as a Maildir++
tree (clevermail/migrate/).
Both work while the server runs."""

import contextlib
import sys

import click

from ..accounts import AccountError
from . import main
from .common import account_store, config_option, load_settings


def _account(ctx, settings, user):
    """The canonical address of an existing account, or a one-line error (exit 1)."""
    accounts = account_store(settings)
    try:
        address = accounts.canonical(user)
        if accounts.lookup(address) is None:
            raise AccountError(f"no such account: {address} (add it first: clevermail user add {user})")
    except AccountError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    return address


@contextlib.contextmanager
def _progress(total, label):
    """A step() for the work loop: a progress bar when stdout is a terminal."""
    if not sys.stdout.isatty() or not total:
        yield None
        return
    with click.progressbar(length=total, label=label) as bar:
        yield lambda: bar.update(1)


@main.command("import")
@click.argument("user")
@click.argument("path", type=click.Path(exists=True))
@click.option("--folder", default="INBOX", show_default=True,
              help="Folder that receives an mbox, or a Maildir's INBOX (its folders go below it).")
@config_option
@click.pass_context
def import_mail(ctx, user, path, folder):
    """Import PATH into USER's account: a Maildir, a Maildir++ tree, an mbox file or a
    directory of mbox files (mutt's ~/Mail, Thunderbird's Mail/<account>).

    Flags, keywords and internal dates are kept and missing folders created; a
    message already in its folder (same date and bytes) is skipped, so running an
    import again adds nothing.  Exits 1 when a damaged message was skipped."""
    from ..migrate.importer import Importer, SourceError, read_source
    from ..store import MailStore, StoreError
    from ..store.paths import split_folder

    settings = load_settings(ctx)
    address = _account(ctx, settings, user)
    try:
        split_folder(folder)
        source = read_source(path, "INBOX" if folder.upper() == "INBOX" else folder)
    except (SourceError, StoreError) as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    for place in source.ignored:
        click.echo(f"ignored {place}: not a mail folder", err=True)
    for place, reason in source.problems:
        click.echo(f"skipped {place}: {reason}", err=True)
    importer = Importer(MailStore(settings.server.data_dir), address)
    total = sum(len(f.messages) for f in source.folders)
    try:
        with _progress(total, f"importing into {address}") as step:
            report = importer.run(source.folders, step)
    except (OSError, StoreError) as exc:
        click.echo(f"error: import stopped: {exc} (messages imported before this are kept; "
                   f"running the import again skips them)", err=True)
        ctx.exit(1)
    for place, reason in report.damaged:
        click.echo(f"skipped {place}: {reason}", err=True)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(report.summary())
    if report.damaged or source.problems:
        ctx.exit(1)


@main.command("export")
@click.argument("user")
@click.argument("dir", type=click.Path())
@config_option
@click.pass_context
def export_mail(ctx, user, dir):
    """Write USER's folders to DIR as a Maildir++ tree (mutt -f DIR reads it).

    DIR must not exist or be empty.  Flags are in the file names, keywords in each
    folder's dovecot-keywords, internal dates are the files' mtimes."""
    from ..migrate.export import ExportError, Exporter, check_target
    from ..store import MailStore, StoreError

    settings = load_settings(ctx)
    address = _account(ctx, settings, user)
    exporter = Exporter(MailStore(settings.server.data_dir), address)
    try:
        check_target(dir)
        folders = exporter.folders()
        with _progress(sum(n for _, n in folders), f"exporting {address}") as step:
            report = exporter.run(dir, [name for name, _ in folders], step)
    except ExportError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    except (OSError, StoreError) as exc:
        click.echo(f"error: export stopped: {exc}", err=True)
        ctx.exit(1)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(report.summary())
