"""IMAP commands that start a session's security or identity: STARTTLS, LOGIN and
AUTHENTICATE of the not-authenticated state (RFC 3501 6.2, SASL-IR RFC 4959; PLAIN,
and SCRAM-SHA-256, RFC 5802 and RFC 7677, while some account has its keys: RFC 9051
6.2.2 SHOULD), and
COMPRESS=DEFLATE (RFC 4978), which like STARTTLS changes the stream after its tagged
OK.

Plain functions `cmd_x(session, cmd)` in IMAPSession.COMMANDS.  What they use of the
session: `login` (login.Login: passwords, SASL, throttling), `tls`, `tls_available`,
`plaintext_auth_ok`, `compressed`, `start_tls`, `start_deflate`, `send` and
`logged_in`.  STARTTLS and COMPRESS answer their own tag and return SILENT.
"""

from .. import login
from . import replies as R
from .parser import Atom, astring

MECHANISMS = ("PLAIN",)     # password mechanisms offered (AUTH= capabilities)
# Returned by a command that already sent its own tagged reply (STARTTLS, COMPRESS).
SILENT = object()


def cmd_starttls(session, cmd):
    """Start TLS; commands pipelined behind it are discarded.
    States: not authenticated.
    RFC 3501 6.2.1."""
    if not session.tls_available:
        raise (R.TLS_ACTIVE if session.tls else R.TLS_UNAVAILABLE).error()
    session.send(f"{cmd.tag} OK Begin TLS negotiation now\r\n")
    session.start_tls()
    return SILENT


def cmd_compress(session, cmd):
    """Deflate both directions from the end of the tagged OK on.
    States: authenticated, selected.
    RFC 4978."""
    if len(cmd.args) != 1 or not isinstance(cmd.args[0], Atom):
        raise R.COMPRESS_ARGS.error()
    if cmd.args[0].upper() != "DEFLATE":
        raise R.UNKNOWN_COMPRESSION.error()
    if session.compressed:
        raise R.COMPRESSION_ACTIVE.error()
    session.send(f"{cmd.tag} OK DEFLATE active\r\n")
    session.start_deflate()
    return SILENT


def cmd_login(session, cmd):
    """Log in with user name and password.
    States: not authenticated.
    RFC 3501 6.2.3."""
    if len(cmd.args) != 2:
        raise R.LOGIN_ARGS.error()
    if not session.plaintext_auth_ok:
        raise R.LOGIN_NEEDS_TLS.error()
    try:
        account = session.login.password(astring(cmd.args[0]), astring(cmd.args[1]), "LOGIN command")
    except login.LoginError as exc:
        raise R.login_error(exc) from None
    return session.logged_in(account)


def mechanisms(session):
    """The SASL mechanisms offered (AUTH= capabilities, where credentials may be sent):
    SCRAM-SHA-256 while some account has its keys, and PLAIN.  SCRAM needs TLS as
    PLAIN does: without channel binding a man in the middle could take over the
    session it authenticated."""
    return login.offered(session.server.handler.accounts, MECHANISMS)


def cmd_authenticate(session, cmd):
    """SASL PLAIN or SCRAM-SHA-256, with an initial response (SASL-IR) or without.
    States: not authenticated.
    RFC 3501 6.2.2, RFC 4959, RFC 5802, RFC 7677, RFC 9051 6.2.2."""
    if not cmd.args or len(cmd.args) > 2:
        raise R.AUTHENTICATE_ARGS.error()
    mechanism = astring(cmd.args[0]).upper()
    if mechanism not in mechanisms(session):
        raise R.UNSUPPORTED_MECHANISM.error()
    if not session.plaintext_auth_ok:
        raise R.AUTHENTICATE_NEEDS_TLS.error()
    initial = astring(cmd.args[1]) if len(cmd.args) == 2 else None
    try:
        account = session.login.sasl(mechanism, initial)
    except login.LoginError as exc:
        raise R.login_error(exc) from None
    session.server.handler.ready(account)
    return session.logged_in(account)
