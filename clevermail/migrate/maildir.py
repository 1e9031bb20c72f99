"""Reading Maildir and Maildir++ trees (the import side; export.py writes them).

Formats:
- Maildir (https://cr.yp.to/proto/maildir.html): messages are the files of new/ and
  cur/ (names starting with "." are not messages); a file in cur/ carries its flags
  after ":2," as letters: P passed, R replied, S seen, T trashed, D draft, F flagged.
  IMAP names (RFC 3501 2.3.2): R \\Answered, S \\Seen, T \\Deleted, D \\Draft,
  F \\Flagged; P has no system flag and becomes the registered keyword $Forwarded
  (RFC 5788's IANA keyword registry), which export.py turns back into P.
- Dovecot's keywords: lowercase letters a..z after ":2,", named by the folder's
  `dovecot-keywords` file ("<index> <name>" a line, 0 = a); a letter without a name
  is dropped, as Dovecot does.  `dovecot-uidlist` is not read: the store gives UIDs.
- The internal date is the file's mtime, as Dovecot keeps it.
- A "From " line on top of a file (left by some mbox-minded deliverers) is dropped.
- Maildir++ (Courier, Dovecot): the root is INBOX; each folder is a directory
  ".Level1.Level2" beside it with its own cur/new/tmp.  Levels are modified UTF-7
  (RFC 3501 5.1.3) as Dovecot and Courier write them; "%2E" and "%25" (CleverMail's
  escapes for a literal "." or "%" in a level) are undone.  Levels are joined with
  "/", CleverMail's hierarchy separator.
"""

import os
from dataclasses import dataclass

from ..imap import utf7
from ..store import paths
from ..store.errors import InvalidName
from .message import Damaged, Incoming, SourceFolder, checked

KEYWORDS_FILE = "dovecot-keywords"
MAILDIR_FLAGS = {"D": "\\Draft", "F": "\\Flagged", "P": "$Forwarded", "R": "\\Answered",
                 "S": "\\Seen", "T": "\\Deleted"}


def is_maildir(path):
    return os.path.isdir(os.path.join(path, "cur")) or os.path.isdir(os.path.join(path, "new"))


def folder_name(dirname):
    """A Maildir++ directory name (".Work.2024") -> CleverMail folder name ("Work/2024");
    ValueError or InvalidName for a name that is not a folder or not a valid
    CleverMail name."""
    if not dirname.startswith(".") or dirname in (".", ".."):
        raise ValueError(f"{dirname!r} is not a Maildir++ folder")
    levels = []
    for level in dirname[1:].split("."):
        if "&" in level:
            try:
                level = utf7.decode(level)
            except ValueError:
                pass            # a literal "&" written by a program that does not encode
        levels.append(level.replace("%2E", ".").replace("%2e", ".").replace("%25", "%"))
    name = paths.SEPARATOR.join(levels)
    paths.split_folder(name)       # InvalidName when CleverMail cannot hold it
    return "INBOX" if name.upper() == "INBOX" else name


def read_keywords(folder_path):
    """{letter: name} of a folder's dovecot-keywords file ({} when there is none)."""
    names = {}
    try:
        with open(os.path.join(folder_path, KEYWORDS_FILE), encoding="utf-8", errors="replace") as f:
            for line in f:
                index, _, name = line.strip().partition(" ")
                if index.isdigit() and int(index) < 26 and name.strip():
                    names[chr(97 + int(index))] = name.strip()
    except FileNotFoundError:
        pass
    return names


def info_flags(filename, keywords):
    """The IMAP flag names of a file name's ":2,<letters>" info."""
    _, sep, letters = filename.rpartition(":2,")
    if not sep:
        return ()
    names = []
    for c in letters:
        if c in MAILDIR_FLAGS:
            names.append(MAILDIR_FLAGS[c])
        elif c in keywords:
            names.append(keywords[c])
    return tuple(dict.fromkeys(names))


@dataclass
class MaildirMessage:
    """One message file; load() reads it (Damaged when it cannot be imported)."""

    path: str
    keywords: dict

    @property
    def origin(self):
        return self.path

    def load(self):
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
                date = int(os.fstat(f.fileno()).st_mtime)
        except OSError as exc:
            raise Damaged(f"cannot read: {exc.strerror or exc}") from None
        if raw.startswith(b"From "):
            raw = raw.partition(b"\n")[2]     # an mbox From_ line some deliverers leave on top
        return Incoming(checked(raw), info_flags(os.path.basename(self.path), self.keywords), date)


def read_folder(path, name):
    """A SourceFolder of one Maildir directory's messages, oldest first (file mtime,
    then name: the order they were delivered in, as far as a Maildir can tell)."""
    keywords = read_keywords(path)
    found = []
    for sub in ("new", "cur"):
        try:
            entries = list(os.scandir(os.path.join(path, sub)))
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if not entry.is_file():
                    continue
                mtime = entry.stat().st_mtime
            except OSError:
                mtime = 0       # load() reports what is wrong with it
            found.append((mtime, entry.name, entry.path))
    found.sort()
    return SourceFolder(name, [MaildirMessage(p, keywords) for _, _, p in found])


def read_tree(root, target="INBOX"):
    """(folders, problems) of a Maildir or Maildir++ tree: the root as `target`, each
    Maildir++ folder under its name (below `target` when that is not INBOX).
    `problems` lists (directory, reason) for folders that cannot be imported."""
    folders = [read_folder(root, target)]
    problems = []
    for dirname in sorted(os.listdir(root)):
        path = os.path.join(root, dirname)
        if not dirname.startswith(".") or dirname in (".", "..") or not os.path.isdir(path):
            continue
        if not is_maildir(path):
            continue            # not a folder (Dovecot's own dot directories, for one)
        try:
            name = folder_name(dirname)
            if target.upper() != "INBOX":
                name = target if name == "INBOX" else f"{target}{paths.SEPARATOR}{name}"
                paths.split_folder(name)
        except (ValueError, InvalidName) as exc:
            problems.append((path, f"folder not imported: {exc}"))
            continue
        folders.append(read_folder(path, name))
    return folders, problems
