"""The journal of cur/: what a change made in a folder's cur/, written for the other
processes serving the folder, so that they follow it without listing the directory.

A process that finds cur/ changed by another one (its mtime moved, store/sync.py) had
to list cur/ and compare the listing with its index.  Under imaptest with workers = 2
(two sessions of one user on different workers) that was one listing every eight
commands, the tenth of the CPU a command cost (issue 18).  So each writer of the store
(store/changes.py, folder lock and file lock held) adds one line to the folder's modseq
file (store/modseq.py) after its change in cur/:

    J <mtime of cur/ before the change> <mtime after it> m<modseq> <op> ...

    m<modseq>         the modseq the change took, when it took one (its modseq lines
                      before the J line say so too)
    f<uid>=<flags>    the message is now named <base>:2,<flags> in cur/
    x<uid>            it left cur/ (expunged)
    n<name>           a new file <name> in cur/ (its UID is in the uidlist)

A reader holding the file lock (no writer of the store changes cur/ then) takes the
lines read since its last sync (`take`): when the first one's `before` is its stamp of
cur/, each next one's `before` the `after` of the one before it, and the last `after`
the mtime cur/ has now, the lines say all that happened in cur/ since its last look,
and it applies them to its index (`apply`).  Anything else breaks the chain and it
lists cur/ as before: a change made by another program (a mail client working on the
Maildir directly), a delivery into cur/ (made under the file lock, store/locks.py
`held`, but with no line), a process that died between its rename and its line, a modseq file compacted or replaced (read from
its start: nothing kept from before), a line this version cannot read.  The premise
is the stamps' (sync.py): a change gives the directory another mtime.

Old versions skip these lines (a record they cannot parse).  A process never reads
back the lines it writes, so it keeps its own (`add`) when its change came after
another's it has not followed yet (its stamp was left behind): the chain then passes
through both.

The follower gives what it applies the writer's modseq (`m`, store/modseq.py
`adoptable`): every process then says the same MODSEQ for a message (RFC 7162 3.1.1:
one value per message, whoever asks), and a follow writes no line of its own (a
line per follow, formatted and written under the file lock, doubled the file's growth
and so its compactions).  That is right only while no session of this process was
told a modseq at or above the writer's: true when every line applied was read in the
follow's own look at the file (the writer read all the file had, so its modseq is
above anything this process wrote or read before); a line read earlier, in this
process's own change, has a modseq this process may have shown already.  Then, and
for a line without `m` (an older writer), the follower takes a modseq of its own for
the whole follow, as before.
"""

import re

MOST = 4096             # lines kept between two syncs; past that the next sync lists
_OP = re.compile(r"[fxn][!-~]+")     # an op as written: printable ASCII, no space
_MODSEQ = re.compile(r"m([1-9][0-9]*)")


def line(before, after, ops, modseq=None):
    """The journal line of a change (that took `modseq`, if it took one), or None when
    an op cannot be written (a file name with a space or a non-ASCII character: no
    line, and the readers list cur/)."""
    if not all(map(_OP.fullmatch, ops)):
        return None
    mark = f"m{modseq} " if modseq else ""
    return f"J {before} {after} {mark}{' '.join(ops)}\n"


class CurJournal:
    """The lines read (or kept) since the last sync, in the order of their changes."""

    __slots__ = ("records", "broken")

    def __init__(self):
        self.records = []       # (before, after, ops, modseq or None)
        self.broken = False     # a line could not be read or kept: the next sync lists

    def clear(self):
        """Forget every line (the index was brought up to date by a listing, or the
        file is read again from its start)."""
        self.records = []
        self.broken = False

    def read(self, words):
        """A "J" line of the file, split into words."""
        try:
            before, after = int(words[1]), int(words[2])
        except (IndexError, ValueError):
            self.broken = True
            return
        ops, modseq = words[3:], None
        if ops and ops[0][:1] == "m":
            mark = _MODSEQ.fullmatch(ops[0])
            if mark is None:
                self.broken = True
                return
            modseq, ops = int(mark.group(1)), ops[1:]
        if not all(map(_OP.fullmatch, ops)):
            self.broken = True      # (as line() writes them: never an empty op)
            return
        self.add(before, after, ops, modseq)

    def add(self, before, after, ops, modseq=None):
        if len(self.records) >= MOST:
            self.records = []
            self.broken = True
        if not self.broken:
            self.records.append((before, after, ops, modseq))

    def take(self, since, now):
        """The lines that lead from mtime `since` (the index's stamp of cur/) to `now`
        (cur/'s mtime, file lock held), or None when they do not; either way they
        are forgotten."""
        records, broken = self.records, self.broken
        self.clear()
        if broken or since is None:
            return None
        at = since
        for before, after, _, _ in records:
            if before != at:
                return None
            at = after
        return records if at == now else None


def apply(folder, names, records, index_new, check_uidlist):
    """Bring `folder`'s index (locks held, inside changing()) in line with chained
    `records`, as a listing would have (store/sync.py _rescan): flags renamed, expunges,
    new files indexed under the UIDs of the uidlist; `names` the FolderSync's
    IndexNames, `index_new` and `check_uidlist` its methods.  What is applied takes
    each writer's modseq when the records allow it (the module doc), else one of this
    process's own.  Whether anything changed; None when a line names a message the
    index lacks or cannot be read (the caller lists cur/: what was applied so far is
    right, the listing does the rest).  A change of this process's own is found done
    already and skipped."""
    modseqs = folder.modseqs
    adopt = modseqs.adoptable([modseq for _, _, _, modseq in records])
    changed = False
    for _, _, ops, modseq in records:
        with modseqs.adopting(modseq if adopt else None):
            done = _apply_ops(folder, names, ops, index_new, check_uidlist)
        if done is None:
            return None
        changed = changed or done
    return changed


def _apply_ops(folder, names, ops, index_new, check_uidlist):
    """One record's ops applied (apply); whether anything changed, or None."""
    by_uid, by_base = folder.by_uid, folder.by_base
    changed = False
    try:
        fresh = [name for name in (op[1:] for op in ops if op[0] == "n")
                 if name.partition(":2,")[0] not in by_base]
        if fresh:
            check_uidlist()         # the UIDs, and the folder still the one we index
            index_new({"cur": fresh}, refreshed=True)
            changed = True
        for op in ops:
            kind = op[0]
            if kind == "f":
                uid, _, flags = op[1:].partition("=")
                uid = int(uid)
                entry = by_uid.get(uid)
                if entry is None:
                    if uid in folder.ghosts:
                        continue    # expunged since, by a change further on
                    return None
                if entry.sub != "cur" or entry.flags != flags:
                    names.rename(entry, "cur", flags)
                    folder.record_flags(entry)
                    changed = True
            elif kind == "x":
                entry = by_uid.get(int(op[1:]))
                if entry is not None:
                    folder.record_expunge(entry)
                    changed = True
            elif kind != "n":
                return None
    except ValueError:
        return None
    return changed
