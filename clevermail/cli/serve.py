"""`clevermail start`: the server in the foreground until SIGINT or SIGTERM."""

import signal
import threading

import click

from .. import __version__
from . import main
from .common import config_option, load_settings


# -- start -------------------------------------------------------------------------
@main.command()
@config_option
@click.pass_context
def start(ctx):
    """Run the server in the foreground until SIGINT or SIGTERM."""
    from ..logs import setup_logging
    from ..process import tune_process
    from ..service import MailService, StartupError

    settings = load_settings(ctx)
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
