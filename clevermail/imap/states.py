"""The IMAP session states (RFC 3501 3) and the sets of them a command is allowed in.

One home for the names, so the session and the command modules compare and assign
the same constants and no module spells a state as a literal.  The LOGOUT state is
not represented: a session in it is already closing.
"""

NOT_AUTH = "not authenticated"      # RFC 3501 3.1
AUTH = "authenticated"              # RFC 3501 3.2
SELECTED = "selected"               # RFC 3501 3.3

# Allowed-state sets of the command table (IMAPSession.COMMANDS), one per RFC 3501
# 6.x section: 6.1 any state, 6.2 not authenticated, 6.3 authenticated (a selected
# session is authenticated too), 6.4 selected.
ANY = frozenset((NOT_AUTH, AUTH, SELECTED))
NOT_AUTH_ONLY = frozenset((NOT_AUTH,))
LOGGED_IN = frozenset((AUTH, SELECTED))
SELECTED_ONLY = frozenset((SELECTED,))
