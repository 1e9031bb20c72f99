"""POP3 (RFC 1939, RFC 2449 CAPA, RFC 5034 AUTH, RFC 2595 STLS, RFC 3206 codes).

replies.py   POP3Error, reply formatting, byte-stuffed multi-line bodies
parser.py    command line -> verb and validated arguments (pure)
session.py   POP3Session: the command table and the dialogue
handler.py   POP3FileHandler: exclusive maildrop snapshots over the store
server.py    POP3Server: the listener
"""
