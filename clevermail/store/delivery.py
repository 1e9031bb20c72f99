"""Local delivery: a message into one or more users' INBOXes, durably, and the one
final-delivery stamp (RFC 5321 4.4: the Return-Path is added at final delivery).

`prepare_local(sender, addresses, *parts)` is the one local-delivery path: the SMTP
file handler uses it inside its all-or-nothing transaction with the relay queue, and
`deliver_local` (prepare + commit) serves the relay worker, for queued recipients
that turned out to be local and for delivery reports (DSNs) to local senders.  Both
get `Return-Path: <sender>`, a report (null sender) `Return-Path: <>`.

The Maildir discipline (maildir.py): the message is written and fsynced once under
the first INBOX's tmp/ and hard-linked into the others' tmp/; PendingDelivery.commit
links each into new/ and fsyncs new/ (only then is it delivered) and tells the
sessions of this process with that INBOX open; abort() takes back a prepare or a
commit.

Quotas: each copy's room is reserved (store/quota.py `Quotas.reserve`, OverQuota
when there is none) once its tmp/ file is written; the reservation counts it in the
user's ledger, is released at commit and taken back at abort.
"""

import contextlib
import os

from ..durable import unlink_quiet
from . import maildir, paths
from .flags import SYSTEM_FLAGS

_SYSTEM_NAMES = {name.lower(): name for name in SYSTEM_FLAGS}


class PendingDelivery:
    """A message written and fsynced under tmp/ for one or more mailboxes, not yet
    visible.  commit() makes it visible durably; abort() undoes prepare or commit."""

    def __init__(self, folders, targets, letters="", owners=(), reservations=()):
        self.folders = folders
        self.targets = targets          # [(folder path, tmp path, base)]
        # flag letters (Sieve's imap4flags): the copy goes to cur/ with them
        self.letters = letters
        # (address, folder name) of each target, in order: what copies() names
        self.owners = list(owners)
        self.reservations = list(reservations)     # quota.Reservation per copy
        self.committed = []

    def copies(self):
        """[(address, folder name, file path)] of the committed copies: what the
        delivered log line names (smtp/delivered.py)."""
        return list(zip((a for a, _ in self.owners), (f for _, f in self.owners), self.committed))

    def commit(self):
        for folder_path, tmp, base in self.targets:
            if self.letters:
                final = maildir.commit_tmp(folder_path, tmp, f"{base}:2,{self.letters}", sub="cur")
            else:
                final = maildir.commit_tmp(folder_path, tmp, base, sub="new")
            self.committed.append(final)
            self.folders.notify(folder_path)
        for reservation in self.reservations:
            reservation.done()

    def abort(self):
        with contextlib.ExitStack() as held:
            # the ledger's shared lock from the unlink to the line taken back
            for reservation in self.reservations:
                held.enter_context(reservation.changing())
            for path in self.committed + [t[1] for t in self.targets]:
                unlink_quiet(path)
            for reservation in self.reservations:
                reservation.cancel()
        for folder_path, _, _ in self.targets:
            self.folders.notify(folder_path)


def return_path(sender):
    """The Return-Path line for an envelope sender ('' for a null sender: '<>')."""
    if "\r" in sender or "\n" in sender:
        # a header line of its own must never come out of an envelope address
        raise ValueError("line break in the envelope sender")
    return b"Return-Path: <" + sender.encode("utf-8") + b">\r\n"


class Delivery:
    def __init__(self, users, folders, quotas):
        self.users = users
        self.folders = folders
        self.quotas = quotas

    def _prepare(self, addresses, wire, clean=False, folder=None, flags=()):
        """Write `wire` (CRLF message) once under the first INBOX's tmp/, fsync it, and
        hard-link it into the other INBOXes' tmp/ (one data write for all copies).
        `clean`: every line of `wire` ends in CRLF and there is no other CR.
        `folder`: a special-use folder (users.SPECIAL_USE, e.g. "Junk" for mail the
        inbound checks quarantine, or a Sieve fileinto) instead of INBOX, where the
        user has it.  `flags`: IMAP flag names the copies get (one address only).
        OverQuota (nothing kept) when a user has no room for the copy."""
        disk = maildir.to_disk(wire, clean)
        # the size of to_wire(disk), what POP3 and IMAP send: the wire size itself when clean
        wsize = len(wire) if clean else len(disk) + disk.count(b"\n")
        targets, owners, reservations = [], [], []
        first_tmp = None
        try:
            for address in addresses:
                base = maildir.new_base(len(disk), wsize)
                user_root = self.users.ensure(address)
                root = self._target(user_root, folder)
                try:
                    tmp = self._write(root, disk, base, first_tmp)
                except FileNotFoundError:
                    # the mailbox was removed behind our back (the store remembers
                    # ensured mailboxes): create it again, once
                    user_root = self.users.ensure(address, again=True)
                    root = self._target(user_root, folder)
                    tmp = self._write(root, disk, base, first_tmp)
                first_tmp = first_tmp or tmp
                targets.append((root, tmp, base))
                owners.append((address, folder if folder and root != user_root else "INBOX"))
                # (after the write: the mailbox exists again if it had to be made)
                reservations.append(self.quotas.reserve(address, len(disk)))
            letters = self._letters(addresses, targets, flags) if flags else ""
        except BaseException:
            PendingDelivery(self.folders, targets, reservations=reservations).abort()
            raise
        return PendingDelivery(self.folders, targets, letters, owners, reservations)

    def _letters(self, addresses, targets, flags):
        """The Maildir letters of `flags` in the one target folder (keywords get
        their letter in that folder's map)."""
        if len(targets) != 1:
            raise ValueError("flags are set for one mailbox at a time")
        system = [SYSTEM_FLAGS.get(_SYSTEM_NAMES.get(f.lower(), "")) for f in flags]
        if all(system):
            # system flags have fixed letters: no need for the folder's keyword map
            # (opening the folder syncs its index, which costs more than the delivery)
            return "".join(sorted(set(system)))
        root = self.users.root(addresses[0])
        path = targets[0][0]
        name = "INBOX" if path == os.path.realpath(root) else paths.folder_from_dirname(
            os.path.basename(path))
        folder = self.folders.open(addresses[0], name)
        try:
            return "".join(sorted(folder.letters_for(flags)))
        finally:
            self.folders.release(folder)

    @staticmethod
    def _target(root, folder):
        """The Maildir a copy goes to: `folder` under the user's root if it is there
        (a user may have deleted their Junk), else the INBOX."""
        if folder is None:
            return root
        path = paths.folder_path(root, folder)
        return path if os.path.isdir(os.path.join(path, "cur")) else root

    @staticmethod
    def _write(root, disk, base, first_tmp):
        """The message's tmp/ file in one INBOX: the data for the first, a hard link
        to the first one's file for the others."""
        if first_tmp is None:
            return maildir.write_tmp(root, disk, base)
        return maildir.link_tmp(root, first_tmp, base)

    def prepare_local(self, sender, addresses, *parts, clean=False, folder=None, flags=()):
        """Final delivery of the message made of `parts` (CRLF bytes, joined once) to
        local `addresses`, with `Return-Path: <sender>` in front; not yet committed.
        `clean`, `folder` and `flags` as for _prepare()."""
        wire = b"".join((return_path(sender),) + parts)
        return self._prepare(addresses, wire, clean=clean, folder=folder, flags=flags)

    def deliver_local(self, sender, addresses, data):
        """Final delivery to local `addresses`, committed durably before returning (the
        relay worker's local recipients and reports); nothing is kept on failure."""
        pending = self.prepare_local(sender, addresses, data)
        try:
            pending.commit()
        except BaseException:
            pending.abort()
            raise
