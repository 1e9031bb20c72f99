"""Flag letters <-> IMAP flag names for one Maildir folder (RFC 3501 2.3.2).

System flags are the Maildir letters D F R S T (\\Draft \\Flagged \\Answered \\Seen
\\Deleted); keywords get the lowercase letters a..z, in the order they were first
used, recorded in `clevermail-keywords` ("<index> <name>" per line, the format
Dovecot's dovecot-keywords uses), so at most 26 keywords per folder.  Another process
(`clevermail import`, a second instance, a [server] worker) may add names: a letter
without a name, or a name about to be added, makes the map look at the file again.
A name is added under the folder's file lock, after that look: two processes adding
names at once would otherwise both take the next letter, and the file kept one name
for it (the other's messages then showed a keyword they were never given).
"""

import os

from ..durable import atomic_write

KEYWORDS_NAME = "clevermail-keywords"
SYSTEM_FLAGS = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S", "\\Deleted": "T"}
LETTER_FLAGS = {v: k for k, v in SYSTEM_FLAGS.items()}
_SYSTEM_BY_LOWER = {k.lower(): v for k, v in SYSTEM_FLAGS.items()}
MAX_KEYWORDS = 26


class FlagMap:
    """The keyword table of one folder; `lock` is the folder's lock, `file_lock` its
    lock shared with other processes (store/locks.py, taken with `lock` held)."""

    def __init__(self, path, lock, file_lock=None):
        self.path = path
        self.lock = lock
        self._file_lock = file_lock
        self._keywords = None
        self._flag_names = {}
        self._stamp = None

    def _file_stamp(self):
        try:
            st = os.stat(os.path.join(self.path, KEYWORDS_NAME))
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _reload_if_changed(self):
        """Forget the map when the file changed behind us (another process added a
        keyword); True when it did.  Called with the lock held."""
        if self._keywords is not None and self._file_stamp() != self._stamp:
            self._keywords = None
            self._flag_names.clear()
            return True
        return False

    def _load(self):
        if self._keywords is None:
            keywords = []
            self._stamp = self._file_stamp()
            try:
                with open(os.path.join(self.path, KEYWORDS_NAME), encoding="utf-8") as f:
                    for line in f:
                        idx, _, name = line.strip().partition(" ")
                        if idx.isdigit() and name and int(idx) < MAX_KEYWORDS:
                            while len(keywords) <= int(idx):
                                keywords.append(None)
                            keywords[int(idx)] = name
            except FileNotFoundError:
                pass
            self._keywords = keywords       # whole, for readers without the lock
        return self._keywords

    # The table is copied on write: a name is added to a new list, saved, and only
    # then does `_keywords` point at it; forgetting it (another process's names)
    # sets None.  So a reader holding no lock sees a table as it was saved, or
    # takes the lock to load one: keywords() and can_add() run after every command
    # of every session and must not queue behind a writer holding the folder's lock.
    def _table(self):
        kw = self._keywords
        if kw is None:
            with self.lock:
                kw = self._load()
        return kw

    def keywords(self):
        """Keywords defined in this folder (IMAP FLAGS response)."""
        return [k for k in self._table() if k]

    def can_add(self):
        return len(self._table()) < MAX_KEYWORDS

    def flag_names(self, letters):
        """Maildir flag letters -> IMAP flag names (cached per distinct string)."""
        names = self._flag_names.get(letters)
        if names is None:
            names, unnamed = self._names(letters)
            if unnamed:
                with self.lock:
                    if self._reload_if_changed():
                        names, _ = self._names(letters)
            self._flag_names[letters] = names
        return names

    def _names(self, letters):
        """(flag names, whether a keyword letter had no name)."""
        kw = self._load()
        names = []
        unnamed = False
        for c in letters:
            if c in LETTER_FLAGS:
                names.append(LETTER_FLAGS[c])
            elif "a" <= c <= "z" and ord(c) - 97 < len(kw) and kw[ord(c) - 97]:
                names.append(kw[ord(c) - 97])
            elif "a" <= c <= "z":
                unnamed = True
        return tuple(names), unnamed

    def letters_for(self, names, create=True):
        """IMAP flag names -> Maildir letters (unknown keywords defined when `create`).
        \\Recent and names beyond the 26 keyword slots are dropped."""
        kw = self._keywords
        if kw is not None and not self._unknown(names, kw):
            # every name has its letter in a saved table: no lock (letters never
            # change meaning while the table lives; see _table)
            return self._letters_for(names, False, kw)
        with self.lock:
            if create and self._file_lock is not None and self._unknown(names):
                with self._file_lock:
                    self._reload_if_changed()       # names added by others first
                    return self._letters_for(names, create)
            return self._letters_for(names, create)

    def _unknown(self, names, kw=None):
        """Whether some keyword of `names` has no letter yet in `kw` (else the table,
        lock held)."""
        known = {k.lower() for k in (self._load() if kw is None else kw) if k}
        return any(not name.startswith("\\") and name.lower() not in known for name in names)

    def _letters_for(self, names, create, kw=None):
        if kw is None:
            kw = self._load()
        letters = set()
        for name in names:
            sys_letter = _SYSTEM_BY_LOWER.get(name.lower())
            if sys_letter:
                letters.add(sys_letter)
                continue
            if name.startswith("\\"):
                continue
            lowered = [k.lower() if k else None for k in kw]
            if name.lower() not in lowered and create and self._reload_if_changed():
                kw = self._load()       # another process's names first
                lowered = [k.lower() if k else None for k in kw]
            if name.lower() in lowered:
                letters.add(chr(97 + lowered.index(name.lower())))
            elif create and len(kw) < MAX_KEYWORDS:
                kw = kw + [name]
                self._save(kw)
                letters.add(chr(96 + len(kw)))
        return letters

    def _save(self, keywords):
        # durable with its directory: keyword letters are already in file names, and
        # an old map coming back after a crash would give them no name or another one
        text = "".join(f"{i} {name}\n" for i, name in enumerate(keywords) if name)
        atomic_write(os.path.join(self.path, KEYWORDS_NAME), text)
        self._stamp = self._file_stamp()
        self._keywords = keywords           # saved: now readers may see it
        self._flag_names.clear()
