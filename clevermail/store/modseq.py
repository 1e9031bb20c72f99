"""A folder's mod-sequences on disk: which change gave each message its modseq, and
which UIDs were expunged at which modseq (what CONDSTORE and QRESYNC, RFC 7162, ask
of a store, said in store terms; imap/ renders them).

File `clevermail-modseq` in the folder directory, append-only between compactions:

    CMS1 <uidvalidity> <highest> <floor>    header, written at creation and compaction
    <modseq> <uid-set>                      these messages took this modseq (new, flags)
    E <modseq> <uid-set>                    these messages were expunged at this modseq

A uid-set is "1:5,7" (ascending ranges).  One change (a STORE over many messages, an
import batch, an expunge) is one line, so the file grows with the changes, not with
the messages.  `highest` only grows, across restarts and processes: a writer takes
the folder's file lock, reads what others appended (`refresh`), then appends.  Every
UID below UIDNEXT that is neither live nor logged as expunged was expunged at or
before `floor`: compaction keeps the newest KEEP_EXPUNGED expunges exactly and folds
the older ones into `floor`, and rewrites the live messages grouped by modseq.
Lines are not fsynced (flag renames are not either): after a crash the folder's sync
gives whatever it finds changed a new modseq above `highest`, so none is handed out
twice.  A file with another UIDVALIDITY belongs to a folder that was replaced.

Read and written through one descriptor kept open (O_APPEND): a look at what others
appended is an fstat, and a pread of what is new (issue 18: a stat of the path and an
open, read and close per change, in each process serving the folder).  The file is
only ever replaced by a rename over it (compaction, a new header) or deleted with its
folder, both of which leave the kept inode without a name (st_nlink 0, on the local
filesystem the folder's flock needs anyway): only then is the path opened again.
"""

import bisect
import os
import weakref

from ..durable import atomic_write, write_all
from . import cur_journal
from .uid_sets import parse_uid_set, uid_set_text

FILENAME = "clevermail-modseq"
KEEP_EXPUNGED = 50000       # expunged UIDs remembered one by one after a compaction


class ModseqLog:
    """The file above, read incrementally.  Callers hold the folder's file lock
    around refresh() + append() and compact()."""

    def __init__(self, folder_path):
        self.path = os.path.join(folder_path, FILENAME)
        self.uidvalidity = 0
        self.highest = 0
        self.floor = 0
        self.lines = 0          # record lines read or written since the file was last read whole
        self.base = 0           # of them, those the file had when it was read whole
        self._ino = None        # the file as last read: its inode and how far
        self._offset = 0
        self._fd = None         # kept open on the file at `path` (module doc)
        self._finalizer = None
        self.journal = cur_journal.CurJournal()     # the J lines (cur_journal.py) read since the last sync

    def close(self):
        """Close the kept descriptor (its Folder leaves memory); a later use opens
        the file again."""
        if self._finalizer is not None:
            self._finalizer()               # closes the descriptor, once
            self._finalizer = self._fd = None

    def _open(self):
        """The descriptor of the file now at `path` and its fstat; (None, None) when
        there is no file."""
        self.close()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
        except FileNotFoundError:
            return None, None
        # a Folder dropped without close() must not keep it for the life of the process
        self._fd, self._finalizer = fd, weakref.finalize(self, os.close, fd)
        return fd, os.fstat(fd)

    def _current(self):
        """The kept descriptor and its fstat, opened again when its file lost its name
        (replaced or deleted: the module doc); (None, None) when there is no file."""
        fd = self._fd
        if fd is not None:
            st = os.fstat(fd)
            if st.st_nlink:
                return fd, st
        return self._open()

    @property
    def position(self):
        """(inode, offset, uidvalidity, highest, floor, lines, base) for the index cache."""
        return (self._ino, self._offset, self.uidvalidity, self.highest, self.floor, self.lines,
                self.base)

    def adopt(self, position):
        """Take a position saved by the index cache; the next refresh() reads on from
        it if the file is still the one it was read from (else it reads it whole)."""
        (self._ino, self._offset, self.uidvalidity, self.highest, self.floor, self.lines,
         self.base) = position

    def refresh(self):
        """Records appended since the last read, as (full, [(kind, modseq, uids)]),
        kind "M" (took the modseq) or "E" (expunged).  full: the file was read from
        its start (first read, or another process compacted or replaced it): the
        records are then everything it says, and the header was read anew."""
        fd, st = self._current()
        if fd is None:
            full = self._ino is not None or self._offset == 0
            self._ino, self._offset, self.lines = None, 0, 0
            self.journal.clear()
            return full, []
        full = st.st_ino != self._ino or st.st_size < self._offset
        if full:
            self._ino, self._offset, self.lines = st.st_ino, 0, 0
            self.journal.clear()
        if st.st_size == self._offset:
            return full, []
        first = self._offset == 0
        chunk = os.pread(fd, st.st_size - self._offset, self._offset)
        end = chunk.rfind(b"\n") + 1      # a torn last line (a crash mid-append) is skipped
        self._offset += end
        records = []
        for line in chunk[:end].decode("ascii", "replace").splitlines():
            words = line.split()
            try:
                if words[0] == "J":
                    self.journal.read(words)
                    self.lines += 1
                    continue
                if words[0] == "CMS1":
                    self.uidvalidity, highest, self.floor = map(int, words[1:4])
                    self.highest = max(self.highest, highest) if not full else highest
                    continue
                kind = "E" if words[0] == "E" else "M"
                if kind == "E":
                    words = words[1:]
                modseq, uids = int(words[0]), parse_uid_set(words[1])
            except (IndexError, ValueError):
                continue            # a damaged line: its change gets a new modseq at sync
            self.highest = max(self.highest, modseq)
            self.lines += 1
            records.append((kind, modseq, uids))
        if first:
            self.base = self.lines
        return full, records

    def append(self, uidvalidity, records, journal=()):
        """Write [(kind, modseq, ascending uids)] and the `journal` lines (cur_journal.py)
        after refresh(); a missing file or one of another UIDVALIDITY is started anew
        (its header first)."""
        text = "".join(f"{'E ' if kind == 'E' else ''}{modseq} {uid_set_text(uids)}\n"
                       for kind, modseq, uids in records if uids) + "".join(journal)
        if not text:
            return
        fd = self._fd
        if fd is None and self._ino is not None:
            fd, _ = self._open()    # closed since refresh() (a Folder closed mid-change)
        if fd is None or self.uidvalidity != uidvalidity:
            self.uidvalidity = uidvalidity
            header = f"CMS1 {uidvalidity} {self.highest} {self.floor}\n"
            self._replace(header + text)
        else:
            data = text.encode("ascii")
            # all of it or an error (a short write would tear a line); the file is the
            # one refresh() just read, under the file lock (no one replaces it then)
            write_all(fd, data)
            self._offset += len(data)
        self.lines += len(records) + len(journal)
        self.highest = max([self.highest] + [m for _, m, _ in records])

    def _replace(self, text):
        """Put `text` in place of the file, and read on after it (the descriptor on
        the new file)."""
        atomic_write(self.path, text, durable=False)
        _, st = self._open()
        # (gone at once: the folder was deleted meanwhile; the next refresh says so)
        self._ino, self._offset = (st.st_ino, st.st_size) if st is not None else (None, 0)

    def needs_compaction(self, live):
        """Many lines were added since the file was last compacted or read whole."""
        added = self.lines - self.base
        return added > 1000 and added > live // 4

    def compact(self, uidvalidity, live, expunged, floor):
        """Rewrite the file: the live messages {uid: modseq} grouped by modseq, the
        expunges [(modseq, uid)] kept, and `floor` (the expunges folded away)."""
        groups = {}
        for uid, modseq in live.items():
            groups.setdefault(modseq, []).append(uid)
        lines = [f"CMS1 {uidvalidity} {self.highest} {floor}\n"]
        lines += [f"{modseq} {uid_set_text(sorted(uids))}\n" for modseq, uids in sorted(groups.items())]
        gone = {}
        for modseq, uid in expunged:
            gone.setdefault(modseq, []).append(uid)
        lines += [f"E {modseq} {uid_set_text(sorted(uids))}\n" for modseq, uids in sorted(gone.items())]
        self._replace("".join(lines))
        self.uidvalidity, self.floor = uidvalidity, floor
        self.lines = self.base = len(lines) - 1


class Modseqs:
    """A folder's modseqs in memory, Folder's collaborator (store/folder.py): the
    highest, the expunges remembered (`vanished_since`), and the change being made.

    A change is a `Folder.changing()` block (folder lock and file lock held): begin()
    reads what other processes appended, the first message touched takes the next
    modseq (`current()`, one for the whole change), and end() writes the change's
    lines.  The first block of a Folder object reads the file whole: when no index
    cache was loaded, the first scan gives each message the modseq the file says
    (`logged()`), and a message the file calls live but the disk no longer has was
    expunged unlogged (a crash): it is logged expunged now."""

    def __init__(self, folder_path):
        self.log = ModseqLog(folder_path)
        self.highest = 1            # RFC 7162: a modseq is a positive number
        self.floor = 0              # expunges at or below it are not known one by one
        self.vanished_mods = []     # ascending modseqs of the expunges remembered
        self.vanished_uids = []     # their UIDs, in the same order
        self._vanished = set()
        self.loaded = False
        self.first_map = None       # uid -> modseq from the file, until the first scan used it
        self._depth = 0
        self._current = None
        self._unlogged = {}         # (kind, modseq) -> UIDs, of the change being made
        self._journal = []          # its J lines (cur_journal.py), written with them
        self._read_above = 0        # `highest` before the change's look at the file
        self._adopted = None        # another process's modseq, for what a follow applies

    # -- a change ----------------------------------------------------------------------
    def begin(self, live):
        """Start a change (file lock held); `live`: the folder's by_uid."""
        self._depth += 1
        if self._depth == 1:
            self._current = None
            self._read(live)

    def current(self):
        """The modseq of the change being made, taken at first use (while `adopting`,
        the other process's change's)."""
        if self._adopted is not None:
            return self._adopted
        if self._current is None:
            self.highest = self._current = max(self.highest, self.log.highest) + 1
        return self._current

    def logged(self, uid):
        """The modseq the file gave `uid`, during the first scan only (else None)."""
        return self.first_map.pop(uid, None) if self.first_map else None

    def took(self, uid):
        """`uid` took current() (a new message, a flag change)."""
        if self._adopted is None:       # (else the other process's line says so)
            self._unlogged.setdefault(("M", self.current()), []).append(uid)

    def took_many(self, uids):
        """Every one of `uids` took current() (new messages)."""
        if uids and self._adopted is None:
            self._unlogged.setdefault(("M", self.current()), []).extend(uids)

    def expunged(self, uid, modseq=None):
        """`uid` was expunged now (or at `modseq`, another process's)."""
        if modseq is None:
            modseq = self.current()
            if self._adopted is None:
                self._unlogged.setdefault(("E", modseq), []).append(uid)
        self._add_vanished(modseq, uid)

    def adoptable(self, modseqs):
        """Whether a follow may give what it applies the modseqs its journal lines carry
        (cur_journal.py): each line has one, they rise, and the first is above every
        modseq this process knew before this change's look at the file (so every line
        was read in that look, none earlier: no session of this process can have been
        told a modseq at or above them)."""
        return (bool(modseqs) and None not in modseqs and modseqs[0] > self._read_above
                and all(a < b for a, b in zip(modseqs, modseqs[1:])))

    def adopting(self, modseq):
        """Inside a change, a block in which what is recorded takes `modseq`, another
        process's that its own line logged already (nothing is written for it); None:
        as usual.  (A class, not a contextlib generator: one per record of a follow.)"""
        return _Adopting(self, modseq)

    def end(self, uidvalidity, live):
        """End a change: write its lines; compact when the file has grown."""
        self._depth -= 1
        if self._depth:
            return
        if self.first_map is not None:
            # live in the file, gone from the disk, no expunge logged: one now
            for uid in sorted(self.first_map):
                if uid not in live:
                    self.expunged(uid)
            self.first_map = None
        if (self._unlogged or self._journal) and uidvalidity:
            self.log.append(uidvalidity, [(kind, modseq, sorted(dict.fromkeys(uids)))
                                          for (kind, modseq), uids in self._unlogged.items()],
                            self._journal)
            if self.log.needs_compaction(len(live)):
                self._compact(uidvalidity, live)
        self._unlogged = {}
        self._journal = []
        self._current = None

    def take_journal(self, since, now):
        """The journal lines read (and kept) since the last sync, when they lead from
        cur/'s mtime `since` to `now` (cur_journal.CurJournal.take), else None."""
        return self.log.journal.take(since, now)

    def forget_journal(self):
        """A listing brought the index up to date: the lines kept say nothing more."""
        self.log.journal.clear()

    def journal(self, before, after, ops, keep):
        """A change of this process in cur/ (mtimes before and after it, its ops): its
        line written when the change ends; `keep`: also kept for this process's next
        sync (its stamp was left behind: cur_journal.py)."""
        text = cur_journal.line(before, after, ops, self._current)
        if text is None:
            if keep:
                self.log.journal.broken = True
            return
        self._journal.append(text)
        if keep:
            self.log.journal.add(before, after, ops, self._current)

    # -- what the file says ------------------------------------------------------------------
    def _read(self, live):
        self._read_above = self.highest
        full, records = self.log.refresh()
        self.highest = max(self.highest, self.log.highest)
        if full:
            first = not self.loaded
            self.floor = self.log.floor
            self.vanished_mods, self.vanished_uids, self._vanished = [], [], set()
            known = {}
            for kind, modseq, uids in records:
                if kind == "M":
                    known.update(dict.fromkeys(uids, modseq))
                else:
                    for uid in uids:
                        known.pop(uid, None)
                        self._add_vanished(modseq, uid)
            if first and not live:
                self.first_map = known
        else:
            # others' expunges of messages this process never indexed (ours and those
            # its sync finds missing are recorded as it finds them)
            for kind, modseq, uids in records:
                if kind == "E":
                    for uid in uids:
                        if uid not in live:
                            self._add_vanished(modseq, uid)
        self.loaded = True

    def _add_vanished(self, modseq, uid):
        if uid in self._vanished:
            return
        self._vanished.add(uid)
        mods = self.vanished_mods
        if not mods or modseq >= mods[-1]:
            mods.append(modseq)
            self.vanished_uids.append(uid)
        else:
            i = bisect.bisect_right(mods, modseq)
            mods.insert(i, modseq)
            self.vanished_uids.insert(i, uid)
        if len(mods) > 2 * KEEP_EXPUNGED:
            self._fold(len(mods) - KEEP_EXPUNGED)

    def _fold(self, count):
        """Forget the `count` oldest expunges one by one: `floor` covers them."""
        self.floor = max(self.floor, self.vanished_mods[count - 1])
        self._vanished.difference_update(self.vanished_uids[:count])
        del self.vanished_mods[:count], self.vanished_uids[:count]

    def _compact(self, uidvalidity, live):
        if len(self.vanished_mods) > KEEP_EXPUNGED:
            self._fold(len(self.vanished_mods) - KEEP_EXPUNGED)
        self.log.compact(uidvalidity, {uid: e.modseq for uid, e in live.items()},
                         zip(self.vanished_mods, self.vanished_uids), self.floor)

    # -- questions -------------------------------------------------------------------------
    def vanished_since(self, modseq):
        """UIDs expunged after `modseq`, ascending; None when `modseq` is below what
        is remembered one by one (floor)."""
        if modseq < self.floor:
            return None
        i = bisect.bisect_right(self.vanished_mods, modseq)
        return sorted(self.vanished_uids[i:])

    # -- the index cache (store/index.py) ------------------------------------------------------
    def snapshot(self):
        return (self.log.position, self.highest, self.floor, list(self.vanished_mods),
                list(self.vanished_uids))

    def restore(self, saved):
        position, highest, floor, mods, uids = saved
        self.log.adopt(position)
        self.highest, self.floor = highest, floor
        self.vanished_mods, self.vanished_uids = list(mods), list(uids)
        self._vanished = set(uids)
        self.loaded = True


class _Adopting:
    """Modseqs.adopting()'s block."""

    __slots__ = ("_modseqs", "_modseq")

    def __init__(self, modseqs, modseq):
        self._modseqs, self._modseq = modseqs, modseq

    def __enter__(self):
        modseq = self._modseq
        if modseq is not None:
            modseqs = self._modseqs
            modseqs._adopted = modseq
            modseqs.highest = max(modseqs.highest, modseq)

    def __exit__(self, *exc):
        if self._modseq is not None:
            self._modseqs._adopted = None
        return False
