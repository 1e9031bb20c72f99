"""Search contexts kept up to date: RETURN (UPDATE) of CONTEXT=SEARCH and CONTEXT=SORT
(RFC 5267 section 4).

A SEARCH or SORT with RETURN (UPDATE) leaves a `Context` in the selected mailbox's
`Contexts`, under the command's tag: its result as UIDs in result order (ascending
for SEARCH, the sort order for SORT) and the modseq it was last brought to.  Each
time the selected mailbox's updates are said (after a command, in IDLE), the
contexts are brought up to date in two steps, each giving ESEARCH lines said with
the numbering the client has at that point (RFC 5267 4.3.2):
- `expunged(view)`, before the EXPUNGE (or VANISHED) responses: REMOVEFROM for the
  expunged messages, with the numbers they still have;
- `changed(view)`, after EXISTS: the messages changed or added since the context's
  modseq are tested again (every message when a key depends on sequence numbers,
  "*" or "$": SearchProgram.relative, so against the numbering after the
  expunges), REMOVEFROM for those that no longer match, ADDTO for those that now do.
A SEARCH context says position 0 with ascending sets; a SORT context the position
in its result where each run of messages leaves or enters, pairs applied in the
order given (4.3.3, 4.3.4).  Flags never move a message in a sort order (the sort
keys are headers, dates and sizes), so only added and removed messages change
positions.

With NOTIFY (RFC 5465 7) a context may carry fetch-atts (RETURN (UPDATE (fetch-att
...))): `changes(view, new)` also says which of the messages it adds are new ones (in
`new`: arrived since the last look, not ones a flag change brought in, 7: "No untagged
FETCH response SHOULD be returned" for those), and updates.py sends their FETCH after
EXISTS and before the ESEARCH lines.

What matches and what the sort order is are the session's business (cmd_search.py
hands each context two callables); this module only keeps results and says the
differences.  At most MAX_CONTEXTS per selected mailbox: beyond that the command
answers without keeping its result, and says NOUPDATE (4.3.1).  The contexts end
with the selected mailbox (SELECT, EXAMINE, CLOSE, UNSELECT: a new SelectedMailbox)
or by CANCELUPDATE (4.3.5).
"""

from array import array

from .esearch import update_line

MAX_CONTEXTS = 16


class Context:
    """One context: `match(uids)` -> the set of those UIDs that match now (messages
    gone are left out); `order(uids)` -> the UIDs in sort order (None for SEARCH);
    `fetch`: the fetch-att tokens of RETURN (UPDATE (...)) or None (RFC 5465 7)."""

    __slots__ = ("tag", "uid_mode", "relative", "match", "order", "members", "modseq", "fetch")

    def __init__(self, tag, uid_mode, relative, match, order, members, modseq, fetch=None):
        self.tag, self.uid_mode, self.relative = tag, uid_mode, relative
        self.fetch = fetch
        self.match, self.order = match, order
        # UIDs in result order, 4 octets each: a session may keep several contexts of
        # a 100,000-message folder
        self.members = array("I", members)
        self.modseq = modseq

    def _gone(self, view):
        """The members expunged since the context's modseq."""
        held = set(self.members)
        gone = view.vanished_since(self.modseq)
        if gone is None:    # the folder no longer remembers that far: ask of each
            return set(view.vanished_below(sorted(held)))
        return set(gone) & held

    def expunged(self, view):
        """(position, [UIDs]) pairs of the members expunged; they leave the result."""
        if view.modseq == self.modseq:
            return []
        gone = self._gone(view)
        return self._leave(gone) if gone else []

    def changed(self, view):
        """(removed, added): (position, [UIDs]) pairs of the members that no longer
        match and of the messages that now do; the result is brought up to date."""
        if view.modseq == self.modseq:
            return [], []
        gone = self._gone(view)     # expunged after expunged() looked
        removed = self._leave(gone) if gone else []
        held = set(self.members)
        if self.relative:
            candidates = set(view.uids)
        else:
            candidates = set(view.changed_since(self.modseq))
        self.modseq = view.modseq
        hits = self.match(sorted(candidates)) if candidates else set()
        now = (held - candidates) | hits
        if now == held:
            return removed, []
        removed += self._leave(held - now)
        added = now - held
        if not added:
            return removed, []
        if self.order is None:
            self.members = array("I", sorted(now))
            return removed, [(0, sorted(added))]
        self.members = array("I", self.order(now))
        return removed, _runs(self.members, added, shift=False)

    def _leave(self, uids):
        """Take `uids` out of the result; their (position, [UIDs]) pairs."""
        if not uids:
            return []
        if self.order is None:
            pairs = [(0, sorted(uids))]
        else:
            pairs = _runs(self.members, uids, shift=True)
        self.members = array("I", (u for u in self.members if u not in uids))
        return pairs


def _runs(order, chosen, shift):
    """(position, [UIDs]) for each run of consecutive `chosen` UIDs in `order`:
    positions 1-based; with `shift` as they are once the runs before are removed."""
    pairs, run, start, taken = [], [], 0, 0
    for i, uid in enumerate(order, 1):
        if uid in chosen:
            if not run:
                start = i - taken if shift else i
            run.append(uid)
            continue
        if run:
            pairs.append((start, run))
            taken += len(run)
            run = []
    if run:
        pairs.append((start, run))
    return pairs


def _line(ctx, view, removed, added):
    """The ESEARCH line of a context's changes, numbered as the view is now."""
    if ctx.uid_mode:
        return update_line(ctx.tag, True, removed, added)
    seq_of = view.seq_of

    def numbered(pairs):
        out = []
        for pos, uids in pairs:
            seqs = [s for s in map(seq_of, uids) if s is not None]
            if seqs:
                out.append((pos, seqs))
        return out
    return update_line(ctx.tag, False, numbered(removed), numbered(added))


class Contexts(dict):
    """The contexts of one selected mailbox, by tag (a dict, so that the test for
    any, made twice after every command, is no call of ours)."""

    def full(self):
        return len(self) >= MAX_CONTEXTS

    def add(self, context):
        self[context.tag] = context

    def cancel(self, tag):
        """End the context of `tag`; False when there is none (RFC 5267 4.3.5)."""
        return self.pop(tag, None) is not None

    def expunged(self, view):
        """REMOVEFROM lines (bytes) for the members expunged, said before the
        expunges are (after the view's changes(), before it forgets them)."""
        out = []
        for ctx in self.values():
            pairs = ctx.expunged(view)
            if pairs:
                out.append(_line(ctx, view, pairs, ()))
        return out

    def changed(self, view, new=frozenset()):
        """(lines, fetches): the REMOVEFROM/ADDTO lines (bytes) of every context
        brought up to date, said after the expunges and EXISTS; and for each context
        with fetch-atts that adds messages of `new` (UIDs that arrived since the last
        look), (its fetch-att tokens, those UIDs ascending), whose FETCH goes before
        the lines (RFC 5465 7)."""
        out, fetches = [], []
        for ctx in self.values():
            removed, added = ctx.changed(view)
            if removed or added:
                out.append(_line(ctx, view, removed, added))
            if ctx.fetch is not None and added and new:
                arrived = sorted(uid for _, uids in added for uid in uids if uid in new)
                if arrived:
                    fetches.append((ctx.fetch, arrived))
        return out, fetches
