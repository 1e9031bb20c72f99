"""One Maildir folder: its index, flags, expunges, appends, and change notification.

A Folder object is shared by every session of this process that has the folder open
(MailStore hands out one per path).  It keeps an in-memory index of the messages
(UID -> entry), kept current by `sync()`, which re-lists only the sub-directories
(new/, cur/) whose mtime changed since the last look, so re-opening a large folder
costs work proportional to what changed.  The index also survives restarts in
`clevermail-index` (see store/index.py).

Concurrency: `lock` (an RLock) guards the index inside the process; `file_lock()`
(flock on `clevermail-lock`) serialises UID assignment, renames and unlinks with other
CleverMail processes.  Every change bumps `modseq` and is logged so that sessions can
ask what changed since they last looked (new UIDs, flag changes, expunges; a session's
view of that is store/view.py) and report it as RFC 3501 allows.

Writing is FolderWriter's (store/changes.py), through the index API below; waking
the waiters (store/waiters.py) takes no folder lock, so a delivery's notify() (the
last step before SMTP says 250) never queues behind a sync or an expunge.
"""

import bisect
import collections
import errno
import gc
import itertools
import os
import threading
from typing import NamedTuple

from . import maildir, scan
from .errors import MessageGone
from .changes import FolderWriter
from .flags import FlagMap
from .locks import FileLock
from .uidlist import UidList
from .scan import Entry
from .waiters import Waiters

SUBDIRS = maildir.SUBDIRS
BULK = 5000               # new files at once that count as a bulk import
LOG_LIMIT = 20000


class FolderStatus(NamedTuple):
    """The counters of RFC 3501 STATUS, in store terms."""
    messages: int
    recent: int
    uidnext: int
    uidvalidity: int
    unseen: int


class Folder:
    """One folder's index, change log and waiters, shared by the sessions of this
    process.  Writing (flags, expunge, append, copy) is done by its FolderWriter
    (store/changes.py) through the index API below."""

    def __init__(self, path, name, create=True):
        """`create`: make the folder's directories if missing; False (FolderCache):
        the folder must exist, only a missing tmp/, new/ or cur/ is made, so that a
        SELECT racing a DELETE never brings the deleted folder back."""
        self.path = path
        self.name = name
        self.lock = threading.RLock()
        self.modseq = 1
        self.uids = []            # ascending
        self.by_uid = {}
        self.by_base = {}
        self._log = collections.deque()   # (modseq, kind, uid), kind 'E' or 'F'
        self._log_floor = 0
        self._stamps = {"new": None, "cur": None}
        self._uidlist = UidList(path)
        self._file_lock = FileLock(path)
        self.flagmap = FlagMap(path, self.lock)
        self.users = 0            # sessions holding the folder (MailStore bookkeeping)
        # its directory was deleted or renamed (FolderCache.detach): the sessions still
        # holding it must not go on with whatever now lives under the same path
        self.gone = False
        self.waiters = Waiters()  # IDLE sessions' wake-ups (lock-free, store/waiters.py)
        self.on_waiting = None    # called when the first waiter comes or the last goes
        self._writer = FolderWriter(self)
        maildir.make_maildir(path, parents=create)

    # -- locking ---------------------------------------------------------------
    def file_lock(self):
        """The cross-process lock; take it with `self.lock` held (re-entrant)."""
        return self._file_lock

    def close(self):
        """This Folder leaves memory (FolderCache evicted, detached or dropped it):
        close its lock file."""
        with self.lock:
            self._file_lock.close()

    # -- properties --------------------------------------------------------------
    @property
    def uidvalidity(self):
        return self._uidlist.uidvalidity

    @property
    def uidnext(self):
        return self._uidlist.uidnext

    @property
    def recent_upto(self):
        """Highest UID whose \\Recent was already handed to some session."""
        return self._uidlist.recent_upto

    def __len__(self):
        return len(self.uids)

    # -- sync --------------------------------------------------------------------
    def sync(self, force=False):
        """Bring the index up to date with the directories; True if anything changed."""
        with self.lock:
            changed_dirs = []
            for sub in SUBDIRS:
                st = os.stat(os.path.join(self.path, sub))
                if force or self._stamps[sub] != st.st_mtime_ns:
                    changed_dirs.append(sub)
            if not changed_dirs and self._uidlist.uidvalidity:
                return False
            with self.file_lock():
                return self._rescan(changed_dirs)

    def _list(self, sub):
        """(mtime before listing, names) of a sub-directory."""
        path = os.path.join(self.path, sub)
        mtime = os.stat(path).st_mtime_ns
        return mtime, os.listdir(path)

    def _list_into(self, subs, found, stamps):
        """base -> (sub, name) for every message file in `subs`; mtimes into stamps."""
        for sub in subs:
            stamps[sub], names = self._list(sub)
            found.update({n.partition(":2,")[0]: (sub, n) for n in names if n[:1] != "."})

    def _rescan(self, subs):
        known = self._uidlist.uidvalidity
        if not self.gone:
            self._uidlist.refresh()
        if self.gone or known and self._uidlist.uidvalidity != known:
            # deleted and created again under our path by another process (this one's
            # own DELETE detaches us first): another folder, whose uidlist this index
            # must never write, under a file lock that is not that folder's
            self.gone = True
            raise FileNotFoundError(errno.ENOENT, "folder replaced under its path", self.path)
        if not self.by_base:
            return self._first_scan()
        found = {}
        stamps = {}
        self._list_into(subs, found, stamps)
        scanned = set(subs)
        by_base = self.by_base
        missing = [e for e in by_base.values() if e.sub in scanned and e.base not in found]
        if missing:
            # A file moving new/ -> cur/ between the two listings looks expunged; look
            # again at both before believing it (other writers do not take our lock).
            self._list_into(SUBDIRS, found, stamps)
            scanned = set(SUBDIRS)
            missing = [e for e in by_base.values() if e.base not in found]
        changed = False
        for entry in missing:
            self.record_expunge(entry)
            changed = True
        fresh = {"new": [], "cur": []}
        for base, (sub, name) in found.items():
            entry = by_base.get(base)
            if entry is None:
                fresh[sub].append(name)
                continue
            flags = name[len(base) + 3:]
            if entry.sub != sub or entry.flags != flags:
                entry.sub, entry.flags = sub, flags  # as named on disk, so filename() finds it
                self.record_flags(entry)
                changed = True
        if fresh["new"] or fresh["cur"]:
            self.index_new(fresh)
            changed = True
        for sub, mtime in stamps.items():
            self._stamps[sub] = mtime
        if not self._uidlist.uidvalidity:
            self._uidlist.refresh()
        if self._uidlist.needs_compaction() and scanned == set(SUBDIRS):
            self._uidlist.compact(set(by_base))
        if changed:
            self.wake()
        return changed

    def _first_scan(self):
        """Index an empty index's folder: no comparison with what we knew, just list."""
        fresh = {}
        for sub in SUBDIRS:
            self._stamps[sub], names = self._list(sub)
            fresh[sub] = [n for n in names if n[:1] != "."]
        if fresh["new"] or fresh["cur"]:
            self.index_new(fresh)
            self.wake()
            return True
        return False

    def index_new(self, fresh):
        """Index new files {sub: [names]}, giving each a UID.  Names start with the
        delivery time, so name order is arrival order and UIDs follow it."""
        if sum(map(len, fresh.values())) < BULK:
            return self._index_names(fresh)
        # A bulk import creates hundreds of thousands of objects that all stay alive:
        # the cyclic GC would walk them again and again for nothing (a quarter of the
        # time at 100,000 messages).  Reference counting still frees garbage meanwhile.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._index_names(fresh)
        finally:
            if was_enabled:
                gc.enable()

    def _index_names(self, fresh):
        cols = ([], [], [], [], [], [])
        scan.parse_names(self.path, "new", fresh.get("new", []), cols)
        scan.parse_names(self.path, "cur", fresh.get("cur", []), cols)
        bases = cols[0]
        if not bases:
            return
        # Column-wise: sort row numbers by base name, keeping the last row of a base
        # (a file moved new/ -> cur/ between two listings shows up twice; cur/ wins).
        last = dict(zip(bases, range(len(bases))))
        order = sorted(last.values(), key=bases.__getitem__)
        bases, subs, flags, sizes, wsizes, dates = (list(map(col.__getitem__, order)) for col in cols)
        uids = self._uidlist.assign_list(bases)
        self.modseq += 1
        entries = list(map(Entry, uids, bases, subs, flags, sizes, wsizes, dates,
                           itertools.repeat(self.modseq)))
        self.modseq += len(bases)
        self.by_uid.update(zip(uids, entries))
        self.by_base.update(zip(bases, entries))
        added = sorted(uids)
        current = self.uids
        if not current or added[0] > current[-1]:
            current.extend(added)
        else:   # UIDs another process gave out below ours: keep the list sorted
            for uid in added:
                bisect.insort(current, uid)

    # -- the index API of FolderWriter (store/changes.py) ---------------------------
    # Called with self.lock (and, around file changes, self.file_lock()) held.
    def get(self, uid):
        """The index entry of `uid`, or None if it is not (or no longer) indexed."""
        return self.by_uid.get(uid)

    def uid_of(self, base):
        """The UID of an indexed base name (after index_new)."""
        return self.by_base[base].uid

    def set_name(self, entry, sub, flags):
        """The writer renamed the entry's file to <sub>/<base>:2,<flags>."""
        entry.sub, entry.flags = sub, flags

    def record_flags(self, entry):
        """Log a flag change of `entry` (sessions report it; its modseq moves on)."""
        self.modseq += 1
        entry.modseq = self.modseq
        self._record("F", entry.uid)

    def record_expunge(self, entry):
        """Drop `entry` from the index and log its expunge."""
        del self.by_uid[entry.uid]
        del self.by_base[entry.base]
        i = bisect.bisect_left(self.uids, entry.uid)
        if i < len(self.uids) and self.uids[i] == entry.uid:
            del self.uids[i]
        self.modseq += 1
        self._record("E", entry.uid)
        self._uidlist.forget([entry.base])

    def rescan_all(self):
        """Re-list new/ and cur/ now (a file was renamed by another writer)."""
        self._rescan(list(SUBDIRS))

    def dir_mtime(self, sub):
        return os.stat(os.path.join(self.path, sub)).st_mtime_ns

    def keep_stamp(self, sub, before):
        """After our own rename/unlink in `sub`: keep the index's stamp current when
        nobody else changed the directory since we last looked (its mtime was
        `before` and matched), so the next sync need not re-list it."""
        if self._stamps[sub] == before:
            self._stamps[sub] = self.dir_mtime(sub)

    def _record(self, kind, uid):
        self._log.append((self.modseq, kind, uid))
        if len(self._log) > LOG_LIMIT:
            self._log_floor = self._log.popleft()[0]

    # -- what changed ------------------------------------------------------------
    def changes_since(self, modseq):
        """(expunged UIDs, UIDs whose flags changed) after `modseq`, or None when the
        log no longer reaches back that far (the caller then compares in full)."""
        with self.lock:
            if modseq < self._log_floor:
                return None
            expunged, flagged = [], []
            for seq, kind, uid in reversed(self._log):
                if seq <= modseq:
                    break
                (expunged if kind == "E" else flagged).append(uid)
            expunged.reverse()
            flagged.reverse()
            return expunged, flagged

    def notify(self):
        """Wake waiters (IDLE) after a delivery by someone who does not hold the index.
        Takes no folder lock: a delivery must not wait for a sync or an expunge."""
        self.waiters.wake()

    def disk_changed(self):
        """The watcher (watch.py) saw entries of new/ or cur/ change: wake the waiters
        unless the index already shows both directories as they are (the change was
        this process's, and its writer, delivery or sync woke them).  No folder lock."""
        try:
            current = all(self._stamps[sub] == self.dir_mtime(sub) for sub in SUBDIRS)
        except OSError:         # the folder went away: the sessions must look
            current = False
        if not current:
            self.waiters.wake()

    @property
    def waiting(self):
        """Some session waits for this folder's changes (IDLE): the watcher follows it."""
        return len(self.waiters) > 0 and not self.gone

    def add_waiter(self, callback):
        """Have `callback()` called after every change (new mail found by a sync, flag
        change, expunge, append, notify()), once per change until its view next looks
        (FolderView.changes); see store/waiters.py for its rules."""
        if self.waiters.add(callback) == 1:
            self._waiting_changed()

    def remove_waiter(self, callback):
        if self.waiters.remove(callback) == 0:
            self._waiting_changed()

    def _waiting_changed(self):
        # FolderCache sets on_waiting: the watcher follows exactly the folders waited on
        hook = self.on_waiting
        if hook is not None:
            hook(self)

    def looked(self, callback):
        """The view whose waiter is `callback` reads the changes now (folder lock held)."""
        self.waiters.seen(callback)

    def wake(self):
        """After a change of the index (folder lock held): call the waiters not yet
        woken since their last look (lock-free callbacks)."""
        self.waiters.wake_unseen()

    # -- reading -------------------------------------------------------------------
    def entry(self, uid):
        entry = self.by_uid.get(uid)
        if entry is None:
            raise MessageGone(f"UID {uid} is gone")
        return entry

    def file_path(self, entry):
        return os.path.join(self.path, entry.sub, entry.filename())

    def open_message(self, uid):
        """An open binary file of the message (disk form); resyncs once if it moved."""
        for attempt in (0, 1):
            with self.lock:
                entry = self.entry(uid)
                path = self.file_path(entry)
            try:
                return open(path, "rb")
            except FileNotFoundError:
                if attempt:
                    raise MessageGone(f"UID {uid} is gone") from None
                self.sync(force=True)

    def read_message(self, uid):
        """The message in wire form (CRLF line endings)."""
        with self.open_message(uid) as f:
            return maildir.to_wire(f.read())

    def status(self):
        """FolderStatus: messages, \\Recent not yet claimed, UIDNEXT, UIDVALIDITY, unseen."""
        with self.lock:
            unseen = sum(1 for e in self.by_uid.values() if "S" not in e.flags)
            recent = len(self.uids) - bisect.bisect_right(self.uids, self.recent_upto)
            return FolderStatus(len(self.uids), recent, self.uidnext, self.uidvalidity, unseen)

    # -- writing (store/changes.py FolderWriter does it) -------------------------------
    def store_flags(self, uids, letters, mode):
        """Change flags ('+' add, '-' remove, '=' replace); the entries really changed."""
        return self._writer.store_flags(uids, letters, mode)

    def expunge(self, uids):
        """Remove messages for good; the UIDs really removed."""
        return self._writer.expunge(uids)

    def expunge_flagged(self, letter, among):
        """Remove those of `among` flagged `letter`, decided under the lock; the UIDs removed."""
        return self._writer.expunge_flagged(letter, among)

    def append(self, wire, letters="", date=None):
        """Store a message (wire form) with flags and internal date; its UID."""
        return self._writer.append(wire, letters, date)

    def append_many(self, messages):
        """Store a batch of (wire, letters, date) with one directory fsync; their UIDs."""
        return self._writer.append_many(messages)

    def copy_to(self, uids, target):
        """Copy messages into folder `target` with their flags; [(old, new UID)]."""
        return self._writer.copy_to(uids, target)

    # -- flags (store/flags.py holds the mapping) ----------------------------------
    def keywords(self):
        return self.flagmap.keywords()

    def can_add_keywords(self):
        return self.flagmap.can_add()

    def flag_names(self, letters):
        return self.flagmap.flag_names(letters)

    def letters_for(self, names, create=True):
        return self.flagmap.letters_for(names, create)

    def claim_recent(self):
        """The highest UID whose \\Recent some session got before: those above it are
        the caller's now (RFC 3501 2.3.2: only one session gets them).  A detached
        Folder (its directory deleted or renamed, maybe created again) claims nothing:
        its file lock is not the one the folder now at its path is locked with, so two
        sessions, one on it and one on the new Folder, could both read the same mark
        and both take the same messages; FileNotFoundError instead."""
        with self.lock, self.file_lock():
            known = self._uidlist.uidvalidity
            if not self.gone and self._file_lock.is_current():
                old = self._uidlist.claim_recent()
                if not known or self._uidlist.uidvalidity == known:
                    return old
            self.gone = True
            raise FileNotFoundError(errno.ENOENT, "folder deleted or replaced", self.path)

    # -- index persistence -----------------------------------------------------------
    def snapshot(self):
        """State for store/index.py: stamps, UIDVALIDITY, the uidlist position, UIDs the
        uidlist knows beyond the index, and the index as columns."""
        with self.lock:
            entries = [self.by_uid[u] for u in self.uids]
            columns = ([e.uid for e in entries], [e.base for e in entries], [e.sub for e in entries],
                       [e.flags for e in entries], [e.size for e in entries],
                       [e.wsize for e in entries], [e.date for e in entries])
            uidlist = self._uidlist
            extras = {b: u for b, u in uidlist.uids.items() if b not in self.by_base}
            position = (uidlist.inode, uidlist.offset, uidlist.uidnext, uidlist.recent_upto, extras)
            return dict(self._stamps), uidlist.uidvalidity, position, columns

    def restore(self, stamps, uidvalidity, position, columns):
        """Load a saved index: directories whose mtime still matches need no listing,
        and the uidlist is read only past the saved position when it is the same file."""
        uids, bases, subs, flags, sizes, wsizes, dates = columns
        with self.lock, self.file_lock():
            inode, offset, uidnext, recent_upto, extras = position
            if not self._uidlist.adopt(inode, offset, uidvalidity, uidnext, recent_upto,
                                       dict(zip(bases, uids), **extras)):
                self._uidlist.refresh()
                if uidvalidity != self._uidlist.uidvalidity:
                    return False
            by_uid, by_base = self.by_uid, self.by_base
            for row in zip(uids, bases, subs, flags, sizes, wsizes, dates):
                entry = Entry(*row, 1)
                by_uid[row[0]] = by_base[row[1]] = entry
            self.uids = list(uids)
            self._stamps.update(stamps)
            return True
