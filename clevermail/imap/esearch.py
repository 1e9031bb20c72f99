"""ESEARCH (RFC 4731), its SORT form ESORT (RFC 5267 section 3) and the saved result
of SEARCHRES (RFC 5182): the RETURN options and the ESEARCH response.  Pure.

`parse_return(args)` takes `RETURN (...)` off the front of a SEARCH or SORT command's
arguments; `Return` says what to answer and what to save; `response()` writes
`* ESEARCH (TAG "t") [UID] MIN .. MAX .. ALL .. COUNT ..`.  For SEARCH, MIN and MAX
are the lowest and highest number and ALL is ascending; for SORT they are the first
and the last in the sort order and ALL keeps that order (RFC 5267 3.2), so the set is
written exactly in the order given, with ranges only for ascending runs.
"""

from .parser import quote
from . import replies as R

OPTIONS = ("MIN", "MAX", "ALL", "COUNT", "SAVE")


class Return:
    """The RETURN options of one command (a set of upper-case names; () means ALL)."""

    __slots__ = ("options",)

    def __init__(self, options):
        self.options = frozenset(options) or frozenset({"ALL"})

    @property
    def save(self):
        return "SAVE" in self.options

    @property
    def answers(self):
        """Whether an ESEARCH response is sent: not for SAVE alone (RFC 5182 2.4)."""
        return bool(self.options - {"SAVE"})

    def saved(self, hits):
        """The messages SAVE keeps of `hits` (in result order): all of them, unless
        MIN and/or MAX are the only other options: then just those (RFC 5182 2.4)."""
        if not hits:
            return []
        others = self.options - {"SAVE"}
        if others and others <= {"MIN", "MAX"}:
            kept = []
            if "MIN" in others:
                kept.append(hits[0])
            if "MAX" in others and (not kept or hits[-1] != kept[0]):
                kept.append(hits[-1])
            return kept
        return list(hits)


def parse_return(args):
    """(Return or None, the remaining arguments) for the arguments of SEARCH or SORT."""
    if not args or not isinstance(args[0], str) or args[0].upper() != "RETURN":
        return None, args
    if len(args) < 2 or not isinstance(args[1], list):
        raise R.RETURN_ARGS.error()
    options = []
    for opt in args[1]:
        name = opt.upper() if isinstance(opt, str) else None
        if name not in OPTIONS:
            raise R.UNKNOWN_RETURN_OPTION.error()
        options.append(name)
    return Return(options), args[2:]


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
    COUNT says 0 (RFC 4731 3.1).  `modseq`: the highest mod-sequence of the matches
    when the search had a MODSEQ key (RFC 7162 3.1.5)."""
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
    if "COUNT" in opts:
        out.append(b" COUNT %d" % len(hits))
    if modseq is not None and hits:
        out.append(b" MODSEQ %d" % modseq)
    out.append(b"\r\n")
    return b"".join(out)
