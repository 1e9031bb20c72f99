"""Changes a session makes to a folder: flags, expunge, append, copy.

A mix-in of Folder (store/folder.py), split out by operation.  Every change happens
under the folder's lock and its file lock, updates the in-memory index at once (so
the next sync need not re-list the directory), and wakes waiters.  Flag changes are
renames (new/X or cur/X:2,OLD -> cur/X:2,NEW); expunge is unlink plus a directory
fsync; append and copy write under tmp/, fsync, and link into cur/.
"""

import errno
import os

from . import maildir
from .flags import LETTER_FLAGS

SUBDIRS = maildir.SUBDIRS


class FolderChanges:
    def store_flags(self, uids, letters, mode):
        """Change flags of `uids`: mode '+' adds, '-' removes, '=' replaces.
        Returns the entries whose flags really changed."""
        letters = set(letters)
        changed = []
        with self.lock, self.file_lock():
            before = os.stat(os.path.join(self.path, "cur")).st_mtime_ns
            for uid in uids:
                entry = self.by_uid.get(uid)
                if entry is None:
                    continue
                old = set(entry.flags)
                new = old | letters if mode == "+" else old - letters if mode == "-" else set(letters)
                if new == old and entry.sub == "cur":
                    continue
                if self._rename(entry, "".join(sorted(new))):
                    if new != old:
                        self._touch(entry)
                        changed.append(entry)
            self._own_change("cur", before)
            if changed:
                self._wake()
        return changed

    def _rename(self, entry, flags):
        src = self.file_path(entry)
        dst = os.path.join(self.path, "cur", entry.base + ":2," + flags)
        try:
            os.rename(src, dst)
        except FileNotFoundError:
            return False  # moved or expunged by someone else: the next sync tells
        entry.sub, entry.flags = "cur", flags
        return True

    def _own_change(self, sub, before):
        """After our own rename/unlink in `sub`: keep the index's stamp current when
        nobody else changed the directory since we last looked, so the next sync
        need not re-list it."""
        if self._stamps[sub] == before:
            self._stamps[sub] = os.stat(os.path.join(self.path, sub)).st_mtime_ns

    # -- expunge / append ----------------------------------------------------------
    def expunge(self, uids):
        """Remove the messages `uids` for good; returns the UIDs really removed."""
        removed = []
        with self.lock, self.file_lock():
            before = {s: os.stat(os.path.join(self.path, s)).st_mtime_ns for s in SUBDIRS}
            touched = set()
            todo = sorted(uids)
            for attempt in (0, 1):
                retry = []
                for uid in todo:
                    entry = self.by_uid.get(uid)
                    if entry is None:
                        continue
                    try:
                        os.unlink(self.file_path(entry))
                    except FileNotFoundError:
                        if not attempt:
                            retry.append(uid)  # renamed by another writer: find its new name
                            continue
                    touched.add(entry.sub)
                    self._drop(entry)
                    removed.append(uid)
                if not retry:
                    break
                self._rescan(list(SUBDIRS))
                todo = retry
            for sub in touched:
                maildir.fsync_dir(os.path.join(self.path, sub))
            # only cur/: deliveries link into new/ without our lock, so a new/ mtime
            # taken now could be theirs, and adopting it would hide their message
            self._own_change("cur", before["cur"])
            if removed:
                self._wake()
        return removed

    def append(self, wire, letters="", date=None):
        """Store a message (wire form) with flags and internal date; returns its UID."""
        disk = maildir.to_disk(wire)
        base = maildir.new_base(len(disk), len(disk) + disk.count(b"\n"), date)
        tmp = maildir.write_tmp(self.path, disk, base)
        flags = "".join(sorted(set(letters)))
        with self.lock, self.file_lock():
            before = os.stat(os.path.join(self.path, "cur")).st_mtime_ns
            maildir.commit_tmp(self.path, tmp, base + ":2," + flags, sub="cur")
            self._own_change("cur", before)
            self._add_fresh({"cur": [base + ":2," + flags]})
            self._wake()
            return self.by_base[base].uid

    def copy_to(self, uids, target):
        """Copy messages into folder `target` (hard links where possible) with their
        flags; keywords are re-mapped to the target's letters.  Returns
        [(source uid, new uid)] for COPYUID.  Never holds both folders' locks."""
        pairs = []
        for uid in uids:
            with self.lock:
                entry = self.by_uid.get(uid)
                if entry is None:
                    continue
                src, flags, size, wsize, date = self.file_path(entry), entry.flags, entry.size, entry.wsize, entry.date
            if target is not self and any("a" <= c <= "z" for c in flags):
                keep = "".join(c for c in flags if c in LETTER_FLAGS)
                names = [n for n in self.flag_names(flags) if not n.startswith("\\")]
                flags = "".join(sorted(set(keep) | target.letters_for(names)))
            base = maildir.new_base(size, wsize, date)
            tmp = os.path.join(target.path, "tmp", base)
            try:
                os.link(src, tmp)
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                    raise
                with open(src, "rb") as f:
                    maildir.write_tmp(target.path, f.read(), base)
            pairs.append((uid, base, tmp, flags))
        if not pairs:
            return []
        result = []
        with target.lock, target.file_lock():
            before = os.stat(os.path.join(target.path, "cur")).st_mtime_ns
            fresh = {"cur": []}
            for uid, base, tmp, flags in pairs:
                maildir.commit_tmp(target.path, tmp, base + ":2," + flags, sub="cur", sync=False)
                fresh["cur"].append(base + ":2," + flags)
            maildir.fsync_dir(os.path.join(target.path, "cur"))
            target._own_change("cur", before)
            target._add_fresh(fresh)
            target._wake()
            for uid, base, _, _ in pairs:
                result.append((uid, target.by_base[base].uid))
        return result
