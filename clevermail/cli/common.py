"""What every `clevermail` sub-command shares: the --config option (accepted before
or after the sub-command) and loading the settings with one-line errors."""

import os

import click

from .. import privileges
from ..accounts import AccountStore
from ..config import CONFIG_ENV, ConfigError, load_config

CONFIG_HELP = "Config file (default: $CLEVERMAIL_CONFIG, else built-in defaults)."


def config_option(command):
    """`--config` on a sub-command too (`clevermail user add --config F NAME`): the
    last one given wins, as with any repeated option."""

    def remember(ctx, param, value):
        if value is not None:
            ctx.obj["config"] = value
        return value

    return click.option("--config", type=click.Path(dir_okay=False), default=None, expose_value=False,
                        callback=remember, help=CONFIG_HELP)(command)


def load_settings(ctx, loader=load_config, as_service_user=True):
    """The Settings of the config in use (or, with loader=read_config, its values);
    a bad config lists every problem and exits 2.  Run as root with a `[server] user`
    configured, the command then continues as that user (see become_service_user),
    unless `as_service_user` is False (`start` drops privileges itself)."""
    try:
        conf = loader(ctx.obj["config"])
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"config error: {problem}", err=True)
        ctx.exit(2)
    if ctx.obj["config"] is None and not os.environ.get(CONFIG_ENV):
        # The trap of a forgotten --config: a shell in the wrong directory would
        # silently get its own users file and data; say which ones (one line, stderr).
        if isinstance(conf, dict):               # read_config's plain values
            users_file, data_dir = conf["server"]["users_file"], conf["server"]["data_dir"]
        else:
            users_file, data_dir = conf.server.users_file, conf.server.data_dir
        click.echo(f"using built-in defaults (no --config, no {CONFIG_ENV}): users file "
                   f"{users_file}, data {data_dir}", err=True)
    if as_service_user and not isinstance(conf, dict):
        become_service_user(ctx, conf.server)
    return conf


def become_service_user(ctx, server):
    """Run as root, a command that writes the server's files (users.ini, aliases.ini,
    the queue, mailboxes, keys) would leave them root's, and a server that runs as
    `[server] user` could no longer read them.  So the command becomes that user
    first, as the server does after binding its ports; a data dir or users-file folder
    that does not exist yet is made for that user before the switch."""
    try:
        run_as = privileges.plan(server.user, server.group)
        if run_as is None:
            return
        for folder in (server.data_dir, os.path.dirname(os.path.abspath(server.users_file))):
            _make_for(os.path.abspath(folder), run_as)
        privileges.drop(run_as)
    except (privileges.PrivilegeError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)


def _make_for(folder, run_as):
    """Create `folder` and its missing parents, each one owned by run_as."""
    missing = []
    while not os.path.isdir(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    for path in reversed(missing):
        os.mkdir(path, 0o750)
        os.chown(path, run_as.uid, run_as.gid)


def account_store(settings):
    return AccountStore(settings.server.users_file, settings.server.domains)
