"""IMAP4rev1 session (RFC 3501): states, the command table, and the one catch point.

The session reads a command line, lets parser.py parse it (literals come through the
`_more` callback, which checks sizes before it invites or reads any byte), looks the
command up in COMMANDS (name -> method, states), checks the state once, runs it, sends
the pending untagged updates of the selected mailbox, then the tagged reply.  Command
methods raise IMAPNo / IMAPBad / IMAPBye (replies.py) or store errors; they are turned
into bytes here and nowhere else.

Commands live in three modules by state: this one (any state, not authenticated),
mailboxes.py (authenticated) and messages.py (selected).  Extensions: LITERAL+
(RFC 7888), SASL-IR (RFC 4959), IDLE (RFC 2177), UIDPLUS (RFC 4315), MOVE (RFC 6851),
NAMESPACE (RFC 2342), ENABLE (RFC 5161), ID (RFC 2971), UNSELECT (RFC 3691),
CHILDREN (RFC 3348), SPECIAL-USE (RFC 6154), STARTTLS and LOGINDISABLED (RFC 3501).
"""

import logging
import socket
import ssl

from .. import __version__, login
from ..netbase import LineSession, SessionClosed
from ..store import StoreError
from ..store.errors import FolderExists, InvalidName, MessageGone, NoSuchFolder
from ..wire import LineTooLong
from .mailboxes import MailboxCommands
from .messages import MessageCommands
from .parser import LiteralTooLarge, ParseError, astring, parse_command, quote
from .replies import IMAPBad, IMAPBye, IMAPError, IMAPNo

NOT_AUTH, AUTH, SELECTED = "not authenticated", "authenticated", "selected"
ANY = (NOT_AUTH, AUTH, SELECTED)
LOGGED_IN = (AUTH, SELECTED)
BASE_CAPS = ("IMAP4rev1", "LITERAL+", "SASL-IR", "IDLE", "UIDPLUS", "MOVE", "NAMESPACE",
             "ENABLE", "ID", "UNSELECT", "CHILDREN", "SPECIAL-USE")
MECHANISMS = ("PLAIN",)     # SASL mechanisms offered (AUTH= capabilities)
# Commands during which EXPUNGE must not be sent (RFC 3501 7.4.1); their UID forms may.
NO_EXPUNGE = {"FETCH", "STORE", "SEARCH"}


class IMAPSession(MailboxCommands, MessageCommands, LineSession):
    protocol = "imap"
    line_limit = 65536

    def setup(self):
        super().setup()
        self.state = NOT_AUTH
        self.account = None
        self.mailbox = None
        self.recent_owned = {}      # (address, folder name) -> UIDs whose \Recent it holds
        self.login = login.Login(self, prompt="+ ", line_limit=login.IMAP_LINE_LIMIT)

    # -- LineSession hooks ---------------------------------------------------------
    def greet(self):
        self.send(f"* OK [CAPABILITY {' '.join(self.capabilities())}] {self.server.hostname} "
                  "CleverMail IMAP4rev1 ready\r\n")

    def line_too_long(self):
        self.send(b"* BAD Command line too long\r\n")

    def busy_reply(self):
        return b"* BYE [UNAVAILABLE] Too many connections, try later\r\n"

    def timeout_reply(self):
        return b"* BYE Autologout; idle for too long\r\n"

    def internal_error_reply(self):
        return b"* BAD [SERVERBUG] Internal error, the command was not completed\r\n"

    def too_many_errors_reply(self):
        return b"* BYE Too many invalid commands\r\n"

    def closed(self):
        self._unselect()

    # -- capabilities ----------------------------------------------------------------
    def capabilities(self):
        caps = list(BASE_CAPS)
        if self.state == NOT_AUTH:
            if self.tls_available:
                caps.append("STARTTLS")
            if self.plaintext_auth_ok:
                caps += [f"AUTH={m}" for m in MECHANISMS]
            else:
                caps.append("LOGINDISABLED")
        return caps

    # -- the loop step ---------------------------------------------------------------
    def _more(self, size, synchronizing):
        """Literal callback for the parser: bound the whole command, invite, read."""
        self._command_bytes += size
        if self._command_bytes > self.server.limits.message_size + self.line_limit:
            if synchronizing:
                raise LiteralTooLarge(size, True, tag=self._tag)
            self.send(b"* BYE [TOOBIG] Command too large\r\n")
            raise SessionClosed()
        if synchronizing:
            self.send(b"+ Ready for literal data\r\n")
        data = self.reader.read(size)
        try:
            line = self.reader.readline(self.line_limit)
        except LineTooLong:
            raise ParseError("Command line too long", tag=self._tag) from None
        if not line:
            raise EOFError("connection closed inside a command")
        self._command_bytes += len(line)
        return data, line.rstrip(b"\r\n")

    def handle_line(self, line):
        self._command_bytes = len(line)
        # the parser only asks for a literal after it accepted the tag, so errors raised
        # in _more() can be answered with the line's first word
        self._tag = line.split(b" ", 1)[0].decode("ascii", "replace")
        try:
            cmd = parse_command(line.rstrip(b"\r\n"), self._more, self.server.limits.message_size)
        except LiteralTooLarge as exc:
            if not exc.synchronizing:
                # RFC 7888 4: the octets are already on their way; we cannot resync
                self.send(b"* BYE [TOOBIG] Literal too large\r\n")
                raise SessionClosed() from None
            self.send(exc.reply(exc.tag or "*"))
            self.count_error()
            return
        except ParseError as exc:
            self.send(exc.reply(exc.tag or "*"))
            self.count_error()
            return
        self.run(cmd)

    def run(self, cmd):
        entry = COMMANDS.get(cmd.name)
        if entry is None:
            self.send(IMAPBad("Unknown command").reply(cmd.tag))
            self.count_error()
            return
        method, states = entry
        if self.state not in states:
            if self.state == NOT_AUTH:
                why = "Log in first"
            elif SELECTED in states:
                why = "No mailbox selected"
            else:
                why = "Already logged in"
            self.send(IMAPBad(f"{cmd.name} not allowed in this state: {why}").reply(cmd.tag))
            self.count_error()
            return
        try:
            text = method(self, cmd)
            if text is SILENT:
                return
            text = text or f"{cmd.name} completed"
        except IMAPBye as exc:
            self.send(exc.reply())
            raise SessionClosed() from None
        except IMAPError as exc:
            self._flush_updates(cmd)
            self.send(exc.reply(cmd.tag))
            if isinstance(exc, IMAPBad):
                self.count_error()
            return
        except StoreError as exc:
            self._flush_updates(cmd)
            self.send(store_error(exc).reply(cmd.tag))
            return
        except (SessionClosed, EOFError, socket.timeout, ssl.SSLError, ConnectionError):
            raise       # the connection is gone or timed out: LineSession ends the session
        except Exception:
            # The one catch point for surprises, storage OSErrors included (disk full, a
            # folder deleted underneath): log, answer the tag, keep the session.  If the
            # socket itself is broken, sending fails and the session ends anyway.
            self.log.exception("internal error in %s", cmd.name)
            self._flush_updates(cmd)     # says BYE if the selected mailbox vanished
            self.send(IMAPNo("Internal error, the command was not completed",
                             code="SERVERBUG").reply(cmd.tag))
            return
        self._flush_updates(cmd)
        if self.closing:
            raise SessionClosed()
        self.send(f"{cmd.tag} OK {text}\r\n")

    def _flush_updates(self, cmd):
        if self.mailbox is None:
            return
        uid_form = cmd.name == "UID"
        updates = self.mailbox.updates(allow_expunge=uid_form or cmd.name not in NO_EXPUNGE)
        if self.mailbox.gone:
            self.send(b"* BYE Selected mailbox was deleted\r\n")
            self._unselect()
            raise SessionClosed()
        if updates:
            self.send(b"".join(updates))

    def _unselect(self):
        if self.mailbox is not None:
            view, self.mailbox = self.mailbox.view, None
            # \Recent stays this session's if it selects the folder again (RFC 3501 2.3.2)
            self.recent_owned[(self.account.address, view.name)] = view.recent
            self.server.handler.close_view(view)
        if self.state == SELECTED:
            self.state = AUTH

    # -- any state -------------------------------------------------------------------
    def cmd_CAPABILITY(self, cmd):
        """List capabilities (any state; RFC 3501 6.1.1)."""
        self.send(f"* CAPABILITY {' '.join(self.capabilities())}\r\n")

    def cmd_NOOP(self, cmd):
        """Do nothing; the pending updates go out with the reply (any state; 6.1.2)."""

    def cmd_LOGOUT(self, cmd):
        """End the session (any state; RFC 3501 6.1.3)."""
        self.send(b"* BYE CleverMail logging out\r\n")
        self._unselect()
        self.send(f"{cmd.tag} OK LOGOUT completed\r\n")
        raise SessionClosed()

    def cmd_ID(self, cmd):
        """Exchange implementation names (any state; RFC 2971)."""
        if len(cmd.args) != 1:
            raise IMAPBad("ID takes one argument: a list or NIL")
        self.send(b'* ID ("name" "CleverMail" "version" ' + quote(__version__) + b")\r\n")

    # -- not authenticated ---------------------------------------------------------------
    def cmd_STARTTLS(self, cmd):
        """Start TLS; pipelined commands are discarded (not authenticated; 6.2.1)."""
        if not self.tls_available:
            raise IMAPBad("TLS not available" if not self.tls else "TLS already active")
        self.send(f"{cmd.tag} OK Begin TLS negotiation now\r\n")
        self.start_tls()
        return SILENT

    def cmd_LOGIN(self, cmd):
        """Log in with user name and password.
        States: not authenticated.
        RFC 3501 6.2.3."""
        if len(cmd.args) != 2:
            raise IMAPBad("LOGIN takes a user name and a password")
        if not self.plaintext_auth_ok:
            raise IMAPNo("Plaintext login is disabled, use STARTTLS", code="PRIVACYREQUIRED")
        try:
            account = self.login.password(astring(cmd.args[0]), astring(cmd.args[1]), "LOGIN command")
        except login.LoginError as exc:
            raise login_error(exc) from None
        return self._logged_in(account)

    def cmd_AUTHENTICATE(self, cmd):
        """SASL PLAIN, with an initial response (SASL-IR) or one continuation.
        States: not authenticated.
        RFC 3501 6.2.2, RFC 4959."""
        if not cmd.args or len(cmd.args) > 2:
            raise IMAPBad("AUTHENTICATE takes a mechanism and an optional initial response")
        mechanism = astring(cmd.args[0]).upper()
        if mechanism not in MECHANISMS:
            raise IMAPNo("Unsupported authentication mechanism", code="CANNOT")
        if not self.plaintext_auth_ok:
            raise IMAPNo("Authentication needs TLS, use STARTTLS", code="PRIVACYREQUIRED")
        initial = astring(cmd.args[1]) if len(cmd.args) == 2 else None
        try:
            account = self.login.sasl(mechanism, initial)
        except login.LoginError as exc:
            raise login_error(exc) from None
        return self._logged_in(account)

    def _logged_in(self, account):
        self.account = account
        self.state = AUTH
        return f"[CAPABILITY {' '.join(self.capabilities())}] Logged in"

    # -- helpers shared by the command mixins -----------------------------------------
    def send_many(self, chunks, limit=1 << 18):
        """Send a long run of response lines in large writes."""
        buf, size = [], 0
        for chunk in chunks:
            buf.append(chunk)
            size += len(chunk)
            if size >= limit:
                self.send(b"".join(buf))
                buf, size = [], 0
        if buf:
            self.send(b"".join(buf))


# Returned by a command that already sent its own tagged reply (STARTTLS).
SILENT = object()


def login_error(exc):
    """The reply for a login.py error.  A foreign authzid keeps its RFC 5530 code; it
    is refused whatever the password, after the same delay as a wrong one, so the
    reply tells nothing about the password."""
    if isinstance(exc, login.Failed):
        if exc.foreign_authzid:
            return IMAPNo("Authorization identity must match the user", code="AUTHORIZATIONFAILED")
        return IMAPNo("Authentication failed", code="AUTHENTICATIONFAILED")
    if isinstance(exc, login.Throttled):
        return IMAPNo("Too many failed logins, try later", code="UNAVAILABLE")
    if isinstance(exc, login.Cancelled):
        return IMAPBad("Authentication cancelled")
    if isinstance(exc, login.ResponseTooLong):
        return IMAPBad("Authentication response too long")
    return IMAPBad(f"Invalid SASL PLAIN response: {exc}")

def store_error(exc):
    """Map a store error to the NO reply a client understands (RFC 5530 codes)."""
    if isinstance(exc, NoSuchFolder):
        return IMAPNo("Mailbox does not exist", code="NONEXISTENT")
    if isinstance(exc, FolderExists):
        return IMAPNo("Mailbox already exists", code="ALREADYEXISTS")
    if isinstance(exc, InvalidName):
        return IMAPNo(f"Invalid mailbox name: {exc}", code="CANNOT")
    if isinstance(exc, MessageGone):
        return IMAPNo("Some of the requested messages no longer exist", code="EXPUNGEISSUED")
    logging.getLogger("clevermail.imap").warning("store error: %s", exc)
    return IMAPNo("Storage error, try again", code="SERVERBUG")


def _table():
    s = IMAPSession
    return {
        "CAPABILITY": (s.cmd_CAPABILITY, ANY), "NOOP": (s.cmd_NOOP, ANY),
        "LOGOUT": (s.cmd_LOGOUT, ANY), "ID": (s.cmd_ID, ANY),
        "STARTTLS": (s.cmd_STARTTLS, (NOT_AUTH,)), "LOGIN": (s.cmd_LOGIN, (NOT_AUTH,)),
        "AUTHENTICATE": (s.cmd_AUTHENTICATE, (NOT_AUTH,)),
        "SELECT": (s.cmd_SELECT, LOGGED_IN), "EXAMINE": (s.cmd_EXAMINE, LOGGED_IN),
        "CREATE": (s.cmd_CREATE, LOGGED_IN), "DELETE": (s.cmd_DELETE, LOGGED_IN),
        "RENAME": (s.cmd_RENAME, LOGGED_IN), "SUBSCRIBE": (s.cmd_SUBSCRIBE, LOGGED_IN),
        "UNSUBSCRIBE": (s.cmd_UNSUBSCRIBE, LOGGED_IN), "LIST": (s.cmd_LIST, LOGGED_IN),
        "LSUB": (s.cmd_LSUB, LOGGED_IN), "STATUS": (s.cmd_STATUS, LOGGED_IN),
        "APPEND": (s.cmd_APPEND, LOGGED_IN), "NAMESPACE": (s.cmd_NAMESPACE, LOGGED_IN),
        "ENABLE": (s.cmd_ENABLE, LOGGED_IN), "IDLE": (s.cmd_IDLE, LOGGED_IN),
        "CHECK": (s.cmd_CHECK, (SELECTED,)), "CLOSE": (s.cmd_CLOSE, (SELECTED,)),
        "UNSELECT": (s.cmd_UNSELECT, (SELECTED,)), "EXPUNGE": (s.cmd_EXPUNGE, (SELECTED,)),
        "SEARCH": (s.cmd_SEARCH, (SELECTED,)), "FETCH": (s.cmd_FETCH, (SELECTED,)),
        "STORE": (s.cmd_STORE, (SELECTED,)), "COPY": (s.cmd_COPY, (SELECTED,)),
        "MOVE": (s.cmd_MOVE, (SELECTED,)), "UID": (s.cmd_UID, (SELECTED,)),
    }


COMMANDS = _table()
