"""What every `clevermail` sub-command shares: the --config option (accepted before
or after the sub-command) and loading the settings with one-line errors."""

import click

from ..accounts import AccountStore
from ..config import ConfigError, load_config

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
        return loader(ctx.obj["config"])
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"config error: {problem}", err=True)
        ctx.exit(2)


def account_store(settings):
    return AccountStore(settings.server.users_file, settings.server.domains)
