"""What a session changes through its FolderView (the view's mixin; store/view.py):
flags (STORE, the implicit \\Seen of a FETCH or a POP3 RETR), expunges, copies, and the
\\Recent an APPEND of its own claims for it.

The file handlers call these; the Folder's writer (store/changes.py) does the work
under the folder's locks.  A flag change the view made itself is remembered (`own`,
with the modseq it took) so that its next look (FolderView.changes) does not report
it back as another session's.
"""


class ViewWrites:
    """FolderView's writing half (FolderView provides `_folder`, `uids`, `own` and
    `_claims`, and `_claimed`, the ranges _took_claim adds to)."""

    def set_flags(self, uids, names, mode):
        """Change the flags named (mode '+' adds, '-' removes, '=' replaces; \\Recent
        is not stored, keywords not yet known are defined unless removing); a change
        of this view's own, not reported back to it by changes().  Returns the UIDs
        whose flags changed."""
        # letters_for drops \Recent (and any other \ name that is no system flag)
        return self._store(uids, self._folder.letters_for(names, create=mode != "-"), mode)

    def set_flags_unchanged_since(self, uids, names, mode, modseq):
        """set_flags() on the messages whose modseq is still at most `modseq` (one
        test and change under the folder's locks); returns (UIDs whose flags changed,
        UIDs left alone because they changed after `modseq`)."""
        modified = []
        changed = self._store(uids, self._folder.letters_for(names, create=mode != "-"), mode,
                              modseq, modified)
        return changed, modified

    def _store(self, uids, letters, mode, unchanged_since=None, modified=None):
        changed = self._folder.store_flags(uids, letters, mode, unchanged_since, modified)
        for entry in changed:
            self.own[entry.uid] = entry.modseq
        return [entry.uid for entry in changed]

    def mark_seen(self, uids):
        """Add \\Seen to those of `uids` that lack it (a FETCH BODY[], a POP3 RETR);
        returns the set of UIDs that were not \\Seen before."""
        folder = self._folder
        with folder.lock:
            by_uid = folder.by_uid
            unseen = [u for u in uids if (e := by_uid.get(u)) is not None and "S" not in e.flags]
        return set(self._store(unseen, "S", "+")) if unseen else set()

    def expunge(self, uids):
        """Remove `uids` whatever their flags; the UIDs really removed."""
        return self._folder.expunge(uids)

    def expunge_deleted(self, among=None):
        """Remove the snapshot's \\Deleted messages (or those in `among`), chosen and
        removed under one lock (Folder.expunge_flagged); the UIDs removed."""
        uids = self.uids if among is None else [u for u in self.uids if u in among]
        return self._folder.expunge_flagged("T", uids)

    def copy_to(self, uids, store, address, name):
        """Copy `uids` into folder `name` of a store (FolderSource) with their flags
        (keywords re-mapped to the target's own); (target UIDVALIDITY, [(old, new
        UID)]) for COPYUID."""
        target = store.open_folder(address, name)
        try:
            return target.uidvalidity, self._folder.copy_to(uids, target)
        finally:
            store.release_folder(target)

    def recent_claimer(self, folder):
        """For an APPEND to `folder` by this view's session: a callable that takes
        the marks of a \\Recent claim made in the APPEND's own change
        (Folder.append's on_claim), or None when this view claims none there (not
        that folder, EXAMINE, no \\Recent).  The session's look after the APPEND
        then finds the message already its own, with no second round of the
        folder's file lock."""
        if not self._claims or folder is not self._folder:
            return None
        return self._took_claim

    def _took_claim(self, old, new):
        self._claimed.append((old, new))
