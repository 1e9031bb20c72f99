"""`clevermail queue`: inspect and steer the relay queue (works while the server runs)."""

import json
import logging
import os
import time

import click

from . import main
from .common import config_option, load_settings


# -- queue ---------------------------------------------------------------------------
@main.group()
def queue():
    """Inspect and manage the relay queue (works while the server runs)."""


def _queue(ctx):
    from ..relay.queue import RelayQueue

    return RelayQueue(os.path.join(load_settings(ctx).server.data_dir, "queue"))


@queue.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@config_option
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
    from ..relay.queue import NoSuchEntry

    try:
        return action(_queue(ctx))
    except (NoSuchEntry, FileNotFoundError):
        click.echo(f"error: no queue entry {entry_id}", err=True)
    except ValueError as exc:
        click.echo(f"error: queue entry {entry_id} is damaged: {exc}", err=True)
    ctx.exit(1)


@queue.command("show")
@click.argument("entry_id")
@config_option
@click.pass_context
def queue_show(ctx, entry_id):
    """Show one entry: envelope, history, message headers."""
    entry, headers = _on_entry(ctx, entry_id, lambda q: (q.get(entry_id), q.read_headers(entry_id)))
    click.echo(entry.describe(history=True))
    click.echo("\n" + headers.decode("utf-8", "replace").rstrip())


@queue.command("flush")
@click.argument("entry_id", required=False)
@config_option
@click.pass_context
def queue_flush(ctx, entry_id):
    """Make one entry (or all) due now; the running worker picks them up within a second."""
    n = _on_entry(ctx, entry_id, lambda q: q.flush(entry_id))
    click.echo(f"{n} entr{'y' if n == 1 else 'ies'} due now")


@queue.command("delete")
@click.argument("entry_id")
@config_option
@click.pass_context
def queue_delete(ctx, entry_id):
    """Delete an entry without delivering or bouncing it."""
    qid = _on_entry(ctx, entry_id, lambda q: q.delete(entry_id))
    logging.getLogger("clevermail.relay").info("%s: entry %s deleted from the queue", qid, entry_id)
    click.echo(f"deleted {entry_id}")


@queue.command("bounce")
@click.argument("entry_id")
@config_option
@click.pass_context
def queue_bounce(ctx, entry_id):
    """Fail an entry now: its undelivered recipients are bounced to the sender."""
    _on_entry(ctx, entry_id, lambda q: q.mark_bounce(entry_id))
    click.echo(f"{entry_id} will be bounced")
