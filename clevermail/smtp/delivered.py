"""The delivered log line: one INFO line per local copy, whoever made it (the SMTP
transaction's copies, a Sieve keep or fileinto, the relay worker's deliveries of
queued local recipients and of reports to local senders through deliver_queued):

    id=<queue id> delivered to <account> folder="<name>" message-id=<id> path=<file>

`clevermail trace` (trace/finder.py) follows it to the file, the file to its UID
(the folder's uidlist) and the UID to the IMAP/POP3 retrieval lines.  The folder is
JSON-quoted (a mailbox name may hold spaces and quotes), the Message-ID is the one
the accepted line shows (smtp/message.py message_id: '-' for none), and the path
comes last (a folder directory may hold spaces).  Logged only after the whole
transaction committed: a copy taken back by an abort is never reported delivered.
"""

import json
import logging

from .message import message_id

log = logging.getLogger("clevermail.smtp")


def log_delivered(queue_id, data, pendings):
    """One delivered line per committed copy of the store's PendingDelivery objects
    `pendings`; `data` is the message (its header section names the Message-ID)."""
    mid = None
    for pending in pendings:
        for account, folder, path in pending.copies():
            if mid is None:
                mid = message_id(data)
            log.info("id=%s delivered to <%s> folder=%s message-id=%s path=%s", queue_id, account,
                     json.dumps(folder, ensure_ascii=False), mid, path,
                     extra={"queue_id": queue_id})
