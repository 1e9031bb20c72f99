"""ManageSieve (RFC 5804): users manage their Sieve scripts from Roundcube,
Thunderbird or sieve-connect.

states.py    the session states and the sets of them the command table uses
replies.py   strings (quoted or literal), OK/NO/BYE responses with RFC 5804 response
             codes, the named NO and BYE replies and SieveNo
parser.py    command -> verb and validated arguments (pure; literals through a
             callback), by the argument kind the command table gives each verb
session.py   ManageSieveSession: the command table (the one verb list) and the dialogue
handler.py   SieveFileHandler: credentials, and scripts through the script store
             (sieve.scripts) and the Sieve parser; speaks storage only
server.py    ManageSieveServer: the listener
"""
