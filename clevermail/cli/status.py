"""`clevermail status`: ask the running server (its control socket, control.py) how
it is.  Exit codes as LSB init scripts and systemctl status: 0 running, 3 not
running, 4 status unknown (something answers, but not with a status).

When nothing answers on the control socket but a live server holds the pid file
(pidfile.py: a server that could not bind its socket, e.g. a second instance on the
data directory), it is running: exit 0 with only its pid to show."""

import json
import time

import click

from ..control import NotRunning, request, socket_path
from ..pidfile import path_for, running
from . import main
from .common import config_option, load_settings

RUNNING, NOT_RUNNING, UNKNOWN = 0, 3, 4


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (one JSON object).")
@click.pass_context
def status(ctx, as_json):
    """Show whether the server runs, its listeners, sessions, queue and last errors."""
    settings = load_settings(ctx)
    path = socket_path(settings.server.data_dir)
    try:
        answer = request(path, "status")
        if not isinstance(answer, dict) or answer.get("running") is not True:
            raise ValueError(answer.get("error", "no status in the answer") if isinstance(answer, dict)
                             else "not a JSON object")
    except NotRunning as exc:
        try:
            pid = running(path_for(settings.server.data_dir))
        except OSError:
            pid = None
        if pid is not None:
            why = f"its control socket does not answer: {exc}"
            click.echo(json.dumps({"running": True, "pid": pid, "reason": why}) if as_json
                       else f"clevermail is running (pid {pid}, from its pid file), but {why}")
            ctx.exit(RUNNING)
        if as_json:
            click.echo(json.dumps({"running": False, "reason": str(exc)}))
        else:
            click.echo(f"clevermail is not running ({exc})")
        ctx.exit(NOT_RUNNING)
    except (OSError, ValueError) as exc:
        if as_json:
            click.echo(json.dumps({"running": None, "reason": str(exc)}))
        else:
            click.echo(f"clevermail status unknown: {exc}", err=True)
        ctx.exit(UNKNOWN)
    click.echo(json.dumps(answer, indent=2) if as_json else format_status(answer))
    ctx.exit(RUNNING)


def span(seconds):
    """'3d 4h', '2h 5m', '4m 10s', '12s'."""
    s = int(max(0, seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d {h}h"
    if h:
        return f"{h}h {m}m"
    return f"{m}m {s}s" if m else f"{s}s"


def format_status(st):
    """The status answer as lines for a person."""
    started = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(st["started"]))
    lines = [f"clevermail {st['version']} is running (pid {st['pid']}), up {span(st['uptime'])} "
             f"since {started}",
             f"config: {st['config']}; data: {st['data_dir']}"]
    listeners = ", ".join(f"{item['kind']} {_where(item['address'], item['port'])}"
                          for item in st["listeners"])
    lines.append(f"listening: {listeners or 'nothing'}")
    lines.append(f"metrics: {st['metrics'] or 'off'}")
    lines.append("open sessions: " + ", ".join(f"{p} {n}" for p, n in st["sessions"].items()))
    for w in st.get("workers", ()):
        state = "running" if w["alive"] else "not running (restarting)"
        sessions = w.get("sessions")
        count = f", {sum(sessions.values())} sessions" if sessions else ""
        restarts = f", restarted {w['restarts']} times" if w["restarts"] else ""
        lines.append(f"worker {w['index']}: pid {w['pid']}, {state}{count}{restarts}")
    queue = st["queue"]
    if "error" in queue:
        lines.append(f"queue: cannot be read: {queue['error']}")
    else:
        lines.append(f"queue: {queue['line']}")     # RelayQueue.summary's own line
    errors = st["errors"]
    lines.append(f"recent warnings and errors: {len(errors) or 'none'}")
    for e in errors:
        extra = f" ({e['exception']})" if e.get("exception") else ""
        lines.append(f"  {e['time']} {e['level']} {e['logger']}: {e['message']}{extra}")
    return "\n".join(lines)


def _where(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
