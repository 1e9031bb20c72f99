"""SMTP replies as named constants, and the error that carries one.

Reply codes are RFC 5321 section 4.2; enhanced status codes are RFC 3463 (registry
in RFC 5248), sent on every reply except the greeting and the EHLO/HELO lines
(RFC 2034 section 3).  A command method raises `SMTPReplyError(R550_NO_SUCH_USER)`;
the session's single catch point sends `reply.wire`, counts the error when
`reply.counts` says so, and counts a refused transaction by `reply.reason` (the
label of the clevermail_smtp_refused metric).
"""

import functools

# Refusals of a mail transaction (and of a client at connect) by the reply's (code,
# enhanced status): the reason label of the clevermail_smtp_refused metric.  A reply
# whose code and status other refusals share names its own reason (reason=).  Other
# error replies (syntax of other commands, sequence errors, AUTH) are no refusal.
REFUSAL_REASONS = {
    (550, "5.1.1"): "unknown_user",
    (554, "5.7.1"): "relay_denied",
    (552, "5.3.4"): "too_big",
    (452, "4.5.3"): "too_many_recipients",
    (421, "4.7.0"): "rate",             # AUTH throttled, connections per minute
    (530, "5.7.0"): "policy",           # submission without AUTH
    (550, "5.7.1"): "policy",           # a local sender without AUTH, a From: not owned, DMARC
    (451, "4.4.3"): "dns",              # SPF/DKIM/DMARC could not be decided now
    (553, "5.7.1"): "policy",           # MAIL FROM not owned by the user
    (450, "4.7.1"): "rate",             # the user's sending limit per hour, messages per minute
    (553, "5.6.7"): "syntax",           # non-ASCII address without SMTPUTF8
    (501, "5.1.3"): "syntax",
    (501, "5.1.7"): "syntax",
    (555, "5.5.4"): "syntax",
    (554, "5.6.0"): "content",          # a line over 998 octets
    (550, "5.4.6"): "loop",             # an alias that expands too far
    (554, "5.4.6"): "loop",             # too many Received hops
    (451, "4.3.0"): "local_error",      # nothing stored
    (452, "4.2.2"): "mailbox_full",     # over quota (store/quota.py)
    (552, "5.2.2"): "mailbox_full",     # larger than the quota
}


class Reply:
    """One single-line reply; `wire` is the bytes sent, built once; `reason` the
    metric label when it refuses a transaction or a client (None otherwise)."""

    __slots__ = ("code", "status", "text", "counts", "wire", "reason")

    def __init__(self, code, status, text, counts=None, reason=None):
        self.code = code
        self.status = status
        self.text = text
        # 5xx replies count toward the per-session error limit (a client sending
        # garbage or probing addresses gets cut off); 4xx only when said so, because
        # e.g. RFC 5321 4.5.3.1.10 expects clients to send on after 452.
        self.counts = code >= 500 if counts is None else counts
        self.reason = reason or REFUSAL_REASONS.get((code, status))
        head = f"{code} {status} " if status else f"{code} "
        self.wire = (head + text + "\r\n").encode("utf-8", "replace")

    def format(self, *args, **kwargs):
        """A copy whose text has the placeholders filled in."""
        return Reply(self.code, self.status, self.text.format(*args, **kwargs), self.counts, self.reason)

    def __repr__(self):
        return f"Reply({self.code} {self.status} {self.text!r})"


class SMTPReplyError(Exception):
    """Raised by command code; the session sends `reply` and counts the error."""

    def __init__(self, reply):
        super().__init__(f"{reply.code} {reply.status} {reply.text}")
        self.reply = reply


@functools.lru_cache(maxsize=64)
def ehlo_extensions(size, starttls, requiretls, auth_mechanisms):
    """The EHLO reply after its greeting line (RFC 5321 4.1.1.1, RFC 1869), as bytes:
    the extensions offered, one line each, for a SIZE limit, whether STARTTLS and
    REQUIRETLS are offered, and the AUTH mechanisms offered (a tuple; empty: no AUTH).
    Built once per combination, as every new SMTP session asks for it; the arguments
    are the whole key, so a reload that changes one of them gets its own reply, never
    a stale one."""
    lines = [f"SIZE {size}", "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING",
             "DSN"]
    if starttls:
        lines.append("STARTTLS")
    if requiretls:
        lines.append("REQUIRETLS")
    if auth_mechanisms:
        lines.append("AUTH " + " ".join(auth_mechanisms))
    lines.append("HELP")
    return "".join(f"250-{line}\r\n" for line in lines[:-1]).encode() + f"250 {lines[-1]}\r\n".encode()


def multiline(code, lines):
    """A multi-line reply: 'code-' on every line but the last (RFC 5321 4.2.1)."""
    out = [f"{code}-{line}\r\n" for line in lines[:-1]]
    out.append(f"{code} {lines[-1]}\r\n")
    return "".join(out).encode("utf-8", "replace")


# -- 2xx / 3xx ---------------------------------------------------------------------
R214_HELP = Reply(214, "2.0.0", "{}")
R221_BYE = Reply(221, "2.0.0", "Bye")
R235_AUTH_OK = Reply(235, "2.7.0", "Authentication successful")
R250_OK = Reply(250, "2.0.0", "Ok")
R250_SENDER_OK = Reply(250, "2.1.0", "Sender ok")
R250_RCPT_OK = Reply(250, "2.1.5", "Recipient ok")
R250_QUEUED = Reply(250, "2.0.0", "Ok: queued as {}")
R250_CHUNK_OK = Reply(250, "2.0.0", "{} octets received")
R252_VRFY = Reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery")
R220_TLS_GO = Reply(220, "2.0.0", "Ready to start TLS")
R354_DATA = Reply(354, "", "End data with <CR><LF>.<CR><LF>")

# -- 4xx -----------------------------------------------------------------------
R421_BUSY = Reply(421, "4.7.0", "{} Too many connections, try again later")
R421_TIMEOUT = Reply(421, "4.4.2", "{} Idle timeout, closing connection")
R421_ERRORS = Reply(421, "4.7.0", "{} Too many errors, closing connection")
# RFC 5321 3.8 / 4.2.2: the server is stopping (MailService.stop's drain).
R421_SHUTDOWN = Reply(421, "4.3.2", "{} Service shutting down")
R421_AUTH_THROTTLED = Reply(421, "4.7.0", "{} Too many failed authentications from your address, try again later")
# The one reply to an unexpected exception (a bug), sent by LineSession's catch point.
R421_CLIENT_RATE = Reply(421, "4.7.0", "{} Too many connections from your address, try again later")
R421_HARVEST = Reply(421, "4.7.0", "{} Too many unknown recipients, closing connection", reason="harvest")
R451_GREYLISTED = Reply(451, "4.7.1", "Greylisted, try again in {} seconds", counts=False, reason="greylist")
R450_MESSAGE_RATE = Reply(450, "4.7.1", "Too much mail from your address, try again later", counts=False)
R451_INTERNAL = Reply(451, "4.3.0", "Internal error, try again later", counts=False)
R451_DELIVERY = Reply(451, "4.3.0", "Message not stored (local error), try again later", counts=False)
R452_TOO_MANY_RCPTS = Reply(452, "4.5.3", "Too many recipients", counts=False)
# RFC 3463 X.2.2: over the mailbox quota (store/quota.py); the user can make room
R452_MAILBOX_FULL = Reply(452, "4.2.2", "Mailbox full, try again later", counts=False)
R451_AUTH_DNS = Reply(451, "4.4.3", "Cannot authenticate the message now ({}), try again later", counts=False)
R450_SEND_LIMIT = Reply(450, "4.7.1", "Sending limit reached ({}), try again later", counts=False)

# -- 5xx: syntax and sequence ------------------------------------------------------
R500_UNKNOWN = Reply(500, "5.5.2", "Command not recognized")
R500_LINE_TOO_LONG = Reply(500, "5.5.2", "Line too long")
R500_BAD_CHARS = Reply(500, "5.5.2", "Invalid characters in command")
R500_AUTH_LINE_TOO_LONG = Reply(500, "5.5.6", "Authentication exchange line is too long")
R501_SYNTAX = Reply(501, "5.5.4", "Syntax error in parameters or arguments")
R501_NO_ARGS = Reply(501, "5.5.4", "This command takes no arguments")
R501_HELO = Reply(501, "5.5.4", "Syntax: HELO/EHLO <domain or address literal>")
R501_BAD_SENDER = Reply(501, "5.1.7", "Bad sender address syntax")
R501_BAD_RCPT = Reply(501, "5.1.3", "Bad recipient address syntax")
R501_MAIL_SYNTAX = Reply(501, "5.5.4", "Syntax: MAIL FROM:<address> [parameters]")
R501_RCPT_SYNTAX = Reply(501, "5.5.4", "Syntax: RCPT TO:<address> [parameters]")
R501_BDAT_SYNTAX = Reply(501, "5.5.4", "Syntax: BDAT <size> [LAST]")
R501_AUTH_SYNTAX = Reply(501, "5.5.4", "Syntax: AUTH <mechanism> [initial-response]")
R501_AUTH_DECODE = Reply(501, "5.5.2", "Cannot decode the authentication response")
R501_AUTH_CANCELLED = Reply(501, "5.0.0", "Authentication cancelled")
R501_DSN_PARAM = Reply(501, "5.5.4", "Bad DSN parameter: {}")
R501_VRFY = Reply(501, "5.5.4", "Syntax: VRFY <address>")
R502_NOT_IMPLEMENTED = Reply(502, "5.5.1", "Command not implemented")
R502_NO_TLS = Reply(502, "5.5.1", "STARTTLS not available")
R503_SEQUENCE = Reply(503, "5.5.1", "Bad sequence of commands")
R503_HELO_FIRST = Reply(503, "5.5.1", "Send HELO/EHLO first")
R503_EHLO_FIRST = Reply(503, "5.5.1", "Send EHLO first")
R503_NESTED_MAIL = Reply(503, "5.5.1", "Nested MAIL command")
R503_NEED_MAIL = Reply(503, "5.5.1", "Need MAIL command first")
R503_NEED_RCPT = Reply(503, "5.5.1", "Need RCPT command first")
R503_MIXED_DATA = Reply(503, "5.5.1", "DATA and BDAT cannot be mixed in one transaction")
R503_RCPT_AFTER_BDAT = Reply(503, "5.5.1", "RCPT not allowed after BDAT")
R503_IN_TRANSACTION = Reply(503, "5.5.1", "Not permitted during a mail transaction")
R503_ALREADY_AUTH = Reply(503, "5.5.1", "Already authenticated")
R503_ALREADY_TLS = Reply(503, "5.5.1", "TLS already active")
R504_AUTH_MECH = Reply(504, "5.5.4", "Unrecognized authentication mechanism")
R555_PARAM = Reply(555, "5.5.4", "Unsupported MAIL/RCPT parameter {}")

# -- 5xx: policy and content -------------------------------------------------------
R530_AUTH_REQUIRED = Reply(530, "5.7.0", "Authentication required")
R530_REQUIRETLS_NEEDS_TLS = Reply(530, "5.7.10", "REQUIRETLS needs a TLS session (RFC 8689)")
R535_AUTH_FAILED = Reply(535, "5.7.8", "Authentication credentials invalid")
R538_ENCRYPTION_REQUIRED = Reply(538, "5.7.11", "Encryption required for requested authentication mechanism")
R550_NO_SUCH_USER = Reply(550, "5.1.1", "No such user here")
R550_BAD_SRS = Reply(550, "5.7.1", "Invalid or expired bounce address")
R550_ALIAS_LOOP = Reply(550, "5.4.6", "Alias expands too far (a forwarding loop?)")
R554_TOO_MANY_HOPS = Reply(554, "5.4.6", "Too many hops: mail loop detected", counts=False)
R550_AUTH_POLICY = Reply(550, "5.7.1", "Message refused: {}")
R550_LOCAL_SENDER_NEEDS_AUTH = Reply(550, "5.7.1", "Sender address in a local domain: authenticate to send as it")
R550_FROM_NOT_OWNED = Reply(550, "5.7.1", "From: header address not owned by user {}")
R553_SENDER_NOT_OWNED = Reply(553, "5.7.1", "Sender address not owned by user {}")
R552_TOO_BIG = Reply(552, "5.3.4", "Message size exceeds fixed maximum message size")
R552_MAILBOX_FULL = Reply(552, "5.2.2", "Mailbox full: the message is larger than the mailbox quota", counts=False)
R553_UTF8_NEEDS_SMTPUTF8 = Reply(553, "5.6.7", "Non-ASCII address needs the SMTPUTF8 parameter")
R554_DNSBL = Reply(554, "5.7.1", "Client address {} blocked by {}: {}", reason="dnsbl")
R554_PREGREET = Reply(554, "5.5.1", "Protocol error: talking before the greeting", reason="pregreet")
R554_RELAY_DENIED = Reply(554, "5.7.1", "Relay access denied")
R554_NO_VALID_RCPTS = Reply(554, "5.5.1", "No valid recipients")
R554_LONG_LINE = Reply(554, "5.6.0", "Message refused: a line is longer than 998 octets (RFC 5321 4.5.3.1.6)")
# RFC 5429 2.1: a Sieve ereject refused at the end of DATA, the script's reason as text
R550_SIEVE_REJECT = Reply(550, "5.7.1", "{}", reason="sieve")
SIEVE_REASON_LIMIT = 200            # characters of the script's reason in the reply


def sieve_refusal(reason):
    """The 550 5.7.1 reply of an ereject: the script's reason made one line of
    printable ASCII (line breaks and controls become spaces, other characters '?',
    cut to SIEVE_REASON_LIMIT), so that no script can add reply lines or bytes a
    client does not expect; a reason that is empty then says so."""
    text = "".join(c if " " <= c <= "~" else " " if c.isspace() or not c.isprintable() else "?"
                   for c in reason[:SIEVE_REASON_LIMIT * 4])
    text = " ".join(text.split())[:SIEVE_REASON_LIMIT].rstrip()
    return R550_SIEVE_REJECT.format(text or "Message rejected by the recipient's filter")
