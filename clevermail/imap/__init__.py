"""IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051, after ENABLE IMAP4rev2) with UTF8=ACCEPT
(RFC 6855), LITERAL+, SASL-IR, IDLE, UIDPLUS, MOVE, NAMESPACE, ENABLE,
ID, UNSELECT, CHILDREN, SPECIAL-USE, CREATE-SPECIAL-USE, BINARY, URLAUTH (URLAUTH=BINARY),
OBJECTID, COMPRESS=DEFLATE, CONDSTORE, QRESYNC, LIST-EXTENDED, LIST-STATUS, MULTIAPPEND,
CATENATE, ESEARCH, SEARCHRES, SORT, SORT=DISPLAY, ESORT, CONTEXT=SEARCH, CONTEXT=SORT,
THREAD=ORDEREDSUBJECT and THREAD=REFERENCES, QUOTA, STATUS=SIZE, APPENDLIMIT and NOTIFY.

states.py            the session states and the sets of them the command table uses
replies.py           every status response as a named Reply (status, code, text), the
                     IMAPNo/IMAPBad/IMAPBye errors, the store/login error mappings and
                     the one unexpected-error answer
parser.py            command line (literals through a callback) -> Command (pure)
session.py           IMAPSession: the loop step, the state, the command table, the one
                     catch point, capabilities (RFC 3501 6.1)
cmd_login.py         STARTTLS, LOGIN, AUTHENTICATE (RFC 3501 6.2, RFC 4959) and COMPRESS
                     (RFC 4978)
cmd_mailboxes.py     the authenticated-state commands, plain functions (RFC 3501 6.3;
                     APPEND of several messages: MULTIAPPEND, RFC 3502)
cmd_list.py          LIST, also with LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819)
                     and the SPECIAL-USE options (RFC 6154)
idle.py              IDLE: IdleWaiter (socket + the folder's shared wake-up in one poll), DONE
cmd_notify.py        NOTIFY (RFC 5465): the command, the wait between commands and IDLE
                     with NOTIFY set
notify.py            Notifier: what a NOTIFY asks, watched and said (selected mailbox
                     events, STATUS of other mailboxes, NOTIFICATIONOVERFLOW)
notify_spec.py       NOTIFY's arguments -> NotifySpec, BAD/NO [BADEVENT] (pure)
notify_tree.py       MailboxName and SubscriptionChange: the tree last seen, LIST lines
cmd_selected.py      the selected-state commands and their UID forms (RFC 3501 6.4), "$"
                     in their sets (RFC 5182)
message_sets.py      their message sets resolved into the view's sequence numbers
cmd_search.py        SEARCH, SORT, THREAD and their UID forms, RETURN options and the
                     saved result (RFC 3501 6.4.4, RFC 4731, 5182, 5256, 5267, 5957)
esearch.py           RETURN options and the ESEARCH response (pure)
contexts.py          search contexts kept up to date: RETURN (UPDATE), ADDTO and
                     REMOVEFROM (RFC 5267 4: CONTEXT=SEARCH, CONTEXT=SORT)
sort.py              sort criteria, sort keys, base subject and sent date (RFC 5256; pure)
thread.py            ORDEREDSUBJECT and REFERENCES threading (RFC 5256 section 4; pure)
sortcache.py         sort keys read from message headers once, kept per folder (shared)
selected_mailbox.py  SelectedMailbox: a folder view's changes said in IMAP (EXPUNGE or
                     VANISHED, FETCH FLAGS [MODSEQ], EXISTS, RECENT) and the untagged
                     part of SELECT
condstore.py         CONDSTORE/QRESYNC (RFC 7162) on the wire: SELECT parameters, FETCH
                     and STORE modifiers, VANISHED, the resync after a QRESYNC SELECT
cmd_quota.py         QUOTA (RFC 9208), STATUS SIZE (RFC 8438), DELETED, DELETED-STORAGE,
                     APPENDLIMIT (RFC 7889) and their capabilities
names.py             mailbox names on the wire (mUTF-7, or UTF-8 after ENABLE UTF8=ACCEPT
                     or IMAP4rev2; INBOX; Net-Unicode for new names), LIST patterns and
                     attributes
rev2.py              IMAP4rev2 beside IMAP4rev1: the RFC 9051 Appendix E checklist and
                     the LIST line of SELECT and RENAME
fetch.py, search.py  FETCH items and SEARCH keys: rendering/matching
fetch_items.py       the FETCH request: the item list parsed, kept by its text (pure)
fetch_content.py     recently read messages and their MIME parse, kept per process
fetch_index.py       FETCH of index items only over many messages, from the index's columns
fetch_cache.py       rendered FETCH metadata per message, shared by the sessions
fetch_journal.py     the folder's file through which every process shares that cache
sections.py          section-spec and <partial> syntax (FETCH items, URLs; pure)
search_view.py       a message as SEARCH's keys see it, computed lazily
binary.py            BINARY (RFC 3516): decoded sections, literal8, binary APPENDs made
                     storable
url.py               IMAP URLs of a message or part (RFC 5092) with URLAUTH's parts
cmd_urlauth.py       GENURLAUTH, URLFETCH, RESETKEY (RFC 4467, RFC 5524)
catenate.py          CATENATE (RFC 4469): an APPENDed message from text and URLs
mime.py, envelope.py, params.py, decode.py, bodystructure.py
                     a stored message's MIME structure, ENVELOPE, Content-* fields,
                     decoded text, BODY/BODYSTRUCTURE, for FETCH and SEARCH
seqset.py, dates.py, utf7.py
                     sequence sets, IMAP dates, modified UTF-7
handler.py           IMAPFileHandler: everything IMAP asks of the store
server.py            IMAPServer: the listener
"""
