"""SMTP (RFC 5321 with ESMTP extensions).

states.py    the transaction phases and the sets of them the command table uses
replies.py   every reply as a named Reply (code, enhanced status, text), SMTPReplyError
parser.py    command line -> verb and argument; per-verb argument parsers (pure)
session.py   SMTPSession: the command table and the dialogue
policy.py    Policy: the policy steps a session asks at connect, MAIL, RCPT, end of DATA
auth.py      the AUTH command, a function in that table, over login.py
cmd_simple.py  RSET, QUIT, NOOP, VRFY, EXPN, HELP: functions in that table
message.py   the received body's checks and wire form, queue id, Received header
handler.py   SMTPFileHandler: recipients and all-or-nothing delivery over the store
recipients.py  Recipient and the refusals of recipients and deliveries the handler raises
server.py    SMTPServer: the listener, mode 'mx' or 'submission'

    SMTPServer(address, handler, mode='mx'|'submission', ...)
    SMTPFileHandler(store, accounts, queue, postmaster=...)
"""

from .handler import SMTPFileHandler
from .server import SMTPServer

__all__ = ["SMTPFileHandler", "SMTPServer"]
