"""Moving mail in and out: `clevermail import` and `clevermail export`.

Readers turn another program's mail into `message.Incoming` values (bytes, IMAP flag
names, internal date); `importer.py` hands every one to the store through
store/folder_ops.py's BatchAppender, the batch form of the append IMAP APPEND uses,
so UIDs, indexes, locks and durability are the store's, and it works while the
server runs.  `export.py` reads through folder_ops.reading (a FolderView) and writes
a user's folders as a Maildir++ tree that mutt and Dovecot read.  Neither holds a
Folder.

    message.py   the imported message (Incoming), the damaged-message check, IMAP
                 keyword syntax (RFC 3501 flag-keyword)
    maildir.py   reading Maildir and Maildir++ trees (cr.yp.to/proto/maildir.html,
                 Courier/Dovecot Maildir++: .Folder.Sub, dovecot-keywords)
    mbox.py      reading mbox files (mboxo/mboxrd From_ lines, mutt's and Dovecot's
                 Status/X-Status/X-Keywords headers)
    importer.py  which reader a PATH needs, folders created, duplicates skipped,
                 messages appended through the store; the report
    export.py    a user's store -> a Maildir++ tree (flags in the info suffix,
                 keywords in dovecot-keywords, internal dates as file mtimes)

Only the store is used: no protocol package is imported except imap/utf7.py, the
modified UTF-7 codec Maildir++ folder names are written in (Dovecot, Courier).
"""
