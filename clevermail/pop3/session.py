"""POP3Session: one POP3 dialogue (RFC 1939, RFC 2449 CAPA, RFC 5034 AUTH, RFC 2595
STLS, RFC 3206 response codes) on top of netbase.LineSession.

States (RFC 1939 3): AUTHORIZATION until USER/PASS or AUTH succeeds and the maildrop
is locked, then TRANSACTION.  UPDATE is entered only by QUIT in TRANSACTION: that is
the one place deletions are committed.  A dropped connection, a timeout, a server
stop or too many errors release the maildrop with nothing deleted (RFC 1939 6).

COMMANDS is the one command table, verb -> (method, states); the state is checked
once before dispatch.  Every failure is a POP3Error carrying its reply, written at
one catch point in handle_line.  PASS and AUTH payloads never reach a log.
"""

from .. import login
from ..netbase import LineSession, SessionClosed
from ..store import FolderInUse, MessageGone, StoreError
from ..wire import stuffed_chunks, top_of
from . import replies
from .parser import parse_command
from .replies import IN_USE, SYS_TEMP, POP3Error, multiline, ok

AUTHORIZATION = "AUTHORIZATION"
TRANSACTION = "TRANSACTION"
AUTH_ONLY = frozenset({AUTHORIZATION})
TRANS_ONLY = frozenset({TRANSACTION})
ANY_STATE = frozenset({AUTHORIZATION, TRANSACTION})

MECHANISMS = ("PLAIN",)     # SASL mechanisms offered (CAPA SASL, bare AUTH)
SEND_BUFFER = 256 * 1024    # RETR output is batched into sendall()s of about this size


# login.py's errors -> (text, RFC 3206 code): an unknown user, a wrong password and a
# foreign authzid all get the same [AUTH] reply.
LOGIN_ERRORS = {
    login.Throttled: ("too many failed logins, try again later", SYS_TEMP),
    login.Failed: ("authentication failed", replies.AUTH),
    login.Cancelled: ("authentication cancelled", None),
    login.ResponseTooLong: ("SASL response too long", None),
    login.Malformed: ("malformed SASL PLAIN response", None),
}


class POP3Session(LineSession):
    protocol = "pop3"
    line_limit = 512        # RFC 2449 4 allows 255; leave room for long AUTH PLAIN lines

    def setup(self):
        super().setup()
        self.state = AUTHORIZATION
        self.user = None         # name given by USER, awaiting PASS
        self.drop = None         # handler.Maildrop once in TRANSACTION
        self.handler = self.server.handler
        self.login = login.Login(self, prompt="+ ", line_limit=login.POP3_LINE_LIMIT)

    # -- LineSession hooks -----------------------------------------------------------
    def greet(self):
        self.send(ok(f"CleverMail POP3 server ready ({self.server.hostname})"))

    def handle_line(self, line):
        try:
            verb, args = parse_command(line)
            method, states = self.COMMANDS[verb]
            if self.state not in states:
                raise POP3Error(f"{verb} is not valid in the {self.state} state")
            method(self, *args)
        except POP3Error as exc:
            self.send(exc.reply)
            if exc.counts:
                self.count_error()

    def closed(self):
        # Any end without QUIT in TRANSACTION: keep every message (RFC 1939 6).
        drop, self.drop = self.drop, None
        if drop is not None:
            self.handler.release(drop)
            self.log.info("maildrop released, nothing deleted")

    def line_too_long(self):
        self.send(replies.err("command line too long"))

    def busy_reply(self):
        return replies.err("too many connections, try again later", SYS_TEMP)

    def timeout_reply(self):
        return replies.err("autologout: idle for too long, no messages deleted")

    def internal_error_reply(self):
        return replies.err("internal server error, try again later", SYS_TEMP)

    def too_many_errors_reply(self):
        return replies.err("too many errors, closing connection")

    # -- helpers -------------------------------------------------------------------------
    def _index(self, msg):
        """Message number -> 0-based index of a message not marked deleted."""
        drop = self.drop
        if not 1 <= msg <= len(drop):
            raise POP3Error(f"no such message {msg}, only {len(drop)} in maildrop", counts=False)
        if drop.deleted[msg - 1]:
            raise POP3Error(f"message {msg} already deleted", counts=False)
        return msg - 1

    def _open(self, index):
        try:
            return self.handler.open_message(self.drop, index)
        except MessageGone:
            raise POP3Error(f"message {index + 1} was deleted by another session", counts=False) from None

    def _check_plaintext(self):
        if not self.plaintext_auth_ok:
            raise POP3Error("plaintext authentication needs TLS (use STLS)", replies.AUTH)

    def _open_maildrop(self, account):
        """Lock the maildrop of a logged-in account; TRANSACTION on success."""
        try:
            drop = self.handler.open_maildrop(account.address)
        except FolderInUse:
            self.log.info("login %s refused: maildrop in use", account.address)
            raise POP3Error("maildrop already locked by another POP3 session", IN_USE, counts=False) from None
        except (StoreError, OSError):
            self.log.exception("cannot open maildrop of %s", account.address)
            raise POP3Error("cannot open maildrop, try again later", SYS_TEMP, counts=False) from None
        self.drop = drop
        self.state = TRANSACTION
        self.log.info("maildrop of %s: %d messages", account.address, len(drop))
        self.send(ok(f"{account.address} has {drop.count} messages ({drop.octets} octets)"))

    # -- AUTHORIZATION -----------------------------------------------------------------
    def cmd_CAPA(self):
        """List capabilities, with USER/SASL only where credentials may be sent.
        States: AUTHORIZATION, TRANSACTION.
        RFC 2449 5, 6."""
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if self.state == AUTHORIZATION:
            if self.plaintext_auth_ok:
                caps += ["USER", "SASL " + " ".join(MECHANISMS)]
            if self.tls_available:
                caps.append("STLS")
        # No LOGIN-DELAY: it announces a minimum time between logins that the server
        # enforces (RFC 2449 6.8); nothing here enforces one (Dovecot leaves it out too).
        caps += ["EXPIRE NEVER", "IMPLEMENTATION CleverMail"]
        self.send(multiline("capability list follows", caps))

    def cmd_STLS(self):
        """Start TLS; the client must forget what it learnt before (CAPA again).
        States: AUTHORIZATION.
        RFC 2595 4."""
        if self.tls:
            raise POP3Error("TLS is already active")
        if self.server.ssl_context is None:
            raise POP3Error("STLS not available: no TLS certificate configured")
        self.send(ok("begin TLS negotiation"))
        self.start_tls()      # discards anything pipelined after STLS
        self.user = None

    def cmd_USER(self, name):
        """Give the name for a following PASS.
        States: AUTHORIZATION (only where plaintext credentials are allowed).
        RFC 1939 7."""
        self._check_plaintext()
        self.user = name
        self.send(ok("send your password"))

    def cmd_PASS(self, password):
        """Complete USER/PASS login and lock the maildrop.
        States: AUTHORIZATION, right after USER.
        RFC 1939 7."""
        self._check_plaintext()
        if self.user is None:
            raise POP3Error("send USER first")
        user, self.user = self.user, None
        try:
            account = self.login.password(user, password, "USER/PASS")
        except login.LoginError as exc:
            raise POP3Error(*LOGIN_ERRORS[type(exc)]) from None
        self._open_maildrop(account)

    def cmd_AUTH(self, mechanism, initial):
        """SASL PLAIN login, initial response allowed; bare AUTH lists mechanisms.
        States: AUTHORIZATION.
        RFC 5034 4, RFC 4616."""
        if mechanism is None:
            self.send(multiline("SASL mechanisms follow", list(MECHANISMS) if self.plaintext_auth_ok else []))
            return
        if mechanism not in MECHANISMS:
            raise POP3Error(f"unsupported SASL mechanism {mechanism[:20]}")
        self._check_plaintext()
        self.user = None
        try:
            account = self.login.sasl(mechanism, initial)
        except login.LoginError as exc:
            raise POP3Error(*LOGIN_ERRORS[type(exc)]) from None
        self._open_maildrop(account)

    # -- TRANSACTION -------------------------------------------------------------------
    def cmd_STAT(self):
        """Count and total wire size of the messages not marked deleted.
        States: TRANSACTION.
        RFC 1939 5."""
        self.send(ok(f"{self.drop.count} {self.drop.octets}"))

    def cmd_LIST(self, msg=None):
        """Wire size of one message, or of every message not marked deleted.
        States: TRANSACTION.
        RFC 1939 5."""
        drop = self.drop
        if msg is not None:
            self.send(ok(f"{msg} {drop.sizes[self._index(msg)]}"))
            return
        if drop.count == len(drop):     # nothing marked: skip the per-line test
            lines = [f"{i} {size}" for i, size in enumerate(drop.sizes, 1)]
        else:
            lines = [f"{i} {size}" for i, size, d in zip(range(1, len(drop) + 1), drop.sizes, drop.deleted) if not d]
        self.send(multiline(f"{drop.count} messages ({drop.octets} octets)", lines))

    def cmd_UIDL(self, msg=None):
        """Unique-id of one message, or of every message not marked deleted.
        States: TRANSACTION.
        RFC 1939 7."""
        drop = self.drop
        if msg is not None:
            self.send(ok(f"{msg} {drop.uidl(self._index(msg))}"))
            return
        prefix = f"{drop.uidvalidity}."
        if drop.count == len(drop):
            lines = [f"{i} {prefix}{uid}" for i, uid in enumerate(drop.uids, 1)]
        else:
            lines = [f"{i} {prefix}{uid}" for i, uid, d in zip(range(1, len(drop) + 1), drop.uids, drop.deleted) if not d]
        self.send(multiline("unique-id listing follows", lines))

    def cmd_RETR(self, msg):
        """Send a whole message, byte-stuffed, and mark it \\Seen for IMAP.
        States: TRANSACTION.
        RFC 1939 5."""
        index = self._index(msg)
        with self._open(index) as f:
            buf = [ok(f"{self.drop.sizes[index]} octets")]
            pending = len(buf[0])
            for piece in stuffed_chunks(f):
                buf.append(piece)
                pending += len(piece)
                if pending >= SEND_BUFFER:
                    self.send(b"".join(buf))
                    buf, pending = [], 0
            self.send(b"".join(buf))
        # after the socket write, never holding a folder lock while sending
        self.handler.mark_seen(self.drop, index)

    def cmd_TOP(self, msg, lines):
        """Send the header and the first `lines` body lines; not marked \\Seen.
        States: TRANSACTION.
        RFC 1939 7."""
        index = self._index(msg)
        with self._open(index) as f:
            data = top_of(f, lines)
        self.send(ok("top of message follows") + data)

    def cmd_DELE(self, msg):
        """Mark a message deleted; only QUIT removes it.
        States: TRANSACTION.
        RFC 1939 5."""
        self.drop.mark(self._index(msg))
        self.send(ok(f"message {msg} deleted"))

    def cmd_RSET(self):
        """Unmark every message marked deleted in this session.
        States: TRANSACTION.
        RFC 1939 5."""
        self.drop.unmark_all()
        self.send(ok(f"maildrop has {self.drop.count} messages ({self.drop.octets} octets)"))

    def cmd_NOOP(self):
        """Do nothing (keeps the connection from the idle timeout).
        States: TRANSACTION.
        RFC 1939 5."""
        self.send(ok())

    def cmd_QUIT(self):
        """End the session; in TRANSACTION, first remove the marked messages (UPDATE).
        States: AUTHORIZATION, TRANSACTION.
        RFC 1939 4, 6."""
        drop = self.drop
        if drop is None:
            self.send(ok("CleverMail POP3 server signing off"))
            raise SessionClosed()
        try:
            removed = self.handler.commit(drop)
        except (StoreError, OSError):
            self.log.exception("commit of deletions failed")
            self.send(replies.err("some deleted messages not removed", SYS_TEMP))
            raise SessionClosed() from None
        finally:
            self.drop = None
            self.handler.release(drop)
        self.log.info("logout: %d messages deleted", removed)
        self.send(ok(f"CleverMail POP3 server signing off ({drop.count} messages left)"))
        raise SessionClosed()

    # The one command table: verb -> (method, states where it is allowed).
    COMMANDS = {
        "CAPA": (cmd_CAPA, ANY_STATE),
        "QUIT": (cmd_QUIT, ANY_STATE),
        "STLS": (cmd_STLS, AUTH_ONLY),
        "USER": (cmd_USER, AUTH_ONLY),
        "PASS": (cmd_PASS, AUTH_ONLY),
        "AUTH": (cmd_AUTH, AUTH_ONLY),
        "STAT": (cmd_STAT, TRANS_ONLY),
        "LIST": (cmd_LIST, TRANS_ONLY),
        "UIDL": (cmd_UIDL, TRANS_ONLY),
        "RETR": (cmd_RETR, TRANS_ONLY),
        "TOP": (cmd_TOP, TRANS_ONLY),
        "DELE": (cmd_DELE, TRANS_ONLY),
        "RSET": (cmd_RSET, TRANS_ONLY),
        "NOOP": (cmd_NOOP, TRANS_ONLY),
    }
