"""`clevermail import`: another program's mail into one account, through the store.

What PATH is decides the reader: a directory with cur/ or new/ is a Maildir or
Maildir++ tree (maildir.py), a file starting "From " an mbox (mbox.py).

Every message goes in through Folder.letters_for and Folder.append, the calls IMAP
APPEND makes (imap/handler.py): UIDs, the uidlist, the index, the folder's locks
and the fsyncs are the store's, so an import can run while the server runs (another
process's appends reach its sessions through store/watch.py).  Folders missing in
the account are created and subscribed.

Idempotence: a message is a duplicate, and skipped, when its target folder already
holds one with the same internal date (to the second) and the same bytes (compared
by size first, then content).  So running the same import twice adds nothing, flags
changed since in CleverMail are left alone, and a message that really differs (or
has another date) still comes in.  No import log is kept: the folder is the record.

A damaged message (message.py says which) is reported and skipped; nothing else
stops an import except a store error (disk full, permissions), which ends it with
what was appended so far kept.
"""

import hashlib
import os
from dataclasses import dataclass, field

from ..store.errors import MessageGone
from ..store.view import FolderView
from . import maildir, mbox
from .message import Damaged, split_flags

MAX_DATE = 2 ** 33 - 1      # beyond year 2200: a broken date, not a real one


class SourceError(Exception):
    """PATH is neither a Maildir (tree) nor an mbox file."""


def read_source(path, target="INBOX"):
    """(folders, problems) for PATH: maildir.SourceFolder values to import and
    (place, reason) pairs for what cannot be (see maildir.read_tree)."""
    if os.path.isdir(path):
        if not maildir.is_maildir(path):
            raise SourceError(f"{path}: not a Maildir (no cur/ or new/ in it)")
        return maildir.read_tree(path, target)
    if not os.path.isfile(path):
        raise SourceError(f"{path}: no such file or directory")
    try:
        messages = mbox.read_mbox(path)
    except mbox.NotMbox as exc:
        raise SourceError(str(exc)) from None
    except OSError as exc:
        raise SourceError(f"{path}: {exc.strerror or exc}") from None
    return [maildir.SourceFolder(target, messages)], []


@dataclass
class ImportReport:
    """What an import did: counts, the folders it created and filled, what it skipped
    (damaged: (place, reason)) and warnings (keywords not kept)."""

    imported: int = 0
    duplicates: int = 0
    filled: set = field(default_factory=set)
    created: list = field(default_factory=list)
    damaged: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

    def summary(self):
        line = (f"imported {_count(self.imported, 'message')} into {_count(len(self.filled), 'folder')}, "
                f"{self.duplicates} skipped as duplicates")
        if self.damaged:
            line += f", {len(self.damaged)} damaged and skipped"
        return line


def _count(n, word):
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class Importer:
    """Imports SourceFolders into one account of a MailStore."""

    def __init__(self, store, address):
        self.store = store
        self.address = address

    def run(self, folders, step=None):
        """Import every message of `folders`; `step()` is called once per message
        (the progress bar).  Returns the ImportReport."""
        report = ImportReport()
        self.store.ensure_user(self.address)
        for source in folders:
            self._ensure_folder(source.name, report)
            self._import_folder(source, report, step)
        return report

    def _ensure_folder(self, name, report):
        if name == "INBOX" or self.store.folder_exists(self.address, name):
            return
        self.store.create_folder(self.address, name)
        self.store.subscribe(self.address, name)
        report.created.append(name)

    def _import_folder(self, source, report, step):
        folder = self.store.open_folder(self.address, source.name)
        try:
            known = _Known(folder, source.name)
            warned = set()
            for item in source.messages:
                try:
                    incoming = item.load()
                except Damaged as exc:
                    report.damaged.append((item.origin, str(exc)))
                    continue
                except mbox.PseudoMessage:
                    continue
                finally:
                    if step is not None:
                        step()
                date = min(max(incoming.date, 0), MAX_DATE)
                if known.has(date, incoming.wire):
                    report.duplicates += 1
                    continue
                flags, dropped = split_flags(incoming.flags)
                letters = folder.letters_for(flags, create=True)
                dropped += _not_given_letters(folder, flags, letters)
                for name in dropped:
                    if name.lower() not in warned:
                        warned.add(name.lower())
                        report.warnings.append(f"{source.name}: keyword {name!r} not kept "
                                               f"(not an IMAP atom, or the folder's 26 keywords are taken)")
                folder.append(incoming.wire, "".join(sorted(letters)), date)
                known.add(date, incoming.wire)
                report.imported += 1
                report.filled.add(source.name)
        finally:
            self.store.release_folder(folder)


def _not_given_letters(folder, flags, letters):
    """Keywords of `flags` that letters_for could not give a letter (26 are taken)."""
    keywords = [f for f in flags if not f.startswith("\\")]
    if sum(1 for c in letters if "a" <= c <= "z") >= len({k.lower() for k in keywords}):
        return []
    defined = {k.lower() for k in folder.keywords()}
    return [k for k in keywords if k.lower() not in defined]


class _Known:
    """The messages of a folder by (internal date, wire size), for the duplicate test:
    existing ones are read only when date and size match; those appended by this run
    are remembered by digest."""

    def __init__(self, folder, name):
        view = FolderView(folder, name, readonly=True, recent=False)
        self.by_key = {}
        for message in view.messages(range(1, len(view) + 1)):
            self.by_key.setdefault((int(message.internaldate), message.size), []).append(message)

    def has(self, date, wire):
        candidates = self.by_key.get((date, len(wire)))
        if not candidates:
            return False
        digest = hashlib.sha256(wire).digest()
        for i, known in enumerate(candidates):
            if not isinstance(known, bytes):
                try:
                    known = candidates[i] = hashlib.sha256(known.raw()).digest()
                except (MessageGone, OSError):     # expunged meanwhile, or unreadable
                    continue
            if known == digest:
                return True
        return False

    def add(self, date, wire):
        self.by_key.setdefault((date, len(wire)), []).append(hashlib.sha256(wire).digest())
