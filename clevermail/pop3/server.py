"""POP3Server: the POP3 listener (RFC 1939 on 110 or a test port; implicit TLS on
995 per RFC 8314 when built with implicit_tls=True).

A netbase.MailServer whose sessions are POP3Session; `server.handler` is the
POP3FileHandler every session uses for its maildrop.  The in-process maildrop lock
lives in that handler, so all POP3 listeners of one service must share one handler.
"""

from ..netbase import MailServer
from .session import POP3Session


class POP3Server(MailServer):
    def __init__(self, address, handler, **kw):
        super().__init__(address, POP3Session, handler, protocol="pop3", **kw)
