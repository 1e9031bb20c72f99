"""The `clevermail` command (click): the group and its sub-commands, one module per
group of verbs.

Each command loads the config, calls one function of the package, and prints.  No
protocol logic lives here.  Errors a user can cause (bad config, taken port, unknown
account) end with a one-line message and a non-zero exit, never a traceback.

    serve.py    start (the server in the foreground), stop, reload
    users.py    user add|passwd|del|list
    aliases.py  alias add|del|list
    queue.py    queue list|show|dump|flush|delete|bounce|hold|release
    config.py   config check|show
    mailboxes.py  import (Maildir, Maildir++, mbox) and export (Maildir++)
    status.py   status (asks the running server over its control socket)
    dkim.py     dkim keygen|list|delete
    doctor.py   doctor (DNS records, reverse DNS, certificate, role addresses: what to publish)
    sieve.py    sieve put|get|list|activate|deactivate|delete|check (users' filters)
    sandbox.py  sandbox (a capture-everything server for testing applications)
    trace.py    trace (a message's life from the logs and its queue entry)
    common.py   what they share: --config on every command, loading the settings
    audit.py    the admin log: who changed which queue entry or account
"""

import click

from .. import __version__
from .common import CONFIG_HELP


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help=CONFIG_HELP)
@click.version_option(__version__, prog_name="clevermail")
@click.pass_context
def main(ctx, config_path):
    """CleverMail: SMTP, POP3 and IMAP server with a relay queue."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config_path


# The sub-command modules register themselves on `main` when imported.
from . import aliases, config, dkim, doctor, mailboxes, queue, sandbox, serve, sieve, status, trace, users  # noqa: E402,F401
