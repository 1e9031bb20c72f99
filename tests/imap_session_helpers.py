"""Helpers of the IMAP session tests (test_imap_session.py, test_imap_session_login.py,
test_imap_session_updates.py): the capabilities before and after login, and base64."""




BASE_CAPS = ("IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR IDLE UIDPLUS MOVE NAMESPACE ENABLE ID UNSELECT "
             "CHILDREN SPECIAL-USE CREATE-SPECIAL-USE BINARY URLAUTH URLAUTH=BINARY CONDSTORE QRESYNC "
             "OBJECTID "
             "LIST-EXTENDED LIST-STATUS MULTIAPPEND CATENATE ESEARCH SEARCHRES SORT SORT=DISPLAY ESORT "
             "CONTEXT=SEARCH CONTEXT=SORT "
             "THREAD=ORDEREDSUBJECT THREAD=REFERENCES UTF8=ACCEPT NOTIFY"
             # cmd_quota.py; APPENDLIMIT is FakeServer's message_size
             " QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE STATUS=SIZE APPENDLIMIT=1048576")
AUTH_CAPS = BASE_CAPS + " COMPRESS=DEFLATE"      # after login (RFC 4978 3)
