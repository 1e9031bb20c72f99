"""SMTP (RFC 5321 with ESMTP extensions): replies, a pure parser, the session with
its command table, the file handler that delivers, and the server.

    SMTPServer(address, handler, mode='mx'|'submission', ...)
    SMTPFileHandler(store, accounts, queue, postmaster=...)
"""

from .handler import SMTPFileHandler
from .server import SMTPServer

__all__ = ["SMTPFileHandler", "SMTPServer"]
