"""What every `clevermail` sub-command shares: the --config option (accepted before
or after the sub-command) and loading the settings with one-line errors."""

import os

import click

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


def load_settings(ctx, loader=load_config):
    """The Settings of the config in use (or, with loader=read_config, its values);
    a bad config lists every problem and exits 2."""
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
    return conf


def account_store(settings):
    return AccountStore(settings.server.users_file, settings.server.domains)
