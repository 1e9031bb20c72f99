"""POP3Session: one POP3 dialogue (RFC 1939, RFC 2449 CAPA, RFC 5034 AUTH, RFC 2595
STLS, RFC 3206 response codes) on top of line_session.LineSession.

States (states.py, RFC 1939 3): AUTHORIZATION until USER/PASS or AUTH succeeds and
the maildrop is locked, then TRANSACTION.  UPDATE is entered only by QUIT in
TRANSACTION: that is the one place deletions are committed.  A dropped connection, a
timeout, a server stop or too many errors release the maildrop with nothing deleted
(RFC 1939 6).

COMMANDS is the one command table and the one verb list: verb -> (method, states where
it is allowed, argument kind).  The parser takes its grammar from it (GRAMMAR), so a
line is parsed by the kind its verb's entry names; the state is checked once before
dispatch.

Errors: every expected failure is a POP3Error carrying a named ErrorReply
(replies.py), written at one catch point in handle_line.  An unexpected exception (a
bug) is left to LineSession's catch point, which logs its traceback and sends the one
unexpected-error reply, ERR_INTERNAL (-ERR [SYS/TEMP]); the session lives on.  The
same rule as SMTP's: a storage failure the file handler can meet (StoreError, OSError)
is expected where the session must say what did not happen (a maildrop not opened,
deletions not committed), and has its own reply there.  PASS and AUTH payloads never
reach a log.
"""

from .. import login
from ..line_session import LineSession, SessionClosed
from ..store import FolderInUse, MessageGone, StoreError
from ..wire import stuffed_chunks, top_of
from . import parser
from . import replies as R
from .parser import parse_command
from .replies import POP3Error, multiline, ok
from .states import ANY, AUTHORIZATION, AUTHORIZATION_ONLY, TRANSACTION_ONLY, TRANSACTION

MECHANISMS = ("PLAIN",)     # password mechanisms offered (CAPA SASL, bare AUTH)
SEND_BUFFER = 256 * 1024    # RETR output is batched into sendall()s of about this size


# login.py's errors -> replies: an unknown user, a wrong password and a foreign authzid
# all get the same [AUTH] reply.
LOGIN_ERRORS = {
    login.Throttled: R.ERR_THROTTLED,
    login.Failed: R.ERR_AUTH_FAILED,
    login.Cancelled: R.ERR_AUTH_CANCELLED,
    login.ResponseTooLong: R.ERR_SASL_TOO_LONG,
    login.Malformed: R.ERR_SASL_MALFORMED,
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

    def closed(self):
        # Any end without QUIT in TRANSACTION: keep every message (RFC 1939 6).
        drop, self.drop = self.drop, None
        if drop is not None:
            self.handler.release(drop)
            self.log.info("maildrop released, nothing deleted")

    def line_too_long(self):
        self.send(R.ERR_LINE_TOO_LONG.wire)

    def busy_reply(self):
        return R.ERR_BUSY.wire

    def timeout_reply(self):
        return R.ERR_TIMEOUT.wire

    def internal_error_reply(self):
        return R.ERR_INTERNAL.wire

    def too_many_errors_reply(self):
        return R.ERR_TOO_MANY_ERRORS.wire

    def shutdown_reply(self):
        return R.ERR_SHUTDOWN.wire      # closed() then releases the maildrop, nothing deleted

    # -- dispatch ----------------------------------------------------------------------
    def handle_line(self, line):
        try:
            verb, args = parse_command(line, self.GRAMMAR)
            # GRAMMAR holds exactly COMMANDS' verbs: parse_command refused any other
            method, states, _ = self.COMMANDS[verb]
            if self.state not in states:
                raise POP3Error(R.ERR_WRONG_STATE.format(verb, self.state))
            method(self, *args)
        except POP3Error as exc:
            self.send(exc.reply)
            if exc.counts:
                self.count_error()

    # -- helpers -------------------------------------------------------------------------
    def _index(self, msg):
        """Message number -> 0-based index of a message not marked deleted."""
        drop = self.drop
        if not 1 <= msg <= len(drop):
            raise POP3Error(R.ERR_NO_SUCH_MESSAGE.format(msg, len(drop)))
        if drop.deleted[msg - 1]:
            raise POP3Error(R.ERR_ALREADY_DELETED.format(msg))
        return msg - 1

    def _open(self, index):
        try:
            return self.handler.open_message(self.drop, index)
        except MessageGone:
            raise POP3Error(R.ERR_MESSAGE_GONE.format(index + 1)) from None

    def _check_plaintext(self):
        if not self.plaintext_auth_ok:
            raise POP3Error(R.ERR_NEEDS_TLS)

    def _open_maildrop(self, account):
        """Lock the maildrop of a logged-in account; TRANSACTION on success."""
        try:
            drop = self.handler.open_maildrop(account.address)
        except FolderInUse:
            self.log.info("login %s refused: maildrop in use", account.address)
            raise POP3Error(R.ERR_IN_USE) from None
        except (StoreError, OSError):
            # Expected (a damaged folder, a full or failing disk): the client learns the
            # maildrop could not be opened and stays in AUTHORIZATION.  Anything else is
            # a bug, for LineSession's catch point (the state is unchanged either way).
            self.log.exception("cannot open maildrop of %s", account.address)
            raise POP3Error(R.ERR_MAILDROP_UNAVAILABLE) from None
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
                caps += ["USER", "SASL " + " ".join(self.mechanisms())]
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
            raise POP3Error(R.ERR_TLS_ACTIVE)
        if not self.tls_available:
            raise POP3Error(R.ERR_NO_TLS)
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
            raise POP3Error(R.ERR_USER_FIRST)
        user, self.user = self.user, None
        try:
            account = self.login.password(user, password, "USER/PASS")
        except login.LoginError as exc:
            raise POP3Error(LOGIN_ERRORS[type(exc)]) from None
        self._open_maildrop(account)

    def mechanisms(self):
        """The SASL mechanisms offered: SCRAM-SHA-256 while some account has its keys,
        and PLAIN; only where credentials may be sent (SCRAM too: without channel
        binding a man in the middle could take over the session it authenticated)."""
        return login.offered(self.server.handler.accounts, MECHANISMS)

    def cmd_AUTH(self, mechanism, initial):
        """SASL PLAIN or SCRAM-SHA-256 login, initial response allowed; bare AUTH lists mechanisms.
        States: AUTHORIZATION.
        RFC 5034 4, RFC 4616, RFC 5802, RFC 7677."""
        if mechanism is None:
            self.send(multiline("SASL mechanisms follow", list(self.mechanisms()) if self.plaintext_auth_ok else []))
            return
        if mechanism not in self.mechanisms():
            raise POP3Error(R.ERR_MECHANISM.format(mechanism[:20]))
        self._check_plaintext()
        self.user = None
        try:
            account = self.login.sasl(mechanism, initial)
        except login.LoginError as exc:
            raise POP3Error(LOGIN_ERRORS[type(exc)]) from None
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
        self.log_retrieval(self.drop.address, "INBOX", [self.drop.uids[index]])

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
        # The maildrop is released below whatever happens, so the session cannot go on
        # after this QUIT: should commit raise a bug, LineSession sends ERR_INTERNAL and
        # its loop ends here instead of serving a TRANSACTION without a maildrop.
        self.closing = True
        try:
            removed = self.handler.commit(drop)
        except (StoreError, OSError):
            # Expected, as at login: the reply says what did not happen (some marked
            # messages may remain), and the session ends as QUIT says (RFC 1939 6).
            self.log.exception("commit of deletions failed")
            self.send(R.ERR_NOT_REMOVED.wire)
            raise SessionClosed() from None
        finally:
            self.drop = None
            self.handler.release(drop)
        self.log.info("logout: %d messages deleted", removed)
        self.send(ok(f"CleverMail POP3 server signing off ({drop.count} messages left)"))
        raise SessionClosed()

    # The one command table and verb list: verb -> (method, states where it is allowed,
    # argument kind: the parser function that turns the rest of the line into the
    # method's arguments).
    COMMANDS = {
        "CAPA": (cmd_CAPA, ANY, parser.no_args),
        "QUIT": (cmd_QUIT, ANY, parser.no_args),
        "STLS": (cmd_STLS, AUTHORIZATION_ONLY, parser.no_args),
        "USER": (cmd_USER, AUTHORIZATION_ONLY, parser.name),
        "PASS": (cmd_PASS, AUTHORIZATION_ONLY, parser.rest_of_line),
        "AUTH": (cmd_AUTH, AUTHORIZATION_ONLY, parser.sasl),
        "STAT": (cmd_STAT, TRANSACTION_ONLY, parser.no_args),
        "LIST": (cmd_LIST, TRANSACTION_ONLY, parser.optional_message),
        "UIDL": (cmd_UIDL, TRANSACTION_ONLY, parser.optional_message),
        "RETR": (cmd_RETR, TRANSACTION_ONLY, parser.message),
        "TOP": (cmd_TOP, TRANSACTION_ONLY, parser.message_and_lines),
        "DELE": (cmd_DELE, TRANSACTION_ONLY, parser.message),
        "RSET": (cmd_RSET, TRANSACTION_ONLY, parser.no_args),
        "NOOP": (cmd_NOOP, TRANSACTION_ONLY, parser.no_args),
    }
    # The parser's grammar, verb -> argument kind, read from the table.
    GRAMMAR = {verb: kind for verb, (_, _, kind) in COMMANDS.items()}
