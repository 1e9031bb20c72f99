"""The SMTP commands that carry no mail, as functions of SMTPSession's command
table (like auth.py's AUTH): RSET, QUIT, NOOP, VRFY (always 252: accounts are never
revealed), EXPN (not offered) and HELP (RFC 5321 4.1.1.5-4.1.1.10, 3.5).
"""

from ..line_session import SessionClosed
from . import replies as R
from .replies import SMTPReplyError


def cmd_RSET(session, arg):
    """RSET: abort the mail transaction; HELO/EHLO and AUTH are kept.
    States: any.
    RFC 5321 4.1.1.5."""
    if arg:
        raise SMTPReplyError(R.R501_NO_ARGS)
    session.reset_transaction()
    session.send(R.R250_OK.wire)


def cmd_QUIT(session, arg):
    """QUIT: say goodbye and close the connection.
    States: any.
    RFC 5321 4.1.1.10."""
    session.send(R.R221_BYE.wire)
    raise SessionClosed()


def cmd_NOOP(session, arg):
    """NOOP [string]: do nothing, answer 250 (the argument is ignored).
    States: any.
    RFC 5321 4.1.1.9."""
    session.send(R.R250_OK.wire)


def cmd_VRFY(session, arg):
    """VRFY <string>: always 252, so that accounts are never revealed.
    States: any.
    RFC 5321 4.1.1.6, 3.5.3."""
    if not arg:
        raise SMTPReplyError(R.R501_VRFY)
    session.send(R.R252_VRFY.wire)


def cmd_EXPN(session, arg):
    """EXPN <list>: not offered (there are no lists to expand).
    States: any.
    RFC 5321 4.1.1.7, 3.5.2."""
    raise SMTPReplyError(R.R502_NOT_IMPLEMENTED)


def cmd_HELP(session, arg):
    """HELP [command]: list the commands, or describe one.
    States: any.
    RFC 5321 4.1.1.8."""
    entry = session.COMMANDS.get(arg.upper()) if arg else None
    if entry is not None:
        text = entry[0].__doc__.strip().splitlines()[0]
    else:
        text = "Commands: " + " ".join(sorted(session.COMMANDS))
    session.send(R.R214_HELP.format(text).wire)
