"""The mail store: Maildir++ per user, UIDs, flags, folder locks, change notification.

On disk, under <data_dir>/mail/:

    <domain>/<local>/{tmp,new,cur}/            INBOX (Maildir)
    <domain>/<local>/.<Folder>[.<Sub>]/...     other folders (Maildir++; '.' separates
                                               levels, a literal '.' or '%' is %-escaped)
    <domain>/<local>/subscriptions             subscribed folder names, one a line
    <domain>/<local>/clevermail-uidvalidity    the last UIDVALIDITY given to a folder of
                                               the user (uidvalidity.py: never twice)
    <domain>/<local>/clevermail-pop3.lock      flock held by the POP3 session owning the maildrop
    <folder>/clevermail-uidlist                UIDVALIDITY, UIDNEXT, base -> UID, the UIDs
                                               reserved for unsynced lines (uidlist.py)
    <folder>/clevermail-keywords               IMAP keyword <-> flag letter a..z
    <folder>/clevermail-modseq                 modseqs: which change gave each message its
                                               modseq, expunged UIDs with theirs (modseq.py)
    <folder>/clevermail-index                  cache of the folder index (index.py)
    <folder>/clevermail-lock                   flock target shared with other processes (locks.py)
    <folder>/clevermail-specialuse             special-use attributes it was created with,
                                               one a line (special_use.py, RFC 6154)
    <folder>/clevermail-fetch-cache            IMAP's rendered FETCH metadata, appended by
                                               every process (written by imap/fetch_journal.py:
                                               it goes wherever the folder directory goes)

Message files follow maildir.py's naming (sizes and date in the name, flags after
':2,'), stored with LF line endings; POP3 and IMAP send them with CRLF.  Mutt, Dovecot
and other Maildir readers can work on the same tree.  POP3 UIDLs are
"<UIDVALIDITY>.<UID>" of INBOX, so POP3 and IMAP agree on message identity.  The store never speaks a protocol.
"""

from .errors import (FolderExists, FolderInUse, InvalidName, MessageGone, NoSuchFolder,
                     SpecialUseError, StoreError)
from .folder import Folder
from .scan import Entry
from .delivery import PendingDelivery
from .mailstore import MailStore
from .users import SPECIAL_USE

__all__ = ["Entry", "Folder", "FolderExists", "FolderInUse", "InvalidName", "MailStore",
           "MessageGone", "NoSuchFolder", "PendingDelivery", "SPECIAL_USE", "SpecialUseError",
           "StoreError"]
