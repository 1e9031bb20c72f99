"""Which messages an id means, and every event of each in time order.

The joins, all on what the server logs (logs.py, smtp/session.py, smtp/handler.py,
relay/, the IMAP and POP3 retrieval lines):

- the SMTP `accepted id=<queue id> from=<...> local=<...> relay=<...> size=N
  message-id=<...> helo=H` line names the queue id, the Message-ID and the envelope; its
  session id leads to the session's connect, TLS and `auth ok` lines and to what the
  session said about this transaction (the lines since its previous message);
- every line carrying the queue id (JSON `queue_id`, text `id=<qid>`, a relay line's
  leading `<qid>:`): local deliveries, relay attempts, reports, removal; the bounce's
  own queue entry is `<qid>-dsn`;
- a local delivery `id=<qid> delivered to <account> folder="<name>" message-id=<id>
  path=<mailbox>/[.Folder/]new/<file>` (smtp/delivered.py: every local copy, the
  SMTP transaction's, Sieve's fileinto, the relay worker's deferred copies and
  reports, a report's under `<qid>-dsn`) names the file; the folder's uidlist
  (store/uidlist.py) gives its UID once indexed,
  and the `retrieved uid=N user=<account> folder=<name>` lines of IMAP FETCH and POP3 RETR
  ([server] log_retrievals, or DEBUG) are the retrievals of that UID;
- the queue entry, while it exists (relay/queue.py), gives the recipients' states.
"""

import json
import os
import re
from dataclasses import dataclass, field

from ..relay.queue import NoSuchEntry
from ..store.paths import folder_from_dirname
from ..store.uidlist import FILENAME as UIDLIST

ACCEPTED = re.compile(r"^accepted id=(?P<qid>\S+) from=<(?P<sender>[^>]*)> (?P<rcpts>.*?) "
                      r"size=(?P<size>\d+) message-id=(?P<mid>.*) helo=(?P<helo>\S*)$")
# smtp/delivered.py; older logs have neither folder= nor message-id=
DELIVERED = re.compile(r'^id=(?P<qid>\S+) delivered to <(?P<account>[^>]+)>'
                       r'(?: folder=(?P<folder>"(?:[^"\\]|\\.)*"))?(?: message-id=(?P<mid>.*?))?'
                       r' path=(?P<path>.+)$')
RETRIEVED = re.compile(r"^retrieved uid=(?P<uid>\d+) user=(?P<user>\S+) folder=(?P<folder>.+)$")
SESSION_START = ("connect", "TLS ", "auth ok")


@dataclass
class Event:
    record: object              # records.Record
    kind: str                   # session, accepted, delivered, relay, retrieved, other
    note: str = ""              # what the join added (the UID of a delivered file)

    def to_json(self):
        out = {**self.record.to_json(), "kind": self.kind}
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class Trace:
    queue_id: str
    message_id: str = ""
    sender: str = ""
    recipients: list = field(default_factory=list)
    events: list = field(default_factory=list)
    queue: list = field(default_factory=list)      # the entries' to_json(), while queued

    def to_json(self):
        return {"queue_id": self.queue_id, "message_id": self.message_id or None,
                "sender": self.sender, "recipients": self.recipients,
                "events": [e.to_json() for e in self.events], "queue": self.queue}


def _accepted(records):
    out = {}
    for r in records:
        if r.protocol == "smtp" and r.message.startswith("accepted id="):
            m = ACCEPTED.match(r.message)
            if m:
                out[m["qid"]] = (r, m)
    return out


def _addresses(text):
    return [a.lower() for a in re.findall(r"<([^>]*)>", text)]


def queue_ids(records, ident, since=None, until=None, queue=None):
    """The queue ids `ident` means, oldest first: a Message-ID ('<...>', or a bare one
    an accepted line names), an address (sender or recipient of messages accepted in
    [since, until]), or a queue id (logged, or in the queue)."""
    accepted = _accepted(records)

    def in_window(qid):
        when = accepted[qid][0].time
        return (since is None or when >= since) and (until is None or when <= until)

    def by_time(qids):
        return sorted(qids, key=lambda q: accepted[q][0].order)

    ident = ident.strip()
    if ident.startswith("<") or "@" in ident:
        mid = ident if ident.startswith("<") else f"<{ident}>"
        found = [q for q, (_, m) in accepted.items() if m["mid"] == mid and in_window(q)]
        if found or ident.startswith("<"):
            return by_time(found)
        address = ident.lower()
        return by_time(q for q, (_, m) in accepted.items() if in_window(q) and (
            m["sender"].lower() == address or address in _addresses(m["rcpts"])))
    if ident in accepted or any(r.queue_id == ident for r in records):
        return [ident]
    if queue is not None:
        try:
            queue.resolve(ident)
            return [ident]
        except (NoSuchEntry, ValueError):
            pass
    return []


def trace(records, qid, queue=None):
    """The Trace of one queue id."""
    out = Trace(qid)
    accepted = _accepted(records).get(qid)
    chosen = {}                     # record order -> Event
    if accepted is not None:
        record, m = accepted
        out.message_id = "" if m["mid"] == "-" else m["mid"]
        out.sender, out.recipients = m["sender"], _addresses(m["rcpts"])
        for r in _session_lines(records, record):
            chosen[r.order] = Event(r, "session")
        chosen[record.order] = Event(record, "accepted")
    deliveries = []
    for r in records:
        if r.order in chosen or not (r.queue_id == qid or r.queue_id.startswith(qid + "-dsn")):
            continue
        m = DELIVERED.match(r.message)
        if m:
            uid, folder = _uid_of(m["path"])
            if m["folder"]:
                folder = json.loads(m["folder"])
            event = Event(r, "delivered", f"folder {folder}" + (f", uid {uid}" if uid else ""))
            deliveries.append((m["account"].lower(), folder, uid))
        else:
            event = Event(r, "relay" if r.logger.startswith("clevermail.relay") else "other")
        chosen[r.order] = event
    for r in records:
        m = RETRIEVED.match(r.message) if r.message.startswith("retrieved ") else None
        if m and (m["user"].lower(), m["folder"], m["uid"]) in deliveries:
            chosen[r.order] = Event(r, "retrieved")
    out.events = sorted(chosen.values(), key=lambda e: (e.record.time, e.record.order))
    out.queue = _queue_record(queue, qid)
    return out


def _session_lines(records, accepted):
    """The accepting session's start (connect, TLS, auth) and its lines about this
    transaction (since its previous accepted message)."""
    same = [r for r in records if r.session == accepted.session and r.protocol == accepted.protocol
            and r.order < accepted.order]
    previous = max((r.order for r in same if r.message.startswith("accepted id=")), default=-1)
    return [r for r in same if r.order > previous or r.message.startswith(SESSION_START)]


def _uid_of(path):
    """(UID or '', folder name) of a delivered file (<folder>/new/<base>): the
    folder's uidlist maps the base name to the UID the store gave it when the folder
    was first looked at after the delivery."""
    folder_dir = os.path.dirname(os.path.dirname(path))
    dirname = os.path.basename(folder_dir)
    folder = (folder_from_dirname(dirname) if dirname.startswith(".") else None) or "INBOX"
    base = os.path.basename(path).split(":", 1)[0]
    try:
        with open(os.path.join(folder_dir, UIDLIST), encoding="utf-8", errors="replace") as f:
            for line in f:
                uid, _, name = line.rstrip("\n").partition(" ")
                if name == base and uid.isdigit():
                    return uid, folder
    except OSError:
        pass
    return "", folder


def _queue_record(queue, qid):
    if queue is None:
        return []
    try:
        return [queue.get(eid).to_json() for eid in queue.resolve(qid)]
    except (NoSuchEntry, ValueError):
        return []
