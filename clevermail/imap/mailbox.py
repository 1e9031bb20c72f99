"""The selected mailbox as one IMAP session sees it (RFC 3501 2.3.1.2, 5.2, 7.4.1).

A session's view holds its own message sequence (seq -> UID), which changes only when
the session itself reports EXISTS or EXPUNGE; the shared Folder underneath may already
be ahead.  `updates()` turns what changed in the Folder since the view last looked
(new mail, flag changes by others, expunges by others) into untagged responses, holding
EXPUNGE back while a FETCH, STORE or SEARCH is running, as RFC 3501 7.4.1 requires.
"""

import bisect


class MessageView:
    """Duck-typed message for fetch.py and search.py: seq, uid, flags, dates, sizes, raw()."""

    __slots__ = ("seq", "uid", "entry", "folder", "recent", "_raw", "_flags")

    def __init__(self, seq, entry, folder, recent):
        self.seq, self.uid, self.entry, self.folder, self.recent = seq, entry.uid, entry, folder, recent
        self._raw = None
        self._flags = None

    @property
    def flags(self):
        if self._flags is None:
            names = self.folder.flag_names(self.entry.flags)
            self._flags = list(names) + ["\\Recent"] if self.recent else list(names)
        return self._flags

    @property
    def internaldate(self):
        return float(self.entry.date)

    @property
    def size(self):
        return self.entry.wsize

    def raw(self):
        if self._raw is None:
            self._raw = self.folder.read_message(self.uid)
        return self._raw


class SelectedMailbox:
    def __init__(self, folder, name, readonly, owned_recent=()):
        self.folder = folder
        self.name = name
        self.readonly = readonly
        with folder.lock:
            self.uids = list(folder.uids)
            self.modseq = folder.modseq
            if readonly:
                upto = folder.recent_upto
            else:
                upto = folder.claim_recent()
            start = bisect.bisect_right(self.uids, upto)
            self.recent = set(self.uids[start:])
            # what this session was handed before, in messages that still exist
            self.recent.update(u for u in owned_recent if u in folder.by_uid)
        self.own = {}            # uid -> modseq of flag changes this session reported itself
        self.deferred = []       # expunged UIDs not yet reported (a FETCH/STORE/SEARCH ran)
        self.gone = False

    # -- numbering -----------------------------------------------------------------
    def __len__(self):
        return len(self.uids)

    def seq_of(self, uid):
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    def messages(self, seqs):
        """MessageView for each sequence number whose message still exists."""
        out = []
        by_uid = self.folder.by_uid
        for seq in seqs:
            uid = self.uids[seq - 1]
            entry = by_uid.get(uid)
            if entry is not None:
                out.append(MessageView(seq, entry, self.folder, uid in self.recent))
        return out

    def first_unseen(self):
        by_uid = self.folder.by_uid
        for i, uid in enumerate(self.uids):
            entry = by_uid.get(uid)
            if entry is not None and "S" not in entry.flags:
                return i + 1
        return None

    def note_own(self, entries):
        for entry in entries:
            self.own[entry.uid] = entry.modseq

    # -- updates ---------------------------------------------------------------------
    def updates(self, allow_expunge):
        """Untagged responses (bytes) for what changed since the last call."""
        folder = self.folder
        try:
            folder.sync()
        except FileNotFoundError:
            self.gone = True
            return []
        with folder.lock:
            changes = folder.changes_since(self.modseq)
            if changes is None:    # the log was trimmed: compare in full
                live = folder.by_uid
                expunged = [u for u in self.uids if u not in live]
                flagged = [u for u in self.uids if u in live and live[u].modseq > self.modseq]
            else:
                expunged, flagged = changes
            last = self.uids[-1] if self.uids else 0
            new = folder.uids[bisect.bisect_right(folder.uids, last):]
            self.modseq = folder.modseq
            changed_flags = []
            for uid in dict.fromkeys(flagged):
                entry = folder.by_uid.get(uid)
                if entry is not None and self.own.get(uid) != entry.modseq:
                    changed_flags.append((uid, folder.flag_names(entry.flags)))
            if new and not self.readonly:
                upto = folder.claim_recent()
                self.recent.update(u for u in new if u > upto)
        self.own.clear()
        out = []
        self.deferred.extend(u for u in expunged if self.seq_of(u) is not None)
        if allow_expunge and self.deferred:
            # report highest first so that every number sent is still valid when read
            for uid in sorted(set(self.deferred), reverse=True):
                seq = self.seq_of(uid)
                if seq is not None:
                    out.append(b"* %d EXPUNGE\r\n" % seq)
                    del self.uids[seq - 1]
                    self.recent.discard(uid)
            self.deferred = []
        for uid, names in changed_flags:
            seq = self.seq_of(uid)
            if seq is not None:
                names = list(names) + (["\\Recent"] if uid in self.recent else [])
                out.append(b"* %d FETCH (UID %d FLAGS (%s))\r\n" % (seq, uid, " ".join(names).encode()))
        if new:
            self.uids.extend(new)
            out.append(b"* %d EXISTS\r\n" % len(self.uids))
            out.append(b"* %d RECENT\r\n" % len(self.recent))
        return out

    def select_responses(self, permanent_keywords):
        """The untagged part of the SELECT/EXAMINE response."""
        folder = self.folder
        keywords = folder.keywords()
        flags = "\\Answered \\Flagged \\Deleted \\Seen \\Draft" + "".join(" " + k for k in keywords)
        perm = "" if self.readonly else flags + (" \\*" if permanent_keywords else "")
        out = [f"* FLAGS ({flags})\r\n",
               f"* OK [PERMANENTFLAGS ({perm})] Flags permitted\r\n",
               f"* {len(self.uids)} EXISTS\r\n",
               f"* {len(self.recent)} RECENT\r\n"]
        unseen = self.first_unseen()
        if unseen:
            out.append(f"* OK [UNSEEN {unseen}] First unseen\r\n")
        out.append(f"* OK [UIDVALIDITY {folder.uidvalidity}] UIDs valid\r\n")
        out.append(f"* OK [UIDNEXT {folder.uidnext}] Predicted next UID\r\n")
        return "".join(out).encode()
