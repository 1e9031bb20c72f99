"""What a sandbox holds, for its JSON API and the pytest plugin: the mailboxes, their
messages (summaries, or raw with headers and parsed parts), a wait for a message
matching a subject and header fields (in one folder, or in every folder of the
mailbox), and emptying everything between tests.

It reads and expunges through the store's Folder objects (the ones IMAP sessions
share), so a client logged in while a test empties the sandbox sees EXPUNGE, and a
wait is woken by the delivery's own notify (store/waiters.py) instead of polling.

A message's id is `<address>:<uid>` for INBOX and `<address>:<folder>:<uid>` for
another folder: stable while the message exists, readable in a URL.
"""

import base64
import email.policy
import os
import threading
import time
from email.parser import BytesParser

from ..store import NoSuchFolder
from ..store.errors import InvalidName, MessageGone

INBOX = "INBOX"
# Longest a wait may last, and how often a waiter looks without a wake-up (another
# process delivering into a kept --data directory, seen by inotify or not at all).
MAX_WAIT = 300.0
LOOK_INTERVAL = 0.5

_parser = BytesParser(policy=email.policy.default)


class NotFound(LookupError):
    """No such mailbox, folder or message; str() says which."""


def message_id(address, folder, uid):
    return f"{address}:{uid}" if folder == INBOX else f"{address}:{folder}:{uid}"


def split_id(text):
    """(address, folder, uid) of a message id; NotFound for anything else."""
    address, sep, rest = text.partition(":")
    folder, _, uid = rest.rpartition(":")
    if not sep or not uid.isdigit() or "@" not in address:
        raise NotFound(f"no message {text!r}")
    return address.lower(), folder or INBOX, int(uid)


def parse(raw):
    """The email.message.EmailMessage of a message's bytes (wire form, CRLF): parsed
    with Python's own line ends, so that a text part reads as the application wrote it."""
    return _parser.parsebytes(raw.replace(b"\r\n", b"\n"))


def summary(msg, address, folder, uid, size):
    return {"id": message_id(address, folder, uid), "address": address, "folder": folder,
            "uid": uid, "size": size, "from": str(msg.get("From", "")),
            "to": str(msg.get("To", "")), "cc": str(msg.get("Cc", "")),
            "subject": str(msg.get("Subject", "")), "date": str(msg.get("Date", "")),
            "message_id": str(msg.get("Message-ID", ""))}


def details(raw, address, folder, uid):
    """summary() plus the raw message, every header field in order, and the parts."""
    msg = parse(raw)
    out = summary(msg, address, folder, uid, len(raw))
    out["raw"] = raw.decode("utf-8", "replace")
    out["headers"] = [[name, str(value)] for name, value in msg.items()]
    out["parts"] = [_part(p) for p in msg.walk() if not p.is_multipart()]
    return out


def _part(part):
    payload = part.get_payload(decode=True) or b""
    out = {"content_type": part.get_content_type(), "charset": part.get_content_charset(),
           "filename": part.get_filename(), "disposition": part.get_content_disposition(),
           "size": len(payload)}
    if part.get_content_maintype() == "text":
        try:
            out["text"] = part.get_content()
        except (LookupError, UnicodeError):     # an unknown or lying charset
            out["text"] = payload.decode("utf-8", "replace")
    else:
        out["base64"] = base64.b64encode(payload).decode("ascii")
    return out


def matches(msg, subject=None, headers=()):
    """`subject`: a part of the Subject, any case; `headers`: 'Name: part of its
    value' or 'Name' (present), all of them."""
    if subject is not None and subject.lower() not in str(msg.get("Subject", "")).lower():
        return False
    for want in headers:
        name, sep, value = want.partition(":")
        values = [str(v) for v in msg.get_all(name.strip(), [])]
        if not values:
            return False
        if sep and not any(value.strip().lower() in v.lower() for v in values):
            return False
    return True


class Mailboxes:
    def __init__(self, store):
        self.store = store

    def addresses(self):
        """Every mailbox made so far, sorted."""
        root = self.store.mail_root
        out = []
        for domain in _listdir(root):
            for local in _listdir(os.path.join(root, domain)):
                if os.path.isdir(os.path.join(root, domain, local, "cur")):
                    out.append(f"{local}@{domain}")
        return sorted(out)

    def exists(self, address):
        try:
            return os.path.isdir(os.path.join(self.store.user_root(address), "cur"))
        except InvalidName:
            return False

    def counts(self):
        """[{address, messages}] of every mailbox (INBOX counts)."""
        return [{"address": a, "messages": self._with_folder(a, INBOX, len)} for a in self.addresses()]

    def raw_messages(self, address, folder=INBOX):
        """[(uid, raw bytes)] of a folder, oldest first; [] for a mailbox not made yet."""
        address = address.strip().lower()
        if not self.exists(address):
            return []

        def read(f):
            out = []
            for uid in list(f.uids):
                try:
                    out.append((uid, f.read_message(uid)))
                except MessageGone:         # expunged meanwhile
                    pass
            return out
        return self._with_folder(address, folder, read)

    def messages(self, address, folder=INBOX):
        """Summaries of a folder's messages, oldest first."""
        address = address.strip().lower()
        return [summary(parse(raw), address, folder, uid, len(raw))
                for uid, raw in self.raw_messages(address, folder)]

    def message(self, ident):
        """details() of the message with that id; NotFound."""
        address, folder, uid = split_id(ident)
        if not self.exists(address):
            raise NotFound(f"no mailbox {address}")
        try:
            raw = self._with_folder(address, folder, lambda f: f.read_message(uid))
        except MessageGone:
            raise NotFound(f"no message {ident!r}") from None
        return details(raw, address, folder, uid)

    def wait(self, address, subject=None, headers=(), timeout=10.0, folder=None):
        """(folder, uid, raw) of the first message matching subject and headers in
        `folder`, or in any folder of the mailbox (None: INBOX first, then the others
        in name order, so a copy Sieve filed or the checks put in Junk is found too),
        waiting up to `timeout` seconds for it to arrive; None when none came."""
        address = address.strip().lower()
        deadline = time.monotonic() + min(max(timeout, 0.0), MAX_WAIT)
        woken = threading.Event()
        while True:
            found = self._look(address, folder, subject, headers, woken)
            if found is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            # a folder made meanwhile (Sieve's :create) has no waiter of ours: the
            # next look, at most LOOK_INTERVAL later, lists it
            woken.wait(min(left, LOOK_INTERVAL))

    def folders(self, address):
        """The mailbox's folder names, INBOX first, the others sorted; [] for a
        mailbox not made yet."""
        address = address.strip().lower()
        if not self.exists(address):
            return []
        return [INBOX] + sorted(n for n in self.store.list_folders(address) if n.upper() != INBOX)

    def _folders(self, address, folder):
        # the mailbox is made now if new (its first use), so that the delivery that
        # makes it wakes this wait
        try:
            self.store.ensure_user(address)
        except InvalidName:
            raise NotFound(f"no mailbox {address!r}") from None
        return [folder] if folder is not None else self.folders(address)

    def _look(self, address, folder, subject, headers, woken):
        woken.clear()
        for name in self._folders(address, folder):
            try:
                found = self._look_in(address, name, subject, headers, woken)
            except NotFound:
                continue                # not made yet (Sieve's :create), or deleted meanwhile
            if found is not None:
                return (name,) + found
        return None

    def _look_in(self, address, name, subject, headers, woken):
        f = self._open(address, name)
        try:
            # the waiter first, then the look: a delivery after the look wakes us
            f.waiters.add(woken.set)
            try:
                f.sync()
                for uid in list(f.uids):
                    try:
                        raw = f.read_message(uid)
                    except MessageGone:
                        continue
                    if matches(parse(raw), subject, headers):
                        return uid, raw
                return None
            finally:
                f.waiters.remove(woken.set)
        finally:
            self.store.release_folder(f)

    def clear(self):
        """Expunge every message of every folder of every mailbox; how many."""
        removed = 0
        for address in self.addresses():
            for name in self.store.list_folders(address):
                try:
                    removed += self._with_folder(address, name, lambda f: len(f.expunge(list(f.uids))))
                except NotFound:        # deleted meanwhile by a client
                    pass
        return removed

    def _open(self, address, folder):
        try:
            return self.store.open_folder(address, folder)
        except (NoSuchFolder, InvalidName):
            raise NotFound(f"no folder {folder!r} of {address}") from None

    def _with_folder(self, address, folder, work):
        f = self._open(address, folder)
        try:
            return work(f)
        finally:
            self.store.release_folder(f)


def _listdir(path):
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []
