"""Faults on demand for testing an application's error paths against the sandbox:
`--fail-rcpt PATTERN=CODE` (RCPT TO of an address matching the fnmatch pattern gets
that reply), `--delay SECONDS` (every SMTP reply waits that long) and
`--drop-after-data` (the connection closes after the message was read, before any
reply to it).

A dropped message is not delivered: the client saw no 250, so to it nothing was
accepted, and an application that retries must not find the message twice
(RFC 5321 6.1 puts responsibility on the server only with the 250).

FaultySMTPSession is SMTPSession with the faults of its server's `faults` (a frozen
Faults, swapped whole: the pytest plugin changes them between tests) applied around
the real commands; FaultySMTPServer runs it.
"""

import fnmatch
import time
from dataclasses import dataclass

from ..line_session import SessionClosed
from ..smtp import parser
from ..smtp.replies import Reply, SMTPReplyError
from ..smtp.server import SMTPServer
from ..smtp.session import SMTPSession
from ..smtp.states import MAY_RCPT

# The enhanced status code (RFC 3463) and text that go with a refusal code; another
# code gets X.0.0 ("other undefined status").
REFUSALS = {
    421: ("4.3.2", "Service not available, closing transmission channel"),
    450: ("4.2.1", "Mailbox temporarily unavailable"),
    451: ("4.3.0", "Local error in processing"),
    452: ("4.2.2", "Mailbox full"),
    550: ("5.1.1", "No such user here"),
    551: ("5.1.6", "User not local"),
    552: ("5.2.2", "Mailbox full"),
    553: ("5.1.3", "Mailbox name not allowed"),
    554: ("5.7.1", "Transaction failed"),
}


class FaultError(ValueError):
    """A fault option that cannot be used; str() says why."""


def refusal(code, pattern):
    """The Reply of a --fail-rcpt code (400-599)."""
    status, text = REFUSALS.get(code, (f"{code // 100}.0.0", "Recipient refused"))
    return Reply(code, status, f"{text} (sandbox fault {pattern})")


def parse_fail_rcpt(text):
    """'*@bounce.test=550' -> (pattern, Reply); FaultError when it is not one."""
    pattern, sep, code = text.rpartition("=")
    code = code.strip()
    if not sep or not pattern.strip():
        raise FaultError(f"--fail-rcpt {text!r}: expected PATTERN=CODE, e.g. '*@bounce.test=550'")
    if not (code.isascii() and code.isdigit() and len(code) == 3 and 400 <= int(code) <= 599):
        raise FaultError(f"--fail-rcpt {text!r}: the code must be a 4xx or 5xx reply code")
    return pattern.strip().lower(), refusal(int(code), pattern.strip())


@dataclass(frozen=True)
class Faults:
    fail_rcpt: tuple = ()           # (fnmatch pattern, lower-case; Reply), first match wins
    delay: float = 0.0              # seconds before every reply
    drop_after_data: bool = False   # close after the message, before its reply; not delivered

    @classmethod
    def from_options(cls, fail_rcpt=(), delay=0.0, drop_after_data=False):
        """Faults from the command-line forms (['*@x.test=550'], seconds, flag)."""
        if delay < 0:
            raise FaultError("--delay must not be negative")
        return cls(tuple(parse_fail_rcpt(item) for item in fail_rcpt), float(delay),
                   bool(drop_after_data))

    def rcpt_reply(self, address):
        """The Reply refusing `address`, or None."""
        address = address.lower()
        for pattern, reply in self.fail_rcpt:
            if fnmatch.fnmatchcase(address, pattern):
                return reply
        return None

    def describe(self):
        """One line per fault, for the start banner."""
        out = [f"RCPT TO matching {pattern} -> {reply.code} {reply.status}"
               for pattern, reply in self.fail_rcpt]
        if self.delay:
            out.append(f"every SMTP reply delayed {self.delay:g} s")
        if self.drop_after_data:
            out.append("connection dropped after DATA, before the reply (message not delivered)")
        return out


NO_FAULTS = Faults()


class FaultySMTPSession(SMTPSession):
    def send(self, data):
        delay = self.server.faults.delay
        if delay:
            time.sleep(delay)
        super().send(data)

    def cmd_RCPT(self, arg):
        """RCPT TO:<forward-path>, refused as --fail-rcpt says for a matching address.
        States: mail, rcpt.
        RFC 5321 4.1.1.3."""
        try:
            address, _ = parser.parse_rcpt(arg)
        except SMTPReplyError:
            address = None                  # the real command gives the syntax reply
        reply = self.server.faults.rcpt_reply(address) if address else None
        if reply is not None:
            self.rcpt_tried = True
            self.log.info("recipient <%s> refused by a sandbox fault: %d %s", address,
                          reply.code, reply.status)
            raise SMTPReplyError(reply)
        SMTPSession.cmd_RCPT(self, arg)

    def _finish_message(self, body, stuffed):
        if self.server.faults.drop_after_data:
            self.log.info("connection dropped after DATA by a sandbox fault: message of %d "
                          "octets from=<%s> not delivered", len(body), self.sender)
            self.reset_transaction()
            raise SessionClosed()
        super()._finish_message(body, stuffed)

    COMMANDS = {**SMTPSession.COMMANDS, "RCPT": (cmd_RCPT, MAY_RCPT)}


class FaultySMTPServer(SMTPServer):
    session_class = FaultySMTPSession
    faults = NO_FAULTS              # the Sandbox sets its own on each server
