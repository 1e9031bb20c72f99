"""ManageSieveServer: the ManageSieve listener (RFC 5804; port 4190 by convention,
STARTTLS only: RFC 5804 has no implicit-TLS port).

A netbase.MailServer whose sessions are ManageSieveSession; `server.handler` is the
SieveFileHandler every session uses for credentials and scripts.
"""

from ..netbase import MailServer
from .session import ManageSieveSession


class ManageSieveServer(MailServer):
    def __init__(self, address, handler, **kw):
        super().__init__(address, ManageSieveSession, handler, protocol="managesieve", **kw)
