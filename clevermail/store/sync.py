"""Bringing a folder's index up to date with its directories (Folder.sync's work).

FolderSync is Folder's collaborator for reading the disk (store/folder.py builds one
per folder; Folder.sync, index_new and rescan_all are these methods), as FolderWriter
(changes.py) is for writing.  It owns the mtimes of new/ and cur/ at the last listing
(`stamps`) and re-lists only a sub-directory whose mtime changed, so re-opening a
large folder costs work proportional to what changed; scan.py turns the listings
into index rows, comparing each with the index's names (scan.IndexNames, `names`)
by set operations, so only a name that appeared is parsed.  After another process's
change in cur/ (a rename, a link, an expunge) a look follows the lines its writer
journaled (cur_journal.py: `_follow`) with no listing; when they do not cover all that
happened there (another program's change, new/ changed too), it costs two stats, the
re-listing of the directory that changed, the work for the names that changed, and
reads the uidlist only when a name appeared or vanished.

A file missing from a listing is believed gone only when it was in neither
directory at one moment: both directories' mtimes unchanged since the listing began
(for one not listed, since the index last listed it) prove the listing whole and
that nothing moved into the other one (`_stable`, on the stamps' premise, `_look`),
for a listing read in one system call (ONE_READ names); else only after a second
look at both directories (a file moving new/ -> cur/ between the two listings, or
renamed while one was read).  A uidlist whose
UIDVALIDITY changed under the index means the folder was replaced: the Folder is
marked gone, never writing the new folder's uidlist or modseq file.

Called with the folder's lock held (sync takes it, and the file lock around a
rescan, and Folder.changing() only when there is a change to make; its first look,
whether anything changed at all, takes no lock: `_look`); it changes the index
through Folder's index API (record_expunge, record_flags, changing) and its columns
(uids, by_uid, by_base, modseqs), and wakes the waiters when something changed.

A look begun after a point serves every look of a thread that asks only for the
changes finished before that point (`reuse_since`): an IMAP command that looked at a
folder (STATUS, APPEND, an EXPUNGE that says its updates itself) or in whose time
another session of this process did, has its folder's updates said after it with no
second look at the directories.  `next_mark()` orders the points and the looks.
"""

import bisect
import errno
import gc
import itertools
import os
from threading import get_ident

from . import cur_journal, maildir, scan
from .scan import Entry

SUBDIRS = maildir.SUBDIRS
BULK = 5000               # new files at once that count as a bulk import
# Names a listing may hold and still come from one getdents call: glibc reads a
# directory 32 KiB at a time, a maildir name with its entry's header takes about 100
# bytes.  Such a listing is whole at one moment (see _rescan).
ONE_READ = 256

# Marks order, in this process, the points a caller asks changes from (`next_mark`) and
# the looks at folders: a look notes the newest point taken before it began, and
# serves a caller whose point is at or before that one.
_marks = itertools.count(1)
_latest = 0


def next_mark():
    """A new point, after every point taken before."""
    global _latest
    mark = next(_marks)
    _latest = mark      # (callers racing may leave a lower one: a look reused less)
    return mark


# thread id -> the point a look must have begun after to serve a sync of that thread
# (such a look saw every change finished before that point; one made after it is seen
# by the next look that stats, as any change made while the caller's command ran may
# be).  The IMAP session sets its entry around the look after a command that looked
# itself, with the point the command began at (the first command begun after a change
# says it), and takes it out at once; a thread without an entry looks at every sync.
reuse_since = {}


def _uid(entry):
    return entry.uid


def _first_uid(item):
    return item[0].uid


class FolderSync:
    def __init__(self, folder):
        self.folder = folder
        self.stamps = {"new": None, "cur": None}   # sub -> mtime (ns) at the last listing
        self.names = scan.IndexNames()      # the index's file names, what a listing is diffed with
        # the newest point taken before the last look that found the index current
        # (or made it so) began: every change finished before it is in the index
        self.looked = 0

    def current(self):
        """Whether both directories are as the index last saw them (no lock: a hint
        for the watcher; a folder gone is not current)."""
        folder = self.folder
        try:
            return all(self.stamps[sub] == folder.dir_mtime(sub) for sub in SUBDIRS)
        except OSError:
            return False

    def keep_stamp(self, sub, before, after):
        """After the folder's own change in `sub` (Folder.cur_changed), which took
        its mtime from `before` to `after`: whether the stamp was moved on."""
        if self.stamps[sub] == before:
            self.stamps[sub] = after
            return True
        return False

    def stamps_copy(self):
        return dict(self.stamps)

    def adopt_stamps(self, stamps):
        """A saved index's stamps (index.py), with the index they belong to."""
        self.stamps.update(stamps)
        self.names.drop()

    def rescan_all(self):
        """Re-list new/ and cur/ now (a file was renamed by another writer)."""
        self._rescan(list(SUBDIRS))

    def sync(self, force=False):
        """Bring the index up to date with the directories; True if anything changed
        (without a look when reuse_since allows it)."""
        if reuse_since and not force and self.looked >= reuse_since.get(get_ident(), self.looked + 1):
            return False
        mark = _latest
        seen = None if force else self._look()
        if seen is False:
            # (two looks racing may store the lower mark last: a look less reused)
            self.looked = mark
            return False
        folder = self.folder
        with folder.lock:
            if force:
                subs = list(SUBDIRS)
            else:
                # the mtimes the look found, not a second stat: a stamp another
                # thread stored meanwhile is an mtime its listing covered, so one
                # equal to what we saw means that directory needs no listing (a
                # change after our look is seen by the next look, as in _look), and
                # one that differs costs a listing at worst
                subs = [sub for sub in SUBDIRS if self.stamps[sub] != seen[sub]]
                if not subs and folder.uidlist.uidvalidity:
                    self.looked = mark
                    return False
            with folder.file_lock():
                changed = self._follow(subs)
                if changed is None:
                    changed = self._rescan(subs)
            self.looked = mark
            return changed

    def _follow(self, subs):
        """When only cur/ changed: apply what the other processes journaled of their
        changes there (cur_journal.py) instead of listing it (file lock held); whether
        anything changed, None when the journal does not cover all that happened
        since the last look (the caller lists)."""
        folder = self.folder
        if subs != ["cur"] or not folder.by_base:
            return None
        with folder.changing():         # reads the lines the others added since
            now = folder.dir_mtime("cur")
            records = folder.modseqs.take_journal(self.stamps["cur"], now)
            if records is None:
                return None
            changed = cur_journal.apply(folder, self.names, records, self.index_new,
                                        self._check_uidlist)
        if changed is None:
            return None
        self.stamps["cur"] = now
        if changed:
            folder.wake()
        return changed

    def _look(self):
        """False when both directories still have the mtimes of the index's last look
        (and the uidlist was read), else {sub: mtime} as found; asked without the
        folder's lock: every session asks it after each command, and most of the
        time nothing changed, so taking the lock for it made readers queue behind
        every writer (a lock convoy: a writer holds the lock across many system
        calls, each a GIL hand-off).

        Why the answer stays right without the lock.  A stamp only ever moves to an
        mtime whose changes the index already holds, or is about to hold under the
        lock: a rescan stores the mtimes taken before its listings after it has
        updated the index, and a writer of this process (changes.py, lock held)
        keeps the stamp current after its own change only when nobody else changed
        the directory since the last look.  So:
        - a change by another process (a delivery linking into new/, a worker's
          rename in cur/) changes the mtime; if our stat comes before it, we miss
          a change not yet made, and the stamp still differs at the next look
          (nothing moves a stamp past a change that was not listed); after it, the
          stamps differ and we take the lock and rescan;
        - a writer of this process in the middle of its change holds the lock: a
          caller that goes on to read the index takes the lock (FolderView.changes)
          and so sees the whole change or none of it, never half;
        - a folder deleted under us makes stat raise, as before.
        (The stamps' premise, with or without the lock: a change after a look at
        the mtime gives the directory another mtime, as Linux's fine-grained
        timestamps do from 6.13 on once the mtime was looked at.)"""
        stamps, paths = self.stamps, self.folder.sub_paths
        new = os.stat(paths["new"]).st_mtime_ns
        cur = os.stat(paths["cur"]).st_mtime_ns
        if new == stamps["new"] and cur == stamps["cur"] and self.folder.uidlist.uidvalidity:
            return False
        return {"new": new, "cur": cur}

    def _list(self, sub):
        """(mtime before listing, names) of a sub-directory."""
        path = self.folder.sub_paths[sub]
        mtime = os.stat(path).st_mtime_ns
        return mtime, os.listdir(path)

    def _check_uidlist(self):
        """Read what other writers added to the uidlist; FileNotFoundError (the Folder
        marked gone) when its UIDVALIDITY changed: the folder was deleted and created
        again under our path by another process (this one's own DELETE detaches us
        first), another folder, whose uidlist and modseq file this index must never
        write, under a file lock that is not that folder's."""
        folder = self.folder
        known = folder.uidlist.uidvalidity
        if not folder.gone:
            folder.uidlist.refresh()
        if folder.gone or known and folder.uidlist.uidvalidity != known:
            folder.gone = True
            raise FileNotFoundError(errno.ENOENT, "folder replaced under its path", folder.path)

    def _stable(self, stamps):
        """Whether no file was added, renamed or removed in new/ or cur/ since the
        listings whose mtimes are `stamps` began (and, for a directory not listed,
        since the index last listed it): then what those listings lack was in
        neither directory at that moment (the stamps' premise, _look)."""
        paths = self.folder.sub_paths
        for sub in SUBDIRS:
            want = stamps.get(sub, self.stamps[sub])
            if want is None or os.stat(paths[sub]).st_mtime_ns != want:
                return False
        return True

    def _rescan(self, subs):
        """List `subs` and bring the index in line with them (file lock held)."""
        folder = self.folder
        if not folder.by_base:
            self._check_uidlist()
            with folder.changing():
                changed = self._first_scan()
            folder.modseqs.forget_journal()      # all it says is in the listing
            return changed
        maps = self.names.maps(folder.by_base.values())
        stamps, listings = {}, {}
        for sub in subs:
            stamps[sub], listings[sub] = self._list(sub)
        appeared, vanished = scan.diff(listings, maps)
        missing = [e for e in vanished if e.base not in appeared]
        if missing and not (self._stable(stamps)
                            and all(len(names) <= ONE_READ for names in listings.values())):
            # A file moving new/ -> cur/ between the two listings, or renamed while
            # one was read, looks expunged: look again at both before believing it
            # (other writers do not all take our lock).  The stamps stay the first
            # listings' where there were some: what changed since is listed again
            # at the next look.  A listing of more than ONE_READ names is looked at
            # again even when the mtimes stayed: before Linux 6.13 an mtime is only as
            # fine as the clock tick, so a rename in the tick of the change before
            # leaves it as it was, and only a listing read in one call (under the
            # directory's lock, which a rename takes too) cannot be cut by one.
            second = {}
            for sub in SUBDIRS:
                mtime, second[sub] = self._list(sub)
                stamps.setdefault(sub, mtime)
            again, still = scan.diff(second, maps)
            appeared.update(again)
            still = set(map(id, still))
            missing = [e for e in missing if id(e) in still and e.base not in appeared]
            subs = SUBDIRS
        by_base = folder.by_base
        fresh = {"new": [], "cur": []}
        renamed = []
        for base, (sub, name) in appeared.items():
            entry = by_base.get(base)
            if entry is None:
                fresh[sub].append(name)
                continue
            flags = name[len(base) + 3:]
            if entry.sub != sub or entry.flags != flags:
                renamed.append((entry, sub, flags))
        new_names = fresh["new"] or fresh["cur"]
        if missing or new_names:
            # a renamed file is the same folder's; files gone or new may be
            # another folder's under our path
            self._check_uidlist()
        changed = bool(missing or renamed or new_names)
        if changed:
            # in UID order, as sessions are told (a set's order is not)
            missing.sort(key=_uid)
            renamed.sort(key=_first_uid)
            with folder.changing():
                for entry in missing:
                    folder.record_expunge(entry)
                for entry, sub, flags in renamed:
                    # as named on disk, so filename() finds it
                    self.names.rename(entry, sub, flags)
                    folder.record_flags(entry)
                if new_names:
                    self.index_new(fresh, refreshed=True)
        for sub, mtime in stamps.items():
            self.stamps[sub] = mtime
        if not folder.uidlist.uidvalidity:
            folder.uidlist.refresh()
        if folder.uidlist.needs_compaction() and set(subs) == set(SUBDIRS):
            folder.uidlist.compact(set(by_base))
        if not changed:
            with folder.changing():     # (reads the journal lines up to this listing)
                pass
        # every change the journal's lines tell, ours kept included, was made before
        # the file lock was taken: the listings hold it
        folder.modseqs.forget_journal()
        if changed:
            folder.wake()
        return changed

    def _first_scan(self):
        """Index an empty index's folder: no comparison with what we knew, just list."""
        folder = self.folder
        fresh = {}
        for sub in SUBDIRS:
            self.stamps[sub], names = self._list(sub)
            fresh[sub] = [n for n in names if n[:1] != "."]
        if fresh["new"] or fresh["cur"]:
            self.index_new(fresh, refreshed=True)
            folder.wake()
            return True
        return False

    def index_new(self, fresh, in_order=False, durable=True, claim=False, refreshed=False):
        """Index new files {sub: [names]}, giving each a UID.  Names start with the
        delivery time, so name order is arrival order and UIDs follow it; `in_order`:
        UIDs follow the order of the names given instead (COPY: copies keep their
        source's internal dates, which need not rise with the source's UIDs).
        `durable` False: the writer's own files, whose uidlist lines it fsyncs after
        the locks (uidlist.assign_list; `folder.uidlist.unsynced` says if it must).
        `refreshed`: the caller read the uidlist under the same file lock just now."""
        if sum(map(len, fresh.values())) < BULK:
            return self._index_names(fresh, in_order, durable, claim, refreshed)
        # A bulk import creates hundreds of thousands of objects that all stay alive:
        # the cyclic GC would walk them again and again for nothing (a quarter of the
        # time at 100,000 messages).  Reference counting still frees garbage meanwhile.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._index_names(fresh, in_order, durable, claim, refreshed)
        finally:
            if was_enabled:
                gc.enable()

    def _index_names(self, fresh, in_order=False, durable=True, claim=False, refreshed=False):
        folder = self.folder
        cols = ([], [], [], [], [], [])
        for sub in ("new", "cur"):
            names = fresh.get(sub)
            if names:       # (most calls have one name, in one of them)
                scan.parse_names(folder.path, sub, names, cols)
        bases = cols[0]
        if not bases:
            return
        # Column-wise: sort row numbers by base name, keeping the last row of a base
        # (a file moved new/ -> cur/ between two listings shows up twice; cur/ wins).
        last = dict(zip(bases, range(len(bases))))
        order = sorted(last.values(), key=None if in_order else bases.__getitem__)
        bases, subs, flags, sizes, wsizes, dates = (list(map(col.__getitem__, order)) for col in cols)
        uids = folder.uidlist.assign_list(bases, durable, claim, refresh=not refreshed)
        modseqs = folder.modseqs
        if modseqs.first_map:
            # the first scan of this process: the modseqs the file kept for them
            mods = [modseqs.logged(uid) for uid in uids]
            fresh_uids = [uid for uid, m in zip(uids, mods) if m is None]
            if fresh_uids:
                mods = [modseqs.current() if m is None else m for m in mods]
        else:
            mods, fresh_uids = itertools.repeat(modseqs.current()), uids
        modseqs.took_many(fresh_uids)
        entries = list(map(Entry, uids, bases, subs, flags, sizes, wsizes, dates, mods))
        folder.by_uid.update(zip(uids, entries))
        folder.by_base.update(zip(bases, entries))
        self.names.add(entries)
        added = sorted(uids)
        current = folder.uids
        if not current or added[0] > current[-1]:
            current.extend(added)
        else:   # UIDs another process gave out below ours: keep the list sorted
            for uid in added:
                bisect.insort(current, uid)
