"""One Maildir folder: its index, flags, expunges, appends, and change notification.

A Folder object is shared by every session of this process that has the folder open
(MailStore hands out one per path).  It keeps an in-memory index of the messages
(UID -> entry), kept current by `sync()`: its FolderSync (store/sync.py) re-lists
only the sub-directories (new/, cur/) whose mtime changed since the last look, so
re-opening a large folder costs work proportional to what changed.  The index also
survives restarts in `clevermail-index` (see store/index.py).

Concurrency: `lock` (an RLock) guards the index inside the process; `file_lock()`
(flock on `clevermail-lock`) serialises UID assignment, renames and unlinks with other
CleverMail processes.  Every change bumps `modseq` and is logged so that sessions can
ask what changed since they last looked (new UIDs, flag changes, expunges; a session's
view of that is store/view.py) and report it as RFC 3501 allows.

Reading the disk is FolderSync's (store/sync.py), writing is FolderWriter's
(store/changes.py), both through the index API below; waking
the waiters (store/waiters.py) takes no folder lock, so a delivery's notify() (the
last step before SMTP says 250) never queues behind a sync or an expunge.
"""

import bisect
import collections
import errno
import os
import threading
from typing import NamedTuple

from . import maildir
from .errors import MessageGone
from .folder_files import FolderFiles
from .changes import FolderWriter
from .flags import FlagMap
from .locks import FileLock
from .modseq import Modseqs
from .uidlist import UidList
from .sync import FolderSync
from .waiters import Waiters

LOG_LIMIT = 20000


class FolderStatus(NamedTuple):
    """The counters of RFC 3501 STATUS, in store terms."""
    messages: int
    recent: int
    uidnext: int
    uidvalidity: int
    unseen: int
    highestmodseq: int


class Folder(FolderFiles):
    """One folder's index, change log and waiters, shared by the sessions of this
    process.  Writing (flags, expunge, append, copy) is done by its FolderWriter
    (store/changes.py) through the index API below."""

    def __init__(self, path, name, create=True):
        """`create`: make the folder's directories if missing; False (FolderCache):
        the folder must exist, only a missing tmp/, new/ or cur/ is made, so that a
        SELECT racing a DELETE never brings the deleted folder back."""
        self.path = path
        self.name = name
        # new/, cur/, tmp/ joined once: every session looks at new/ and cur/ after
        # each command
        self.sub_paths = {sub: os.path.join(path, sub) for sub in ("new", "cur", "tmp")}
        self.lock = threading.RLock()
        self.modseqs = Modseqs(path)      # highest, expunges remembered (store/modseq.py)
        self.uids = []            # ascending
        self.by_uid = {}
        self.by_base = {}
        self._log = collections.deque()   # (modseq, kind, uid), kind 'E' or 'F'
        self._log_floor = 0
        # uid -> Entry of messages expunged lately: a session not yet told of an
        # expunge keeps seeing the message's flags, date and size (RFC 2180 4.1)
        self.ghosts = {}
        self.uidlist = UidList(path)      # the UID map (uidlist.py; the file lock guards it)
        self._file_lock = FileLock(path)
        # changing()'s block: one object for every change (the nesting is counted by
        # Modseqs), a class rather than a generator (this runs in every change and
        # follow; contextlib's generator wrapper cost more than the block's own work)
        self._changing = _Changing(self)
        self.flagmap = FlagMap(path, self.lock, self._file_lock)
        self.users = 0            # sessions holding the folder (MailStore bookkeeping)
        # its directory was deleted or renamed (FolderCache.detach): the sessions still
        # holding it must not go on with whatever now lives under the same path
        self.gone = False
        # sessions' shared wake-up: join() (IDLE), add(callback); no folder lock (store/waiters.py)
        self.waiters = Waiters(self._waiting_changed)
        self.on_waiting = None    # called when the first waiter comes or the last goes
        self._writer = FolderWriter(self)
        self._sync = FolderSync(self)     # the directories -> the index (store/sync.py)
        maildir.make_maildir(path, parents=create)

    # -- locking ---------------------------------------------------------------
    def file_lock(self):
        """The cross-process lock; take it with `self.lock` held (re-entrant)."""
        return self._file_lock

    def close(self):
        """This Folder leaves memory (evicted, detached, dropped): close its descriptors."""
        with self.lock:
            self._file_lock.close()
            self.uidlist.close()
            self.modseqs.log.close()

    # -- properties --------------------------------------------------------------
    @property
    def uidvalidity(self):
        return self.uidlist.uidvalidity

    @property
    def uidnext(self):
        return self.uidlist.uidnext

    @property
    def recent_upto(self):
        """Highest UID whose \\Recent was already handed to some session."""
        return self.uidlist.recent_upto

    @property
    def modseq(self):
        """The highest modseq given: every change (new message, flags, expunge) takes a
        new one, kept on disk (store/modseq.py)."""
        return self.modseqs.highest

    def __len__(self):
        return len(self.uids)

    # -- sync (store/sync.py FolderSync does it) ------------------------------------
    def sync(self, force=False):
        """Bring the index up to date with the directories; True if anything changed."""
        return self._sync.sync(force)

    def index_new(self, fresh, in_order=False, durable=True, claim=False):
        """Index new files {sub: [names]}, giving each a UID (arrival order, or the
        order given with `in_order`); `durable` False: the caller fsyncs the uidlist
        after the locks when `uidlist.unsynced` (store/uidlist.py); `claim`: their
        \\Recent claimed in the same uidlist write (claim_recent_held tells)."""
        return self._sync.index_new(fresh, in_order, durable, claim)

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
        self._sync.names.rename(entry, sub, flags)

    def changing(self):
        """One change of the folder (its lock and file lock held): every message it
        adds, re-flags or expunges takes the same new modseq, written to
        clevermail-modseq when the block ends (store/modseq.py).  Blocks nest."""
        return self._changing

    def _begin_change(self):
        modseqs = self.modseqs
        first = not modseqs.loaded
        modseqs.begin(self.by_uid)
        if first:
            # what was loaded carries modseqs up to here: the in-memory log of
            # changes starts now
            self._log_floor = max(self._log_floor, modseqs.highest)

    def _end_change(self):
        self.modseqs.end(self.uidlist.uidvalidity, self.by_uid)

    def record_flags(self, entry):
        """Log a flag change of `entry` (sessions report it; it takes the change's
        modseq); inside changing()."""
        entry.modseq = self.modseqs.current()
        self.modseqs.took(entry.uid)
        self._record("F", entry.uid)

    def record_expunge(self, entry):
        """Drop `entry` from the index and log its expunge; inside changing()."""
        self._sync.names.remove(entry)
        del self.by_uid[entry.uid]
        del self.by_base[entry.base]
        i = bisect.bisect_left(self.uids, entry.uid)
        if i < len(self.uids) and self.uids[i] == entry.uid:
            del self.uids[i]
        self.modseqs.expunged(entry.uid)
        self._record("E", entry.uid)
        self.uidlist.forget([entry.base])
        self.ghosts[entry.uid] = entry
        if len(self.ghosts) > LOG_LIMIT:
            del self.ghosts[next(iter(self.ghosts))]

    def rescan_all(self):
        """Re-list new/ and cur/ now (a file was renamed by another writer)."""
        self._sync.rescan_all()

    def dir_mtime(self, sub):
        return os.stat(self.sub_paths[sub]).st_mtime_ns

    def cur_changed(self, before, ops):
        """After our own change in cur/ (inside changing(), the index updated), its
        ops as store/cur_journal.py writes them: keep the index's stamp current when
        nobody else changed the directory since we last looked (its mtime was
        `before` and matched), so the next sync need not re-list it, and journal the
        change for the other processes (kept for our own next sync too when the
        stamp was left behind)."""
        after = self.dir_mtime("cur")
        kept = self._sync.keep_stamp("cur", before, after)
        if ops:
            self.modseqs.journal(before, after, ops, keep=not kept)

    def _record(self, kind, uid):
        # the change's modseq: a follow's (store/cur_journal.py) is the writer's, which
        # may be below `highest` when the follow applies several writers' changes
        self._log.append((self.modseqs.current(), kind, uid))
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

    def changed_since(self, modseq):
        """UIDs of the messages whose modseq is above `modseq` (new or re-flagged
        since), ascending.  Work in proportion to the changes while the in-memory log
        reaches back that far: new messages are the newest UIDs (a UID is above every
        one given before it), flag changes are in the log; else a full pass."""
        with self.lock:
            by_uid, uids = self.by_uid, self.uids
            if modseq < self._log_floor:
                return [u for u in uids if by_uid[u].modseq > modseq]
            found = set()
            for seq, kind, uid in reversed(self._log):
                if seq <= modseq:
                    break
                if kind == "F" and uid in by_uid and by_uid[uid].modseq > modseq:
                    found.add(uid)
            for i in range(len(uids) - 1, -1, -1):
                if by_uid[uids[i]].modseq <= modseq:
                    break
                found.add(uids[i])
            return sorted(found)

    def vanished_since(self, modseq):
        """UIDs expunged after `modseq`, ascending; None when that is older than the
        expunges remembered one by one (then every UID below UIDNEXT that is not
        live may have been)."""
        with self.lock:
            return self.modseqs.vanished_since(modseq)

    def notify(self):
        """Wake waiters (IDLE) after a delivery by someone who does not hold the index.
        Takes no folder lock: a delivery must not wait for a sync or an expunge."""
        self.waiters.wake()

    def unchanged(self):
        """Whether cur/ is as the index last saw it (no lock): no other process changed
        a message's flags or expunged one there since (a change of flags always lands
        in cur/), so a change decided from the index alone may be found to be none."""
        try:
            return self._sync.stamps["cur"] == self.dir_mtime("cur")
        except OSError:
            return False

    def disk_changed(self):
        """The watcher (watch.py) saw entries of new/ or cur/ change: wake the waiters
        unless the index already shows both directories as they are (the change was
        this process's, and its writer, delivery or sync woke them).  No folder lock."""
        if not self._sync.current():
            self.waiters.wake()

    @property
    def waiting(self):
        """Some session waits for this folder's changes (IDLE): the watcher follows it."""
        return len(self.waiters) > 0 and not self.gone

    def _waiting_changed(self):
        # FolderCache sets on_waiting: the watcher follows exactly the folders waited on
        hook = self.on_waiting
        if hook is not None:
            hook(self)

    def wake(self):
        """After a change of the index (folder lock held): wake the waiters that have
        looked since they were last woken (one write, whatever their number)."""
        self.waiters.wake_index()

    # -- reading -------------------------------------------------------------------
    def entry(self, uid):
        entry = self.by_uid.get(uid)
        if entry is None:
            raise MessageGone(f"UID {uid} is gone")
        return entry

    def file_path(self, entry):
        # (the folder's path is absolute, without a trailing /: no os.path.join)
        return f"{self.path}/{entry.sub}/{entry.filename()}"

    def status(self):
        """FolderStatus: messages, \\Recent not yet claimed, UIDNEXT, UIDVALIDITY, unseen."""
        with self.lock:
            unseen = sum(1 for e in self.by_uid.values() if "S" not in e.flags)
            recent = len(self.uids) - bisect.bisect_right(self.uids, self.recent_upto)
            return FolderStatus(len(self.uids), recent, self.uidnext, self.uidvalidity, unseen,
                                self.modseq)

    # -- writing (store/changes.py FolderWriter does it) -------------------------------
    def store_flags(self, uids, letters, mode, unchanged_since=None, modified=None):
        """Change flags ('+' add, '-' remove, '=' replace); the entries really changed.
        Those whose modseq is above `unchanged_since` (when given) are left alone and
        listed in `modified`."""
        return self._writer.store_flags(uids, letters, mode, unchanged_since, modified)

    def expunge(self, uids):
        """Remove messages for good; the UIDs really removed."""
        return self._writer.expunge(uids)

    def expunge_flagged(self, letter, among):
        """Remove those of `among` flagged `letter`, decided under the lock; the UIDs removed."""
        return self._writer.expunge_flagged(letter, among)

    def append(self, wire, letters="", date=None, on_claim=None):
        """Store a message (wire form) with flags and internal date; its UID.
        `on_claim`: the \\Recent of it is claimed in the same change and
        on_claim(old mark, new mark) told (a FolderView.recent_claimer)."""
        return self._writer.append(wire, letters, date, on_claim)

    def append_many(self, messages, on_claim=None):
        """Store a batch of (wire, letters, date) with one directory fsync; their UIDs."""
        return self._writer.append_many(messages, on_claim)

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
            known = self.uidlist.uidvalidity
            if not self.gone and self._file_lock.is_current():
                old = self.uidlist.claim_recent()
                if not known or self.uidlist.uidvalidity == known:
                    return old
            self.gone = True
            raise FileNotFoundError(errno.ENOENT, "folder deleted or replaced", self.path)

    def claim_recent_held(self):
        """The claim index_new(claim=True) made inside this process's own change of
        the folder (an APPEND for a session that has the folder selected: its
        \\Recent written with the UID lines, no second round of the file lock):
        (old mark, new mark), or None (none made, or a detached Folder: its
        session's next look claims, or finds it gone)."""
        if self.gone:
            return None
        return self.uidlist.claimed

    # -- index persistence (store/index.py snapshots and restores the index) ----------
    def stamps(self):
        """The directories' mtimes as of the index (folder lock held)."""
        return self._sync.stamps_copy()

    def restored(self, stamps):
        """The index was restored (store/index.py, folder lock held): the directories'
        saved mtimes, and the in-memory change log starts at the restored modseq."""
        self._log_floor = self.modseqs.highest
        self._sync.adopt_stamps(stamps)


class _Changing:
    """Folder.changing()'s context manager."""

    __slots__ = ("_folder",)

    def __init__(self, folder):
        self._folder = folder

    def __enter__(self):
        self._folder._begin_change()
        return None

    def __exit__(self, *exc):
        self._folder._end_change()
        return False
