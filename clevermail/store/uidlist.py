"""The per-folder UID map: base name -> UID, UIDVALIDITY, UIDNEXT (RFC 3501 2.3.1.1).

File `clevermail-uidlist` in the folder directory, append-only between compactions:

    CM1 <uidvalidity> <uidnext>          header, written at creation and compaction
    <uid> <base>                          one line per UID ever assigned since compaction
    R <uid>                               \\Recent handed out up to this UID
    N <uid> <boot id>                     UIDs up to this one may be handed out unsynced

UIDs are assigned in ascending order by appending lines under the folder's file lock,
so they are never reused: UIDNEXT is the larger of the header's value and the highest
UID in the file plus one.  Compaction drops expunged entries and rewrites the file
atomically (durable.atomic_write) with UIDNEXT in the header.  A new file takes its
UIDVALIDITY from uidvalidity.py (never one the user's folders had before).  POP3
UIDLs and IMAP UIDs both come from this map.  Callers hold the folder's file lock
(store/folder.py) around `assign_list` and `compact` so that processes never
interleave.

Two ways to make a UID durable.  `assign_list(bases)` (what a sync gives files found
on disk) fsyncs its lines before returning, so the UIDs may be shown at once.
`assign_list(bases, durable=False)` (the store's own APPEND and COPY) only writes them:
the writer releases the folder's locks and fsyncs them, grouped with the other
writers of that moment (fsync_group.py), before it answers OK; other sessions may
see the UIDs meanwhile.  What keeps such a UID from being handed out twice is a
reservation: before it gives out a UID above the one reserved, the writer appends an
`N` line RESERVE UIDs further up, with the machine's boot id, and fsyncs it.  A
process killed (kill -9) loses no written line (they are in the page cache), so in
the same boot the lines say everything; only a machine crash can lose unsynced lines,
and then the boot id differs: a reader that meets an `N` line of another boot takes
UIDNEXT above it.  The cost is a gap of at most RESERVE UIDs after a machine crash
(allowed: UIDs need only ascend) and one fsync under the lock per RESERVE UIDs.
"""

import os

from ..durable import atomic_write, fsync_dir, temp_name, unlink_quiet, write_exclusive
from . import uidvalidity
from .append_file import AppendFile

FILENAME = "clevermail-uidlist"
RESERVE = 1000          # UIDs an `N` line reserves beyond the one that needed it


def _boot_id():
    """This boot of the machine (Linux); None where unknown: then every line is
    fsynced before its UID is told, and any reservation read counts as made before a
    crash."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip() or None
    except OSError:
        return None


BOOT_ID = _boot_id()


class UidList:
    def __init__(self, folder_path):
        self.path = os.path.join(folder_path, FILENAME)
        self.uidvalidity = 0
        self.uidnext = 1
        self.recent_upto = 0
        self.uids = {}          # base -> uid
        self.reserved = 0       # UIDs up to this may be handed out unsynced (this boot)
        self.unsynced = False   # the last assign_list wrote lines it did not fsync
        self.claimed = None     # (old, new) \\Recent marks the last assign_list claimed
        self._offset = 0
        self._ino = None
        self._file = AppendFile(self.path)  # kept open: no open/close per line

    def close(self):
        """Close the kept descriptor (its Folder leaves memory)."""
        self._file.close()

    def _create(self):
        # a name of our own (temp_name): a shared one could be truncated by a second
        # creator after we linked it into place
        tmp = temp_name(self.path)
        # never one this user's folders had before, even within the same second
        validity = uidvalidity.next_value(os.path.dirname(self.path))
        write_exclusive(tmp, f"CM1 {validity} 1\n".encode())
        try:
            # link, not rename: a concurrent creator must not replace ours
            os.link(tmp, self.path)
        except FileExistsError:
            pass
        unlink_quiet(tmp)
        # the UIDVALIDITY must survive a crash before any UID is handed out under it
        fsync_dir(os.path.dirname(self.path))

    @property
    def inode(self):
        return self._ino

    @property
    def offset(self):
        return self._offset

    @property
    def reservation(self):
        """(boot id, reserved UID) for the index cache: what the `N` lines read so far said."""
        return (BOOT_ID, self.reserved)

    def adopt(self, inode, offset, uidvalidity, uidnext, recent_upto, uids, reservation=(None, 0)):
        """Take state saved by the index cache instead of parsing the whole file, when the
        file is still the one it was read from (same inode, not shorter); then read
        what was appended since.  False when the file changed under it.
        `reservation` is the saved `reservation`: the `N` lines before `offset`."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        if st.st_ino != inode or st.st_size < offset or not uidvalidity:
            return False
        self._ino, self._offset = inode, offset
        self.uidvalidity, self.uidnext, self.recent_upto = uidvalidity, uidnext, recent_upto
        self.uids = uids
        self.reserved = 0
        self._reservation_read(*reservation)
        self.refresh()
        return True

    def _reservation_read(self, boot, uid):
        if boot == BOOT_ID and boot is not None:
            self.reserved = max(self.reserved, uid)
        elif uid >= self.uidnext:
            # made before the machine last started: UIDs up to it may have been handed
            # out in lines the crash lost
            self.uidnext = uid + 1

    def refresh(self):
        """Read what other writers appended (or the whole file after a compaction)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._create()
            st = os.stat(self.path)
        if st.st_ino != self._ino:
            self.uids, self._offset, self._ino = {}, 0, st.st_ino
            self.uidnext, self.recent_upto, self.reserved = 1, 0, 0
        if st.st_size <= self._offset:
            return
        # through the kept descriptor (append_file.py): one pread; every APPEND of
        # another worker has each process read its line so
        chunk = self._file.read(st.st_ino, self._offset, st.st_size)
        end = chunk.rfind(b"\n") + 1  # ignore a torn last line (writer crashed mid-append)
        self._offset += end
        for line in chunk[:end].decode("utf-8", "replace").splitlines():
            first, _, rest = line.partition(" ")
            if first.isdigit():
                uid = int(first)
                self.uids[rest] = uid
                if uid >= self.uidnext:
                    self.uidnext = uid + 1
            elif first == "R" and rest.isdigit():
                self.recent_upto = max(self.recent_upto, int(rest))
            elif first == "N":
                uid, _, boot = rest.partition(" ")
                if uid.isdigit():
                    self._reservation_read(boot or None, int(uid))
            elif first == "CM1":
                parts = rest.split()
                if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
                    self.uidvalidity = int(parts[0])
                    self.uidnext = max(self.uidnext, int(parts[1]))
                    if len(parts) >= 3 and parts[2].isdigit():
                        self.recent_upto = max(self.recent_upto, int(parts[2]))

    def assign_list(self, bases, durable=True, claim=False, refresh=True):
        """Give each base without a UID the next UID; returns the UIDs of `bases` as
        a list in their order.  `durable`: the lines are fsynced before it returns;
        False: only when a reservation had to be written with them, else `unsynced`
        is set and the caller fsyncs the file before it tells anyone the UIDs are
        stored (see the module docstring).  `claim`: \\Recent up to the last new UID
        is the caller's (claim_recent's `R` line in the same write; `claimed` gets
        the (old, new) marks, else None).  `refresh` False: the caller read the
        file under the same file lock just now."""
        if refresh:
            self.refresh()
        self.unsynced = False
        self.claimed = None
        durable = durable or BOOT_ID is None     # no boot id, no reservation: fsync now
        known = self.uids
        fresh = list(dict.fromkeys(bases))
        if known:
            fresh = [b for b in fresh if b not in known]
        if fresh:
            first = self.uidnext
            new_uids = range(first, first + len(fresh))
            text = "\n".join(map(" ".join, zip(map(str, new_uids), fresh))) + "\n"
            last = new_uids[-1]
            if claim and last > self.recent_upto:
                text += f"R {last}\n"
                self.claimed = (self.recent_upto, last)
                self.recent_upto = last
            if not durable and last > self.reserved:
                # fsynced with the lines: no UID up to it can be given twice, whatever
                # the machine loses
                reserved = last + RESERVE
                self._append(text + f"N {reserved} {BOOT_ID}\n", durable=True)
                self.reserved = reserved
            else:
                self._append(text, durable=durable)
                self.unsynced = not durable
            known.update(zip(fresh, new_uids))
            self.uidnext = first + len(fresh)
        return list(map(known.__getitem__, bases))

    def claim_recent(self):
        """Hand \\Recent for every UID up to UIDNEXT-1 to the caller; returns the old mark."""
        self.refresh()
        old = self.recent_upto
        if self.uidnext - 1 > old:
            self.recent_upto = self.uidnext - 1
            self._append(f"R {self.recent_upto}\n", durable=False)
        return old

    def _append(self, text, durable):
        """After refresh() (its stat gave `_ino`), under the file lock."""
        data = text.encode("utf-8")
        # all of it or an error: a short write taken as complete would move our
        # offset past the file's end and lose the UIDs of the missing lines
        self._file.write(data, self._ino, fsync=durable)
        self._offset += len(data)

    def forget(self, bases):
        """Drop expunged bases from memory; compaction later drops them from the file."""
        for base in bases:
            self.uids.pop(base, None)

    def needs_compaction(self):
        return self._offset > 4096 and self._offset > 3 * 60 * (len(self.uids) + 1)

    def compact(self, live):
        """Rewrite the file with only the bases in `live` and the current UIDNEXT.

        `live` must come from a scan made under the same file lock, so that no base
        assigned by another process can be dropped."""
        self.refresh()
        self.uids = {b: u for b, u in self.uids.items() if b in live}
        lines = [f"CM1 {self.uidvalidity} {self.uidnext} {self.recent_upto}\n"]
        if self.reserved >= self.uidnext:
            # writers may rely on it for UIDs they give out unsynced
            lines.append(f"N {self.reserved} {BOOT_ID}\n")
        lines += [f"{uid} {base}\n" for base, uid in sorted(self.uids.items(), key=lambda kv: kv[1])]
        # with the directory fsync: else the old file, whose UIDNEXT is lower than UIDs
        # already handed out, could come back after a crash
        atomic_write(self.path, "".join(lines))
        st = os.stat(self.path)
        self._ino, self._offset = st.st_ino, st.st_size
