"""IMAP4rev2 (RFC 9051) beside IMAP4rev1: what changes for a session that sent ENABLE
IMAP4rev2 (Appendix A: a server advertising both keeps IMAP4rev1's behaviour until
then), and the LIST line SELECT and RENAME send in that mode.

The switch is the session's `enabled` set ("IMAP4rev2"), read as `session.rev2`;
`session.utf8` (names and quoted strings in UTF-8) is true for it and for ENABLE
UTF8=ACCEPT (RFC 6855).  Each command module asks where its answer differs; this
module owns `list_line()` and keeps the checklist of RFC 9051 Appendix E, item by
item, with where each stands in CleverMail:

 1. 64-bit sizes: sizes are Python ints, a literal's size may have up to 20 digits
    (parser.py), LARGER/SMALLER take a number64 (search.py) and a <partial> offset
    and count number64s (sections.py), for both revisions; a message itself is
    bounded by the message size limit (servers need not store bigger ones,
    Appendix D).  Done.
 2. NAMESPACE, UNSELECT, UIDPLUS, ESEARCH, SEARCHRES, ENABLE, IDLE, SASL-IR,
    LIST-EXTENDED, LIST-STATUS, MOVE, LITERAL- (LITERAL+ is its superset, RFC 7888),
    the RFC 5530 codes, FETCH BINARY and the SPECIAL-USE attributes: all implemented
    and advertised beside IMAP4rev1 and IMAP4rev2 (session.BASE_CAPS), as Appendix A
    advises.  Done.
 3. STATUS SIZE and DELETED: cmd_quota.py, for both revisions.  Done.
 4. SEARCH answers ESEARCH in a rev2 session, ALL when no RETURN option is given
    (cmd_search._search); a rev1 session keeps `* SEARCH`.  Done.
 5. Substring matching: every string key (BCC, BODY, CC, FROM, SUBJECT, TEXT, TO,
    HEADER) matches substrings, case-insensitively in ASCII, the empty string
    matching a present field (search.py); KEYWORD is exact.  Done.
 6. RFC 2231 parameter continuations are decoded (params.py).  Done.
 7. COPYUID for MOVE and UID MOVE, in an untagged OK before the expunges
    (cmd_selected._copy).  Done.
 8. COPY/MOVE never create the target; a missing one is NO [TRYCREATE].  Done.
 9. `* OK [CLOSED]` when SELECT/EXAMINE replaces a selected mailbox, in both
    revisions (cmd_mailboxes._select).  Done.
10. SELECT/EXAMINE send `* LIST (attributes) "/" name` in a rev2 session
    (list_line).  Done.
11. No `OK [UNSEEN n]` on SELECT/EXAMINE in a rev2 session
    (SelectedMailbox.select_responses).  Done.
12. No RECENT response (SELECT, new mail), no \\Recent flag (the session's view is
    made with recent=False: it neither shows \\Recent nor takes it from rev1
    sessions), STATUS RECENT refused BAD (also in LIST-STATUS).  The RECENT, NEW and
    OLD search keys stay accepted and answer consistently: no message is \\Recent
    in such a session.  Done.
13. A new keyword is announced with FLAGS and PERMANENTFLAGS (allowed, not
    required, after \\* was advertised).  Done.
14. tagged-ext-simple as a bare number: the parser reads any atom there.  Done.
15. $MDNSent, $Forwarded, $Junk, $NonJunk, $Phishing: any keyword can be set while
    PERMANENTFLAGS offers \\* (a folder keeps up to 26 keywords, the
    dovecot-keywords letters).  Done.
16. Mailbox names in UTF-8 (names.py: no modified UTF-7, "&" is itself; a name
    created must be Net-Unicode, NFC) and UTF-8 header fields: APPEND takes them
    (plain or "UTF8 (literal8)"), FETCH returns header bytes as stored.  Done.
17. CHECK is gone from IMAP4rev2; it is still answered (as a NOOP that also
    reports updates) for IMAP4rev1 clients and harmlessly for rev2 ones.  Done.
18. RFC822, RFC822.HEADER, RFC822.TEXT: deprecated, still answered.  Done.
19. LSUB: deprecated in favour of LIST (SUBSCRIBED); still answered, names in the
    session's spelling.  Done.
20. IDLE may report more than the selected mailbox (NOTIFY's business); nothing to
    change.  Done.
21. Every unsolicited FETCH carries UID (selected_mailbox.py).  Done.
22. Unknown response codes are a client matter.  Nothing to do.
23. resp-text may be empty: a client matter; our texts are never empty.  Done.
24. UTF-8 in response text only after ENABLE (UTF8=ACCEPT or IMAP4rev2): for other
    sessions the session writes status lines in US-ASCII (replies.seven_bit).  Done.
25. TLS as RFC 8314/7525: TLS 1.2 or later (netbase), implicit TLS ports and
    STARTTLS.  Done.
26. ALERT and PREAUTH: the server sends neither.  Done.
27. SCRAM-SHA-256 replaces DIGEST-MD5 in the list of recommended mechanisms (a
    SHOULD, 6.2.2): AUTH=SCRAM-SHA-256 (cmd_login.mechanisms, scram.py) beside
    AUTH=PLAIN (the MUST), both over TLS or on loopback; SCRAM while some account
    has the keys a password set since writes to users.ini.  No -PLUS (channel
    binding).  Done.
28. Any command resets the autologout timer (the timeout is per read).  Done.
29. IANA registration procedure: nothing to implement.
30. Closing connections: BYE then close, as before.  Done.

Required capabilities (6.1.1): IMAP4rev2, AUTH=PLAIN, STARTTLS and LOGINDISABLED on
a cleartext port (session.capabilities).  ENABLE IMAP4rev2 after a mailbox was
selected (which RFC 9051 6.3.1 forbids clients) takes effect for responses at once,
and for \\Recent from the next SELECT.
"""

from ..store.paths import SEPARATOR
from .names import list_attributes, wire_name


def list_line(session, name, oldname=None):
    """`* LIST (attributes) "/" name` of folder `name`, with the OLDNAME extended data
    item when it was renamed from `oldname` (RFC 9051 6.3.9.7); attributes as LIST
    gives them in a rev2 session (a name that is no folder is \\NonExistent)."""
    node = next((n for n in session.server.handler.folder_tree(session.account.address)
                 if n.name == name), None)
    attrs = list_attributes(node, nonexistent=True) if node is not None else ["\\NonExistent"]
    extra = b""
    if oldname is not None:
        extra = b' ("OLDNAME" (%s))' % wire_name(oldname, True)
    return b'* LIST (%s) "%s" %s%s\r\n' % (" ".join(attrs).encode(), SEPARATOR.encode(),
                                           wire_name(name, True), extra)
