"""`clevermail import`: another program's mail into one account, through the store.

What PATH is decides the reader: a directory with cur/ or new/ is a Maildir or
Maildir++ tree (maildir.py), another directory a tree of mbox files, a file starting
"From " an mbox (mbox.py).

Every message goes in through store.folder_ops.appending (a BatchAppender: the batch
form of the append IMAP APPEND makes through folder_ops.append_message): UIDs, the uidlist,
the index, the folder's locks and the fsyncs are the store's, so an import can run
while the server runs (another process's appends reach its sessions through
store/watch.py).  Folders missing in the account are created and subscribed.

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

from ..store import folder_ops
from ..store import maildir as store_maildir
from ..store.errors import MessageGone
from . import maildir, mbox
from .message import Damaged, SourceFolder, split_flags

MAX_DATE = 2 ** 33 - 1      # beyond year 2200: a broken date, not a real one
# Messages are committed in batches (BatchAppender.append_many: one directory fsync and one
# uidlist write per batch, every file still fsynced); a batch becomes visible at once.
BATCH_MESSAGES = 500
BATCH_BYTES = 32 << 20


class SourceError(Exception):
    """PATH is neither a Maildir (tree) nor an mbox file."""


@dataclass
class Source:
    """What PATH holds: SourceFolders to import, (place, reason) for parts that cannot
    be imported, and paths of files that are not mail (left alone)."""

    folders: list
    problems: list = field(default_factory=list)
    ignored: list = field(default_factory=list)


def read_source(path, target="INBOX"):
    """The Source for PATH: a Maildir (tree), a directory of mbox files, or one mbox."""
    if os.path.isdir(path):
        if maildir.is_maildir(path):
            return Source(*maildir.read_tree(path, target))
        folders, problems, ignored = mbox.read_mbox_dir(path, target)
        if not folders and not problems:
            raise SourceError(f"{path}: neither a Maildir (no cur/ or new/) nor a directory of mbox files")
        return Source(folders, problems, ignored)
    if not os.path.isfile(path):
        raise SourceError(f"{path}: no such file or directory")
    try:
        messages = mbox.read_mbox(path)
    except mbox.NotMbox as exc:
        raise SourceError(str(exc)) from None
    except OSError as exc:
        raise SourceError(f"{path}: {exc.strerror or exc}") from None
    return Source([SourceFolder(target, messages)])


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
        with folder_ops.appending(self.store, self.address, source.name) as appender:
            known = _Known(appender.view)
            warned = set()
            batch, batch_bytes = [], 0

            def commit():
                if batch:
                    uids, dropped = appender.append_many(batch)
                    report.imported += len(uids)
                    report.filled.add(source.name)
                    self._warn(source.name, dropped, warned, report)
                    batch.clear()

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
                self._warn(source.name, dropped, warned, report)
                known.add(date, incoming.wire)
                batch.append((incoming.wire, flags, date))
                batch_bytes += len(incoming.wire)
                if len(batch) >= BATCH_MESSAGES or batch_bytes >= BATCH_BYTES:
                    commit()
                    batch_bytes = 0
            commit()

    @staticmethod
    def _warn(name, dropped, warned, report):
        """One warning per folder and keyword not kept."""
        for keyword in dropped:
            if keyword.lower() not in warned:
                warned.add(keyword.lower())
                report.warnings.append(f"{name}: keyword {keyword!r} not kept "
                                       f"(not an IMAP atom, or the folder's 26 keywords are taken)")


class _Known:
    """The messages of a folder by (internal date, wire size), for the duplicate test:
    existing ones are read (through the view) only when date and size match; those
    imported by this run are remembered by digest.  Digests are of the disk form
    (LF line ends), what the store keeps."""

    def __init__(self, view):
        self.view = view
        self.by_key = {}
        for message in self.view.messages(range(1, len(self.view) + 1)):
            self.by_key.setdefault((int(message.internaldate), message.size), []).append(message.uid)

    def has(self, date, wire):
        candidates = self.by_key.get((date, len(wire)))
        if not candidates:
            return False
        digest = _digest(wire)
        for i, known in enumerate(candidates):
            if isinstance(known, int):
                try:
                    with self.view.open_message(known) as f:
                        known = candidates[i] = hashlib.sha256(f.read()).digest()
                except (MessageGone, OSError):     # expunged meanwhile, or unreadable
                    continue
            if known == digest:
                return True
        return False

    def add(self, date, wire):
        self.by_key.setdefault((date, len(wire)), []).append(_digest(wire))


def _digest(wire):
    return hashlib.sha256(store_maildir.to_disk(wire)).digest()
