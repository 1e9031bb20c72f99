"""A FETCH of kept metadata over many messages, rendered item by item (RFC 3501 7.4.2).

The message lists of clients and webmails, and imaptest's bench FETCH, ask for a range
of messages' ENVELOPE, BODY or BODYSTRUCTURE, top-level header fields (BODY.PEEK[
HEADER.FIELDS (...)], BODY.PEEK[HEADER], RFC822.HEADER) and index items (UID, FLAGS,
INTERNALDATE, RFC822.SIZE, MODSEQ).  Once rendered, every one of those is in the shared
fetch cache (fetch_cache.py) or in the index, so the answer is only assembly; made one
message at a time (fetch.fetch_response: a _Content object, a call per item, each
looking its value up again) that assembly was about half of a line's CPU (issue 18:
scripts/bench_fetch.py, imaptest's FETCH mix, 4.2 against 8.4 us of thread CPU per
line, both timed the same way).  Here each item is a column made by one comprehension
over the messages, and each response line one format of its values.  The bytes are
fetch_response's, item for item.

Only for a request all of whose items can be so made, a PEEK (nothing sets \\Seen),
and for the messages whose kept items hold every value it needs: the others (a
message fetched for the first time, one whose values this process has not read from
another's journal yet) go the per-message way, which renders, reads and keeps; so
does every message of a request with a body section.
"""

import functools

from clevermail.imap.fetch import SIMPLE_RENDERERS, TOP_HEADER, literal, shown_fields
from clevermail.imap.fetch_items import CACHED_ITEMS
from clevermail.imap.header_fields import select

__all__ = ["ColumnPlan", "plan"]

# items answered from the index (fetch.py's renderers, which read nothing else)
_FROM_INDEX = frozenset(("FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE", "MODSEQ", "THREADID"))


class ColumnPlan:
    """How to render one FetchRequest column by column: `needs`, the kept items every
    message must hold; `columns`, one function per item, in request order, each
    making that item's value for every message (messages, their kept items)."""

    __slots__ = ("needs", "columns")

    def __init__(self, needs, columns):
        self.needs, self.columns = needs, columns

    def lines(self, messages, items_of):
        """The untagged FETCH line of each of `messages` (their kept items `items_of`,
        in the same order) that has every value the plan reads, None for the others
        (the caller renders them one by one)."""
        needs = self.needs
        whole = [k for k, items in enumerate(items_of) if all(key in items for key in needs)]
        out = [None] * len(messages)
        if not whole:
            return out
        if len(whole) < len(messages):
            messages = [messages[k] for k in whole]
            items_of = [items_of[k] for k in whole]
        columns = [column(messages, items_of) for column in self.columns]
        join = b" ".join
        for k, msg, values in zip(whole, messages, zip(*columns)):
            out[k] = b"* %d FETCH (%s)\r\n" % (msg.seq, join(values))
        return out


@functools.lru_cache(maxsize=1024)
def plan(request):
    """The ColumnPlan of a FetchRequest (requests are kept and handed out again by
    fetch_items.py, so this is made once per item list), or None when one of its
    items cannot be made from kept values or the index, or it sets \\Seen."""
    if request.sets_seen:
        return None
    needs, columns = set(), []
    for item in request.items:
        column = _column(item, needs)
        if column is None:
            return None
        columns.append(column)
    return ColumnPlan(tuple(needs), tuple(columns))


def _column(item, needs):
    if item.name in _FROM_INDEX:
        render = SIMPLE_RENDERERS[item.name]
        return lambda messages, items_of: [render(msg, None) for msg in messages]
    if item.name in CACHED_ITEMS:      # kept in the fetch cache under its name
        key, word = item.name, item.label + b" "
        needs.add(key)
        return lambda messages, items_of: [word + items[key] for items in items_of]
    if item.section is None or item.partial is not None:
        return None
    nums, text, fields = item.section
    if nums:
        return None         # a part's header: not kept by this name
    prefix = item.label + b" "
    if text == "HEADER":
        needs.add(TOP_HEADER)
        return lambda messages, items_of: [literal(prefix, items[TOP_HEADER]) for items in items_of]
    if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        needs.add(TOP_HEADER)
        names, keep = frozenset(f.lower() for f in fields), text == "HEADER.FIELDS"
        return lambda messages, items_of: [literal(prefix, select(shown_fields(items[TOP_HEADER]), names, keep))
                                           for items in items_of]
    return None
