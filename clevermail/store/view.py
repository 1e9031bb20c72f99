"""A session's view of one folder: its snapshot and what changed since its last look.

Protocol-neutral (IMAP's selected state and POP3's maildrop both use it).  A FolderView
holds the session's own numbering (sequence number <-> UID), which changes only when
the session applies a change: the shared Folder (store/folder.py) underneath may
already be ahead.  `changes()` compares the Folder with the snapshot and returns a
frozen `Changes` value (UIDs expunged by others, flag changes made by others, new UIDs,
the \\Recent the view was handed); the caller decides when to show them and calls
`forget()` for each expunge it reported (IMAP holds EXPUNGE back during FETCH, STORE
and SEARCH, RFC 3501 7.4.1; POP3 never looks: its maildrop is frozen at login,
RFC 1939 8).  Until a view forgets an expunged UID, its Message still comes with
the flags, date and size it had (the Folder keeps the entries of recent expunges,
`ghosts`), so a session not yet told of an expunge keeps seeing the message as RFC
2180 4.1 allows; its content is gone (MessageGone).

A view has one ViewMode: SELECT (IMAP read-write: claims \\Recent, RFC 3501 2.3.2,
for the UIDs it is the first to see, Folder.claim_recent), EXAMINE (IMAP read-only:
reads \\Recent, claims none) or MAILDROP (POP3: no \\Recent at all, frozen at login;
it still sets \\Seen and expunges through the view).  A SELECT or EXAMINE view made
with recent=False (an IMAP4rev2 session: RFC 9051 has no \\Recent) neither claims
nor shows \\Recent, so an IMAP4rev1 session still gets it.

Only this module and the rest of store/ read the folder's index and lock: a session
gets Message values (uid, flag names, date, size) and Changes values, never an index
row, a flag letter or the Folder.
"""

import bisect
import functools

from .errors import NoSuchFolder
from .flags import SYSTEM_FLAGS
from .view_writes import ViewWrites
from .view_values import NO_CHANGES, Changes, FlagNames, Message, ViewMode

__all__ = ["Changes", "FolderView", "Message", "NO_CHANGES", "ViewMode", "close_view", "open_view"]

# IMAP system flag names as search.py casefolds them -> Maildir letters
_LETTER_OF = {name.lower(): letter for name, letter in SYSTEM_FLAGS.items()}
# Message(*values) without its Python-level __new__, and without a Python step (map)
_make_message = functools.partial(tuple.__new__, Message)


# no keyword table (not even None, a table not loaded yet): FlagNames made at first use
_NO_TABLE = object()


def _nothing(uid):
    return None


class FolderView(ViewWrites):
    """One session's snapshot of a shared Folder (see the module docstring).

    `uids` is the numbering (uids[seq - 1]); `recent` the UIDs whose \\Recent this view
    holds.  Both are the view's own state: read them, change them only through
    changes() and forget()."""

    def __init__(self, folder, name, mode: ViewMode, owned_recent=(), recent=True):
        self._folder = folder
        self.name = name
        self.mode = mode
        self._claims = recent and mode is ViewMode.SELECT      # takes \Recent of new mail
        with folder.lock:
            self.uids = list(folder.uids)
            self.modseq = folder.modseq
            self.selected_uidvalidity = folder.uidvalidity
            if mode is ViewMode.MAILDROP or not recent:
                self.recent = set()
            else:
                upto = folder.recent_upto if mode is ViewMode.EXAMINE else folder.claim_recent()
                self.recent = set(self.uids[bisect.bisect_right(self.uids, upto):])
                # what this session was handed before, in messages that still exist
                self.recent.update(u for u in owned_recent if u in folder.by_uid)
        self.own = {}            # uid -> modseq of flag changes this view made itself
        # [(old mark, new mark)]: the \Recent its session's own APPENDs claimed for it
        # (recent_claimer), kept until those UIDs come into its numbering (APPENDs
        # pipelined before one look: each its own range, another's claim between them)
        self._claimed = []
        self._waiter = None      # the store.waiters.Waiter of watch(), while there is one
        self._names = FlagNames(folder.flag_names, _NO_TABLE)    # made at first use
        self._keywords, self._keywords_of = [], _NO_TABLE          # keywords()

    @property
    def readonly(self):
        """IMAP's read-only state (EXAMINE): no flag change, no expunge."""
        return self.mode is ViewMode.EXAMINE

    # -- numbering -----------------------------------------------------------------
    def __len__(self):
        return len(self.uids)

    def seq_of(self, uid):
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    def uid_at(self, seq):
        return self.uids[seq - 1]

    def messages(self, seqs, expunged=True):
        """A Message for each sequence number.  A message expunged by someone else
        that the view still numbers (not yet forget()) keeps its last flags, date
        and size (RFC 2180 4.1: the session has not been told); `expunged=False`
        leaves such messages out, and one expunged too long ago is left out anyway
        (compare the lengths).  Read from the index alone: no file is opened."""
        return list(map(_make_message, self.iter_messages(seqs, expunged)))

    def iter_messages(self, seqs, expunged=True):
        """messages() one at a time and unnamed: each a plain tuple in Message's field
        order (seq, uid, flags, internaldate, size, modseq), for a caller that unpacks and
        renders each and lets it go.  FETCH 1:* (UID FLAGS) over 100,000 messages
        runs as fast as from the index rows themselves: no Message type to build
        (a third of the time) and no list of 100,000 values for the cyclic GC to
        walk again and again while it grows."""
        folder = self._folder
        get, uids, recent = folder.by_uid.get, self.uids, self.recent
        ghost = folder.ghosts.get if expunged else _nothing
        names = self._names
        if names.table is not folder.flagmap._keywords:
            names = self._flag_names()
        known, make = names.known, names.make
        for seq in seqs:
            uid = uids[seq - 1]
            entry = get(uid)
            if entry is None:
                entry = ghost(uid)
                if entry is None:
                    continue
            key = entry.flags, uid in recent
            try:
                flags = known[key]
            except KeyError:
                flags = make(key)
            yield seq, uid, flags, entry.date, entry.wsize, entry.modseq

    def _flag_names(self):
        """The view's FlagNames made anew for the folder's keyword table as it is now
        (a keyword was added since, or the table read again): kept while the table is
        the same, so a FETCH or STORE of one message builds no frozenset."""
        folder = self._folder
        # FlagMap's table is copied on write (store/flags.py): another object once a
        # keyword is added or read anew (loaded now if it is not: None until then);
        # taken before the names, so a change after it makes another at the next call
        table = folder.flagmap._table()
        self._names = names = FlagNames(folder.flag_names, table)
        return names

    def sizes(self):
        """Wire sizes of the snapshot's messages (0 for one expunged meanwhile)."""
        with self._folder.lock:
            by_uid = self._folder.by_uid
            try:
                # the plain form first: the whole maildrop at every POP3 login
                return [by_uid[u].wsize for u in self.uids]
            except KeyError:    # expunged since the snapshot was taken
                get = by_uid.get
                return [e.wsize if (e := get(u)) is not None else 0 for u in self.uids]

    def stored_size(self, uids):
        """(disk bytes, messages) of those of `uids` still in the folder: what a copy
        of them takes of a quota (store/quota.py counts the same S= sizes)."""
        with self._folder.lock:
            get = self._folder.by_uid.get
            sizes = [e.size for u in uids if (e := get(u)) is not None]
        return sum(sizes), len(sizes)

    def first_unseen(self):
        by_uid = self._folder.by_uid
        for i, uid in enumerate(self.uids):
            entry = by_uid.get(uid)
            if entry is not None and "S" not in entry.flags:
                return i + 1
        return None

    def flag_search(self, tests, uids=False):
        """Sequence numbers (UIDs with `uids`) of the messages whose system flags pass
        every (name, wanted) test (names casefolded, "\\seen"); no test means every
        message.  None when a name is not a system flag (the caller's general
        evaluator then runs).  Flag letters straight from the index: 100,000
        messages in milliseconds."""
        letters = []
        for name, want in tests:
            letter = _LETTER_OF.get(name)
            if letter is None:
                return None
            letters.append((letter, want))
        get = self._folder.by_uid.get
        numbered = self.uids if uids else range(1, len(self.uids) + 1)
        pairs = zip(numbered, self.uids)
        if not letters:
            return [n for n, uid in pairs if get(uid) is not None]
        if len(letters) == 1:
            letter, want = letters[0]
            if want:
                return [n for n, uid in pairs if (e := get(uid)) is not None and letter in e.flags]
            return [n for n, uid in pairs if (e := get(uid)) is not None and letter not in e.flags]
        return [n for n, uid in pairs
                if (e := get(uid)) is not None and all((c in e.flags) == w for c, w in letters)]

    # -- modseqs (RFC 7162 asks them; the store keeps them, store/modseq.py) -------------
    def changed_since(self, modseq, uids=None):
        """UIDs this view numbers whose modseq is above `modseq` (flags changed or
        new since), ascending; only those in the set `uids` when given.  Work in
        proportion to the changes (Folder.changed_since)."""
        seq_of = self.seq_of
        found = self._folder.changed_since(modseq)
        return [u for u in found if (uids is None or u in uids) and seq_of(u) is not None]

    def modseq_of(self, uid):
        """The modseq of a message the view numbers (that of its expunge-time state
        for one expunged meanwhile; 0 when nothing is left of it)."""
        folder = self._folder
        entry = folder.by_uid.get(uid) or folder.ghosts.get(uid)
        return entry.modseq if entry is not None else 0

    def vanished_since(self, modseq):
        """UIDs expunged after `modseq`, ascending; None when the folder no longer
        remembers that far back one by one (then: every UID below UIDNEXT that is not
        live, vanished_below())."""
        return self._folder.vanished_since(modseq)

    def vanished_below(self, uids):
        """Those of `uids` (ascending) that are no longer live in the folder."""
        live = self._folder.by_uid
        return [u for u in uids if u not in live]

    # -- folder facts ------------------------------------------------------------------
    @property
    def uidvalidity(self):
        return self._folder.uidvalidity

    @property
    def uidnext(self):
        return self._folder.uidnext

    def keywords(self):
        """The folder's keywords, a list the caller must not change: the same one while
        the folder's keyword table is the same object (store/flags.py copies it on
        write), so the look after every command builds none."""
        folder = self._folder
        table = folder.flagmap._keywords
        if table is not self._keywords_of or table is None:
            self._keywords = folder.keywords()
            self._keywords_of = table       # read before: a change since makes another
        return self._keywords

    def can_add_keywords(self):
        return self._folder.can_add_keywords()

    # -- content -------------------------------------------------------------------
    def open_message(self, uid):
        """An open binary file of the message (disk form, LF line ends); MessageGone
        when it was expunged."""
        return self._folder.open_message(uid)

    def read_message(self, uid):
        """The message in wire form (CRLF line ends); MessageGone when expunged."""
        return self._folder.read_message(uid)

    def object_id(self, uid):
        """The message's stable id (object_ids.py); MessageGone when expunged."""
        return self._folder.object_id(uid)

    def mailbox_id(self):
        """The folder's stable id (object_ids.py)."""
        return self._folder.mailbox_id()

    def watch(self):
        """A store.waiters.Waiter of the folder's changes, woken once per change until
        this view next calls changes() (its arm() gives the descriptor to poll, shared
        with every other waiter of the folder); pair with unwatch()."""
        if self._waiter is None:
            self._waiter = self._folder.waiters.join()
        return self._waiter

    def unwatch(self):
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.close()

    # -- the diff ----------------------------------------------------------------------
    def changes(self):
        """What changed since the last call (see Changes).  New UIDs join the numbering
        at once; expunged ones stay numbered until forget()."""
        folder = self._folder
        if folder.gone:     # detached: the path may hold another folder by now
            return Changes(gone=True)
        waiter = self._waiter
        if waiter is not None:
            # before the look at the directories: a delivery's file may be past it
            waiter.looking()
        try:
            folder.sync()
        except FileNotFoundError:
            return Changes(gone=True)
        # deleted and created again behind our back (another process, no watcher):
        # the UIDs of the snapshot mean nothing in the new folder (RFC 3501 2.3.1.1)
        if folder.gone or folder.uidvalidity != self.selected_uidvalidity:
            return Changes(gone=True)
        if waiter is None and folder.modseq == self.modseq and self._no_new(folder.uids):
            # Nothing changed since our last look, seen without the folder's lock
            # (asked after every command; the lock would queue us behind writers).
            # Every change of the index takes a new modseq (Folder.changing) before
            # its block ends, and a new message's UID is above every one before it:
            # a change not yet visible here is one still being made, and our modseq
            # stays where it is, so the next look reports it.  A waiter must be
            # told looked() under the lock (below), so IDLE always takes it.
            self.own.clear()
            return NO_CHANGES
        with folder.lock:
            if waiter is not None:
                # from here on a change of the index wakes us again: what came before
                # it is in what we read now (both under the folder lock)
                waiter.looked()
            changes = folder.changes_since(self.modseq)
            live = folder.by_uid
            if changes is None:    # the log was trimmed: compare in full
                expunged = [u for u in self.uids if u not in live]
                flagged = [u for u in self.uids if u in live and live[u].modseq > self.modseq]
            else:
                expunged, flagged = changes
            last = self.uids[-1] if self.uids else 0
            new = folder.uids[bisect.bisect_right(folder.uids, last):]
            self.modseq = folder.modseq
            flags = []
            for uid in dict.fromkeys(flagged):
                entry = live.get(uid)
                if entry is not None and self.own.get(uid) != entry.modseq and uid <= last:
                    flags.append((uid, entry.flags))
            recent = ()
            if new and self._claims:
                if self._claimed:
                    ranges = self._claimed
                    recent = [u for u in new if any(low < u <= high for low, high in ranges)]
                    # a range whose UIDs are all numbered now is used up
                    self._claimed = [(low, high) for low, high in ranges if high > new[-1]]
                if new[-1] > folder.recent_upto:
                    # (the mark only grows: at or above our newest UID, every one
                    # of them went to someone already, and nothing is left to claim
                    # under the file lock)
                    upto = folder.claim_recent()
                    recent = list(recent) + [u for u in new if u > upto]
        self.own.clear()
        seq_of = self.seq_of
        expunged = tuple(u for u in expunged if seq_of(u) is not None)
        names, held = self._names, self.recent
        if names.table is not folder.flagmap._keywords:
            names = self._flag_names()
        flags = tuple((uid, names[letters, uid in held]) for uid, letters in flags if seq_of(uid) is not None)
        if not (expunged or flags or new):
            return NO_CHANGES
        self.uids.extend(new)
        self.recent.update(recent)
        return Changes(expunged, flags, tuple(new), frozenset(recent))

    def _no_new(self, current):
        """No UID in the folder's `current` list above our last (read without the lock:
        its last item is its highest)."""
        try:
            newest = current[-1]
        except IndexError:
            return True
        return bool(self.uids) and newest <= self.uids[-1]

    def forget(self, uid):
        """Remove an expunged UID from the numbering once it was reported; returns the
        sequence number it had (None if it was not numbered)."""
        seq = self.seq_of(uid)
        if seq is not None:
            del self.uids[seq - 1]
            self.recent.discard(uid)
        return seq


def open_view(store, address, name, mode: ViewMode, owned_recent=(), recent=True):
    """A FolderView of `name` from a store (FolderSource, store/api.py) in `mode`
    (`recent`: whether it has \\Recent at all); the folder stays open until
    close_view()."""
    for attempt in (0, 1):
        folder = store.open_folder(address, name)
        try:
            return FolderView(folder, name, mode, owned_recent, recent)
        except FileNotFoundError:
            # detached while we opened it (Folder.claim_recent refuses then): deleted,
            # or renamed away and maybe created again (then once more, on the new one)
            store.release_folder(folder)
        except BaseException:
            store.release_folder(folder)
            raise
    raise NoSuchFolder(name)


def close_view(store, view):
    store.release_folder(view._folder)
