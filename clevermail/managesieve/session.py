"""ManageSieveSession: one ManageSieve dialogue (RFC 5804) on top of
line_session.LineSession.

States (states.py): non-authenticated until AUTHENTICATE succeeds, then
authenticated; UNAUTHENTICATE (RFC 5804 2.14.1) goes back, LOGOUT ends the session.
The greeting is the capability list and an OK (RFC 5804 1.7); after STARTTLS the
server sends them again unasked (RFC 5804 2.2).

COMMANDS is the one command table and the one verb list: verb -> (method, states
where it is allowed, argument kind).  The parser takes its grammar from it (GRAMMAR),
so a line is parsed by the kind its verb's entry names, and the state is checked once
before dispatch.  Literals arrive through `_more`, which counts the whole command's
octets before it reads any; a literal over the limit is read and dropped (a
non-synchronizing literal is already on its way) and answered NO, with
QUOTA/MAXSIZE for a script, so the session goes on; so are the literals of any refused
command (an unknown verb, a malformed argument), never read as commands.  One too
large even to drop ends the session with BYE.

Login is login.py's, the one path of every protocol (throttle, failure delay, the one
log line); only the framing of challenges is ManageSieve's (`_ask`: a string each
way, RFC 5804 2.1; SCRAM-SHA-256's server-final message is one more challenge, answered
with an empty string).  PLAIN, LOGIN and SCRAM-SHA-256 (while some account has its
keys) are offered only over TLS, on loopback, or where [server] allow_plaintext_auth
says so (SASL "" before STARTTLS otherwise, as RFC 5804 1.7 allows).

Errors: every expected failure is a SieveNo carrying a named Reply (replies.py),
written at one catch point in handle_line; the script store's errors (sieve.errors)
become NO with their RFC 5804 response code and text, a syntax error NO with its
line.  An unexpected exception (a bug) is left to LineSession's catch point, which
logs its traceback and answers NO (TRYLATER); the session lives on.  A storage
failure (OSError) is expected and answered NO (TRYLATER) naming what did not happen.
Credentials never reach a log: the AUTHENTICATE line is redacted and literals and
SASL answers are never logged.
"""

from .. import login
from ..line_session import LineSession, SessionClosed
from ..sieve.errors import SieveError
from ..wire import LineTooLong
from . import parser
from . import replies as R
from .parser import LiteralTooLarge, parse_command, parse_string_line
from .replies import SieveNo, ok, string, tag_code
from .states import ANY, AUTHENTICATED, AUTHENTICATED_ONLY, NON_AUTHENTICATED, NON_AUTHENTICATED_ONLY

SASL_LINE_LIMIT = login.POP3_LINE_LIMIT  # one SASL answer line, quoted or a literal's marker
SASL_LITERAL_LIMIT = 8192               # a SASL answer sent as a literal
IMPLEMENTATION = "CleverMail"
VERSION = "1.0"                         # RFC 5804 1.7: this document's commands, all of them

# login.py's errors -> replies: an unknown user, a wrong password and a foreign authzid
# all get the same reply.
LOGIN_ERRORS = {
    login.Throttled: R.ERR_THROTTLED,
    login.Failed: R.ERR_AUTH_FAILED,
    login.Cancelled: R.ERR_AUTH_CANCELLED,
    login.ResponseTooLong: R.ERR_SASL_TOO_LONG,
}


class ManageSieveSession(LineSession):
    protocol = "managesieve"
    line_limit = 8192       # a line of quoted strings (1024 octets each) and a literal marker

    def setup(self):
        super().setup()
        self.state = NON_AUTHENTICATED
        self.user = None            # the account's canonical address once authenticated
        self.handler = self.server.handler
        self.login = login.Login(self, prompt="", line_limit=SASL_LINE_LIMIT)
        self._command_bytes = 0

    # -- LineSession hooks -----------------------------------------------------------
    def greet(self):
        self.send(self.capabilities() + ok(f"CleverMail ManageSieve ready ({self.server.hostname})"))

    def line_too_long(self):
        self.send(R.ERR_LINE_TOO_LONG.wire)

    def busy_reply(self):
        return R.BYE_BUSY.wire

    def timeout_reply(self):
        return R.BYE_TIMEOUT.wire

    def internal_error_reply(self):
        return R.ERR_INTERNAL.wire

    def too_many_errors_reply(self):
        return R.BYE_TOO_MANY_ERRORS.wire

    def shutdown_reply(self):
        return R.BYE_SHUTDOWN.wire

    # -- limits --------------------------------------------------------------------------
    @property
    def max_literal(self):
        """The longest string a command may carry: a script at the store's size limit
        (or the message size limit when the store sets none)."""
        return self.handler.max_size or self.server.limits.message_size

    @property
    def max_command(self):
        """All the octets of one command: its strings and lines."""
        return self.max_literal + 4 * self.line_limit

    # -- dispatch ----------------------------------------------------------------------
    def handle_line(self, line):
        self._command_bytes = len(line)
        try:
            verb, args = parse_command(line, self.GRAMMAR, self._more, self.max_literal)
            # GRAMMAR holds exactly COMMANDS' verbs: parse_command refused any other
            method, states, _ = self.COMMANDS[verb]
            if self.state not in states:
                wrong = R.ERR_NEEDS_AUTH if self.state == NON_AUTHENTICATED else R.ERR_ALREADY_AUTH
                raise SieveNo(wrong.format(verb))
            method(self, *args)
        except SieveNo as exc:
            if exc.pending is not None:
                self._drop_literal(exc.pending)
            self.send(exc.reply)
            if exc.closes:
                raise SessionClosed() from None
            if exc.counts:
                self.count_error()

    def _more(self, size):
        """The parser's literal callback: bound the whole command, then read the
        octets and the line after them."""
        self._command_bytes += size
        if self._command_bytes > self.max_command:
            raise SieveNo(R.BYE_COMMAND_TOO_LARGE.format(self.max_command))
        data = self.reader.read(size)
        try:
            line = self.reader.readline(self.line_limit)
        except LineTooLong:
            raise SieveNo(R.ERR_LINE_TOO_LONG) from None
        if not line:
            raise EOFError("connection closed inside a command")
        self._command_bytes += len(line)
        return data, line

    def _drop_literal(self, size):
        """Read and drop the literals of a refused command (non-synchronizing: they are
        on their way) and the lines between them, so that the next command starts
        where the client thinks it does and no octet of a script is ever read as a
        command.  More than the session would ever read ends it with BYE."""
        limit = max(self.max_command, self.server.limits.message_size)
        total = 0
        while size is not None:
            total += size
            if total > limit:
                raise self._bye(R.BYE_COMMAND_TOO_LARGE.format(limit))
            self.reader.skip(size)
            try:
                rest = self.reader.readline(self.line_limit)
            except LineTooLong:
                raise self._bye(R.BYE_COMMAND_TOO_LARGE.format(limit)) from None
            if not rest:
                raise EOFError("connection closed inside a command")
            total += len(rest)
            size = parser.literal_size(rest)

    def _bye(self, reply):
        self.log.warning("closing: %s", reply.text)
        self.send(reply.wire)
        return SessionClosed()

    # -- helpers -------------------------------------------------------------------------
    def capabilities(self):
        """The capability lines (RFC 5804 1.7), without the OK."""
        caps = [("IMPLEMENTATION", IMPLEMENTATION),
                ("SASL", " ".join(self.mechanisms()) if self.plaintext_auth_ok else ""),
                ("SIEVE", " ".join(self.handler.extensions))]
        if self.state == NON_AUTHENTICATED and self.tls_available:
            caps.append(("STARTTLS", None))
        if self.handler.max_redirects is not None:
            caps.append(("MAXREDIRECTS", str(self.handler.max_redirects)))
        if self.user is not None:
            caps.append(("OWNER", self.user))
        caps += [("UNAUTHENTICATE", None), ("VERSION", VERSION)]
        return b"".join(string(name) + (b" " + string(value) if value is not None else b"") + b"\r\n"
                        for name, value in caps)

    def _scripts(self, action, function, *args):
        """Call the handler; its script errors become NO replies (not counted: they are
        the user's script or another session's change), a storage failure NO
        (TRYLATER) naming `action`."""
        try:
            return function(*args)
        except SieveError as exc:
            raise SieveNo(R.script_error(str(exc), exc.code)) from None
        except OSError:
            self.log.exception("cannot %s for %s", action, self.user)
            raise SieveNo(R.ERR_STORAGE.format(action)) from None

    def _ask(self, challenge):
        """A SASL challenge as a string, the client's answer (one string) back
        (RFC 5804 2.1); the answer is never logged."""
        self.send(string(challenge) + b"\r\n")
        try:
            line = self.reader.readline(SASL_LINE_LIMIT)
        except LineTooLong:
            raise login.ResponseTooLong("SASL response too long") from None
        if not line:
            raise EOFError("connection closed inside a SASL exchange")
        if self.debug:
            self.log.debug("C: ***")
        self._command_bytes = len(line)
        try:
            return parse_string_line(line, self._more, SASL_LITERAL_LIMIT)
        except SieveNo as exc:
            if exc.closes:
                raise
            if exc.pending is not None:
                self._drop_literal(exc.pending)
            if isinstance(exc, LiteralTooLarge):
                raise login.ResponseTooLong("SASL response too long") from None
            raise login.Malformed(exc.error.text) from None

    # -- non-authenticated -----------------------------------------------------------------
    def cmd_CAPABILITY(self):
        """The capability list, then OK.
        States: any.
        RFC 5804 2.4."""
        self.send(self.capabilities() + ok("CAPABILITY completed"))

    def cmd_STARTTLS(self):
        """Start TLS; the capabilities follow unasked, then OK (RFC 5804 2.2).
        States: non-authenticated.
        RFC 5804 2.2."""
        if self.tls:
            raise SieveNo(R.ERR_TLS_ACTIVE)
        if not self.tls_available:
            raise SieveNo(R.ERR_NO_TLS)
        self.send(ok("begin TLS negotiation now"))
        self.start_tls()      # discards anything pipelined after STARTTLS
        self.send(self.capabilities() + ok("TLS negotiation successful"))

    def mechanisms(self):
        """The SASL mechanisms offered: every one login.py runs (SCRAM-SHA-256 while
        some account has its keys, PLAIN, LOGIN)."""
        return login.offered(self.handler.accounts)

    def cmd_AUTHENTICATE(self, mechanism, initial):
        """SASL PLAIN, LOGIN or SCRAM-SHA-256 through login.py, an initial response allowed.
        States: non-authenticated.
        RFC 5804 2.1, RFC 4616, RFC 5802, RFC 7677."""
        if mechanism not in self.mechanisms():
            raise SieveNo(R.ERR_MECHANISM.format(mechanism[:20]))
        if not self.plaintext_auth_ok:
            raise SieveNo(R.ERR_NEEDS_TLS)
        try:
            account = self.login.sasl(mechanism, initial, ask=self._ask)
        except login.Malformed as exc:
            raise SieveNo(R.ERR_SASL_MALFORMED.format(str(exc))) from None
        except login.LoginError as exc:
            raise SieveNo(LOGIN_ERRORS[type(exc)]) from None
        self.user = account.address
        self.state = AUTHENTICATED
        self.send(ok(f"logged in as {account.address}"))

    def cmd_LOGOUT(self):
        """OK, then close (RFC 5804 2.3, erratum 7825: OK, not BYE).
        States: any."""
        self.send(ok("logout completed"))
        raise SessionClosed()

    def cmd_NOOP(self, tag):
        """Do nothing; a tag comes back in the TAG response code.
        States: any.
        RFC 5804 2.13."""
        self.send(ok("NOOP completed", tag_code(tag) if tag is not None else None))

    # -- authenticated ---------------------------------------------------------------------
    def cmd_UNAUTHENTICATE(self):
        """Back to non-authenticated; TLS stays.
        States: authenticated.
        RFC 5804 2.14.1."""
        self.log.info("unauthenticate user=%s", self.user)
        self.user = None
        self.state = NON_AUTHENTICATED
        self.send(ok("UNAUTHENTICATE completed"))

    def cmd_HAVESPACE(self, name, size):
        """Would a script `name` of `size` octets be stored now?
        States: authenticated.
        RFC 5804 2.5."""
        if size > self.max_literal:
            raise SieveNo(R.ERR_SCRIPT_TOO_LARGE.format(size, self.max_literal))
        self._scripts("check the space", self.handler.have_space, self.user, name, size)
        self.send(ok("PUTSCRIPT would succeed"))

    def cmd_PUTSCRIPT(self, name, text):
        """Check a script in full, then store it (replacing one of that name).
        States: authenticated.
        RFC 5804 2.6."""
        self._scripts("store the script", self.handler.put, self.user, name, text)
        self.log.info("script %r stored (%d octets)", name, len(text.encode("utf-8")))
        self.send(ok("PUTSCRIPT completed"))

    def cmd_CHECKSCRIPT(self, text):
        """Check a script in full without storing it.
        States: authenticated.
        RFC 5804 2.12."""
        self._scripts("check the script", self.handler.check, text)
        self.send(ok("the script is valid"))

    def cmd_LISTSCRIPTS(self):
        """Every script's name, the active one marked ACTIVE.
        States: authenticated.
        RFC 5804 2.7."""
        scripts = self._scripts("list the scripts", self.handler.list, self.user)
        lines = [string(name) + (b" ACTIVE" if active else b"") + b"\r\n" for name, active in scripts]
        self.send(b"".join(lines) + ok("LISTSCRIPTS completed"))

    def cmd_SETACTIVE(self, name):
        """Make a script the active one; an empty name deactivates.
        States: authenticated.
        RFC 5804 2.8."""
        self._scripts("activate the script", self.handler.activate, self.user, name or None)
        self.log.info("active script: %r", name or None)
        self.send(ok("SETACTIVE completed"))

    def cmd_GETSCRIPT(self, name):
        """A script's text as a literal.
        States: authenticated.
        RFC 5804 2.9."""
        data = self._scripts("read the script", self.handler.get, self.user, name).encode("utf-8")
        self.send(b"{%d}\r\n" % len(data) + data + b"\r\n" + ok("GETSCRIPT completed"))

    def cmd_DELETESCRIPT(self, name):
        """Delete a script that is not the active one (NO (ACTIVE) otherwise).
        States: authenticated.
        RFC 5804 2.10."""
        self._scripts("delete the script", self.handler.delete, self.user, name)
        self.log.info("script %r deleted", name)
        self.send(ok("DELETESCRIPT completed"))

    def cmd_RENAMESCRIPT(self, old, new):
        """Rename a script; the active one stays active.
        States: authenticated.
        RFC 5804 2.11.1."""
        self._scripts("rename the script", self.handler.rename, self.user, old, new)
        self.log.info("script %r renamed to %r", old, new)
        self.send(ok("RENAMESCRIPT completed"))

    # The one command table and verb list: verb -> (method, states where it is allowed,
    # argument kind: the parser function that turns the arguments into the method's).
    COMMANDS = {
        "CAPABILITY": (cmd_CAPABILITY, ANY, parser.no_args),
        "LOGOUT": (cmd_LOGOUT, ANY, parser.no_args),
        "NOOP": (cmd_NOOP, ANY, parser.optional_string),
        "STARTTLS": (cmd_STARTTLS, NON_AUTHENTICATED_ONLY, parser.no_args),
        "AUTHENTICATE": (cmd_AUTHENTICATE, NON_AUTHENTICATED_ONLY, parser.sasl),
        "UNAUTHENTICATE": (cmd_UNAUTHENTICATE, AUTHENTICATED_ONLY, parser.no_args),
        "HAVESPACE": (cmd_HAVESPACE, AUTHENTICATED_ONLY, parser.name_and_number),
        "PUTSCRIPT": (cmd_PUTSCRIPT, AUTHENTICATED_ONLY, parser.name_and_script),
        "CHECKSCRIPT": (cmd_CHECKSCRIPT, AUTHENTICATED_ONLY, parser.script),
        "LISTSCRIPTS": (cmd_LISTSCRIPTS, AUTHENTICATED_ONLY, parser.no_args),
        "SETACTIVE": (cmd_SETACTIVE, AUTHENTICATED_ONLY, parser.name),
        "GETSCRIPT": (cmd_GETSCRIPT, AUTHENTICATED_ONLY, parser.name),
        "DELETESCRIPT": (cmd_DELETESCRIPT, AUTHENTICATED_ONLY, parser.name),
        "RENAMESCRIPT": (cmd_RENAMESCRIPT, AUTHENTICATED_ONLY, parser.two_names),
    }
    # The parser's grammar, verb -> argument kind, read from the table.
    GRAMMAR = {verb: kind for verb, (_, _, kind) in COMMANDS.items()}
