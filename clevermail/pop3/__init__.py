"""POP3 (RFC 1939, RFC 2449 CAPA, RFC 5034 AUTH, RFC 2595 STLS, RFC 3206 codes).

states.py    the session states and the sets of them the command table uses
replies.py   named -ERR replies (ErrorReply) and POP3Error, +OK and multi-line formatting
parser.py    command line -> verb and validated arguments (pure), by the argument
             kind the command table gives each verb
session.py   POP3Session: the command table (the one verb list) and the dialogue
handler.py   POP3FileHandler: exclusive maildrop snapshots over the store
server.py    POP3Server: the listener
"""
