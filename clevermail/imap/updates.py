"""The selected mailbox's updates sent in order, with the FETCH responses new messages
get (RFC 5465 5.2 and 7, RFC 5267 4.3).

One function, `send_updates`, used wherever a session says what changed in its selected
mailbox: at the end of a command (session.py), in IDLE (idle.py) and, with NOTIFY set,
between commands (notify.py).  The order on the wire:

1. what SelectedMailbox.updates says: FLAGS when a keyword came into use, the
   contexts' REMOVEFROM of expunged messages (numbered as the client still numbers
   them), EXPUNGE or VANISHED, FETCH FLAGS, EXISTS and RECENT;
2. one FETCH per new message with the fetch-atts asked for it: NOTIFY's MessageNew
   list (for every new message) and the list of each RETURN (UPDATE (fetch-att ...))
   context the message enters, combined into one FETCH (5.2: "SHOULD be combined
   into a single FETCH response", "avoid sending duplicate data": fetch_items drops
   an item asked twice);
3. the contexts' ESEARCH lines (ADDTO/REMOVEFROM of what else changed).

RFC 5465 disagrees with itself on 2 and 3 (erratum 4833: 5.2 says the FETCH follows
the ADDTO, 7 that EXISTS and FETCH precede the ESEARCH); this follows section 7, its
example and Dovecot, so a client has a message's data before it is told the message
is in a result.  No FETCH is sent for messages the session added itself (`own_new`:
APPEND, COPY, MOVE; 5.2 SHOULD NOT) nor for one a flag change brought into a context
(7 SHOULD NOT): only messages that arrived since the last look count as new.

After a command that looked at the folder itself (STATUS, APPEND, ...: `reuse`, the
mark the command began at), a look at the directories begun since then, by this
session or another of the process, serves as this one (store/sync.py `reuse_since`):
it saw every change finished before the command began, and what came after is said
after the next command, as a change made while this one ran may be anyway.
"""

import bisect
from threading import get_ident

from ..store.sync import reuse_since
from .cmd_selected import fetch_uids


def send_updates(session, allow_expunge, flags=True, notify_fetch=None, own_new=False, reuse=0):
    """Say what changed in `session.mailbox` (see the module doc).  `allow_expunge`:
    EXPUNGE may be said now (RFC 3501 7.4.1); `flags`: other sessions' flag changes
    are said; `notify_fetch`: NOTIFY's fetch-att tokens for new messages or None;
    `reuse`: a mark (store/sync.py next_mark) a look must have begun after to serve.
    When the mailbox is gone nothing is sent (`mailbox.gone`: the caller says BYE)."""
    mailbox = session.mailbox
    view = mailbox.view
    last = view.uids[-1] if view.uids else 0
    if reuse:
        lines = _reusing(mailbox, reuse, allow_expunge, flags)
    else:
        lines = mailbox.updates(allow_expunge=allow_expunge, flags=flags, contexts=False)
    if mailbox.gone or not (lines or mailbox.contexts):
        return          # gone (the caller says BYE), or no line: no new message either
    uids = view.uids
    new = uids[bisect.bisect_right(uids, last):]
    context_lines, fetches = [], []
    if mailbox.contexts:
        context_lines, fetches = mailbox.contexts.changed(view, frozenset(new))
    if lines:
        session.send(b"".join(lines))
    if not own_new:
        if notify_fetch is not None and new:
            fetches.insert(0, (notify_fetch, new))
        for uids, tokens in _combined(fetches):
            fetch_uids(session, uids, tokens)
    if context_lines:
        session.send(b"".join(context_lines))


def _reusing(mailbox, mark, allow_expunge, flags):
    """mailbox.updates(), its look at the folder served by one begun after `mark`."""
    ident = get_ident()
    reuse_since[ident] = mark
    try:
        return mailbox.updates(allow_expunge=allow_expunge, flags=flags, contexts=False)
    finally:
        del reuse_since[ident]


def _combined(fetches):
    """[(fetch-att tokens, UIDs)] -> [(UIDs, tokens)]: one request per set of messages
    asked the same lists, each list once, the groups in the order of their first UID."""
    wanted = {}                 # uid -> indexes of the lists asked for it
    for index, (_, uids) in enumerate(fetches):
        for uid in uids:
            wanted.setdefault(uid, []).append(index)
    groups = {}
    for uid in sorted(wanted):
        groups.setdefault(tuple(wanted[uid]), []).append(uid)
    return [(uids, [token for index in key for token in fetches[index][0]])
            for key, uids in groups.items()]
