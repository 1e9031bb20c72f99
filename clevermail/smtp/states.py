"""SMTP session states: the phases of RFC 5321's mail transaction (3.3, 4.1.4), and
the sets of them that the command table uses.

    INIT   connected, no HELO/EHLO yet (and again after STARTTLS: RFC 3207 4.2)
    READY  greeted, no transaction open (also after RSET, a delivery, a new HELO/EHLO)
    MAIL   MAIL FROM accepted, no recipient yet
    RCPT   at least one recipient accepted: DATA or BDAT may follow
    BDAT   inside a BDAT transfer (RFC 3030): more chunks until BDAT ... LAST

A command outside its states is answered by the 503 (or 554) that says what is out of
order (SMTPSession._sequence_reply).
"""

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
