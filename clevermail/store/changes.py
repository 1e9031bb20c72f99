"""Changes a session makes to a folder: flags, expunge, append, copy.

FolderWriter is Folder's collaborator for writing (store/folder.py builds one per
folder and its store_flags/expunge/expunge_flagged/append/append_many/copy_to are
these methods).  It works on the files and tells the index what it did through Folder's
public API, never through the Folder's private state: `path`, `sub_paths`, `lock` and
file_lock(); the index API get, uid_of, file_path, set_name, record_flags,
record_expunge, index_new, rescan_all, dir_mtime, cur_changed, wake; and, for a
copy's keywords, flag_names (source) and letters_for (target).

What a change would do is decided from the index under the folder's lock first:
one that would do nothing (a STORE of flags already so, an EXPUNGE with no
\\Deleted message) returns there, with no file lock, stat or ledger lock taken.
Every change happens under the folder's lock and its file lock, in one
Folder.changing() block (one new modseq for all it touches), updates the index
at once (so the next sync need not re-list the directory), journals what it did in
cur/ for the other processes (cur_journal.py: they follow it without a listing), and
wakes waiters.  Flag
changes are renames (new/X or cur/X:2,OLD -> cur/X:2,NEW); expunge is a rename into
tmp/, the unlink coming after the locks on a background thread (maildir.py,
fsync_group.later: the EXPUNGE's reply does not wait for the blocks to be freed);
append and copy write under tmp/, fsync, and link into cur/ (the Maildir discipline
of maildir.py); append_many does that for a batch with one directory fsync and one
uidlist write (an import).

The fsyncs a change needs run after the locks are released, each shared with the
other sessions' changes of that moment (fsync_group.py), and before the method
returns: the directory's (a link) and, for append and copy, the uidlist's (their
UIDs are written under the lock but not fsynced there: uidlist.py's reservation keeps
them from ever being handed out twice).  The caller's OK still means durable, but the
folder's other sessions no longer wait for a disk flush.  Another session may so see
a change a few milliseconds before it is durable; a machine crash in that window can
only make an appended message vanish or come back under a new UID (its old one is
never reused) or an expunged one come back, never lose one that was acknowledged.
A killed process loses nothing it wrote.

An expunge (like a flag change and the modseq log's lines) is not fsynced at all:
what a machine crash can undo of it is a message coming back, which loses no mail,
and Dovecot's maildir makes the same choice.  Under imaptest's load, EXPUNGE had been
a quarter of the sessions' wall time, most of it that directory fsync and the unlink.

Every change of the message files also goes into the user's quota ledger
(maildirsize.py): the files and the line inside the ledger's shared lock, taken
before the folder's locks, the line written after them (its system calls no longer
lengthen the folder lock's hold: every one gives the GIL away while the folder's
other sessions queue); a flag change (a rename) changes nothing there.  The log
lines under the folder's locks go through descriptors kept open (append_file.py),
and tmp/'s name of an appended message is unlinked after the locks.  The limit itself
is checked by the caller (quota.Quotas.reserving around IMAP APPEND and COPY).
"""

import errno
import os

from . import maildir, maildirsize
from .users import user_root_of
from .. import fsync_group
from ..durable import unlink_quiet
from .flags import LETTER_FLAGS

SUBDIRS = maildir.SUBDIRS


class FolderWriter:
    def __init__(self, folder):
        self.folder = folder
        self.root = user_root_of(folder.path)       # its ledger's directory

    def store_flags(self, uids, letters, mode, unchanged_since=None, modified=None):
        """Change flags of `uids`: mode '+' adds, '-' removes, '=' replaces.
        Returns the entries whose flags really changed.  With `unchanged_since`, a
        message whose modseq is above it is left alone and its UID appended to the
        list `modified` (tested under the same locks as the change)."""
        folder = self.folder
        letters = set(letters)
        changed = []
        with folder.lock:
            # What to rename is decided from the index under the folder's lock: a
            # STORE that changes nothing (flags already so, as clients often send)
            # costs no flock or modseq read (each a system call that gives the GIL
            # away), only the stat that says no other process changed cur/ since
            # our last look.  When one did, the decision is made again
            # under the file lock from the index brought up to date: a -FLAGS
            # decided on a stale index renames a name that is gone and is lost
            told = len(modified) if modified is not None else 0
            todo = self._flag_work(uids, letters, mode, unchanged_since, modified)
            if not todo and folder.unchanged():
                return changed
            with folder.file_lock(), folder.changing():
                if folder.sync():
                    if modified is not None:
                        del modified[told:]
                    todo = self._flag_work(uids, letters, mode, unchanged_since, modified)
                before = folder.dir_mtime("cur")
                ops = []
                for entry, flags, differs in todo:
                    if self._rename(entry, flags):
                        ops.append(f"f{entry.uid}={flags}")
                        if differs:
                            folder.record_flags(entry)
                            changed.append(entry)
                folder.cur_changed(before, ops)
                if changed:
                    folder.wake()
        return changed

    def _flag_work(self, uids, letters, mode, unchanged_since, modified):
        """[(entry, new flag letters, whether they differ from its flags)] of the
        messages store_flags must rename (a message in new/ moves to cur/ even when
        its flags stay); folder lock held."""
        get = self.folder.by_uid.get     # (Folder.get, without a call of its own per UID)
        todo = []
        for uid in uids:
            entry = get(uid)
            if entry is None:
                continue
            if unchanged_since is not None and entry.modseq > unchanged_since:
                modified.append(uid)
                continue
            old = set(entry.flags)
            new = old | letters if mode == "+" else old - letters if mode == "-" else letters
            if new == old and entry.sub == "cur":
                continue
            todo.append((entry, "".join(sorted(new)), new != old))
        return todo

    def _rename(self, entry, flags):
        folder = self.folder
        dst = f"{folder.path}/cur/{entry.base}:2,{flags}"
        try:
            os.rename(folder.file_path(entry), dst)
        except FileNotFoundError:
            return False  # moved or expunged by someone else: the next sync tells
        folder.set_name(entry, "cur", flags)
        return True

    # -- expunge / append ----------------------------------------------------------
    def expunge(self, uids):
        """Remove the messages `uids` for good; returns the UIDs really removed."""
        return self._expunge(uids, None)

    def expunge_flagged(self, letter, among):
        """Remove those of the messages `among` that carry flag `letter` (EXPUNGE,
        CLOSE: \\Deleted); returns the UIDs really removed.  The flag is tested
        under the same locks as the unlink: a STORE -FLAGS \\Deleted by another
        session that got in between a separate look and the unlink would lose the
        message it just kept."""
        return self._expunge(among, letter)

    def _expunge(self, uids, letter):
        """Unlink `uids` (only those whose flags hold `letter`, unless None)."""
        folder = self.folder
        removed = []
        doomed = []
        with folder.lock:
            # The candidates, from the index under the folder's lock alone (each is
            # tested again under both below): with none (no \Deleted message: most
            # EXPUNGEs and CLOSEs) and no other process's change in cur/ since our
            # last look (a stat), no ledger or file lock is taken.  A message flagged
            # meanwhile is left to the next EXPUNGE, as one flagged a moment later.
            get = folder.by_uid.get      # (Folder.get, without a call of its own per UID)
            todo = [uid for uid in uids
                    if (e := get(uid)) is not None and (letter is None or letter in e.flags)]
            if not todo and folder.unchanged():
                return removed
        # the ledger's shared lock before the folder's, its line after them (maildirsize.py)
        with maildirsize.changing(self.root):
            with folder.lock, folder.file_lock(), folder.changing():
                if folder.sync():
                    todo = uids     # another process changed the folder: the candidates again
                freed = self._unlink(todo, letter, removed, doomed)
            maildirsize.append(self.root, -freed)
        if doomed:
            # after the reply, not before it: the files are out of cur/ already (all
            # in one job: a hand-off to the background thread each cost more than
            # the unlink)
            fsync_group.later(_unlink_all, doomed)
        return removed

    def _unlink(self, uids, letter, removed, doomed):
        """_expunge's work under the folder's locks; the Usage freed.  Nothing is
        fsynced (the module docstring says why)."""
        folder = self.folder
        freed = maildirsize.Usage()
        before = folder.dir_mtime("cur")
        todo = sorted(uids)
        for attempt in (0, 1):
            retry = []
            for uid in todo:
                entry = folder.get(uid)
                # (tested again on the retry: a writer of another process may have
                # renamed the file to clear the flag)
                if entry is None or (letter is not None and letter not in entry.flags):
                    continue
                src = folder.file_path(entry)
                doomed_name = maildir.expunged_name(folder.path, entry.base)
                try:
                    os.rename(src, doomed_name)
                    doomed.append(doomed_name)
                except FileNotFoundError:
                    try:
                        os.unlink(src)      # no tmp/ to rename into: remove it here
                    except FileNotFoundError:
                        if not attempt:
                            retry.append(uid)  # renamed by another writer: find its new name
                            continue
                freed += (entry.size, 1)
                folder.record_expunge(entry)
                removed.append(uid)
            if not retry:
                break
            folder.rescan_all()
            todo = retry
        # only cur/: deliveries link into new/ without our lock, so a new/ mtime
        # taken now could be theirs, and adopting it would hide their message
        folder.cur_changed(before, [f"x{uid}" for uid in removed])
        if removed:
            folder.wake()
        return freed

    def append(self, wire, letters="", date=None, on_claim=None):
        """Store a message (wire form) with flags and internal date; returns its UID.
        `on_claim` (the appending session has the folder selected): its \\Recent is
        claimed under the same locks (_claim)."""
        folder = self.folder
        disk = maildir.to_disk(wire)
        base = maildir.new_base(len(disk), len(disk) + disk.count(b"\n"), date)
        tmp = maildir.write_tmp(folder.path, disk, base)
        name = base + ":2," + "".join(sorted(set(letters)))
        cur = fsync_group.directory(folder.sub_paths["cur"])
        try:
            with maildirsize.changing(self.root):
                with folder.lock, folder.file_lock(), folder.changing():
                    before = folder.dir_mtime("cur")
                    maildir.link_into(folder.path, tmp, name, sub="cur")
                    tickets = [(cur, cur.mark())]
                    folder.index_new({"cur": [name]}, durable=False, claim=on_claim is not None)
                    folder.cur_changed(before, ["n" + name])    # after the index has it (sync.py)
                    _claim(folder, on_claim)
                    _mark_uidlist(folder, tickets)
                    folder.wake()
                    uid = folder.uid_of(base)
                maildirsize.append(self.root, (len(disk), 1))
        finally:
            unlink_quiet(tmp)       # linked into cur/ (or failed): tmp/'s name goes
        _wait(tickets)
        return uid

    def append_many(self, messages, on_claim=None):
        """Store a batch of (wire, letters, date) at once: each file is written and
        fsynced under tmp/, then all are linked into cur/ under one lock with one
        directory fsync and one uidlist write.  Returns their UIDs, in order.  A
        failure before the commit leaves none of them visible."""
        folder = self.folder
        staged, sizes = [], []
        try:
            for wire, letters, date in messages:
                disk = maildir.to_disk(wire)
                base = maildir.new_base(len(disk), len(disk) + disk.count(b"\n"), date)
                tmp = maildir.write_tmp(folder.path, disk, base)
                sizes.append(len(disk))
                staged.append((base, tmp, base + ":2," + "".join(sorted(set(letters)))))
        except BaseException:
            for _, tmp, _ in staged:
                unlink_quiet(tmp)
            raise
        if not staged:
            return []
        cur = fsync_group.directory(folder.sub_paths["cur"])
        try:
            with maildirsize.changing(self.root):
                with folder.lock, folder.file_lock(), folder.changing():
                    before = folder.dir_mtime("cur")
                    for _, tmp, name in staged:
                        maildir.link_into(folder.path, tmp, name, sub="cur")
                    tickets = [(cur, cur.mark())]
                    # UIDs in the batch's order (MULTIAPPEND, RFC 3502): internal dates
                    # given with the messages need not rise with it
                    folder.index_new({"cur": [name for _, _, name in staged]}, in_order=True,
                                     durable=False, claim=on_claim is not None)
                    folder.cur_changed(before, ["n" + name for _, _, name in staged])
                    _claim(folder, on_claim)
                    _mark_uidlist(folder, tickets)
                    folder.wake()
                    uids = [folder.uid_of(base) for base, _, _ in staged]
                maildirsize.append(self.root, (sum(sizes), len(staged)))
        finally:
            for _, tmp, _ in staged:
                unlink_quiet(tmp)
        _wait(tickets)
        return uids

    def copy_to(self, uids, target):
        """Copy messages into folder `target` (hard links where possible) with their
        flags; keywords are re-mapped to the target's letters.  Returns
        [(source uid, new uid)] for COPYUID.  Never holds both folders' locks."""
        folder = self.folder
        pairs = []
        added = maildirsize.Usage()
        for uid in uids:
            with folder.lock:
                entry = folder.get(uid)
                if entry is None:
                    continue
                src, flags, size, wsize, date = (folder.file_path(entry), entry.flags, entry.size,
                                                 entry.wsize, entry.date)
            if target is not folder and any("a" <= c <= "z" for c in flags):
                keep = "".join(c for c in flags if c in LETTER_FLAGS)
                names = [n for n in folder.flag_names(flags) if not n.startswith("\\")]
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
            added += (size, 1)
        if not pairs:
            return []
        root = user_root_of(target.path)
        cur = fsync_group.directory(target.sub_paths["cur"])
        try:
            with maildirsize.changing(root):
                with target.lock, target.file_lock(), target.changing():
                    before = target.dir_mtime("cur")
                    names = []
                    for uid, base, tmp, flags in pairs:
                        names.append(base + ":2," + flags)
                        maildir.link_into(target.path, tmp, names[-1], sub="cur")
                    tickets = [(cur, cur.mark())]
                    target.index_new({"cur": names}, in_order=True, durable=False)  # source order
                    target.cur_changed(before, ["n" + name for name in names])
                    _mark_uidlist(target, tickets)
                    target.wake()
                    done = [(uid, target.uid_of(base)) for uid, base, _, _ in pairs]
                maildirsize.append(root, added)
        finally:
            for _, _, tmp, _ in pairs:
                unlink_quiet(tmp)
        _wait(tickets)
        return done


def _claim(folder, on_claim):
    """Under an APPEND's locks, for a session that has the folder selected: the
    \\Recent of what it added, claimed with its UID lines (index_new's `claim`),
    told to the session's view; not at its next look under a second round of the
    file lock (flock, a look at the lock file and the uidlist, the line, unlock:
    six system calls)."""
    if on_claim is not None:
        marks = folder.claim_recent_held()
        if marks is not None:
            on_claim(*marks)


def _unlink_all(names):
    """Unlink every one of `names` (expunged files in tmp/); the first OSError is
    raised after all were tried (fsync_group.later logs it; clean_tmp removes what is
    left)."""
    error = None
    for name in names:
        try:
            unlink_quiet(name)
        except OSError as exc:
            error = error or exc
    if error is not None:
        raise error


def _mark_uidlist(folder, tickets):
    """After index_new(durable=False), under the locks: the uidlist's fsync to wait
    for, when its lines were written without one."""
    if folder.uidlist.unsynced:
        group = fsync_group.file(folder.uidlist.path)
        tickets.append((group, group.mark()))


def _wait(tickets):
    """After the locks: every (group, ticket)'s change durable, the fsyncs side by side."""
    fsync_group.wait_all(tickets)
