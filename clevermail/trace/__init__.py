"""`clevermail trace`: the life of one message from the server's logs and its queue
record.

    records.py  the log files (text or JSON, [server] log_format) read into Records
    finder.py   which messages a queue id, a Message-ID or an address (in a time window)
                means, and every event of each, in time order: the SMTP session that
                accepted it (peer, TLS, auth user), each local delivery (mailbox, file,
                UID), each relay attempt (MX, TLS, reply), the bounce, each IMAP/POP3
                retrieval (`log_retrievals`), and the queue entry while it exists
"""
