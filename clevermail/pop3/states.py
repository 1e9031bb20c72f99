"""POP3 session states (RFC 1939 3) and the sets of them that the command table uses.

AUTHORIZATION until USER/PASS or AUTH succeeds and the maildrop is locked, then
TRANSACTION.  UPDATE (RFC 1939 6) is no state a command can run in: QUIT in
TRANSACTION enters it and the session ends with it, so it is not named here.

The values are the RFC's names because the client reads them: a command in the wrong
state is answered "-ERR <verb> is not valid in the <state> state".
"""

AUTHORIZATION = "AUTHORIZATION"
TRANSACTION = "TRANSACTION"

ANY = frozenset({AUTHORIZATION, TRANSACTION})
AUTHORIZATION_ONLY = frozenset({AUTHORIZATION})
TRANSACTION_ONLY = frozenset({TRANSACTION})
