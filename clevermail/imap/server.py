"""IMAPServer: the IMAP listener (RFC 3501), plain or implicit TLS (port 993 style).

A MailServer whose sessions are IMAPSession and whose file handler is an
IMAPFileHandler; everything protocol lives in session.py and its command modules.
"""

from ..netbase import MailServer
from .session import IMAPSession


class IMAPServer(MailServer):
    def __init__(self, address, handler, **kw):
        super().__init__(address, IMAPSession, handler, protocol="imap", **kw)
