"""The audit trail of administrative commands: who (the CLI and the user id) did what
to which accounts or queue entries.

The CLI runs in another process than the server, so it cannot use the server's
handlers: its "clevermail.admin" records go where the server's log is, as far as a
separate process can reach it: appended to [server] log_file when one is set (the
same line format), else to syslog through /dev/log (journald or rsyslog, where a
server run by systemd logs too), else to stderr. A record names the queue id first,
as the relay's lines do, so that `grep QID` finds an entry's whole story.
"""

import logging
import logging.handlers
import os
import pwd

from ..logs import LOG_FORMAT, LogFormatter

SYSLOG_SOCKET = "/dev/log"


def who():
    """'uid=1000(alice)', plus 'via sudo from bob' when run through sudo."""
    uid = os.getuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = "?"
    text = f"uid={uid}({name})"
    sudo_user = os.environ.get("SUDO_USER")
    if sudo_user:
        text += f" via sudo from {sudo_user}"
    return text


def _handler(log_file):
    if log_file:
        try:
            handler = logging.FileHandler(log_file, mode="a", encoding="utf-8")
            handler.setFormatter(LogFormatter(LOG_FORMAT))
            return handler
        except OSError:
            pass            # not ours to write (another user's server log): stderr below
    elif os.path.exists(SYSLOG_SOCKET):
        try:
            handler = logging.handlers.SysLogHandler(address=SYSLOG_SOCKET)
            handler.setFormatter(logging.Formatter("clevermail: %(name)s: %(message)s"))
            return handler
        except OSError:
            pass
    handler = logging.StreamHandler()
    handler.setFormatter(LogFormatter(LOG_FORMAT))
    return handler


def record(settings, command, what, *args):
    """Log one administrative action (INFO): `what` (a %-format over args, starting
    with the queue id or address), who did it and the command, e.g.
    "F96A5CBBFEF4: put on hold by uid=0(root) (clevermail queue hold --state deferred)". The handler
    lives for this one record: a CLI command writes a few, and stderr may be a
    different stream at the next call (a test runner's)."""
    log = logging.getLogger("clevermail.admin")
    log.setLevel(logging.INFO)
    log.propagate = False
    handler = _handler(settings.server.log_file)
    log.addHandler(handler)
    try:
        log.info(what + " by %s (clevermail %s)", *args, who(), command)
    finally:
        log.removeHandler(handler)
        handler.close()
