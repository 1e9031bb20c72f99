"""IMAP commands of the selected state (RFC 3501 6.4): CHECK, CLOSE, EXPUNGE, FETCH,
STORE, COPY and their UID forms (6.4.8), plus UNSELECT (RFC 3691), MOVE and UID MOVE
(RFC 6851), UID EXPUNGE and COPYUID (RFC 4315), and CONDSTORE/QRESYNC's parts of them
(RFC 7162: FETCH MODSEQ and CHANGEDSINCE/VANISHED, STORE UNCHANGEDSINCE and MODIFIED,
HIGHESTMODSEQ after EXPUNGE; condstore.py reads and says them); "$" in their sets is
the saved search result (RFC 5182).  SEARCH (with SEARCH MODSEQ), SORT and THREAD are
in cmd_search.py.

Plain functions `cmd_x(session, cmd)` registered in IMAPSession.COMMANDS; a UID form
has its own key ("UID FETCH") and gets the arguments after its command word.  What they
use of the session: `mailbox` (the SelectedMailbox, never None here), `account`,
`server.handler` (the IMAPFileHandler: every change goes through it), `send`,
`send_many` and `unselect`.  Message sets are resolved against the session's own folder
view (store/view.py); nothing is sent to the socket while the store works.
"""

import functools
import itertools
import os

from ..session_output import OUTPUT_BOUND
from ..store.errors import MessageGone, NoSuchFolder
from ..store.sync import next_mark
from ..store.view_index import index_columns
from . import replies as R
from .condstore import fetch_modifiers, store_unchangedsince, vanished_earlier, vanished_line
from .fetch import FetchSource, fetch_response, flag_text
from .fetch_columns import plan
from .fetch_index import render_columns, render_index_only
from .fetch_items import parse_fetch_items
from .message_sets import _sequence_set, _set_to_seqs
from .names import mailbox_name
from .parser import Atom, flag_list
from .seqset import uid_set_text

# STORE data item (RFC 3501 6.4.6) -> the file handler's mode
STORE_MODES = {"FLAGS": "=", "+FLAGS": "+", "-FLAGS": "-"}
# an index-only FETCH of at most this many messages is rendered line by line
# (fetch_index.render_index_only), of more from the index's columns (render_columns)
_FEW = 32




# -- simple state changes -----------------------------------------------------------------
def cmd_check(session, cmd):
    """Checkpoint the mailbox: our writes are durable already, so only resync.
    States: selected.
    RFC 3501 6.4.1."""


def cmd_close(session, cmd):
    """Expunge \\Deleted messages silently (unless read-only), then unselect.
    States: selected.
    RFC 3501 6.4.2."""
    view = session.mailbox.view
    if not view.readonly:
        session.server.handler.expunge_deleted(view)
    session.unselect()


def cmd_unselect(session, cmd):
    """Unselect without expunging.
    States: selected.
    RFC 3691."""
    session.unselect()


def cmd_expunge(session, cmd):
    """Remove the \\Deleted messages; EXPUNGE responses follow with the reply.
    States: selected.
    RFC 3501 6.4.3."""
    return _expunge(session, cmd, None)


def cmd_uid_expunge(session, cmd):
    """Remove the \\Deleted messages among a set of UIDs.
    States: selected.
    RFC 4315 2.1."""
    if len(cmd.args) != 1:
        raise R.UID_EXPUNGE_ARGS.error()
    view = session.mailbox.view
    seqs = _set_to_seqs(session.mailbox, cmd.args[0], uid_mode=True)
    return _expunge(session, cmd, {view.uid_at(s) for s in seqs})


def _expunge(session, cmd, only_uids):
    view = session.mailbox.view
    if view.readonly:
        raise R.READ_ONLY.error()
    began = next_mark()     # the store's look before its unlinks serves the updates'
    session.server.handler.expunge_deleted(view, only_uids)
    if "CONDSTORE" in session.enabled:
        # the EXPUNGEs (VANISHED) first, then the modseq they bring the client to
        session.flush_updates(cmd.name, began)
        return f"[HIGHESTMODSEQ {view.modseq}] {cmd.name} completed"
    return None


# -- FETCH ----------------------------------------------------------------------------------
def cmd_fetch(session, cmd):
    """Message data items for a set of message numbers.
    States: selected.
    RFC 3501 6.4.5."""
    _fetch(session, cmd.args, uid_mode=False)


def cmd_uid_fetch(session, cmd):
    """Message data items for a set of UIDs; UID is always among them.
    States: selected.
    RFC 3501 6.4.8."""
    _fetch(session, cmd.args, uid_mode=True)


def _fetch(session, args, uid_mode):
    if len(args) not in (2, 3):
        raise R.FETCH_ARGS.error()
    view = session.mailbox.view
    request = parse_fetch_items(args[1])
    if uid_mode:
        request = request.with_uid()
    if len(args) == 3:
        request = request.with_modseq()
        seqs = _changed_seqs(session, view, args, uid_mode)
    else:
        seqs = _set_to_seqs(session.mailbox, args[0], uid_mode)
        if request.wants_modseq:
            session.enable_condstore()      # RFC 7162 3.1: FETCH MODSEQ enables it
    if not request.needs_message:
        # FLAGS/UID/INTERNALDATE/RFC822.SIZE only (FETCH 1:* (UID FLAGS) on every
        # sync): Message values made from the index, no message file opened
        # from the index's columns (a range of lines in a few large writes), unless
        # one of them was expunged by another session (what it had: iter_messages)
        # (a few messages, the most common FETCH: one format per line costs less than
        # setting up the columns)
        cols = None if len(args) == 3 or len(seqs) <= _FEW else index_columns(view, seqs)
        chunks = None if cols is None else render_columns(request, cols)
        lines = render_index_only(request, view.iter_messages(seqs)) if chunks is None else ()
        # flags are read live: a keyword another process set meanwhile is announced
        # first (the keyword map read now holds every name the lines show)
        updates = session.mailbox.keyword_updates()
        if updates:
            session.send_many(updates)
        session.send_many(lines if chunks is None else chunks)
        if chunks is None and len(lines) < len(seqs):      # one expunged so long ago its data is gone
            raise R.MESSAGE_GONE.error()
        return
    handler = session.server.handler
    seen_now = set()
    if request.sets_seen and "CONDSTORE" in session.enabled:
        request = request.with_modseq()     # \Seen set now moves the modseq: the client learns it
    if request.sets_seen and not view.readonly:
        seen_now = handler.mark_seen(view, [view.uid_at(s) for s in seqs])
    # made after the \Seen, they show it; a message another session expunged that
    # this one was not told of yet comes too (RFC 2180 4.1), but its content is gone
    messages = view.messages(seqs, expunged=False)
    if len(messages) == len(seqs):
        live = _every
    else:       # one at least expunged meanwhile: the content kept of the others only
        live = frozenset(msg.uid for msg in messages).__contains__
        messages = view.messages(seqs)
    address = session.account.address
    # messages read recently by any session of this process (fetch_content.py), for
    # one the index still holds; a UID's content never changes within its UIDVALIDITY
    source = FetchSource(functools.partial(handler.read_message, view),
                         functools.partial(handler.email_id, view), repair=False,
                         kept=handler.fetch_cache.content,
                         folder=(address, view.name, view.uidvalidity), live=live)
    # metadata rendered before, by any session of any process (fetch_cache.py)
    memos = None
    if request.cached:
        memos = handler.fetch_memos(view, address)
        if not handler.fetch_cache.legacy_gone:     # once per process
            handler.fetch_cache.forget_legacy(os.path.dirname(handler.store.mail_root))
    # the messages' kept metadata, taken at once (one lock)
    items_of = _no_memos(messages) if memos is None else memos.items_of([msg.uid for msg in messages])
    missing = False
    sent = []
    mailbox = session.mailbox
    unannounced, send = mailbox.unannounced, session.send
    # kept metadata over many messages: the lines of those that have all of it made
    # item by item (fetch_columns.py), the others' one by one here
    columns = plan(request) if memos is not None and live is _every and len(messages) > 1 else None
    made = columns.lines(messages, items_of) if columns is not None else itertools.repeat(None)
    if columns is not None and all(made) and mailbox.all_announced([msg.flags for msg in messages]):
        # every line made from the columns (nothing rendered, so nothing for the
        # journal), no keyword among them to announce first (the steady state of a
        # message list): sent at once, no step per message; none was expunged (columns
        # are only made when `live` is _every)
        if sum(map(len, made)) < OUTPUT_BOUND:
            send(b"".join(made))
            session.log_retrieval(address, view.name, [msg.uid for msg in messages])
            return
    # the lines gathered here and handed to the output once OUTPUT_BOUND bytes are
    # made (a large FETCH goes out as it is made, one of a message in one send)
    out, size = [], 0
    try:
        for msg, items, line in zip(messages, items_of, made):
            uid = msg.uid
            if line is not None:
                response = (line,)
            else:
                try:
                    response = fetch_response(request, msg, source, memos, uid in seen_now, items)
                except (FileNotFoundError, MessageGone):
                    missing = True
                    continue
            sent.append(uid)
            if unannounced(msg.flags):      # set by another session meanwhile
                out.extend(mailbox.keyword_updates())
            out.extend(response)
            size += len(response[0]) if len(response) == 1 else sum(map(len, response))
            if size >= OUTPUT_BOUND:
                send(b"".join(out))
                out, size = [], 0
        if out:
            send(b"".join(out))
    finally:
        if memos is not None and memos.pending:    # what this FETCH rendered, for the others
            memos.flush(lambda: set(view.uids))
    session.log_retrieval(address, view.name, sent)
    if missing or len(messages) < len(seqs):
        raise R.MESSAGE_GONE.error()


def _no_memos(messages):
    return [None] * len(messages)


def _every(uid):
    return True


def fetch_uids(session, uids, items):
    """Send the FETCH of `items` (fetch-att tokens) for `uids` as UID FETCH would (the
    fetch-atts NOTIFY asks with MessageNew, RFC 5465 5.2); one expunged meanwhile is
    left out."""
    try:
        _fetch(session, [Atom(uid_set_text(uids)), items], uid_mode=True)
    except R.IMAPNo:
        pass


def _changed_seqs(session, view, args, uid_mode):
    """FETCH set items (CHANGEDSINCE m [VANISHED]), RFC 7162 3.1.4.1 and 3.2.6: the
    sequence numbers of the messages of the set changed since m (found in
    proportion to the changes, not to the folder; the caller adds MODSEQ to the items); first
    VANISHED (EARLIER) of the set's UIDs expunged since m when asked."""
    mods = fetch_modifiers(args[2], uid_mode, "QRESYNC" in session.enabled)
    session.enable_condstore()
    seqset = _sequence_set(args[0])
    if uid_mode:
        largest = view.uids[-1] if view.uids else 0
    else:
        largest = len(view)
        if seqset.max_number() > largest:
            raise R.BAD_SEQUENCE_NUMBER.error()
    if mods.vanished:
        session.send_many(vanished_line(vanished_earlier(view, mods.changedsince, seqset), earlier=True))
    seqs = []
    for uid in view.changed_since(mods.changedsince):
        seq = view.seq_of(uid)
        if seqset.contains(uid if uid_mode else seq, largest):
            seqs.append(seq)
    return seqs


# -- STORE ----------------------------------------------------------------------------------
def cmd_store(session, cmd):
    """Change the flags of a set of message numbers; FETCH responses unless .SILENT.
    States: selected.
    RFC 3501 6.4.6."""
    return _store(session, cmd.args, uid_mode=False)


def cmd_uid_store(session, cmd):
    """Change the flags of a set of UIDs; the FETCH responses carry the UID.
    States: selected.
    RFC 3501 6.4.8."""
    return _store(session, cmd.args, uid_mode=True)


def _store(session, args, uid_mode):
    unchangedsince = None
    if len(args) >= 2 and isinstance(args[1], list):
        # STORE set (UNCHANGEDSINCE m) item flags (RFC 7162 3.1.3)
        unchangedsince = store_unchangedsince(args[1])
        args = [args[0]] + args[2:]
        session.enable_condstore()
    if len(args) < 3 or not isinstance(args[1], Atom):
        raise R.STORE_ARGS.error()
    view = session.mailbox.view
    seqs = _set_to_seqs(session.mailbox, args[0], uid_mode)
    item = args[1].upper()
    silent = item.endswith(".SILENT")
    base = item[:-7] if silent else item
    if base not in STORE_MODES:
        raise R.UNKNOWN_STORE_ITEM.error(args[1])
    flags = flag_list(args[2]) if len(args) == 3 else [f for tok in args[2:] for f in flag_list(tok)]
    if view.readonly:
        raise R.READ_ONLY.error()
    # a message another session expunged that this one was not told of yet is taken
    # and left as it is, OK (RFC 2180 4.2.1, as Dovecot); no FETCH for it
    numbered = view.uids
    handler, uids = session.server.handler, [numbered[s - 1] for s in seqs]
    if unchangedsince is None:
        changed, modified = handler.set_flags(view, uids, flags, STORE_MODES[base]), ()
    else:
        changed, modified = handler.set_flags_unchanged_since(view, uids, flags, STORE_MODES[base],
                                                              unchangedsince)
    condstore = "CONDSTORE" in session.enabled
    if not silent or condstore:
        out = session.mailbox.keyword_updates()     # a keyword new to this mailbox first
        # as they are now, \Recent included; those that failed UNCHANGEDSINCE get none
        left_alone = frozenset(modified)
        changed = frozenset(changed) if silent else ()
        mailbox = session.mailbox
        for seq, uid, names, _, _, modseq in view.iter_messages(seqs, expunged=False):
            if uid in left_alone:
                continue
            if mailbox.unannounced(names):      # set by another process since the look above
                out.extend(mailbox.keyword_updates())
            uid_part = b"UID %d " % uid if uid_mode else b""
            if not silent:
                modseq_part = b" MODSEQ (%d)" % modseq if condstore else b""
                out.append(b"* %d FETCH (%sFLAGS (%s)%s)\r\n" % (seq, uid_part, flag_text(names), modseq_part))
            elif uid in changed:
                # RFC 7162 3.1.3: even .SILENT, the client learns the new modseqs
                out.append(b"* %d FETCH (%sMODSEQ (%d))\r\n" % (seq, uid_part, modseq))
        if out:
            session.send(out[0] if len(out) == 1 else b"".join(out))
    if modified:
        ids = sorted(modified) if uid_mode else sorted(view.seq_of(u) for u in modified)
        return f"[MODIFIED {uid_set_text(ids)}] Conditional STORE failed"
    return None


# -- COPY / MOVE ----------------------------------------------------------------------------
def cmd_copy(session, cmd):
    """Copy messages to another mailbox; COPYUID in the reply.
    States: selected.
    RFC 3501 6.4.7, RFC 4315 (UIDPLUS)."""
    return _copy(session, cmd.args, uid_mode=False, move=False)


def cmd_uid_copy(session, cmd):
    """Copy the messages of a set of UIDs to another mailbox; COPYUID in the reply.
    States: selected.
    RFC 3501 6.4.8, RFC 4315."""
    return _copy(session, cmd.args, uid_mode=True, move=False)


def cmd_move(session, cmd):
    """Move messages: copy them, then expunge them here.
    States: selected.
    RFC 6851."""
    return _copy(session, cmd.args, uid_mode=False, move=True)


def cmd_uid_move(session, cmd):
    """Move the messages of a set of UIDs.
    States: selected.
    RFC 6851 3.2."""
    return _copy(session, cmd.args, uid_mode=True, move=True)


def _copy(session, args, uid_mode, move):
    if len(args) != 2:
        raise R.COPY_ARGS.error()
    view = session.mailbox.view
    seqs = _set_to_seqs(session.mailbox, args[0], uid_mode)
    target = mailbox_name(args[1], session.utf8)
    if move and view.readonly:
        raise R.READ_ONLY.error()
    uids = [view.uid_at(s) for s in seqs]
    handler = session.server.handler
    try:
        validity, pairs = handler.copy(view, uids, session.account.address, target, move=move)
    except NoSuchFolder:
        raise R.TRYCREATE.error() from None
    code = ""
    if pairs:
        code = f"[COPYUID {validity} {uid_set_text([p[0] for p in pairs])} {uid_set_text([p[1] for p in pairs])}] "
    if move:
        # RFC 6851 4.3: COPYUID in an untagged OK before the EXPUNGEs
        if code:
            session.send(f"* OK {code}Moved\r\n")
        handler.expunge(view, [p[0] for p in pairs])
        return "MOVE completed"
    return f"{code}COPY completed"


# -- UID with no or an unknown command word --------------------------------------------------
def cmd_uid_unknown(session, cmd):
    """Refuse a UID with no command word or an unknown one ("UID FETCH"... are keys).
    States: selected.
    RFC 3501 6.4.8."""
    if not cmd.args or not isinstance(cmd.args[0], Atom):
        raise R.UID_NEEDS_COMMAND.error()
    raise R.UNKNOWN_UID_COMMAND.error(cmd.args[0])
