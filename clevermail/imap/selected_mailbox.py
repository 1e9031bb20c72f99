"""The selected mailbox on the wire: rendering a folder view's changes (RFC 3501 2.3.1.2,
5.2, 7.3.1, 7.3.2, 7.4.1).

A keyword that comes into use after SELECT (a STORE here or in another session) is
announced with an untagged FLAGS and OK [PERMANENTFLAGS] before any FETCH shows it
(RFC 3501 7.2.6: FLAGS lists the flags "applicable to this mailbox"; a client may
ignore a flag it was not told about): `keyword_updates()`, called before a command
runs, inside STORE before its FETCH lines, and at the head of `updates()`; and by
FETCH before a line whose flags hold a keyword set meanwhile (`unannounced()`: FETCH
reads flags live, and another process may bring a keyword in while it runs).

The snapshot (sequence numbers <-> UIDs, \\Recent) and the diff since the last look
live in store/view.py; this module only says them in IMAP: `* n EXPUNGE`, `* n FETCH
(UID u FLAGS (...))`, `* n EXISTS`, `* n RECENT`, and the untagged part of SELECT.
EXPUNGE is held back while a FETCH, STORE or SEARCH runs (RFC 3501 7.4.1): the UIDs
wait in `deferred` and keep their numbers until a command that allows it.

With IMAP4rev2 enabled (RFC 9051) there is no RECENT response and no UNSEEN code.
With CONDSTORE enabled (RFC 7162 3.1.2.1, 3.1.4.1) the flag changes carry MODSEQ and
SELECT says HIGHESTMODSEQ; with QRESYNC enabled expunges are said as one `* VANISHED
uid-set` instead of EXPUNGE lines (3.2.10).  `enabled` is the session's own set.

The search contexts of RFC 5267 (contexts.py) live and end with the selected mailbox:
the REMOVEFROM lines of expunged messages go before the expunges, what else changed
in them after EXISTS.
"""

from ..store.flags import SYSTEM_FLAGS
from .condstore import vanished_line
from .contexts import Contexts
from .fetch import flag_text

# Flags every FLAGS response lists, and \Recent (never in FLAGS, shown by FETCH).
_ALWAYS = frozenset({*SYSTEM_FLAGS, "\\Recent"})


class SelectedMailbox:
    """The IMAP face of one session's FolderView (store/view.py)."""

    def __init__(self, view, enabled=frozenset()):
        self.view = view
        self.enabled = enabled   # the session's ENABLEd extensions (a set it keeps adding to)
        self.deferred = []       # expunged UIDs not yet reported (a FETCH/STORE/SEARCH ran)
        self.gone = False
        self.announced = ()      # the keywords of the last FLAGS response sent
        self._said = None        # the folder's keyword list when last compared with it
        self.known = _ALWAYS     # ...with the system flags: what a FETCH may show
        self.saved = frozenset()  # UIDs of the saved search result "$" (RFC 5182)
        self.contexts = Contexts()  # RETURN (UPDATE) results kept up to date (RFC 5267)

    @property
    def name(self):
        return self.view.name

    @property
    def readonly(self):
        return self.view.readonly

    def __len__(self):
        return len(self.view)

    # -- updates ---------------------------------------------------------------------
    def updates(self, allow_expunge, flags=True, contexts=True):
        """Untagged responses (bytes) for what changed since the last call; without
        `flags` other sessions' flag changes are not said (NOTIFY without FlagChange
        for the selected mailbox, RFC 5465 5.1); without `contexts` the contexts'
        lines after EXISTS are the caller's (updates.py: FETCH goes before them)."""
        view = self.view
        changes = view.changes()
        if changes.gone:
            self.gone = True
            return []
        if not (changes.expunged or changes.flags or changes.new or self.contexts
                or (allow_expunge and self.deferred)):
            # nothing to say (between most commands): no keyword either, since none
            # came into use in a message this view knows without a change it reads
            # here (FETCH and STORE announce what they show themselves)
            return []
        self.deferred.extend(changes.expunged)
        out = self.keyword_updates()
        if self.contexts:
            out += self.contexts.expunged(view)   # numbered as the client still numbers them
        if allow_expunge and self.deferred:
            if "QRESYNC" in self.enabled:
                gone = sorted(uid for uid in set(self.deferred) if view.forget(uid) is not None)
                out += vanished_line(gone, earlier=False)
            else:
                # report highest first so that every number sent is still valid when read
                for uid in sorted(set(self.deferred), reverse=True):
                    seq = view.forget(uid)
                    if seq is not None:
                        out.append(b"* %d EXPUNGE\r\n" % seq)
            self.deferred = []
        condstore = "CONDSTORE" in self.enabled
        for uid, names in changes.flags if flags else ():
            seq = view.seq_of(uid)
            if seq is None:
                continue
            if condstore:
                out.append(b"* %d FETCH (UID %d FLAGS (%s) MODSEQ (%d))\r\n"
                           % (seq, uid, flag_text(names), view.modseq_of(uid)))
            else:
                out.append(b"* %d FETCH (UID %d FLAGS (%s))\r\n" % (seq, uid, flag_text(names)))
        if changes.new:
            out.append(b"* %d EXISTS\r\n" % len(view))
            if "IMAP4rev2" not in self.enabled:     # RFC 9051 has no RECENT response
                out.append(b"* %d RECENT\r\n" % len(view.recent))
        if contexts and self.contexts:
            out += self.contexts.changed(view)[0]
        return out

    def keyword_updates(self):
        """[FLAGS, OK PERMANENTFLAGS] (bytes) when a keyword came into use since the
        last FLAGS response, else []."""
        keywords = self.view.keywords()
        if keywords == self._said:
            return []           # the case before nearly every command: one list compare
        self._said = keywords
        keywords = tuple(keywords)
        if set(keywords) <= set(self.announced):
            return []
        return [self._flags_lines(keywords).encode()]

    def unannounced(self, flags):
        """True when the flag names `flags` hold a keyword no FLAGS response said yet:
        one another session or process set after this command began (a FETCH reads
        flags live); keyword_updates() must go out before the line that shows it."""
        return not flags <= self.known

    def all_announced(self, flag_sets):
        """unannounced() of none of `flag_sets` (one C-level pass over many messages)."""
        return all(map(self.known.issuperset, flag_sets))

    def _flags_lines(self, keywords):
        view = self.view
        self.announced = keywords
        self.known = _ALWAYS.union(keywords)
        flags = "\\Answered \\Flagged \\Deleted \\Seen \\Draft" + "".join(" " + k for k in keywords)
        perm = "" if view.readonly else flags + (" \\*" if view.can_add_keywords() else "")
        return f"* FLAGS ({flags})\r\n* OK [PERMANENTFLAGS ({perm})] Flags permitted\r\n"

    def select_responses(self):
        """The untagged part of the SELECT/EXAMINE response (IMAP4rev2: without RECENT
        and UNSEEN, RFC 9051 Appendix E 11 and 12; its LIST line is rev2.list_line's)."""
        view = self.view
        out = [self._flags_lines(tuple(view.keywords())), f"* {len(view)} EXISTS\r\n"]
        if "IMAP4rev2" not in self.enabled:
            out.append(f"* {len(view.recent)} RECENT\r\n")
            unseen = view.first_unseen()
            if unseen:
                out.append(f"* OK [UNSEEN {unseen}] First unseen\r\n")
        out.append(f"* OK [UIDVALIDITY {view.uidvalidity}] UIDs valid\r\n")
        out.append(f"* OK [UIDNEXT {view.uidnext}] Predicted next UID\r\n")
        out.append(f"* OK [MAILBOXID ({view.mailbox_id()})] Ok\r\n")       # RFC 8474 4.2
        # every folder keeps modseqs (RFC 7162 3.1.2.1: said on every SELECT; never NOMODSEQ);
        # last, as QRESYNC's VANISHED and FETCH lines follow it
        out.append(f"* OK [HIGHESTMODSEQ {view.modseq}] Highest\r\n")
        return "".join(out).encode()

    def highestmodseq_line(self):
        """`* OK [HIGHESTMODSEQ n]` as of what this session was last told."""
        return b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % self.view.modseq
