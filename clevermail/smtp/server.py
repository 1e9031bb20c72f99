"""SMTPServer: a MailServer running SMTPSession (RFC 5321).

Two modes share one session class: 'mx' (port 25/2525: mail for local domains from
anyone, any domain once authenticated or from a trusted network) and 'submission'
(RFC 6409, port 587, and implicit TLS on 465 per RFC 8314: every transaction needs
AUTH).  The mode has no default: each listener says which it is, and the session
reads it as `server.mode`.
"""

from ..netbase import MailServer
from .session import SMTPSession

MODES = ("mx", "submission")


class SMTPServer(MailServer):
    session_class = SMTPSession         # a subclass may run its own (sandbox/faults.py)

    def __init__(self, address, handler, *, mode, **kw):
        if mode not in MODES:
            raise ValueError(f"SMTP mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        super().__init__(address, self.session_class, handler, protocol="smtp", **kw)
