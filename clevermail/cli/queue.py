"""`clevermail queue`: inspect and steer the relay queue (works while the server runs),
at the level of Postfix's postqueue/postsuper and mox's `queue` commands.

One id everywhere: a verb takes the queue id of the client's "250 ... queued as <id>"
and of the logs (new entries are named by it), or an older entry's own name
(RelayQueue.resolve). Bulk verbs take the filters of `queue list` (--state,
--to-domain, --from, --older-than) or --all; with neither they refuse, so nothing
acts on the whole queue by accident. Every change is written to the admin log
(audit.py) with the entry's queue id, the verb and who ran it.
"""

import json
import os
import re
import sys

import click

from . import main
from .audit import record
from .common import config_option, load_settings

STATE_CHOICES = ("active", "deferred", "held", "bounce")     # relay.entry.STATES
_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Duration(click.ParamType):
    """'90s', '15m', '2h', '1d12h': seconds (a unit is required: '2' is ambiguous)."""
    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        text = str(value).strip().lower()
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            self.fail(f"{value!r} is not a duration (a number and a unit s, m, h or d; "
                      "for example 90s, 15m, 2h, 1d12h)", param, ctx)
        return float(sum(int(n) * _UNITS[u] for n, u in parts))


def filter_options(command):
    """The filters shared by list and the bulk verbs (all given must hold)."""
    for option in reversed([
        click.option("--state", type=click.Choice(STATE_CHOICES),
                     help="Entry state: active (new or due now), deferred (waiting to retry), "
                          "held, bounce (a bounce is being sent)."),
        click.option("--to-domain", metavar="DOMAIN", help="A recipient in this domain."),
        click.option("--from", "sender", metavar="SENDER",
                     help="Envelope sender: an address, a domain, or <> for reports."),
        click.option("--older-than", type=Duration(), metavar="DURATION",
                     help="Queued longer than this (90s, 15m, 2h, 1d)."),
    ]):
        command = option(command)
    return command


def _selector(state, to_domain, sender, older_than):
    from ..relay.select import Selector

    return Selector(state=state, to_domain=to_domain, sender=sender, older_than=older_than)


# -- queue ---------------------------------------------------------------------------
@main.group()
def queue():
    """Inspect and manage the relay queue (works while the server runs)."""


def _queue(ctx):
    from ..relay.queue import RelayQueue

    settings = load_settings(ctx)
    ctx.obj["settings"] = settings
    try:
        return RelayQueue(os.path.join(settings.server.data_dir, "queue"))
    except OSError as exc:
        _fail(ctx, f"cannot open the queue in {settings.server.data_dir}: "
                   f"{exc.strerror or exc}")


def _fail(ctx, message):
    click.echo(f"error: {message}", err=True)
    ctx.exit(1)


def _resolve(ctx, q, idents):
    """Entry names for the ids given; every unknown id is a one-line error and the
    command then does nothing (exit 1)."""
    from ..relay.queue import NoSuchEntry

    names, unknown = [], []
    for ident in idents:
        try:
            names += [n for n in q.resolve(ident) if n not in names]
        except NoSuchEntry:
            unknown.append(ident)
    for ident in unknown:
        click.echo(f"error: no queue entry {ident}", err=True)
    if unknown:
        ctx.exit(1)
    return names


def _get(ctx, q, name, ident):
    """The Entry of a resolved name; a damaged envelope or one gone meanwhile ends
    with exit 1."""
    from ..relay.queue import NoSuchEntry

    try:
        return q.get(name)
    except NoSuchEntry:
        _fail(ctx, f"no queue entry {ident}")
    except ValueError as exc:
        _fail(ctx, f"queue entry {ident} is damaged: {exc}")


@queue.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@filter_options
@config_option
@click.pass_context
def queue_list(ctx, as_json, state, to_domain, sender, older_than):
    """List queued messages with per-recipient state, then a summary line."""
    from ..relay.select import summarize

    q = _queue(ctx)
    now = q.clock()
    selector = _selector(state, to_domain, sender, older_than)
    entries = q.select(selector, now)
    if as_json:
        click.echo(json.dumps([{**e.to_json(), "state": e.state(now)} for e in entries], indent=2))
        return
    if selector.empty():
        summary = q.summary(now)
        if not entries and not summary.damaged:
            click.echo("queue is empty")
            return
    else:
        summary = summarize(entries, now)
        if not entries:
            click.echo(f"no entries match (queue: {q.summary(now).line()})")
            return
    for e in entries:
        click.echo(e.describe(now))
    click.echo(("matching: " if not selector.empty() else "") + summary.line())


@queue.command("show")
@click.argument("ident", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="The envelope and its history as JSON.")
@config_option
@click.pass_context
def queue_show(ctx, ident, as_json):
    """Show one entry: envelope, history, message headers."""
    from ..relay.queue import NoSuchEntry

    q = _queue(ctx)
    names = _resolve(ctx, q, [ident])
    entries = [_get(ctx, q, name, ident) for name in names]
    now = q.clock()
    if as_json:
        out = [{**e.to_json(), "state": e.state(now)} for e in entries]
        click.echo(json.dumps(out[0] if len(out) == 1 else out, indent=2))
        return
    for i, e in enumerate(entries):
        try:
            headers = q.read_headers(e.id).decode("utf-8", "replace").rstrip()
        except NoSuchEntry:
            headers = "(the message body is missing)"
        click.echo(("\n" if i else "") + e.describe(now, history=True))
        click.echo("\n" + headers)


@queue.command("dump")
@click.argument("ident", metavar="ID")
@config_option
@click.pass_context
def queue_dump(ctx, ident):
    """Write the queued message to standard output, byte for byte (cf. postcat -bh -q)."""
    from ..relay.queue import NoSuchEntry

    q = _queue(ctx)
    names = _resolve(ctx, q, [ident])
    if len(names) > 1:
        _fail(ctx, f"{ident} names {len(names)} entries ({', '.join(names)}): dump one of them")
    try:
        data = q.read_body(names[0])
    except NoSuchEntry:
        _fail(ctx, f"the message of queue entry {ident} is missing")
    out = sys.stdout.buffer
    out.write(data)
    out.flush()


# -- the verbs that change entries ------------------------------------------------------
def _targets(ctx, q, idents, selector, everything):
    """The entries a changing verb acts on: the ids given, the filter's matches, or
    (--all) every entry; exactly one of the three, or a one-line error."""
    if idents and (everything or not selector.empty()):
        _fail(ctx, "give queue ids or filters/--all, not both")
    if everything and not selector.empty():
        _fail(ctx, "--all means every entry: leave out the filters (or --all)")
    if idents:
        return _resolve(ctx, q, idents)
    if selector.empty() and not everything:
        _fail(ctx, "which entries? give queue ids, filters (--state, --to-domain, --from, "
                   "--older-than), or --all for every entry")
    # (a damaged envelope is left out here, with a log line: act on it by its id)
    return [e.id for e in q.select(selector)]


def _describe_scope(idents, selector, everything):
    if idents:
        return ""
    if everything:
        return "--all"
    parts = [f"--state {selector.state}" if selector.state else "",
             f"--to-domain {selector.to_domain}" if selector.to_domain else "",
             f"--from {selector.sender}" if selector.sender else "",
             f"--older-than {int(selector.older_than)}s" if selector.older_than is not None else ""]
    return " ".join(p for p in parts if p)


def changing_verb(name, help_text):
    """A verb over entries: IDS... | filters | --all, run `act(ctx, q, name, selector)`
    per entry, which returns (the line to print, the audit text or None)."""

    def decorate(act):
        @queue.command(name, help=help_text)
        @click.argument("idents", nargs=-1, metavar="[ID]...")
        @filter_options
        @click.option("--all", "everything", is_flag=True, help="Every entry in the queue.")
        @config_option
        @click.pass_context
        def command(ctx, idents, state, to_domain, sender, older_than, everything):
            from ..relay.queue import NoSuchEntry

            q = _queue(ctx)
            settings = ctx.obj["settings"]
            selector = _selector(state, to_domain, sender, older_than)
            names = _targets(ctx, q, idents, selector, everything)
            scope = _describe_scope(idents, selector, everything)
            failed = 0
            for entry_id in names:
                try:
                    qid = q.get(entry_id).queue_id
                except NoSuchEntry:
                    click.echo(f"error: no queue entry {entry_id} (gone meanwhile)", err=True)
                    failed += 1
                    continue
                except ValueError:
                    qid = "-"
                try:
                    line, audit = act(q, entry_id, selector)
                except NoSuchEntry:
                    click.echo(f"error: no queue entry {entry_id} (gone meanwhile)", err=True)
                    failed += 1
                    continue
                except ValueError as exc:
                    click.echo(f"error: queue entry {entry_id} is damaged: {exc}", err=True)
                    failed += 1
                    continue
                if audit:
                    entry = f" (entry {entry_id})" if entry_id != qid else ""
                    record(settings, f"queue {name} {scope}".rstrip(), "%s: %s%s", qid, audit, entry)
                if line:
                    click.echo(line)
            if not names:
                click.echo("no entries match")
            if failed:
                ctx.exit(1)
        return command
    return decorate


@changing_verb("flush", "Make entries due now; the running worker picks them up within a "
                        "second. Held entries stay held (release them).")
def queue_flush(q, entry_id, selector):
    if q.get(entry_id).held:
        return f"{entry_id} is held: not flushed (release it)", None
    n = q.flush(entry_id)
    return (f"{entry_id} due now", "flushed") if n else (f"{entry_id}: nothing to retry", None)


@changing_verb("delete", "Delete entries without delivering or bouncing them.")
def queue_delete(q, entry_id, selector):
    q.delete(entry_id)
    return f"deleted {entry_id}", "deleted from the queue"


@changing_verb("bounce", "Fail entries now: their undelivered recipients (with --to-domain, "
                         "those in that domain) are bounced to the sender; releases a hold.")
def queue_bounce(q, entry_id, selector):
    total = len(q.get(entry_id).active())
    n = q.mark_bounce(entry_id, only=selector.wants_recipient if selector.to_domain else None)
    if not n:
        return f"{entry_id}: nothing to bounce", None
    part = f" ({n} of {total} recipients)" if n != total else ""
    return f"{entry_id} will be bounced{part}", f"marked for bounce, {n} recipient(s)"


@changing_verb("hold", "Put entries on hold: never attempted, expired or reported until "
                       "released; time on hold does not count towards the queue lifetime.")
def queue_hold(q, entry_id, selector):
    if q.hold(entry_id):
        return f"held {entry_id}", "put on hold"
    return f"{entry_id} was already held", None


@changing_verb("release", "Release held entries: their recipients are due now.")
def queue_release(q, entry_id, selector):
    if q.release(entry_id):
        return f"released {entry_id}", "released from hold"
    return f"{entry_id} was not held", None
