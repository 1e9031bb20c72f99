"""The searching commands of the selected state: SEARCH (RFC 3501 6.4.4), SORT and
THREAD (RFC 5256, RFC 5957 SORT=DISPLAY) and their UID forms, with the RETURN options
of ESEARCH (RFC 4731) and ESORT (RFC 5267 section 3) and the saved result of
SEARCHRES (RFC 5182).

Plain functions `cmd_x(session, cmd)` registered in IMAPSession.COMMANDS.  Matching is
search.py's; the sort keys of messages come from the file handler's shared cache
(sortcache.py, built from the message headers on first use), the order from sort.py,
the threads from thread.py, the ESEARCH response from esearch.py.

The saved result ("$") is the session's SelectedMailbox.saved, a frozenset of UIDs: a
SELECT starts it empty, an expunged message drops out of it when it is used (the
UIDs are resolved against the view each time), and a SEARCH or SORT with RETURN
(SAVE) that fails for any reason leaves it empty (RFC 5182 2.1).

CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 4): RETURN (PARTIAL n:m) answers a window
of the result; RETURN (UPDATE) keeps the result in the selected mailbox's contexts
(contexts.py), which this module hands the two callables that test and order
messages; CANCELUPDATE ends contexts by tag.  With NOTIFY (RFC 5465 7), RETURN
(UPDATE (fetch-att ...)) keeps the fetch-atts with the context: a new message that
enters it is sent with them (updates.py).
"""

import functools
from array import array

from ..store.errors import MessageGone
from . import replies as R
from .contexts import Context
from .esearch import Return, parse_return, response
from .parser import Atom, quote
from .search import CHARSETS, parse_search
from .sort import SortError, parse_criteria, sort_order
from .thread import ALGORITHMS, Item, thread


class _SearchContext:
    """What search.py's keys ask of the session: "*" for numbers and UIDs, the saved
    result ("$"), the content of a message and its EMAILID (RFC 8474)."""
    __slots__ = ("max_seq", "max_uid", "saved", "read", "email_id")

    def __init__(self, max_seq, max_uid, saved, read, email_id):
        self.max_seq, self.max_uid, self.saved, self.read = max_seq, max_uid, saved, read
        self.email_id = email_id


# -- SEARCH ------------------------------------------------------------------------
def cmd_search(session, cmd):
    """The message numbers of messages matching search keys (RETURN: ESEARCH, SAVE).
    States: selected.
    RFC 3501 6.4.4, RFC 4731, RFC 5182."""
    _search(session, cmd, uid_mode=False)


def cmd_uid_search(session, cmd):
    """The UIDs of the messages matching search keys (ESEARCH with RETURN).
    States: selected.
    RFC 3501 6.4.8, RFC 4731, RFC 5182."""
    _search(session, cmd, uid_mode=True)


def _search(session, cmd, uid_mode):
    ret, args = parse_return(cmd.args)
    with _saving(session, ret):
        _check_context_tag(session, cmd, ret)
        if "UTF8=ACCEPT" in session.enabled and args and isinstance(args[0], Atom) \
                and args[0].upper() == "CHARSET":
            raise R.CHARSET_AFTER_UTF8.error()      # RFC 6855 3
        program = parse_search(args)
        if ret is None and session.rev2:
            ret = Return(())        # RFC 9051 6.4.4: ESEARCH, ALL when no option is given
        if program.modseq:
            session.enable_condstore()      # SEARCH MODSEQ enables CONDSTORE (RFC 7162 3.1)
        seqs = matching(session, program)
    # RFC 7162 3.1.5: with MODSEQ among the keys, the highest modseq of the messages
    # returned: all matches, or only the MIN, MAX and PARTIAL ones when ESEARCH asks
    # just them
    top = None
    if program.modseq and seqs:
        returned = seqs if ret is None or not ret.answers else ret.returned(seqs)
        top = max(m.modseq for m in session.mailbox.view.messages(returned))
    updating = _updating(session, cmd, ret)
    _answer(session, cmd, ret, seqs, uid_mode, b"SEARCH", sorted_=False, modseq=top)
    if updating:
        _keep(session, cmd, program, seqs, uid_mode, order=None, fetch=ret.fetch)


def matching(session, program, seqs=None):
    """The sequence numbers of the messages of the selected mailbox that match a
    search.SearchProgram, ascending; only among `seqs` (ascending) when given."""
    view = session.mailbox.view
    if seqs is None and program.flag_tests is not None:
        # The common client searches (UNSEEN, UNDELETED, ALL, ...) only test system
        # flags: the view answers them from the index, no per-message objects
        hits = view.flag_search(program.flag_tests)
        if hits is not None:
            return hits
    handler = session.server.handler
    ctx = _SearchContext(len(view), view.uids[-1] if view.uids else 0, session.mailbox.saved,
                         functools.partial(handler.read_message, view),
                         functools.partial(handler.email_id, view))
    hits = []
    # messages expunged by others but still numbered match nothing (as flag_search)
    for msg in view.messages(range(1, len(view) + 1) if seqs is None else seqs, expunged=False):
        try:
            if program.matches(msg, ctx):
                hits.append(msg.seq)
        except (FileNotFoundError, MessageGone):
            continue  # expunged by someone else mid-search: not a match
    return hits


def _answer(session, cmd, ret, seqs, uid_mode, verb, sorted_, modseq=None):
    """Send the result: `* SEARCH`/`* SORT` numbers, or ESEARCH as RETURN asks; keep
    what SAVE asks for.  `modseq`: the highest of the matches (SEARCH MODSEQ)."""
    view = session.mailbox.view
    numbers = [view.uid_at(s) for s in seqs] if uid_mode else seqs
    if ret is None:
        session.send_many(_numbers_line(verb, numbers, modseq))
        return
    if ret.save:
        session.mailbox.saved = frozenset(view.uid_at(s) for s in ret.saved(seqs))
    if ret.answers:
        session.send(response(cmd.tag, ret, numbers, uid_mode, sorted_, modseq))


# -- contexts (RFC 5267 4) --------------------------------------------------------------
def _check_context_tag(session, cmd, ret):
    """A RETURN (UPDATE) under the tag of a context still updated is refused: the tag
    names the context (RFC 5267 4.3)."""
    if ret is not None and ret.update and cmd.tag in session.mailbox.contexts:
        raise R.DUPLICATE_CONTEXT_TAG.error()


def _updating(session, cmd, ret):
    """Whether the result of this SEARCH or SORT is to be kept up to date: RETURN
    (UPDATE) and room for one more context; else NOUPDATE, said before the result
    (RFC 5267 4.3.1)."""
    if ret is None or not ret.update:
        return False
    if session.mailbox.contexts.full():
        session.send(b"* NO [NOUPDATE " + quote(cmd.tag) + b"] Too many contexts: not updated\r\n")
        return False
    return True


def _keep(session, cmd, program, seqs, uid_mode, order, fetch=None):
    """Keep the result of a SEARCH or SORT up to date: a Context in the selected
    mailbox's.  `seqs` in result order; `order(uids)`: the sort order (SORT);
    `fetch`: the fetch-atts of RETURN (UPDATE (...)) for new messages that enter it
    (RFC 5465 7)."""
    mailbox = session.mailbox
    view = mailbox.view

    def match(uids):
        seq_of = session.mailbox.view.seq_of
        found = matching(session, program, sorted(s for s in map(seq_of, uids) if s is not None))
        return {session.mailbox.view.uid_at(s) for s in found}
    mailbox.contexts.add(Context(cmd.tag, uid_mode, program.relative, match, order,
                                 [view.uid_at(s) for s in seqs], view.modseq, fetch))


def cmd_cancelupdate(session, cmd):
    """End the contexts named by their tags (all or none: an unknown tag is NO).
    States: selected.
    RFC 5267 4.3.5."""
    if not cmd.args:
        raise R.CANCELUPDATE_ARGS.error()
    tags = []
    for arg in cmd.args:
        if isinstance(arg, bytes):
            tags.append(arg.decode("utf-8", "replace"))
        elif isinstance(arg, str):
            tags.append(str(arg))       # an atom: lenient, the grammar says quoted
        else:
            raise R.CANCELUPDATE_ARGS.error()
    contexts = session.mailbox.contexts
    for tag in tags:
        if tag not in contexts:
            # echoed: printable ASCII only (a literal may carry CR LF)
            raise R.UNKNOWN_CONTEXT.error("".join(c if c.isascii() and c.isprintable() else "?"
                                                  for c in tag[:40]))
    for tag in tags:
        contexts.cancel(tag)


def _numbers_line(verb, numbers, modseq=None, chunk=4096):
    yield b"* " + verb
    for i in range(0, len(numbers), chunk):
        yield b"".join(b" %d" % n for n in numbers[i:i + chunk])
    if modseq is not None:
        yield b" (MODSEQ %d)" % modseq
    yield b"\r\n"


class _saving:
    """Around a SEARCH or SORT with RETURN (SAVE): a failure empties the saved result
    (RFC 5182 2.1); success sets it later, in _answer."""

    def __init__(self, session, ret):
        self.session, self.save = session, ret is not None and ret.save

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is not None and self.save:
            self.session.mailbox.saved = frozenset()
        return False


# -- SORT -----------------------------------------------------------------------------
def cmd_sort(session, cmd):
    """Sorted message numbers of messages matching search keys (RETURN: ESORT, SAVE).
    States: selected.
    RFC 5256 3, RFC 5267 3, RFC 5957."""
    _sort(session, cmd, uid_mode=False)


def cmd_uid_sort(session, cmd):
    """SORT answering with UIDs.
    States: selected.
    RFC 5256 3."""
    _sort(session, cmd, uid_mode=True)


def _sort(session, cmd, uid_mode):
    ret, args = parse_return(cmd.args)
    with _saving(session, ret):
        _check_context_tag(session, cmd, ret)
        if len(args) < 3:
            raise R.SORT_ARGS.error()
        try:
            criteria = parse_criteria(args[0])
        except SortError as exc:
            raise R.BAD_SORT_CRITERIA.error(exc) from None
        program = _program(args[1], args[2:])
        seqs = matching(session, program)
        view = session.mailbox.view
        uids = [view.uid_at(s) for s in seqs]
        # the same request on the same messages (another session, a page view later)
        # is answered from the shared memo
        order = session.server.handler.remember(
            view, session.account.address, ("SORT", tuple(criteria), _packed(uids)),
            lambda: array("I", _sorted_uids(session, seqs, criteria)))
        seq_of = dict(zip(uids, seqs))
        seqs = [seq_of[u] for u in order]
    updating = _updating(session, cmd, ret)
    _answer(session, cmd, ret, seqs, uid_mode, b"SORT", sorted_=True)
    if updating:
        def order(uids):
            view = session.mailbox.view
            return _sorted_uids(session, sorted(s for s in map(view.seq_of, uids) if s is not None),
                                criteria)
        _keep(session, cmd, program, seqs, uid_mode, order, fetch=ret.fetch)


def _sorted_uids(session, seqs, criteria):
    """The UIDs of the messages at `seqs` in the order of the sort criteria; a message
    expunged meanwhile is left out."""
    view = session.mailbox.view
    if {field for field, _ in criteria} <= {"arrival", "size"}:
        # index only: no header is read
        items = [(uid, date, size, None) for _seq, uid, _flags, date, size, _modseq
                 in view.iter_messages(seqs, expunged=False)]
    else:
        keyed = _sort_keys(session, seqs)
        items = [(uid, date, size, keyed[seq]) for seq, uid, _flags, date, size, _modseq
                 in view.iter_messages(seqs, expunged=False) if keyed.get(seq) is not None]
    return [item[0] for item in sort_order(items, criteria)]


def _packed(numbers):
    """A list of UIDs or numbers as compact, hashable bytes: the memo's key (4 octets a
    number, where a tuple would take 36)."""
    return array("I", numbers).tobytes()


def _program(charset, keys):
    """The search program of SORT/THREAD: a mandatory charset, then search keys."""
    name = charset.decode("ascii", "replace") if isinstance(charset, bytes) else charset
    if not isinstance(name, str) or name.upper() not in CHARSETS:
        raise R.BAD_CHARSET.error()
    return parse_search(["CHARSET", name] + list(keys))


def _sort_keys(session, seqs):
    """{seq: sort.SortKeys} of the messages at `seqs` (None for one expunged
    meanwhile)."""
    view = session.mailbox.view
    keys = session.server.handler.sort_keys(view, session.account.address,
                                            [view.uid_at(s) for s in seqs])
    return dict(zip(seqs, keys))


# -- THREAD -----------------------------------------------------------------------------
def cmd_thread(session, cmd):
    """The messages matching search keys as threads, by ORDEREDSUBJECT or REFERENCES.
    States: selected.
    RFC 5256 4."""
    _thread(session, cmd, uid_mode=False)


def cmd_uid_thread(session, cmd):
    """THREAD answering with UIDs.
    States: selected.
    RFC 5256 4."""
    _thread(session, cmd, uid_mode=True)


def _thread(session, cmd, uid_mode):
    args = cmd.args
    if len(args) < 3 or not isinstance(args[0], Atom):
        raise R.THREAD_ARGS.error()
    algorithm = args[0].upper()
    if algorithm not in ALGORITHMS:
        raise R.UNKNOWN_THREAD_ALGORITHM.error()
    seqs = matching(session, _program(args[1], args[2:]))
    view = session.mailbox.view
    uids = [view.uid_at(s) for s in seqs]
    key = ("THREAD", algorithm, _packed(uids), None if uid_mode else _packed(seqs))
    threads = session.server.handler.remember(
        view, session.account.address, key, lambda: _threads(session, seqs, algorithm, uid_mode))
    session.send(b"* THREAD" + (b" " + threads if threads else b"") + b"\r\n")


def _threads(session, seqs, algorithm, uid_mode):
    """The THREAD response data of the messages at `seqs`."""
    keyed = _sort_keys(session, seqs)
    items = []
    for seq, uid, _flags, date, _size, _modseq in session.mailbox.view.iter_messages(seqs, expunged=False):
        k = keyed.get(seq)
        if k is not None:       # else expunged meanwhile
            items.append(Item(uid if uid_mode else seq, seq, date if k.date is None else k.date, k))
    return thread(algorithm, items)
