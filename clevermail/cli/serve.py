"""`clevermail start|stop|reload`: the server in the foreground, and the signals that
stop it or make it re-read its config (through the pid file in the data directory);
`clevermail worker`, hidden: one of the processes of [server] workers (workers.py)."""

import logging
import os
import signal
import sys
import time

import click

from . import main
from .common import config_option, load_settings


# -- start -------------------------------------------------------------------------
@main.command()
@config_option
@click.pass_context
def start(ctx):
    """Run the server in the foreground until SIGINT or SIGTERM (SIGHUP reloads)."""
    from ..accept_share import NO_BOARD, LoadBoard
    from ..activation import ActivationError, listen_fds
    from ..lifecycle import Runner, Signals
    from ..logs import setup_logging
    from ..pidfile import AlreadyRunning, path_for, running
    from ..process import CPUS_ENV, encode_cpus, place, say_placed, settle_heap, tune_process, usable_cpus
    from ..sdnotify import Notifier
    from ..service import MailService, StartupError
    from ..workers import WorkerPool, worker_argv

    settings = load_settings(ctx, as_service_user=False)    # it drops privileges itself, after binding

    def fail(message):
        click.echo(f"clevermail: cannot start: {message}", err=True)
        ctx.exit(1)

    try:
        inherited = listen_fds()        # and LISTEN_* removed from the environment
    except ActivationError as exc:
        fail(f"socket activation: {exc}")
    try:
        pid = running(path_for(settings.server.data_dir))
    except OSError:
        pid = None          # unreadable: the start-up checks of the data directory say why
    if pid is not None:
        fail(f"clevermail is already running (pid {pid}, data in {settings.server.data_dir})")
    try:
        setup_logging(settings.server.log_level, settings.server.log_file,
                      log_format=settings.server.log_format)
    except OSError as exc:
        fail(f"log file {settings.server.log_file}: {exc.strerror}")
    # handlers first: a SIGTERM that arrives while the listeners start must still
    # lead to a clean stop, not to the default kill
    signals = Signals().install()
    notifier = Notifier()
    try:
        notifier.open()     # before the privileges go: see Notifier.open
    except OSError:
        pass                # said (once) by the first notification that fails
    try:
        tune_process()      # the serving process only, never a library user's or a test's
        cpus = usable_cpus()    # before this process keeps to one of them
        cpu = place(settings.server.cpu_affinity, 0, cpus)     # before any thread starts
        # [server] workers: the connections each process has open, shared out by
        board = LoadBoard.create(settings.server.workers) if settings.server.workers > 1 else NO_BOARD
        service = MailService(settings, inherited=inherited, board=board)
        try:
            service.start()
        except StartupError as exc:
            fail(str(exc))
        say_placed(cpu, cpus)
        settle_heap()
        if settings.server.workers > 1:
            # the other processes of [server] workers, on the sockets just bound
            service.pool = WorkerPool(service, settings.server.workers - 1,
                                      worker_argv(ctx.obj["config"]),
                                      environ={**os.environ, CPUS_ENV: encode_cpus(cpus)},
                                      board=board).start()
        try:
            Runner(service, signals, config_path=ctx.obj["config"], notifier=notifier).run()
        except AlreadyRunning as exc:      # another one started meanwhile on the same data
            if service.pool is not None:
                service.pool.stop(0.0)
            service.stop()
            fail(str(exc))
    finally:
        signals.restore()
        notifier.close()
    _exit_stopped()


@main.command(hidden=True)
@config_option
@click.pass_context
def worker(ctx):
    """One worker process of [server] workers, started by `clevermail start` with the
    listening sockets (workers.py); not for use by hand."""
    from ..config import ConfigError, load_config
    from ..lifecycle import Runner, Signals
    from ..logs import setup_logging
    from ..accept_share import LoadBoard
    from ..process import place, say_placed, settle_heap, tune_process, usable_cpus
    from ..service import MailService, StartupError
    from ..workers import WorkerError, inherited

    try:
        mine = inherited()
    except WorkerError as exc:
        click.echo(f"clevermail worker: {exc}", err=True)
        ctx.exit(1)
    if mine is None:
        click.echo("clevermail worker: started by `clevermail start` with [server] workers > 1, "
                   "not by hand", err=True)
        ctx.exit(2)
    index, sockets = mine
    signals = Signals().install()       # before anything: a stop during start-up is clean
    try:
        try:
            settings = load_config(ctx.obj["config"])
            setup_logging(settings.server.log_level, settings.server.log_file,
                          log_format=settings.server.log_format)
        except (ConfigError, OSError) as exc:
            click.echo(f"clevermail worker {index}: cannot start: {exc}", err=True)
            ctx.exit(1)
        tune_process()
        cpus = usable_cpus()
        cpu = place(settings.server.cpu_affinity, index, cpus)
        service = MailService(settings, inherited=sockets, worker_index=index,
                              board=LoadBoard.inherited(index))
        try:
            service.start()
        except StartupError as exc:
            click.echo(f"clevermail worker {index}: cannot start: {exc}", err=True)
            ctx.exit(1)
        say_placed(cpu, cpus)
        settle_heap()
        Runner(service, signals, config_path=ctx.obj["config"]).run()
    finally:
        signals.restore()
    _exit_stopped()


def _exit_stopped():
    """End the process once the service has stopped cleanly (indexes and caches
    saved, pid file released): the log is flushed and closed, and the interpreter's
    teardown is skipped.  It collected and freed every object left, which after 10,000
    sessions took 0.55 s of CPU, 1.6-2.2 s on a loaded machine, of a stop that must end
    within [server] drain_time (issue 18); os._exit: 0.06 s."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)


# -- stop, reload -------------------------------------------------------------------------
def _running_pid(ctx, settings):
    """The pid of the server using this config's data directory; exits 1 if none."""
    from ..pidfile import path_for, running, stale_pid

    path = path_for(settings.server.data_dir)
    pid = running(path)
    if pid is None:
        stale = stale_pid(path)
        why = (f"stale pid file {path} (process {stale} is gone)" if stale else f"no pid file at {path}")
        click.echo(f"clevermail: not running ({why})", err=True)
        ctx.exit(1)
    return pid


def _signal(ctx, pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        click.echo(f"clevermail: not running (process {pid} is gone)", err=True)
        ctx.exit(1)
    except PermissionError:
        click.echo(f"clevermail: cannot signal process {pid}: permission denied (run as root or as its user)",
                   err=True)
        ctx.exit(1)


@main.command()
@config_option
@click.option("--timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Seconds to wait for the server to exit.")
@click.pass_context
def stop(ctx, timeout):
    """Stop the running server (SIGTERM) and wait until it has exited."""
    from ..pidfile import process_gone

    settings = load_settings(ctx)
    pid = _running_pid(ctx, settings)
    _signal(ctx, pid, signal.SIGTERM)
    click.echo(f"clevermail: sent SIGTERM to pid {pid}; waiting for it to exit")
    deadline = time.monotonic() + timeout
    while not process_gone(pid):
        if time.monotonic() > deadline:
            click.echo(f"clevermail: pid {pid} is still running after {timeout:g} s", err=True)
            ctx.exit(1)
        time.sleep(0.1)
    click.echo(f"clevermail: stopped (pid {pid})")


@main.command()
@config_option
@click.pass_context
def reload(ctx):
    """Make the running server re-read its config file (SIGHUP)."""
    settings = load_settings(ctx)
    pid = _running_pid(ctx, settings)
    _signal(ctx, pid, signal.SIGHUP)
    click.echo(f"clevermail: sent SIGHUP to pid {pid}: it re-reads its config file "
               "(its log says what changed, and what needs a restart)")
