"""IMAP sequence sets: "2,4:7,9,12:*" (RFC 3501 section 9 `sequence-set`).

This module owns parsing a sequence set and answering three questions about it:
is n a member (SEARCH keys), which numbers in 1..largest are members (message
sequence numbers), and which of a sorted list of existing UIDs are members (UID
commands).  It knows nothing about mailboxes: the caller passes `largest`, the
value of "*" at the moment of use, because "*" names the largest number *in use*
(RFC 3501 section 9, `seq-number`) and that changes as mail arrives.

Rules taken from RFC 3501 section 9 and 6.4.8:
- a range may be written in either order: 5:2 is 2:5;
- "*" is the largest number in use; with an empty mailbox it matches nothing;
- in a UID range, "*" still counts when every UID in use is below the other
  end: "50000:*" with largest UID 120 is 120:50000, so it contains UID 120.
  The same arithmetic gives "5:*" over 3 messages = {3}.
"""

import bisect

from clevermail.imap.replies import IMAPBad
from clevermail.store import uid_sets

__all__ = ["SequenceSet", "parse_sequence_set"]

# nz-number (RFC 3501 section 9) is a non-zero unsigned 32-bit number.
_MAX_NUMBER = 0xFFFFFFFF
_STAR = None  # how "*" is stored until `largest` is known


class SequenceSet:
    """A parsed sequence set; "*" is resolved against `largest` at each use."""

    __slots__ = ("_ranges", "_cache")

    def __init__(self, ranges):
        # [(lo, hi)] as written; either end may be _STAR.
        self._ranges = tuple(ranges)
        self._cache = None

    def __repr__(self):
        def show(v):
            return "*" if v is _STAR else str(v)
        parts = (show(lo) if lo == hi else f"{show(lo)}:{show(hi)}" for lo, hi in self._ranges)
        return f"SequenceSet({','.join(parts)!r})"

    def __eq__(self, other):
        return isinstance(other, SequenceSet) and self._ranges == other._ranges

    def __hash__(self):
        return hash(self._ranges)

    def max_number(self):
        """The largest number written explicitly (0 if only "*").

        Lets the session reject message sequence numbers beyond the mailbox
        (RFC 3501 section 9: such a set is invalid) without iterating.
        """
        best = 0
        for lo, hi in self._ranges:     # a loop: a generator in max() cost more than the rest
            if lo is not _STAR and lo > best:
                best = lo
            if hi is not _STAR and hi > best:
                best = hi
        return best

    def _spans(self, largest):
        """Sorted, disjoint, non-adjacent (lo, hi) spans with "*" = largest.

        Cached for the last `largest`: SEARCH calls contains() once per message
        with the same value, so the merge happens once per command.
        """
        cache = self._cache
        if cache is not None and cache[0] == largest:
            return cache[1], cache[2]
        if len(self._ranges) == 1:
            # one range (most commands: "5", "1:*"): no sort, no merge
            merged = self._one_span(largest)
            starts = [merged[0][0]] if merged else []
            self._cache = (largest, merged, starts)
            return merged, starts
        spans = []
        for lo, hi in self._ranges:
            if lo is _STAR or hi is _STAR:
                if largest <= 0:
                    continue  # "*" in an empty mailbox names no message
                lo = largest if lo is _STAR else lo
                hi = largest if hi is _STAR else hi
            if lo > hi:
                lo, hi = hi, lo
            spans.append((lo, hi))
        spans.sort()
        merged = []
        for lo, hi in spans:
            if merged and lo <= merged[-1][1] + 1:
                if hi > merged[-1][1]:
                    merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        starts = [lo for lo, _ in merged]
        self._cache = (largest, merged, starts)
        return merged, starts

    def _one_span(self, largest):
        (lo, hi), = self._ranges
        if lo is _STAR or hi is _STAR:
            if largest <= 0:
                return []
            lo = largest if lo is _STAR else lo
            hi = largest if hi is _STAR else hi
        return [(lo, hi) if lo <= hi else (hi, lo)]

    def contains(self, n: int, largest: int) -> bool:
        """Is n in the set, with "*" meaning `largest`?  O(log ranges)."""
        merged, starts = self._spans(largest)
        i = bisect.bisect_right(starts, n) - 1
        return i >= 0 and n <= merged[i][1]

    def size(self, largest: int) -> int:
        """How many numbers the set names ("*" = largest), without listing them."""
        merged, _ = self._spans(largest)
        return sum(hi - lo + 1 for lo, hi in merged)

    def iter(self, largest: int):
        """Members within 1..largest, ascending, each once (sequence numbers)."""
        merged, _ = self._spans(largest)
        for lo, hi in merged:
            if lo > largest:
                break
            yield from range(max(lo, 1), min(hi, largest) + 1)

    def numbers(self, largest: int):
        """iter()'s members as a sequence: a range when they are one run (1:*, the
        common case: no list of a number per message), else a list."""
        merged, _ = self._spans(largest)
        runs = [range(max(lo, 1), min(hi, largest) + 1) for lo, hi in merged if lo <= largest]
        if len(runs) == 1:
            return runs[0]
        return [n for run in runs for n in run]

    def positions(self, values, largest: int):
        """The 1-based positions in `values` of resolve()'s members, as numbers() gives
        them: the sequence numbers of a UID set (`values` every UID in the mailbox),
        with two bisections per span and no lookup per message."""
        merged, _ = self._spans(largest)
        runs = []
        for lo, hi in merged:
            i = bisect.bisect_left(values, lo)
            j = bisect.bisect_right(values, hi, i)
            if j > i:
                runs.append(range(i + 1, j + 1))
        if len(runs) == 1:
            return runs[0]
        return [n for run in runs for n in run]

    def resolve(self, values, largest: int) -> list:
        """Members of `values` (sorted ascending, unique) in the set, ascending.

        For UID sets: `values` is every UID in the mailbox, `largest` the
        largest of them.  Two bisections per span, so the cost is
        O(spans * log len(values) + len(result)) however large the mailbox.
        """
        merged, _ = self._spans(largest)
        out = []
        for lo, hi in merged:
            i = bisect.bisect_left(values, lo)
            j = bisect.bisect_right(values, hi, i)
            out.extend(values[i:j])
        return out


def _seq_number(text):
    """seq-number = nz-number / "*"; nz-number = digit-nz *DIGIT."""
    if text == "*":
        return _STAR
    # isascii() first: str.isdigit() also accepts digits such as "²" or "٣".
    if not (text.isascii() and text.isdigit()) or text[0] == "0":
        raise IMAPBad("Invalid sequence set")
    value = int(text)
    if value > _MAX_NUMBER:
        raise IMAPBad("Invalid sequence set")
    return value


def parse_sequence_set(text: str) -> SequenceSet:
    """Parse '1', '1:5', '*', '2,4:7,9,12:*', '*:4'; anything else is IMAPBad."""
    if not isinstance(text, str) or not text:
        raise IMAPBad("Invalid sequence set")
    if text.isdigit():
        value = _seq_number(text)       # one number, the commonest set: no split
        return SequenceSet(((value, value),))
    ranges = []
    for part in text.split(","):
        lo, colon, hi = part.partition(":")
        if colon:
            ranges.append((_seq_number(lo), _seq_number(hi)))  # "1:2:3" fails in hi
        else:
            value = _seq_number(lo)
            ranges.append((value, value))
    return SequenceSet(ranges)


def uid_set_text(uids):
    """Ascending UIDs -> compact IMAP set text ("1:3,7"): COPYUID, VANISHED, MODIFIED.
    The store writes its expunge log in the same form (store/modseq.py)."""
    return uid_sets.uid_set_text(list(uids))
