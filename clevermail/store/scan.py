"""Maildir directory listings -> index rows (Entry) and columns (the bulk half of
Folder.sync).

A folder's index (store/folder.py) is built from file names: our own names and
Dovecot's carry the date, the disk size and the wire size (maildir.py), so a listing
of 100,000 names becomes index columns in one regex pass at C speed without opening
a file.  Only a name without sizes (a file another program delivered) is measured.
"""

import os

from . import maildir

SUBDIRS = maildir.SUBDIRS


class Entry:
    """One message: UID, base name, sub-directory, flag letters, sizes, date, modseq."""

    __slots__ = ("uid", "base", "sub", "flags", "size", "wsize", "date", "modseq")

    def __init__(self, uid, base, sub, flags, size, wsize, date, modseq):
        self.uid, self.base, self.sub, self.flags = uid, base, sub, flags
        self.size, self.wsize, self.date, self.modseq = size, wsize, date, modseq

    def filename(self):
        return self.base + ":2," + self.flags if (self.sub == "cur" or self.flags) else self.base


def parse_names(folder_path, sub, names, cols):
    """Append (base, sub, flags, size, wsize, date) of each file name of one
    sub-directory to the six lists `cols`.  Our own names (and Dovecot's) are
    parsed by one regex pass over all of them; anything else is measured one by one."""
    odd = [n for n in names if ",W=" not in n or "\n" in n]
    regular = [n for n in names if ",W=" in n and "\n" not in n] if odd else names
    found = maildir.FAST_LINES.findall("\n".join(regular))
    if len(found) != len(regular):      # a name only looked like ours
        odd, found = names, []
    bases, subs, flags, sizes, wsizes, dates = cols
    if found:
        b, d, sz, w, f = zip(*found)
        bases += b
        subs += [sub] * len(b)
        flags += f
        sizes += map(int, sz)
        wsizes += map(int, w)
        dates += map(int, d)
    for name in odd:
        base, flag, size, wsize, date = maildir.parse_name(name)
        try:
            size, wsize, date = measure(os.path.join(folder_path, sub, name), size, wsize, date)
        except FileNotFoundError:
            continue       # gone between the listing and now: the next sync tells
        for col, value in zip(cols, (base, sub, flag, size, wsize, date)):
            col.append(value)


def measure(path, size, wsize, date):
    """Sizes and date of a file that did not come from us (no S=/W= in its name):
    the wire size counts a CR for every LF, as POP3 and IMAP send it."""
    st = os.stat(path)
    if wsize is None:
        lf = 0
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 16), b""):
                lf += chunk.count(b"\n")
        wsize = st.st_size + lf
    return (st.st_size if size is None else size), wsize, (int(st.st_mtime) if date is None else date)


class IndexNames:
    """Each sub-directory's file names as the index has them -> Entry (FolderSync's,
    under the folder's lock).  Built from the index at first use (`maps`), then kept
    current by whoever changes the index: `add` (index_new), `rename` (a flag change
    or a move new/ -> cur/, found by a sync or made by the writer), `remove` (an
    expunge); `drop` after the index was replaced wholesale (the index cache)."""

    def __init__(self):
        self._maps = None       # {sub: {file name: Entry}}, None until first use

    def maps(self, entries):
        """The maps, built from `entries` (the index's) when not built yet."""
        if self._maps is None:
            maps = {sub: {} for sub in SUBDIRS}
            for e in entries:
                maps[e.sub][e.filename()] = e
            self._maps = maps
        return self._maps

    def drop(self):
        self._maps = None

    def add(self, entries):
        if self._maps is not None:
            maps = self._maps
            for e in entries:
                maps[e.sub][e.filename()] = e

    def rename(self, entry, sub, flags):
        """Set the entry's sub-directory and flags (its file was renamed)."""
        self.remove(entry)
        entry.sub, entry.flags = sub, flags
        self.add((entry,))

    def remove(self, entry):
        if self._maps is not None:
            names = self._maps[entry.sub]
            name = entry.filename()
            if names.get(name) is entry:
                del names[name]


def diff(listings, maps):
    """Listings {sub: [file names]} against the index's names (IndexNames.maps):
    (appeared, vanished).  appeared: base -> (sub, name) of every listed name the
    index does not have as it is (new files, renamed ones; a base listed in both
    sub-directories keeps cur/'s name, as a file moving new/ -> cur/ ends there);
    vanished: the entries whose name is missing from its sub-directory's listing."""
    appeared, vanished = {}, []
    for sub in SUBDIRS:
        names = listings.get(sub)
        if names is None:
            continue
        known = maps[sub]
        listed = set(names)
        for name in listed.difference(known):
            if name[:1] != ".":
                appeared[name.partition(":2,")[0]] = (sub, name)
        gone = known.keys() - listed
        if gone:
            vanished += map(known.__getitem__, gone)
    return appeared, vanished
