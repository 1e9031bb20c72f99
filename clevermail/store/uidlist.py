"""The per-folder UID map: base name -> UID, UIDVALIDITY, UIDNEXT (RFC 3501 2.3.1.1).

File `clevermail-uidlist` in the folder directory, append-only between compactions:

    CM1 <uidvalidity> <uidnext>          header, written at creation and compaction
    <uid> <base>                          one line per UID ever assigned since compaction
    R <uid>                               \\Recent handed out up to this UID

UIDs are assigned in ascending order by appending lines (flush + fsync before anyone
is told a UID), so they are never reused: UIDNEXT is the larger of the header's value
and the highest UID in the file plus one.  Compaction drops expunged entries and
rewrites the file atomically (durable.atomic_write) with UIDNEXT in the header.
A new file takes its UIDVALIDITY from uidvalidity.py (never one the user's folders
had before).  POP3 UIDLs and IMAP UIDs both come from this map.  Callers hold the
folder's file lock (store/folder.py) around `assign_list` and `compact` so that
processes never interleave.
"""

import os

from ..durable import atomic_write, fsync_dir, temp_name, unlink_quiet, write_all, write_exclusive
from . import uidvalidity

FILENAME = "clevermail-uidlist"


class UidList:
    def __init__(self, folder_path):
        self.path = os.path.join(folder_path, FILENAME)
        self.uidvalidity = 0
        self.uidnext = 1
        self.recent_upto = 0
        self.uids = {}          # base -> uid
        self._offset = 0
        self._ino = None

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

    def adopt(self, inode, offset, uidvalidity, uidnext, recent_upto, uids):
        """Take state saved by the index cache instead of parsing the whole file, when the
        file is still the one it was read from (same inode, not shorter); then read
        what was appended since.  False when the file changed under it."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        if st.st_ino != inode or st.st_size < offset or not uidvalidity:
            return False
        self._ino, self._offset = inode, offset
        self.uidvalidity, self.uidnext, self.recent_upto = uidvalidity, uidnext, recent_upto
        self.uids = uids
        self.refresh()
        return True

    def refresh(self):
        """Read what other writers appended (or the whole file after a compaction)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._create()
            st = os.stat(self.path)
        if st.st_ino != self._ino:
            self.uids, self._offset, self._ino = {}, 0, st.st_ino
            self.uidnext, self.recent_upto = 1, 0
        if st.st_size == self._offset:
            return
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            chunk = f.read()
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
            elif first == "CM1":
                parts = rest.split()
                if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
                    self.uidvalidity = int(parts[0])
                    self.uidnext = max(self.uidnext, int(parts[1]))
                    if len(parts) >= 3 and parts[2].isdigit():
                        self.recent_upto = max(self.recent_upto, int(parts[2]))

    def assign_list(self, bases):
        """Give each base without a UID the next UID, durably; returns the UIDs of
        `bases` as a list in their order."""
        self.refresh()
        known = self.uids
        fresh = list(dict.fromkeys(bases))
        if known:
            fresh = [b for b in fresh if b not in known]
        if fresh:
            first = self.uidnext
            new_uids = range(first, first + len(fresh))
            self._append("\n".join(map(" ".join, zip(map(str, new_uids), fresh))) + "\n", durable=True)
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
        data = text.encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            # all of it or an error: a short write taken as complete would move our
            # offset past the file's end and lose the UIDs of the missing lines
            write_all(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
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
        lines += [f"{uid} {base}\n" for base, uid in sorted(self.uids.items(), key=lambda kv: kv[1])]
        # with the directory fsync: else the old file, whose UIDNEXT is lower than UIDs
        # already handed out, could come back after a crash
        atomic_write(self.path, "".join(lines))
        st = os.stat(self.path)
        self._ino, self._offset = st.st_ino, st.st_size
