"""IMAP4rev1 session (RFC 3501): the loop step, the state, the command table, the
one catch point, the capabilities.

The session reads a command line, lets parser.py parse it (literals come through the
`_more` callback, which checks sizes before it invites or reads any byte), looks the
command up in COMMANDS (name -> function, allowed states; a UID form under its own key
such as "UID FETCH"), checks the state once, runs it, sends the pending untagged
updates of the selected mailbox, then the tagged reply.  Commands raise IMAPError
(replies.py, named replies with their codes) or store errors; they are turned into
bytes here and nowhere else.

The commands live in modules by RFC 3501 section: this one (6.1 any state), cmd_login.py
(6.2 not authenticated: STARTTLS, LOGIN, AUTHENTICATE; and COMPRESS), cmd_mailboxes.py
(6.3 authenticated), idle.py (IDLE) and cmd_selected.py (6.4 selected). Extensions:
LITERAL+ (RFC 7888), SASL-IR (RFC 4959), IDLE (RFC 2177), UIDPLUS (RFC 4315), MOVE (RFC
6851), NAMESPACE (RFC 2342), ENABLE (RFC 5161), ID (RFC 2971), UNSELECT (RFC 3691),
CHILDREN (RFC 3348), SPECIAL-USE and CREATE-SPECIAL-USE (RFC 6154), BINARY (RFC 3516),
URLAUTH (RFC 4467, cmd_urlauth.py) with URLAUTH=BINARY (RFC 5524), OBJECTID (RFC 8474),
COMPRESS=DEFLATE (RFC 4978, after login), CONDSTORE and QRESYNC (RFC 7162, the session
remembers which are enabled: `enabled`), LIST-EXTENDED (RFC 5258) and LIST-STATUS (RFC
5819) in cmd_list.py, MULTIAPPEND (RFC 3502), CATENATE (RFC 4469, catenate.py), ESEARCH
(RFC 4731), SEARCHRES (RFC 5182), SORT and THREAD (RFC 5256), ESORT, CONTEXT=SEARCH and
CONTEXT=SORT (RFC 5267, contexts.py), SORT=DISPLAY (RFC 5957), STARTTLS and
LOGINDISABLED (RFC 3501); the searching commands are in cmd_search.py; QUOTA (RFC 9208),
STATUS=SIZE (RFC 8438) and APPENDLIMIT (RFC 7889) in cmd_quota.py. UTF8=ACCEPT (RFC
6855) and IMAP4rev2 (RFC 9051) are switched on per session by ENABLE (`utf8`, `rev2`;
rev2.py lists what IMAP4rev2 changes); until then every response is IMAP4rev1's, and
status text stays US-ASCII (`text_line`).  NOTIFY (RFC 5465) in cmd_notify.py: once
set, `notifier` sends the updates, also while the session waits for a command and in
IDLE.
"""

import socket
import ssl

from .. import __version__, login
from ..line_session import LineSession, SessionClosed
from ..store import StoreError
from ..store.sync import next_mark
from ..wire import LineTooLong
from . import cmd_list as listing
from . import cmd_login as login_cmds
from . import cmd_mailboxes as mailboxes
from . import cmd_notify as notify
from . import cmd_quota as quota
from . import cmd_search as searching
from . import cmd_selected as selected
from . import cmd_urlauth as urlauth
from . import replies as R
from .cmd_login import SILENT, mechanisms
from .parser import Atom, Command, Literal, LiteralTooLarge, ParseError, parse_command, quote
from .updates import send_updates
from .states import ANY, AUTH, LOGGED_IN, NOT_AUTH, NOT_AUTH_ONLY, SELECTED, SELECTED_ONLY

BASE_CAPS = ("IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "IDLE", "UIDPLUS", "MOVE", "NAMESPACE",
             "ENABLE", "ID", "UNSELECT", "CHILDREN", "SPECIAL-USE", "CREATE-SPECIAL-USE", "BINARY",
             "URLAUTH", "URLAUTH=BINARY", "CONDSTORE", "QRESYNC", "OBJECTID",
             "LIST-EXTENDED", "LIST-STATUS", "MULTIAPPEND", "CATENATE", "ESEARCH", "SEARCHRES", "SORT",
             "SORT=DISPLAY", "ESORT", "CONTEXT=SEARCH", "CONTEXT=SORT", "THREAD=ORDEREDSUBJECT",
             "THREAD=REFERENCES", "UTF8=ACCEPT", "NOTIFY")
# RFC 3501 7.4.1: no EXPUNGE response while a FETCH, STORE or SEARCH runs (the client
# still counts on the numbers it used), nor after SORT or THREAD, which answer with
# numbers too; their UID forms, other keys, may send it.
NO_EXPUNGE = frozenset({"FETCH", "STORE", "SEARCH", "SORT", "THREAD"})
# Commands that look at a folder themselves (open it, or say their updates first): the
# look after them reuses a look begun since they began (updates.py, store/sync.py).
LOOKING = frozenset({"STATUS", "APPEND", "EXPUNGE", "UID EXPUNGE", "SELECT", "EXAMINE"})


class IMAPSession(LineSession):
    protocol = "imap"
    line_limit = 65536     # RFC 3501 sets none; also bounds an AUTHENTICATE answer line

    def setup(self):
        super().setup()
        self.state = NOT_AUTH
        self.account = None
        self.mailbox = None         # the SelectedMailbox in the selected state
        self.recent_owned = {}      # (address, folder name) -> UIDs whose \Recent it holds
        self.notifier = None        # notify.Notifier once NOTIFY was used (RFC 5465)
        self.enabled = set()        # "CONDSTORE", "QRESYNC": RFC 7162, for this session
        self.login = login.Login(self, prompt="+ ", line_limit=self.line_limit)

    # -- LineSession hooks ---------------------------------------------------------
    def greet(self):
        self.send(f"* OK [CAPABILITY {' '.join(self.capabilities())}] {self.server.hostname} "
                  "CleverMail IMAP4rev1 ready\r\n")

    def line_too_long(self):
        self.send(R.LINE_TOO_LONG.untagged())

    def busy_reply(self):
        return R.BUSY.untagged()

    def timeout_reply(self):
        return R.AUTOLOGOUT.untagged()

    def internal_error_reply(self):
        # a bug raised before run() had a command: no tag to answer
        return R.internal_error()

    def too_many_errors_reply(self):
        return R.TOO_MANY_ERRORS.untagged()

    def shutdown_reply(self):
        return R.SHUTTING_DOWN.untagged()

    def closed(self):
        notify.close(self)
        self.unselect()

    def wait_for_command(self):
        if self.notifier is not None:
            notify.wait(self)       # RFC 5465 3.1: updates between commands
        return super().wait_for_command()

    @property
    def utf8(self):
        """Names and quoted strings in UTF-8: ENABLE UTF8=ACCEPT (RFC 6855) or
        IMAP4rev2 (RFC 9051 5.1, Appendix A)."""
        return "UTF8=ACCEPT" in self.enabled or "IMAP4rev2" in self.enabled

    @property
    def rev2(self):
        """ENABLE IMAP4rev2 was sent: the RFC 9051 behaviours (rev2.py)."""
        return "IMAP4rev2" in self.enabled

    # -- capabilities ----------------------------------------------------------------
    def capabilities(self):
        caps = list(BASE_CAPS) + quota.capabilities(self)
        if self.state == NOT_AUTH:
            if self.tls_available:
                caps.append("STARTTLS")
            if self.plaintext_auth_ok:
                caps += [f"AUTH={m}" for m in mechanisms(self)]
            else:
                caps.append("LOGINDISABLED")
        elif not self.compressed:
            caps.append("COMPRESS=DEFLATE")
        return caps

    # -- the loop step ---------------------------------------------------------------
    def _line_tag(self):
        # the parser only asks for a literal after it accepted the tag, so errors raised
        # in _more() can be answered with the line's first word
        return self._line.split(b" ", 1)[0].decode("ascii", "replace")

    def _more(self, size, synchronizing):
        """Literal callback for the parser: bound the whole command, invite, read."""
        self._command_bytes += size
        if self._command_bytes > self.server.limits.message_size + self.line_limit:
            if synchronizing:
                raise LiteralTooLarge(size, True, tag=self._line_tag())
            self.send(R.COMMAND_TOO_LARGE.untagged())
            raise SessionClosed()
        if synchronizing:
            self.send(b"+ Ready for literal data\r\n")
        data = self.reader.read(size, Literal)
        try:
            line = self.reader.readline(self.line_limit)
        except LineTooLong:
            raise ParseError(R.LINE_TOO_LONG.text, tag=self._line_tag()) from None
        if not line:
            raise EOFError("connection closed inside a command")
        self._command_bytes += len(line)
        return data, line.rstrip(b"\r\n")

    def handle_line(self, line):
        self._command_bytes = len(line)
        self._line = line       # its first word is the tag _more() answers with
        try:
            cmd = parse_command(line.rstrip(b"\r\n"), self._more, self.server.limits.message_size)
        except LiteralTooLarge as exc:
            if not exc.synchronizing:
                # RFC 7888 4: the octets are already on their way; we cannot resync
                self.send(R.LITERAL_TOO_LARGE.untagged())
                raise SessionClosed() from None
            self.send(exc.reply(exc.tag or "*"))
            self.count_error()
            return
        except ParseError as exc:
            self.send(self.text_line(exc.reply(exc.tag or "*")))
            self.count_error()
            return
        self.run(cmd)

    def run(self, cmd):
        verb = cmd.name
        if verb == "UID":
            cmd = uid_form(cmd)
        began = next_mark() if cmd.name in LOOKING else 0   # (a look since then serves)
        entry = self.COMMANDS.get(cmd.name)
        if entry is None:
            self.send(R.UNKNOWN_COMMAND.error().reply(cmd.tag))
            self.count_error()
            return
        function, states = entry
        if self.state not in states:
            if self.state == NOT_AUTH:
                why = "Log in first"
            elif SELECTED in states:
                why = "No mailbox selected"
            else:
                why = "Already logged in"
            self.send(R.WRONG_STATE.error(verb, why).reply(cmd.tag))
            self.count_error()
            return
        if self.mailbox is not None:
            # a keyword another session brought into use: FLAGS before any FETCH shows it
            news = self.mailbox.keyword_updates()
            if news:
                self.send(b"".join(news))
        try:
            text = function(self, cmd)
            if text is SILENT:
                return
            text = text or f"{cmd.name} completed"
        except R.IMAPBye as exc:
            self.send(exc.reply())
            raise SessionClosed() from None
        except R.IMAPError as exc:
            self.flush_updates(cmd.name, began)
            self.send(self.text_line(exc.reply(cmd.tag)))
            if isinstance(exc, R.IMAPBad):
                self.count_error()
            return
        except StoreError as exc:
            self.flush_updates(cmd.name, began)
            self.send(self.text_line(R.store_error(exc).reply(cmd.tag)))
            return
        except (SessionClosed, EOFError, socket.timeout, ssl.SSLError, ConnectionError):
            raise       # the connection is gone or timed out: LineSession ends the session
        except Exception:
            # The one catch point for surprises, storage OSErrors included (disk full, a
            # folder deleted underneath): log, answer the tag, keep the session.  If the
            # socket itself is broken, sending fails and the session ends anyway.
            self.log.exception("internal error in %s", cmd.name)
            self.flush_updates(cmd.name, began)     # says BYE if the selected mailbox vanished
            self.send(R.internal_error(cmd.tag))
            return
        self.flush_updates(cmd.name, began)
        if self.closing:
            raise SessionClosed()
        self.send(self.text_line(f"{cmd.tag} OK {text}\r\n".encode("utf-8", "replace")))

    def text_line(self, line):
        """A status response line as sent: its text may hold UTF-8 only after ENABLE
        UTF8=ACCEPT or IMAP4rev2 (RFC 9051 Appendix E 24), else US-ASCII."""
        return line if self.utf8 else R.seven_bit(line)

    def enable_condstore(self):
        """A CONDSTORE enabling command ran (RFC 7162 3.1): from now on FETCH
        responses carry MODSEQ; enabled in the selected state, HIGHESTMODSEQ is said
        at once (3.1.2.1)."""
        if "CONDSTORE" in self.enabled:
            return
        self.enabled.add("CONDSTORE")
        if self.mailbox is not None:
            self.send(self.mailbox.highestmodseq_line())

    def flush_updates(self, key, began=0):
        """Send what changed in the selected mailbox, after the command `key` (its
        table key: the EXPUNGE rule of RFC 3501 7.4.1 depends on it), or now (a
        command whose tagged reply says HIGHESTMODSEQ, RFC 7162 3.1.10, sends it
        first); `began`: the mark run() took as a LOOKING command began, or 0."""
        if self.notifier is not None:       # RFC 5465: what NOTIFY asks, sent by it
            self.notifier.flush(key not in NO_EXPUNGE, own_new=key in notify.ADDING)
        elif self.mailbox is not None:
            send_updates(self, allow_expunge=key not in NO_EXPUNGE, own_new=key in notify.ADDING,
                         reuse=began)
        if self.mailbox is None:
            return
        if self.mailbox.gone:
            self.send(R.MAILBOX_DELETED.untagged())
            self.unselect()
            raise SessionClosed()

    # -- state changes -----------------------------------------------------------------
    def select_mailbox(self, mailbox):
        """Enter the selected state with `mailbox` (a SelectedMailbox)."""
        self.mailbox = mailbox
        self.state = SELECTED

    def unselect(self):
        """Leave the selected state (if in it), releasing the folder view."""
        if self.mailbox is not None:
            view, self.mailbox = self.mailbox.view, None
            # \Recent stays this session's if it selects the folder again (RFC 3501 2.3.2)
            self.recent_owned[(self.account.address, view.name)] = view.recent
            self.server.handler.close_view(view)
        if self.state == SELECTED:
            self.state = AUTH

    def logged_in(self, account):
        """LOGIN or AUTHENTICATE succeeded: the authenticated state; the tagged OK's text."""
        self.account = account
        self.state = AUTH
        return f"[CAPABILITY {' '.join(self.capabilities())}] Logged in"

    # -- any state -----------------------------------------------------------------------
    def cmd_CAPABILITY(self, cmd):
        """List the capabilities, which depend on the state and on TLS.
        States: any.
        RFC 3501 6.1.1."""
        self.send(f"* CAPABILITY {' '.join(self.capabilities())}\r\n")

    def cmd_NOOP(self, cmd):
        """Do nothing; the pending updates go out with the reply.
        States: any.
        RFC 3501 6.1.2."""

    def cmd_LOGOUT(self, cmd):
        """End the session: BYE, then the tagged OK, then close.
        States: any.
        RFC 3501 6.1.3."""
        self.send(R.LOGGING_OUT.untagged())
        self.unselect()
        self.send(f"{cmd.tag} OK LOGOUT completed\r\n")
        raise SessionClosed()

    def cmd_ID(self, cmd):
        """Exchange implementation names; the client's are ignored.
        States: any.
        RFC 2971."""
        if len(cmd.args) != 1:
            raise R.ID_ARGS.error()
        self.send(b'* ID ("name" "CleverMail" "version" ' + quote(__version__) + b")\r\n")

    # -- the command table -----------------------------------------------------------------
    # name -> (function(session, cmd), states where allowed); the state is checked once
    # in run().  The UID forms are keys of their own; "UID" alone is the fallback that
    # refuses a missing or unknown command word.
    COMMANDS = {
        # RFC 3501 6.1: any state
        "CAPABILITY": (cmd_CAPABILITY, ANY),
        "NOOP": (cmd_NOOP, ANY),
        "LOGOUT": (cmd_LOGOUT, ANY),
        "ID": (cmd_ID, ANY),
        # RFC 3501 6.2: not authenticated
        "STARTTLS": (login_cmds.cmd_starttls, NOT_AUTH_ONLY),
        "LOGIN": (login_cmds.cmd_login, NOT_AUTH_ONLY),
        "AUTHENTICATE": (login_cmds.cmd_authenticate, NOT_AUTH_ONLY),
        # RFC 3501 6.3: authenticated (and selected)
        "SELECT": (mailboxes.cmd_select, LOGGED_IN),
        "EXAMINE": (mailboxes.cmd_examine, LOGGED_IN),
        "CREATE": (mailboxes.cmd_create, LOGGED_IN),
        "DELETE": (mailboxes.cmd_delete, LOGGED_IN),
        "RENAME": (mailboxes.cmd_rename, LOGGED_IN),
        "SUBSCRIBE": (mailboxes.cmd_subscribe, LOGGED_IN),
        "UNSUBSCRIBE": (mailboxes.cmd_unsubscribe, LOGGED_IN),
        "LIST": (listing.cmd_list, LOGGED_IN),
        "LSUB": (mailboxes.cmd_lsub, LOGGED_IN),
        "STATUS": (mailboxes.cmd_status, LOGGED_IN),
        "APPEND": (mailboxes.cmd_append, LOGGED_IN),
        "NAMESPACE": (mailboxes.cmd_namespace, LOGGED_IN),
        "ENABLE": (mailboxes.cmd_enable, LOGGED_IN),
        "IDLE": (notify.cmd_idle, LOGGED_IN),
        "NOTIFY": (notify.cmd_notify, LOGGED_IN),
        "COMPRESS": (login_cmds.cmd_compress, LOGGED_IN),
        "GENURLAUTH": (urlauth.cmd_genurlauth, LOGGED_IN),
        "RESETKEY": (urlauth.cmd_resetkey, LOGGED_IN),
        "URLFETCH": (urlauth.cmd_urlfetch, LOGGED_IN),
        # RFC 3501 6.4: selected
        "CHECK": (selected.cmd_check, SELECTED_ONLY),
        "CLOSE": (selected.cmd_close, SELECTED_ONLY),
        "UNSELECT": (selected.cmd_unselect, SELECTED_ONLY),
        "EXPUNGE": (selected.cmd_expunge, SELECTED_ONLY),
        "SEARCH": (searching.cmd_search, SELECTED_ONLY),
        "SORT": (searching.cmd_sort, SELECTED_ONLY),
        "THREAD": (searching.cmd_thread, SELECTED_ONLY),
        "FETCH": (selected.cmd_fetch, SELECTED_ONLY),
        "STORE": (selected.cmd_store, SELECTED_ONLY),
        "COPY": (selected.cmd_copy, SELECTED_ONLY),
        "MOVE": (selected.cmd_move, SELECTED_ONLY),
        "UID FETCH": (selected.cmd_uid_fetch, SELECTED_ONLY),
        "UID SEARCH": (searching.cmd_uid_search, SELECTED_ONLY),
        "UID SORT": (searching.cmd_uid_sort, SELECTED_ONLY),
        "UID THREAD": (searching.cmd_uid_thread, SELECTED_ONLY),
        "CANCELUPDATE": (searching.cmd_cancelupdate, SELECTED_ONLY),
        "UID STORE": (selected.cmd_uid_store, SELECTED_ONLY),
        "UID COPY": (selected.cmd_uid_copy, SELECTED_ONLY),
        "UID MOVE": (selected.cmd_uid_move, SELECTED_ONLY),
        "UID EXPUNGE": (selected.cmd_uid_expunge, SELECTED_ONLY),
        "UID": (selected.cmd_uid_unknown, SELECTED_ONLY),
        # RFC 9208 QUOTA (cmd_quota.py)
        "GETQUOTA": (quota.cmd_getquota, LOGGED_IN),
        "GETQUOTAROOT": (quota.cmd_getquotaroot, LOGGED_IN),
        "SETQUOTA": (quota.cmd_setquota, LOGGED_IN),
    }


def uid_form(cmd):
    """A parsed UID command as the command of its table key: "UID FETCH" with the
    arguments after FETCH (RFC 3501 6.4.8).  Unchanged when the word after UID is
    missing, not an atom, or no UID command (the "UID" entry refuses it)."""
    if cmd.args and isinstance(cmd.args[0], Atom):
        key = "UID " + cmd.args[0].upper()
        if key in IMAPSession.COMMANDS:
            return Command(cmd.tag, key, cmd.args[1:])
    return cmd
