"""The SMTP session: RFC 5321 with the ESMTP extensions SIZE (RFC 1870), PIPELINING
(RFC 2920), 8BITMIME (RFC 6152), ENHANCEDSTATUSCODES (RFC 2034, codes of RFC 3463),
SMTPUTF8 (RFC 6531), STARTTLS (RFC 3207), AUTH PLAIN/LOGIN (RFC 4954, RFC 4616),
CHUNKING/BDAT (RFC 3030), DSN (RFC 3461: RET, ENVID, NOTIFY, ORCPT go with the
message to the handler and the relay queue) and, on submission over TLS, REQUIRETLS
(RFC 8689: the flag goes with the message into the relay queue); Received "with"
keywords of RFC 3848.

One command table maps a verb to (method, states where it is allowed; states.py);
handle_line checks the state once and is the one place where an SMTPReplyError
becomes a reply.  Arguments are parsed by the command (parser.py), after the state
check, because a command out of sequence gets its 503 whatever its arguments.
Storage is the file handler's business (handler.py), the received message's checks
and trace header message.py's, what the server's policy allows at each step (sender
identity, sending limits, the MX defences, the inbound checks and content filter)
policy.py's; this module only talks.

Errors: every expected failure is an SMTPReplyError carrying a named Reply
(replies.py).  An unexpected exception (a bug) is left to LineSession's catch point,
which logs its traceback and sends the one unexpected-error reply, R451_INTERNAL; the
session lives on.  The same rule as POP3's: a storage failure is expected where the
session must say what did not happen, so a delivery that failed for any reason
(handler.DeliveryFailed: the handler rolls everything back whatever the cause) has its
own reply, R451_DELIVERY, and its cause's traceback in the log.
"""

import time

from ..login import SMTP_LINE_LIMIT, Login
from ..line_session import LineSession, SessionClosed
from ..wire import DataTooLarge
from . import auth, cmd_simple, message, parser
from . import replies as R
from .recipients import (AliasTooBig, BadDomain, BadSRS, DeliveryFailed, MailboxFull, NoSuchUser,
                         RelayDenied, SieveRefused)
from .policy import Policy
from .replies import SMTPReplyError
from .states import (ANY, BDAT, INIT, MAIL, MAY_BDAT, MAY_DATA, MAY_MAIL, MAY_RCPT,
                     OUTSIDE_TRANSACTION, RCPT, READY, sequence_reply)


class SMTPSession(LineSession):
    protocol = "smtp"
    # Commands are at most 512 octets with CRLF (RFC 5321 4.5.3.1.4), but AUTH with an
    # initial response may be 12288 (RFC 4954 4): read up to that, check per verb.
    line_limit = SMTP_LINE_LIMIT
    command_limit = 512

    # -- session state -----------------------------------------------------------
    def setup(self):
        super().setup()
        self.state = INIT
        self.helo = None
        self.esmtp = False
        self.auth_user = None
        self.login = Login(self, prompt=auth.PROMPT, line_limit=SMTP_LINE_LIMIT)
        self.mode = self.server.mode        # 'mx' or 'submission': SMTPServer's, always set
        # the policy steps at connect, MAIL, RCPT and end of DATA (policy.py)
        self.policy = Policy(self.server, self.peer, self.log)
        self.trusted = self.policy.trusted
        self.reset_transaction()

    def reset_transaction(self):
        """Forget the mail transaction (RSET, HELO/EHLO, after DATA; RFC 5321 4.1.1.5)."""
        self.sender = None
        self.recipients = []
        self.rcpt_tried = False
        self.smtputf8 = False
        self.requiretls = False
        self.ret = self.envid = None        # DSN (RFC 3461 4.3, 4.4)
        self.chunks = []
        self.chunk_size = 0
        self.declared_size = 0          # MAIL FROM's SIZE= (RFC 1870), for the quota check
        self.state = READY if self.helo is not None else INIT

    # -- LineSession hooks -------------------------------------------------------
    def greet(self):
        refusal = self.policy.at_connect(self.connection)
        if refusal is not None:
            self.log.info("refused at connect: %s", refusal.text)
            self.server.metrics.smtp_refused(refusal.reason)
            self.send(refusal.wire)
            raise SessionClosed()
        self.send(f"220 {self.server.hostname} ESMTP CleverMail\r\n")

    def line_too_long(self):
        self.send(R.R500_LINE_TOO_LONG.wire)

    def busy_reply(self):
        return R.R421_BUSY.format(self.server.hostname).wire

    def timeout_reply(self):
        return R.R421_TIMEOUT.format(self.server.hostname).wire

    def internal_error_reply(self):
        return R.R451_INTERNAL.wire

    def too_many_errors_reply(self):
        return R.R421_ERRORS.format(self.server.hostname).wire

    def shutdown_reply(self):
        return R.R421_SHUTDOWN.format(self.server.hostname).wire

    def in_message(self):
        return self.state == BDAT       # chunks received, LAST still to come

    # -- dispatch ----------------------------------------------------------------
    def handle_line(self, line):
        try:
            verb, arg = parser.parse_command(line)
            if len(line) > self.command_limit and verb != "AUTH":
                raise SMTPReplyError(R.R500_LINE_TOO_LONG)
            entry = self.COMMANDS.get(verb)
            if entry is None:
                raise SMTPReplyError(R.R500_UNKNOWN)
            method, states = entry
            if self.state not in states:
                raise SMTPReplyError(sequence_reply(self.state, verb, self.rcpt_tried))
            method(self, arg)
        except SMTPReplyError as exc:
            reply = exc.reply
            if reply.reason is not None:        # a refused transaction, counted
                self.server.metrics.smtp_refused(reply.reason)
            self.send(reply.wire)
            if reply.code == 421:
                raise SessionClosed() from None
            if reply.counts:
                self.count_error()

    # -- greeting ----------------------------------------------------------------
    def cmd_HELO(self, arg):
        """HELO <domain>: identify the client, plain SMTP; resets the transaction.
        States: any.
        RFC 5321 4.1.1.1."""
        self.helo = parser.parse_helo(arg) or self._bad_helo()
        self.esmtp = False
        self.reset_transaction()
        self.send(f"250 {self.server.hostname}\r\n")

    def cmd_EHLO(self, arg):
        """EHLO <domain>: identify the client and list the extensions offered.
        States: any (resets the transaction).
        RFC 5321 4.1.1.1, RFC 1869."""
        self.helo = parser.parse_helo(arg) or self._bad_helo()
        self.esmtp = True
        self.reset_transaction()
        # RFC 4954 4: AUTH only where credentials may travel.  The extension lines are
        # built once per combination of settings (R.ehlo_extensions), read afresh here,
        # so that a reload changing the size limit or TLS shows at the next EHLO.
        self.send(f"250-{self.server.hostname} greets {self.helo}\r\n".encode("utf-8", "replace")
                  + R.ehlo_extensions(self.server.limits.message_size, self.tls_available,
                                      self._requiretls_offered(),
                                      auth.offered(self)))

    def _bad_helo(self):
        raise SMTPReplyError(R.R501_HELO)

    def _requiretls_offered(self):
        # RFC 8689 4.1: for messages submitted over TLS; the relay honours it
        return self.mode == "submission" and self.tls

    # -- transaction ---------------------------------------------------------------
    def cmd_MAIL(self, arg):
        """MAIL FROM:<reverse-path> [SIZE= BODY= SMTPUTF8 AUTH= REQUIRETLS RET= ENVID=]: start a transaction.
        States: ready (after HELO/EHLO, no transaction open).
        RFC 5321 4.1.1.2, RFC 1870, RFC 6152, RFC 6531 3.4, RFC 4954 5, RFC 8689 4.1, RFC 3461 4.3-4.4."""
        if self.mode == "submission" and self.auth_user is None:
            raise SMTPReplyError(R.R530_AUTH_REQUIRED)
        sender, params = parser.parse_mail(arg)
        mail = parser.parse_mail_params(params, size_limit=self.server.limits.message_size,
                                        requiretls=self.mode == "submission", tls=self.tls)
        if not mail.smtputf8 and not sender.isascii():
            raise SMTPReplyError(R.R553_UTF8_NEEDS_SMTPUTF8)
        self.policy.check_mail(sender, self.auth_user)
        self.sender = sender
        self.smtputf8, self.requiretls = mail.smtputf8, mail.requiretls
        self.ret, self.envid = mail.ret, mail.envid
        self.declared_size = mail.size
        self.state = MAIL
        self.send(R.R250_SENDER_OK.wire)

    def cmd_RCPT(self, arg):
        """RCPT TO:<forward-path> [NOTIFY= ORCPT=]: add a recipient (local account, or relay if allowed).
        States: mail, rcpt.
        RFC 5321 4.1.1.3, 3.6 (relaying), 4.5.3.1.10 (recipient limit), RFC 3461 4.1-4.2."""
        self.rcpt_tried = True
        address, params = parser.parse_rcpt(arg)
        notify, orcpt = parser.parse_rcpt_dsn(params)
        if not self.smtputf8 and not address.isascii():
            raise SMTPReplyError(R.R553_UTF8_NEEDS_SMTPUTF8)
        if len(self.recipients) >= self.server.limits.recipients:
            raise SMTPReplyError(R.R452_TOO_MANY_RCPTS)
        if self.auth_user is not None:
            self.policy.check_quota(self.auth_user, len(self.recipients) + 1)
        may_relay = self.auth_user is not None or self.trusted
        try:
            rcpt = self.server.handler.resolve_recipient(address, may_relay, size=self.declared_size)
        except MailboxFull as exc:
            self.log.info("recipient <%s> refused: %s (from=<%s>)", address, exc, self.sender)
            raise SMTPReplyError(R.R552_MAILBOX_FULL if exc.permanent else R.R452_MAILBOX_FULL) from None
        except NoSuchUser:
            # the client only learns "no such user"; the log says which address and from whom
            self.log.info("recipient <%s> refused: no such user (from=<%s>)", address, self.sender)
            self.policy.unknown_recipient(self.auth_user)     # 421 for harvesting
            raise SMTPReplyError(R.R550_NO_SUCH_USER) from None
        except RelayDenied:
            self.log.info("relay denied for <%s> (from=<%s>)", address, self.sender)
            raise SMTPReplyError(R.R554_RELAY_DENIED) from None
        except BadDomain:
            # a U-label domain that is no IDN: bad syntax, not an unknown user
            raise SMTPReplyError(R.R501_BAD_RCPT) from None
        except BadSRS as exc:
            self.log.info("recipient <%s> refused: %s", address, exc)
            raise SMTPReplyError(R.R550_BAD_SRS) from None
        except AliasTooBig as exc:
            self.log.error("recipient <%s> refused: %s", address, exc)
            raise SMTPReplyError(R.R550_ALIAS_LOOP) from None
        self.policy.check_rcpt(self.sender, address, self.auth_user)
        rcpt.notify, rcpt.orcpt = notify, orcpt
        self.recipients.append(rcpt)
        self.state = RCPT
        self.send(R.R250_RCPT_OK.wire)

    def cmd_DATA(self, arg):
        """DATA: receive the message up to <CRLF>.<CRLF> and deliver it.
        States: rcpt (not after BDAT).
        RFC 5321 4.1.1.4, 4.5.2 (dot-stuffing), 4.5.3.1.6 (line length)."""
        if arg:
            raise SMTPReplyError(R.R501_NO_ARGS)
        self.send(R.R354_DATA.wire)
        try:
            body = self.reader.read_dot_terminated(self.server.limits.message_size)
        except DataTooLarge:
            self.reset_transaction()
            raise SMTPReplyError(R.R552_TOO_BIG) from None
        self._finish_message(body, stuffed=True)

    def cmd_BDAT(self, arg):
        """BDAT <size> [LAST]: receive one chunk of exactly <size> octets.
        States: any; the chunk is always read, so its bytes never run as commands.
        RFC 3030 2-4."""
        size, last = parser.parse_bdat(arg)
        if self.state not in MAY_BDAT:
            self.reader.skip(size)
            raise SMTPReplyError(sequence_reply(self.state, "BDAT", self.rcpt_tried))
        if self.chunk_size + size > self.server.limits.message_size:
            self.reader.skip(size)
            self.reset_transaction()
            raise SMTPReplyError(R.R552_TOO_BIG)
        if size:
            self.chunks.append(self.reader.read(size))
        self.chunk_size += size
        self.state = BDAT
        if not last:
            self.send(R.R250_CHUNK_OK.format(size).wire)
            return
        self._finish_message(b"".join(self.chunks), stuffed=False)

    def _finish_message(self, body, stuffed):
        """Check, stamp and deliver the received message; the transaction ends here
        whatever happens."""
        data_end = time.monotonic()
        sender, recipients, requiretls = self.sender, self.recipients, self.requiretls
        ret, envid = self.ret, self.envid
        self.reset_transaction()
        body = message.prepare_body(body, stuffed)
        header = message.Header(body)       # split once for the checks below
        if message.hop_count(body, header) > message.MAX_HOPS:
            self.log.warning("refused: mail loop, more than %d hops (from=<%s>)", message.MAX_HOPS, sender)
            raise SMTPReplyError(R.R554_TOO_MANY_HOPS)
        forged = self.server.handler.senders.header_refusal(body, user=self.auth_user, header=header)
        if forged is not None:
            self.log.warning("refused: From: header not owned by %s (from=<%s>)", self.auth_user, sender)
            raise SMTPReplyError(forged)
        if self.auth_user is not None:      # RFC 6409 8 fix-ups, DKIM signatures
            body = self.server.handler.finish_authenticated(body, self.server.hostname, header)
        queue_id = message.new_queue_id()
        body, folder = self.policy.check_message(body, sender=sender, recipients=recipients,
                                                 queue_id=queue_id, user=self.auth_user,
                                                 helo=self.helo, header=header)
        trace = message.received_header(
            helo=self.helo, peer=self.peer, hostname=self.server.hostname, esmtp=self.esmtp,
            tls_info=self.tls_info, authenticated=self.auth_user is not None,
            queue_id=queue_id, session_id=self.session_id, recipients=recipients)
        def accepted():
            # logged before the commit wakes the relay worker (whose lines must follow
            # it, `clevermail trace`), and still before the 250, which waits for the
            # commit's fsync; a commit that fails after it logs "delivery failed" below
            self.log.info("accepted id=%s from=<%s> %s size=%d message-id=%s helo=%s",
                          queue_id, sender, message.recipients_text(recipients), len(body),
                          message.message_id(body), self.helo, extra={"queue_id": queue_id})
        try:
            n_local, n_remote = self.server.handler.deliver(sender, recipients, body, trace, queue_id,
                                                            folder=folder, requiretls=requiretls,
                                                            ret=ret, envid=envid, prepared=accepted)
        except MailboxFull as exc:
            self.log.info("refused id=%s from=<%s>: %s", queue_id, sender, exc)
            raise SMTPReplyError(R.R552_MAILBOX_FULL if exc.permanent else R.R452_MAILBOX_FULL) from None
        except SieveRefused as exc:         # every recipient's script erejected it
            self.log.info("refused id=%s from=<%s>: sieve ereject: %s", queue_id, sender, exc)
            raise SMTPReplyError(R.sieve_refusal(exc.reason)) from None
        except DeliveryFailed as exc:
            # the cause's traceback: a bug in the delivery path shows here, not as a
            # bare one-line 451 forever
            self.log.error("delivery failed id=%s from=<%s>: %s", queue_id, sender, exc,
                           exc_info=exc.__cause__, extra={"queue_id": queue_id})
            self.server.metrics.store_error("smtp_delivery")
            raise SMTPReplyError(R.R451_DELIVERY) from None
        if self.auth_user is not None:
            self.server.handler.quota.record(self.auth_user, len(recipients))
        self.server.metrics.message_accepted(n_local, n_remote, data_end)
        self.send(R.R250_QUEUED.format(queue_id).wire)

    # -- other commands --------------------------------------------------------------
    def cmd_STARTTLS(self, arg):
        """STARTTLS: switch to TLS; then the session starts over (new EHLO needed).
        States: init, ready (not inside a transaction).
        RFC 3207 4-4.2."""
        if arg:
            raise SMTPReplyError(R.R501_NO_ARGS)
        if self.tls:
            raise SMTPReplyError(R.R503_ALREADY_TLS)
        if not self.tls_available:
            raise SMTPReplyError(R.R502_NO_TLS)
        self.send(R.R220_TLS_GO.wire)
        self.start_tls()              # discards anything pipelined after STARTTLS
        # RFC 3207 4.2: forget everything learnt before the handshake
        self.helo = None
        self.esmtp = False
        self.auth_user = None
        self.reset_transaction()

    # The one command table: verb -> (method, states where it is allowed).
    COMMANDS = {
        "HELO": (cmd_HELO, ANY),
        "EHLO": (cmd_EHLO, ANY),
        "MAIL": (cmd_MAIL, MAY_MAIL),
        "RCPT": (cmd_RCPT, MAY_RCPT),
        "DATA": (cmd_DATA, MAY_DATA),
        "BDAT": (cmd_BDAT, ANY),
        "RSET": (cmd_simple.cmd_RSET, ANY),
        "NOOP": (cmd_simple.cmd_NOOP, ANY),
        "QUIT": (cmd_simple.cmd_QUIT, ANY),
        "VRFY": (cmd_simple.cmd_VRFY, ANY),
        "EXPN": (cmd_simple.cmd_EXPN, ANY),
        "HELP": (cmd_simple.cmd_HELP, ANY),
        "STARTTLS": (cmd_STARTTLS, OUTSIDE_TRANSACTION),
        "AUTH": (auth.cmd_AUTH, OUTSIDE_TRANSACTION),
    }
