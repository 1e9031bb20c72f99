"""`clevermail trace ID`: every event of a message from the logs and its queue entry
(clevermail/trace/): the SMTP session that accepted it, each local delivery, each relay
attempt, the bounce, each IMAP/POP3 retrieval."""

import json
import os
import time
from datetime import datetime, timezone

import click

from . import main
from .common import config_option, load_settings
from .queue import Duration


class When(click.ParamType):
    """An ISO 8601 time ('2026-12-03T09:00', '2026-12-03 09:00:00+01:00'; no zone: local
    time) or a duration back from now ('30m', '2h', '1d')."""
    name = "time"

    def convert(self, value, param, ctx):
        if isinstance(value, datetime):
            return value
        try:
            seconds = Duration().convert(value, param, ctx)
        except click.BadParameter:
            try:
                when = datetime.fromisoformat(value)
            except ValueError:
                self.fail(f"{value!r} is neither a time (2026-12-03T09:00) nor a duration (2h)",
                          param, ctx)
            return when if when.tzinfo else when.astimezone()
        return datetime.fromtimestamp(time.time() - seconds, timezone.utc)


@main.command()
@click.argument("ident", metavar="ID")
@click.option("--since", type=When(), default=None, help="Only messages accepted at or after this (time or '2h').")
@click.option("--until", type=When(), default=None, help="Only messages accepted at or before this.")
@click.option("--log", "logs", multiple=True, type=click.Path(dir_okay=False),
              help="Log file to read, .gz too (repeatable; default: [server] log_file and its rotated copies).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (one JSON object).")
@config_option
@click.pass_context
def trace(ctx, ident, since, until, logs, as_json):
    """Show the life of a message: ID is a queue id, a Message-ID, or an address (all
    messages from or to it, within --since/--until)."""
    from ..relay.queue import RelayQueue
    from ..trace.finder import queue_ids
    from ..trace.finder import trace as trace_one
    from ..trace.records import LogError, read_logs, rotated

    settings = load_settings(ctx)
    log_file = settings.server.log_file
    paths = list(logs) or (rotated(log_file) if log_file else [])
    if not paths:
        click.echo("clevermail trace: no log to read: set [server] log_file or give --log", err=True)
        ctx.exit(2)
    try:
        records, read = read_logs(paths)
    except LogError as exc:
        click.echo(f"clevermail trace: {exc}", err=True)
        ctx.exit(2)
    if not read:
        click.echo(f"clevermail trace: no log file found ({', '.join(paths)})", err=True)
        ctx.exit(2)
    data_dir = settings.server.data_dir
    queue = RelayQueue(os.path.join(data_dir, "queue")) if os.path.isdir(os.path.join(data_dir, "queue")) else None
    traces = [trace_one(records, qid, queue)
              for qid in queue_ids(records, ident, since, until, queue)]
    if as_json:
        click.echo(json.dumps({"query": ident, "logs": read, "messages": [t.to_json() for t in traces]},
                              indent=2, ensure_ascii=False))
    else:
        click.echo(render(traces), nl=False)
    if not traces:
        if not as_json:
            click.echo(f"clevermail trace: nothing found for {ident!r} in {', '.join(read)}", err=True)
        ctx.exit(1)


def render(traces):
    out = []
    for t in traces:
        head = f"message {t.queue_id}"
        if t.message_id:
            head += f"  {t.message_id}"
        out.append(head)
        if t.sender or t.recipients:
            out.append(f"  from <{t.sender}> to " + ", ".join(f"<{a}>" for a in t.recipients))
        for e in t.events:
            r = e.record
            source = f"{r.protocol} {r.session} {r.peer}" if r.session else r.logger.rpartition(".")[2]
            line = f"  {r.time.isoformat(timespec='milliseconds')}  {source:<28} {r.message}"
            out.append(line + (f"  ({e.note})" if e.note else ""))
        for entry in t.queue:
            out.append(f"  queue entry {entry.get('id')}: " + ", ".join(
                f"<{r['address']}> {r['state']}" for r in entry.get("recipients", [])))
        if not t.events and not t.queue:
            out.append("  (no events in the logs)")
        out.append("")
    return "\n".join(out) + ("\n" if out else "")
