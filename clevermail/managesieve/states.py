"""ManageSieve session states (RFC 5804 1.2, 2.1, 2.14.1) and the sets of them the
command table uses.

NON_AUTHENTICATED until AUTHENTICATE succeeds, then AUTHENTICATED; UNAUTHENTICATE
goes back.  There is no logout state a command can run in: LOGOUT ends the session.
The values are what the client reads in "NO "PUTSCRIPT needs authentication"" style
replies, so they are plain words.
"""

NON_AUTHENTICATED = "non-authenticated"
AUTHENTICATED = "authenticated"

ANY = frozenset({NON_AUTHENTICATED, AUTHENTICATED})
NON_AUTHENTICATED_ONLY = frozenset({NON_AUTHENTICATED})
AUTHENTICATED_ONLY = frozenset({AUTHENTICATED})
