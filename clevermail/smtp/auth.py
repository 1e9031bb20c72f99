"""SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616), LOGIN and SCRAM-SHA-256 (RFC 5802,
RFC 7677; offered while some account has its keys) mechanisms: the AUTH command as a
function of SMTPSession's command table, over the session's login.Login.

login.py does the work shared with POP3 and IMAP (SASL exchange, throttle, verification,
authzid policy, failure delay, log line); this module checks what is SMTP's own
(EHLO first, not twice, TLS or loopback unless configured, a known mechanism) and maps
login's errors to SMTP replies.  Credentials only travel where
LineSession.plaintext_auth_ok allows, SCRAM's too (without channel binding a man in
the middle could take over the session it authenticated); a throttled address gets
421 and is disconnected.  A SCRAM exchange that fails (a wrong proof, an unknown
name, a message that breaks RFC 5802's grammar) is 535, as a wrong password.
"""

from .. import login
from . import parser
from . import replies as R
from .replies import SMTPReplyError

PROMPT = "334 "                   # RFC 4954 4: a server challenge

# login's errors -> replies (Throttled needs the hostname: see cmd_AUTH)
_REPLIES = {
    login.Cancelled: R.R501_AUTH_CANCELLED,
    login.Malformed: R.R501_AUTH_DECODE,
    login.ResponseTooLong: R.R500_AUTH_LINE_TOO_LONG,
    login.Failed: R.R535_AUTH_FAILED,
}


def offered(session):
    """The mechanisms EHLO offers and AUTH takes: every one login.py runs (SCRAM while
    some account has keys), none where credentials may not travel."""
    return login.offered(session.server.handler.accounts) if session.plaintext_auth_ok else ()


def cmd_AUTH(session, arg):
    """AUTH PLAIN|LOGIN|SCRAM-SHA-256 [initial-response]: authenticate (then relaying is allowed).
    States: init, ready (outside a transaction; 503 before EHLO).
    RFC 4954 4, RFC 4616 (PLAIN), RFC 5802 and RFC 7677 (SCRAM-SHA-256)."""
    if not session.esmtp:
        raise SMTPReplyError(R.R503_EHLO_FIRST)
    if session.auth_user is not None:
        raise SMTPReplyError(R.R503_ALREADY_AUTH)
    if not session.plaintext_auth_ok:
        raise SMTPReplyError(R.R538_ENCRYPTION_REQUIRED)
    mech, initial = parser.parse_auth(arg)
    if mech not in offered(session):
        raise SMTPReplyError(R.R504_AUTH_MECH)
    try:
        account = session.login.sasl(mech, initial)
    except login.Throttled:
        raise SMTPReplyError(R.R421_AUTH_THROTTLED.format(session.server.hostname)) from None
    except login.LoginError as exc:
        raise SMTPReplyError(_REPLIES[type(exc)]) from None
    session.auth_user = account.address
    session.send(R.R235_AUTH_OK.wire)
