"""ESEARCH (RFC 4731), its SORT form ESORT (RFC 5267 section 3), the saved result of
SEARCHRES (RFC 5182) and the return options of contexts (RFC 5267 section 4): the
RETURN options and the ESEARCH responses.  Pure.

`parse_return(args)` takes `RETURN (...)` off the front of a SEARCH or SORT command's
arguments; `Return` says what to answer, what to save and whether the result is kept
up to date (UPDATE); `response()` writes `* ESEARCH (TAG "t") [UID] MIN .. MAX .. ALL
.. PARTIAL (n:m ..) COUNT ..`.  For SEARCH, MIN and MAX are the lowest and highest
number and ALL is ascending; for SORT they are the first and the last in the sort
order and ALL keeps that order (RFC 5267 3.2), so the set is written exactly in the
order given, with ranges only for ascending runs.  PARTIAL n:m (RFC 5267 4.4) names
the n-th to the m-th result in that order (a reversed range is read as written the
other way round, as Dovecot does), NIL when none is there.  `update_line()` writes
a context's changes: `* ESEARCH (TAG "t") [UID] REMOVEFROM (pos set ...) ADDTO (pos
set ...)` (RFC 5267 4.3).

NOTIFY (RFC 5465 7, 8: `modifier-update = "UPDATE" ["(" fetch-att *(SP fetch-att) ")"]`)
lets UPDATE carry fetch-atts, returned in a FETCH when a new message enters the kept
result (updates.py); they are checked here as FETCH would check them (BAD otherwise).
"""

from .fetch_items import parse_fetch_items
from .parser import quote
from . import replies as R

OPTIONS = ("MIN", "MAX", "ALL", "COUNT", "SAVE", "PARTIAL", "UPDATE", "CONTEXT")
_MAX_NUMBER = 0xFFFFFFFF


class Return:
    """The RETURN options of one command: `options`, a set of upper-case names (no
    option, or CONTEXT alone, means ALL; CONTEXT is a hint and dropped, RFC 5267
    4.2), `partial`, the (low, high) positions of PARTIAL or None, and `fetch`, the
    fetch-att tokens given after UPDATE (RFC 5465 7) or None."""

    __slots__ = ("options", "partial", "fetch")

    def __init__(self, options, partial=None, fetch=None):
        options = frozenset(options) - {"CONTEXT"}
        self.options = options or frozenset({"ALL"})
        self.partial = partial
        self.fetch = fetch

    @property
    def save(self):
        return "SAVE" in self.options

    @property
    def update(self):
        """Whether the result is kept up to date (RFC 5267 4.3)."""
        return "UPDATE" in self.options

    @property
    def answers(self):
        """Whether an ESEARCH response is sent: not for SAVE alone (RFC 5182 2.4)."""
        return bool(self.options - {"SAVE"})

    def _named(self, hits, extra=()):
        """The hits the MIN, MAX and PARTIAL options name, in result order."""
        kept = []
        if "MIN" in self.options:
            kept.append(hits[0])
        if self.partial is not None:
            kept += [h for h in hits[self.partial[0] - 1:self.partial[1]] if h not in kept]
        if "MAX" in self.options and hits[-1] not in kept:
            kept.append(hits[-1])
        return kept

    def saved(self, hits):
        """The messages SAVE keeps of `hits` (in result order): all of them, unless
        MIN, MAX and/or PARTIAL are the only options that name messages: then just
        the ones they name (RFC 5182 2.4; with COUNT too every match, as Dovecot)."""
        if not hits:
            return []
        if {"ALL", "COUNT"} & self.options or not {"MIN", "MAX", "PARTIAL"} & self.options:
            return list(hits)
        return self._named(hits)

    def returned(self, hits):
        """The messages the response is about (their highest modseq is MODSEQ's, RFC
        7162 3.1.5): every match, or those MIN, MAX and PARTIAL name when only they
        name messages."""
        if not hits or "ALL" in self.options or not {"MIN", "MAX", "PARTIAL"} & self.options:
            return list(hits)
        return self._named(hits)


def parse_return(args):
    """(Return or None, the remaining arguments) for the arguments of SEARCH or SORT."""
    if not args or not isinstance(args[0], str) or args[0].upper() != "RETURN":
        return None, args
    if len(args) < 2 or not isinstance(args[1], list):
        raise R.RETURN_ARGS.error()
    options, partial, fetch = [], None, None
    given = args[1]
    i = 0
    while i < len(given):
        opt = given[i]
        i += 1
        name = opt.upper() if isinstance(opt, str) else None
        if name not in OPTIONS:
            raise R.UNKNOWN_RETURN_OPTION.error()
        if name in ("PARTIAL", "UPDATE") and name in options:
            raise R.DUPLICATE_RETURN_OPTION.error(name)
        if name == "PARTIAL":
            partial = parse_partial(given[i] if i < len(given) else None)
            i += 1
        elif name == "UPDATE" and i < len(given) and isinstance(given[i], list):
            fetch = given[i]
            parse_fetch_items(fetch)        # BAD now for what FETCH would refuse
            i += 1
        options.append(name)
    if partial is not None and "ALL" in options:
        raise R.PARTIAL_WITH_ALL.error()
    return Return(options, partial, fetch), args[2:]


def parse_partial(token):
    """PARTIAL's range `n:m` (RFC 5267 4.4: positive numbers) -> (low, high)."""
    if not isinstance(token, str) or token.count(":") != 1:
        raise R.BAD_PARTIAL.error()
    ends = []
    for part in token.split(":"):
        if not (part.isascii() and part.isdigit()) or len(part) > 10:
            raise R.BAD_PARTIAL.error()
        n = int(part)
        if not 0 < n <= _MAX_NUMBER:
            raise R.BAD_PARTIAL.error()
        ends.append(n)
    return min(ends), max(ends)


def set_text(numbers):
    """Numbers in the order given -> sequence-set text; ascending runs of consecutive
    numbers become ranges ("1:3,7,5")."""
    parts = []
    start = prev = None
    for n in numbers:
        if start is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            parts.append(b"%d:%d" % (start, prev) if prev != start else b"%d" % start)
        start = prev = n
    if start is not None:
        parts.append(b"%d:%d" % (start, prev) if prev != start else b"%d" % start)
    return b",".join(parts)


def response(tag, ret, hits, uid, sorted_=False, modseq=None):
    """The ESEARCH response line (bytes) for `hits`: ascending for SEARCH, in the sort
    order for SORT (`sorted_`).  MIN, MAX and ALL are left out when nothing matched;
    COUNT says 0 (RFC 4731 3.1), PARTIAL NIL.  `modseq`: the highest mod-sequence of
    the matches when the search had a MODSEQ key (RFC 7162 3.1.5)."""
    out = [b"* ESEARCH (TAG " + quote(tag) + b")"]
    if uid:
        out.append(b" UID")
    opts = ret.options
    if hits:
        if "MIN" in opts:
            out.append(b" MIN %d" % (hits[0] if sorted_ else min(hits)))
        if "MAX" in opts:
            out.append(b" MAX %d" % (hits[-1] if sorted_ else max(hits)))
        if "ALL" in opts:
            out.append(b" ALL " + set_text(hits))
    if ret.partial is not None:
        low, high = ret.partial
        part = hits[low - 1:high]
        out.append(b" PARTIAL (%d:%d %s)" % (low, high, set_text(part) if part else b"NIL"))
    if "COUNT" in opts:
        out.append(b" COUNT %d" % len(hits))
    if modseq is not None and hits:
        out.append(b" MODSEQ %d" % modseq)
    out.append(b"\r\n")
    return b"".join(out)


def update_line(tag, uid, removed, added):
    """A context's changes (RFC 5267 4.3): `removed` and `added` are lists of
    (position, numbers in order) pairs, applied in the order given (position 0 for
    an unsorted SEARCH context, whose numbers are ascending)."""
    out = [b"* ESEARCH (TAG " + quote(tag) + b")"]
    if uid:
        out.append(b" UID")
    for word, pairs in ((b"REMOVEFROM", removed), (b"ADDTO", added)):
        if pairs:
            out.append(b" " + word + b" (" + b" ".join(b"%d %s" % (pos, set_text(numbers))
                                                      for pos, numbers in pairs) + b")")
    out.append(b"\r\n")
    return b"".join(out)
