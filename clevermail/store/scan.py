"""Maildir directory listings -> index rows (Entry) and columns (the bulk half of
Folder.sync).

A folder's index (store/folder.py) is built from file names: our own names and
Dovecot's carry the date, the disk size and the wire size (maildir.py), so a listing
of 100,000 names becomes index columns in one regex pass at C speed without opening
a file.  Only a name without sizes (a file another program delivered) is measured.
"""

import os

from . import maildir


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
