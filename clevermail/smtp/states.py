"""SMTP session states: the phases of RFC 5321's mail transaction (3.3, 4.1.4), and
the sets of them that the command table uses.

    INIT   connected, no HELO/EHLO yet (and again after STARTTLS: RFC 3207 4.2)
    READY  greeted, no transaction open (also after RSET, a delivery, a new HELO/EHLO)
    MAIL   MAIL FROM accepted, no recipient yet
    RCPT   at least one recipient accepted: DATA or BDAT may follow
    BDAT   inside a BDAT transfer (RFC 3030): more chunks until BDAT ... LAST

A command outside its states is answered by the 503 (or 554) that says what is out of
order (sequence_reply).
"""

from . import replies as R

INIT = "init"
READY = "ready"
MAIL = "mail"
RCPT = "rcpt"
BDAT = "bdat"

ANY = frozenset({INIT, READY, MAIL, RCPT, BDAT})
OUTSIDE_TRANSACTION = frozenset({INIT, READY})   # STARTTLS, AUTH
MAY_MAIL = frozenset({READY})
MAY_RCPT = frozenset({MAIL, RCPT})
MAY_DATA = frozenset({RCPT})
# BDAT is allowed in ANY state by the table, because its chunk must be read (and
# dropped) whatever the state; cmd_BDAT then checks these.
MAY_BDAT = frozenset({RCPT, BDAT})


def sequence_reply(state, verb, rcpt_tried):
    """The 503 (or 554) that says what is out of order when `verb` comes in `state`
    (RFC 5321 4.3.2); `rcpt_tried`: the transaction has seen a RCPT."""
    if state == INIT and verb in ("MAIL", "RCPT", "DATA", "BDAT"):
        return R.R503_HELO_FIRST
    if verb == "MAIL":
        return R.R503_NESTED_MAIL
    if verb == "RCPT":
        return R.R503_RCPT_AFTER_BDAT if state == BDAT else R.R503_NEED_MAIL
    if verb in ("DATA", "BDAT"):
        if state == MAIL:        # RFC 5321 3.3: 554 when every RCPT was refused
            return R.R554_NO_VALID_RCPTS if rcpt_tried else R.R503_NEED_RCPT
        return R.R503_MIXED_DATA if state == BDAT else R.R503_NEED_MAIL
    if verb == "AUTH" and state == INIT:
        return R.R503_EHLO_FIRST
    if verb in ("AUTH", "STARTTLS"):
        return R.R503_IN_TRANSACTION
    return R.R503_SEQUENCE
