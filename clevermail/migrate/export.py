"""`clevermail export`: one account's folders as a Maildir++ tree that mutt, Dovecot
and Courier read (the formats are maildir.py's, written here).

- DIR is the INBOX (cur/ new/ tmp/); every other folder is "DIR/.<Level1>.<Level2>"
  with its own cur/ new/ tmp/ and an empty `maildirfolder` file (Maildir++ marks a
  folder with it).  Levels are modified UTF-7 (RFC 3501 5.1.3), as Dovecot and
  Courier name folders; a "." or "%" inside a level is written "%2E" / "%25", which
  maildir.folder_name undoes when the tree is imported again.
- Every message goes to cur/ as "<base>:2,<letters>": the Maildir letters of its
  flags (\\Draft D, \\Flagged F, $Forwarded P, \\Answered R, \\Seen S, \\Deleted T),
  then its keywords as letters a..z named in the folder's `dovecot-keywords`
  ("<index> <name>" a line).  A folder holds at most 26 keyword names, as in the store.
- The internal date is the file's mtime (what Dovecot reads back); the base name
  carries it too, with S= (size on disk) and W= (size with CRLF), as the store names
  its own files.
- Files are written under tmp/, fsynced, and renamed into cur/; each directory is
  fsynced at the end, so a finished export is on disk.

Export reads through FolderViews, as a session does; it can run while the server
runs and shows each folder as it was when the export reached it.
"""

import os
from dataclasses import dataclass, field

from ..durable import fsync_dir, write_exclusive
from ..imap import utf7
from ..store import folder_ops
from ..store import maildir as store_maildir
from ..store.errors import MessageGone
from ..store.paths import SEPARATOR
from .maildir import KEYWORDS_FILE, MAILDIR_FLAGS

LETTERS = {name.lower(): letter for letter, name in MAILDIR_FLAGS.items()}


class ExportError(Exception):
    """DIR cannot take an export (it exists and is not empty, or is not a directory)."""


@dataclass
class ExportReport:
    messages: int = 0
    folders: int = 0
    warnings: list = field(default_factory=list)

    def summary(self):
        return f"exported {self.messages} messages from {self.folders} folders"


def folder_dirname(name):
    """CleverMail folder name -> Maildir++ directory name ("" for INBOX)."""
    if name == "INBOX":
        return ""
    levels = [utf7.encode(level.replace("%", "%25").replace(".", "%2E")) for level in name.split(SEPARATOR)]
    return "." + ".".join(levels)


def check_target(dest):
    """DIR must not exist, or be an empty directory."""
    if os.path.lexists(dest):
        if not os.path.isdir(dest):
            raise ExportError(f"{dest}: exists and is not a directory")
        if os.listdir(dest):
            raise ExportError(f"{dest}: exists and is not empty")


class Exporter:
    """Writes one account of a MailStore to a Maildir++ tree."""

    def __init__(self, store, address):
        self.store = store
        self.address = address

    def folders(self):
        """[(name, message count)] of the account, INBOX first."""
        return [(name, folder_ops.folder_status(self.store, self.address, name).messages)
                for name in self.store.list_folders(self.address)]

    def run(self, dest, names=None, step=None):
        """Export folders `names` (default: all) into `dest`; `step()` per message."""
        check_target(dest)
        os.makedirs(dest, mode=0o700, exist_ok=True)
        report = ExportReport()
        for name in names if names is not None else [n for n, _ in self.folders()]:
            self._export_folder(name, os.path.join(dest, folder_dirname(name)), report, step)
            report.folders += 1
        fsync_dir(dest)
        return report

    def _export_folder(self, name, path, report, step):
        store_maildir.make_maildir(path)
        if name != "INBOX":
            with open(os.path.join(path, "maildirfolder"), "wb"):
                pass
        keywords = []            # index -> name, the folder's dovecot-keywords
        with folder_ops.reading(self.store, self.address, name) as view:
            for message in view.messages(range(1, len(view) + 1)):
                try:
                    with view.open_message(message.uid) as f:
                        disk = f.read()
                except MessageGone:
                    continue        # expunged while we were exporting
                finally:
                    if step is not None:
                        step()
                letters = self._letters(message.flags, keywords, name, report)
                date = int(message.internaldate)
                base = store_maildir.new_base(len(disk), message.size, date)
                tmp = os.path.join(path, "tmp", base)
                write_exclusive(tmp, disk)
                os.utime(tmp, (date, date))         # a rename keeps the mtime
                os.rename(tmp, os.path.join(path, "cur", f"{base}:2,{letters}"))
                report.messages += 1
        if keywords:
            text = "".join(f"{i} {kw}\n" for i, kw in enumerate(keywords))
            write_exclusive(os.path.join(path, KEYWORDS_FILE), text.encode("utf-8"))
        fsync_dir(os.path.join(path, "cur"))
        fsync_dir(path)

    @staticmethod
    def _letters(flags, keywords, name, report):
        system, own = set(), set()
        lowered = [k.lower() for k in keywords]
        for flag in flags:
            letter = LETTERS.get(flag.lower())
            if letter:
                system.add(letter)
            elif flag.startswith("\\"):
                continue            # \Recent: a session's, not the message's
            elif flag.lower() in lowered:
                own.add(chr(97 + lowered.index(flag.lower())))
            elif len(keywords) < 26:
                keywords.append(flag)
                lowered.append(flag.lower())
                own.add(chr(96 + len(keywords)))
            else:
                report.warnings.append(f"{name}: keyword {flag!r} not exported (26 keywords already)")
        return "".join(sorted(system)) + "".join(sorted(own))
