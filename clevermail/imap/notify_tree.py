"""NOTIFY's MailboxName and SubscriptionChange events (RFC 5465 5.4, 5.5): what a
session knows of its user's folder tree and subscriptions, and the LIST responses
that tell it what changed.

`TreeWatch` keeps the names last seen.  This process's changes come as
store.tree_events (`on_event`, called in the changing thread: it only records and
signals); the session's own are applied without a word (RFC 5465 5: the client that
caused an event SHOULD NOT be told).  Other processes' changes (a worker process's
session, the CLI) are found by reading the tree again and comparing, when the store's
inotify watch of the user's root says something changed there (`fileno`, `disarm`)
or, without inotify, at the session's periodic look.  A rename there is told as a
rename (with OLDNAME, as this process's): the watch reads the moves of folders in the
root (`take_renames`), and one whose old name went and new name came in the comparison
is said as such, its children and subscriptions moved with it, before the rest of the
comparison is said as deletions and creations (a rename seen only by the periodic look
is one of those).  A tree read while the root changed is not compared: readdir(3) may
have missed an entry renamed under it; the next look reads it again.  A rename seen half done (tree.py moves the folder, then each child,
then rewrites the subscriptions) is said when done, or after UNDER_WAY seconds.  A change is said once: an event that the comparison already found
(or that changes nothing) is not said again.  Each change is one LIST line (plus one
for the direct parent of a folder created or deleted, 5.4): `(\\NonExistent)` for a
name gone, OLDNAME for a rename, \\Subscribed when subscribed, the attributes LIST
gives otherwise.
"""

import collections
import threading
import time

from ..store.paths import SEPARATOR
from ..store.tree_events import CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, TreeEvent
from .names import list_attributes, wire_name
from .notify_spec import MAILBOX_NAME, SUBSCRIPTION_CHANGE
from .parser import quote

MAX_EVENTS = 1000       # changes waiting to be said before NOTIFICATIONOVERFLOW
UNDER_WAY = 5.0         # seconds another process's rename may be seen half done


class TreeWatch:
    def __init__(self, handler, address, spec, signal, utf8=lambda: False):
        self.handler, self.address, self.spec = handler, address, spec
        self._utf8 = utf8       # names in UTF-8 (UTF8=ACCEPT, IMAP4rev2) or mUTF-7
        self._signal = signal
        self._thread = threading.get_ident()    # the session's: its own changes
        self._events = collections.deque()
        self.overflow = False
        self.names, self.subscribed = set(), set()
        self._on_disk = False           # the root watch fired: read the tree again
        self._pending = []              # renames read after the tree they were not in yet
        self._under_way = None          # when a rename was first seen half done
        self._root = None
        handler.listen_tree(address, self.on_event)
        try:
            self._root = handler.watch_tree(address)
            self._read()
        except BaseException:
            self.close()
            raise

    def close(self):
        self.handler.unlisten_tree(self.address, self.on_event)
        if self._root is not None:
            self._root.close()
            self._root = None

    def fileno(self):
        """The descriptor to poll for other processes' changes, or None."""
        return self._root.fileno() if self._root is not None else None

    def disarm(self, ready):
        """After a poll: True when the root watch fired (its events are read)."""
        root = self._root
        if root is not None and root.fileno() in ready and root.drain():
            self._on_disk = True
        return self._on_disk

    def on_event(self, event):
        """A store.tree_events listener (any thread); None: a change is over."""
        if event is not None:
            if len(self._events) >= MAX_EVENTS:
                self.overflow = True
            else:
                self._events.append(event)
        self._signal()

    def _read(self):
        self.names = {n.name for n in self.handler.folder_tree(self.address) if n.selectable}
        self.subscribed = set(self.handler.subscriptions(self.address))

    # -- changes -----------------------------------------------------------------------
    def updates(self, poll):
        """(LIST lines, whether the names or subscriptions changed): the changes told
        since the last call, and with `poll` the other processes' too."""
        before = (set(self.names), set(self.subscribed))
        out = []
        events = self._events
        while events:
            event = events.popleft()
            was = (set(self.names), set(self.subscribed))
            self._apply(event)
            if event.origin != self._thread and was != (self.names, self.subscribed):
                out += self.lines(event.kind, event.name, event.old)
        # not while this process changes the tree: its event says it better (and a
        # None at its end brings us back)
        if (poll or self._on_disk) and not self.handler.tree_changing(self.address):
            self._on_disk = False
            # the moves read before the tree are visible in it; those read after may
            # not be yet: kept for the next look, which they (or any event read
            # after the tree) bring at once
            moves = self._pending + self._moves()[1]
            old_names, old_subs = set(self.names), set(self.subscribed)
            self._read()
            late_events, late = self._moves()
            if late_events:
                self._on_disk = True
                self._signal()
            renames = self._confirmed(moves + late, old_names)
            # a listing read while the root changed may miss an entry renamed under
            # readdir(3) (it moves to a place the listing had passed): not compared
            # while it may be such, the next look (signalled above) reads it again
            if (late_events or any(n == old or n.startswith(old + SEPARATOR)
                                   for gone in renames.values() for old in gone
                                   for n in self.names | self.subscribed)) and self._wait_for_rename():
                # a rename under way in another process: tree.py moves a folder,
                # then its children one by one, then rewrites the subscriptions; told
                # once all is moved (each step wakes us), or after UNDER_WAY seconds
                # (at a later look) if that process died
                self.names, self.subscribed = old_names, old_subs
                self._pending = moves + late
                return out, before != (self.names, self.subscribed)
            self._under_way = None
            self._pending = late        # a rename of a rename read late needs the first
            for old, new in renames:
                event = TreeEvent(RENAME, new, old)
                self._apply(event, old_names, old_subs)
                out += self.lines(RENAME, new, old)
            for name in sorted(old_names - self.names):
                out += self.lines(DELETE, name)
            for name in sorted(self.names - old_names):
                out += self.lines(CREATE, name)
            for name in sorted(old_subs ^ self.subscribed):
                out += self.lines(SUBSCRIBE, name)
        return out, before != (self.names, self.subscribed)

    def _wait_for_rename(self):
        now = time.monotonic()
        if self._under_way is None:
            self._under_way = now
        return now - self._under_way < UNDER_WAY

    def _moves(self):
        """(whether the root watch had events, the folder renames among them)."""
        root = self._root
        if root is None:
            return False, []
        got = root.drain()
        return got, root.take_renames()

    def _confirmed(self, moves, old_names):
        """The renames among `moves` (another process's, in order) that the tree just
        read confirms against `old_names`: {(old, new): the names it had before new},
        parents before children, a rename of a renamed folder as one, the moves of
        children that moved with their parent left out."""
        chains = {}             # name before -> [it, ..., the name now]
        for old, new in moves:
            first = next((f for f, names in chains.items() if names[-1] == old), old)
            chains.setdefault(first, [first]).append(new)
        names, confirmed, candidates = set(old_names), {}, []
        for passed in chains.values():
            # from the last name of the chain the session knows (moves read again
            # after an earlier look told their start)
            known = [n for n in passed[:-1] if n in names]
            if known:
                candidates.append((known[-1], passed[-1], passed[:-1]))
        for old, new, passed in sorted(candidates, key=lambda c: (c[0].count(SEPARATOR), c[0])):
            if old in names and old not in self.names and new in self.names and new not in names:
                self._apply(TreeEvent(RENAME, new, old), names, set())
                confirmed[old, new] = passed
        return confirmed

    def _apply(self, event, names=None, subs=None):
        if names is None:
            names, subs = self.names, self.subscribed
        kind, name, old = event.kind, event.name, event.old
        if kind == CREATE:
            names.add(name)
        elif kind == DELETE:
            names.discard(name)
        elif kind == RENAME:
            # children move with their parent; INBOX stays (its messages move)
            for n in [n for n in names if n == old or n.startswith(old + SEPARATOR)]:
                if old != "INBOX":
                    names.discard(n)
                names.add(name + n[len(old):])
            for n in [n for n in subs if n == old or n.startswith(old + SEPARATOR)]:
                subs.discard(n)
                subs.add(name + n[len(old):])
        elif kind == SUBSCRIBE:
            subs.add(name)
        elif kind == UNSUBSCRIBE:
            subs.discard(name)

    def lines(self, kind, name, old=None):
        """The LIST lines (bytes) for one change, if a group asks its event."""
        spec, subs = self.spec, self.subscribed
        if kind in (SUBSCRIBE, UNSUBSCRIBE):
            # a SUBSCRIBED group covers the name it stops covering too
            if SUBSCRIPTION_CHANGE not in spec.events_for(name, subs | {name}):
                return []
            return [self._line(name)]
        wanted = spec.events_for(name, subs)
        if old is not None:
            wanted |= spec.events_for(old, subs)
        if MAILBOX_NAME not in wanted:
            return []
        if kind == RENAME and old != "INBOX":
            return [self._line(name, old)]
        # a rename of INBOX creates the new name (5.4: no event for INBOX itself)
        out = [self._line(name)]
        if SEPARATOR in name:
            out.append(self._line(name.rsplit(SEPARATOR, 1)[0]))
        return out

    def _line(self, name, old=None):
        node = next((n for n in self.handler.folder_tree(self.address) if n.name == name), None)
        attrs = list_attributes(node) if node is not None else ["\\NonExistent"]
        if name in self.subscribed:
            attrs.append("\\Subscribed")
        utf8 = self._utf8()
        extra = b' ("OLDNAME" (%s))' % wire_name(old, utf8) if old is not None else b""
        return b"* LIST (%s) %s %s%s\r\n" % (" ".join(attrs).encode(), quote(SEPARATOR),
                                             wire_name(name, utf8), extra)
