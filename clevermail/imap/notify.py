"""NOTIFY (RFC 5465): what a session with NOTIFY set is told, and when.

A `Notifier` is made by each successful NOTIFY (cmd_notify.py) and lives until the
next one or the end of the session (`session.notifier`).  It watches:

- the selected mailbox, when a SELECTED/SELECTED-DELAYED group asks message events:
  a watch on the session's own view (IMAPFileHandler.watch); the view's changes go
  out as SelectedMailbox says them (EXISTS, EXPUNGE/VANISHED, FETCH FLAGS), without
  the FETCHes when FlagChange is not asked, then a FETCH of the fetch-atts asked with
  MessageNew for the new messages (5.2), combined with those of search contexts
  (RETURN (UPDATE (fetch-att ...)), 7), then the contexts' ESEARCH ADDTO/REMOVEFROM
  (updates.py says why in that order).  A context's ADDTO/REMOVEFROM for a flag
  change is said even without FlagChange: the client asked that result be kept.
  SELECTED-DELAYED holds expunges back for a command that may report them (6.1.2);
  SELECTED sends them at once.  With no such group (NOTIFY NONE too), nothing about
  the selected mailbox is sent at all, its contexts' updates included (3.1: "the
  client doesn't want to receive any message-events for the currently selected
  mailbox"; their ESEARCH lines are how those events are said to a context, 5.1-5.3):
  its view is not looked at until the client selects again or NOTIFY asks otherwise,
  and a context then catches up at once.
- 5 asks that a client not be told of events it caused (SHOULD): its own CREATE,
  DELETE, RENAME and (UN)SUBSCRIBE are not said (notify_tree.py), but its APPEND or
  COPY to another watched mailbox is, as Dovecot does: the STATUS carries counts, and
  holding it back could hide another session's delivery in the same moment.
- every other mailbox a group asks message events for: a read-only view of each
  (EXAMINE mode, no \\Recent claimed) with a watch, so a change by any session or
  delivery of this process, or by another process (store/watch.py follows folders
  with waiters), wakes the session; the view's diff tells which events happened, and
  one STATUS says them (5.1-5.3): MESSAGES UIDNEXT UNSEEN for MessageNew and
  MessageExpunge, UIDVALIDITY UNSEEN for FlagChange (sent without CONDSTORE only when
  UNSEEN moved from the count last said or measured as the watch began), HIGHESTMODSEQ
  too once CONDSTORE is enabled.  The selected mailbox's view here follows it after
  each command silently: what came while it was selected is no STATUS afterwards.
- the user's tree and subscriptions (notify_tree.py), which say the LIST responses of
  MailboxName and SubscriptionChange and which mailboxes a PERSONAL, SUBSCRIBED or
  SUBTREE group covers as folders come and go; other processes' changes are looked
  for every POLL seconds.

When: at the end of every command (the session's update path, as before NOTIFY),
while the session waits for the next command (cmd_notify.wait: RFC 5465 3.1 "permits
and requires the server to send information about updates between commands") and
during IDLE (cmd_notify.cmd_idle, 4: the same events): `flush()`.  The wake-up is one
eventfd per notifier (`arm()`/`disarm()`), polled beside the client's socket and the
server's drain signal.  More changes than MAX_TREE_EVENTS waiting, or more mailboxes
to watch than MAX_WATCHED, end it: `* OK [NOTIFICATIONOVERFLOW]` and NOTIFY NONE (5.8).
"""

import logging
import os
import threading
import time

from ..store import StoreError
from . import replies as R
from .cmd_mailboxes import STATUS_ITEMS
from .names import wire_name
from .notify_spec import FLAG_CHANGE, MESSAGE_EVENTS, MESSAGE_EXPUNGE, MESSAGE_NEW, NotifySpec
from .notify_tree import TreeWatch
from .updates import send_updates

log = logging.getLogger("clevermail.imap")

POLL = 30.0             # seconds between looks for changes no signal told of
MAX_WATCHED = 200       # mailboxes watched for message events in one session


class Notifier:
    """One session's NOTIFY (see the module doc).  Used by the session's thread only;
    the tree listener other threads call only records and signals."""

    def __init__(self, session, spec: NotifySpec):
        self.session = session
        self.spec = spec
        self.handler = session.server.handler
        self.address = session.account.address
        self._efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._signal_lock = threading.Lock()    # held only for one eventfd write or close
        self._closed = False
        self.overflow = False
        self._dirty = set()             # names of watched folders that changed
        self.watched = {}               # name -> (view, store.waiters.Waiter)
        self._selected = None           # the selected mailbox's view, when watched
        self._armed = []                # (descriptor, name, Waiter) of the poll under way
        self._unseen = {}               # name -> the UNSEEN count last said
        # a watched folder went away and could not be opened again: look at what is
        # wanted even if the tree seems unchanged (deleted and created again between
        # two looks)
        self._missing = False
        self.tree = None
        self._last_poll = time.monotonic()
        try:
            if any(group.events for group in spec.groups):
                self.tree = TreeWatch(self.handler, self.address, spec, self._signal,
                                      lambda: session.utf8)
            self._update_watches(initial=True)
            self.follow_selected()
        except BaseException:
            self.close()
            raise

    # -- signals from other threads -----------------------------------------------------
    def _signal(self):
        # under the lock close() takes: a listener still running after unlisten must
        # not write to a descriptor number that close() freed (and another file got)
        with self._signal_lock:
            if not self._closed:
                os.eventfd_write(self._efd, 1)

    def arm(self):
        """The descriptors to poll for the next change (beside the client's socket):
        the tree's signal and each watched folder's shared wake-up; None when a folder
        changed since its last look already (flush() now).  Pair with disarm()."""
        self.follow_selected()
        fds, now = [self._efd], False
        tree_fd = self.tree.fileno() if self.tree is not None else None
        if tree_fd is not None:
            fds.append(tree_fd)
        waiters = [(name, waiter) for name, (_, waiter) in self.watched.items()]
        if self._selected is not None:
            waiters.append((None, self._selected.watch()))
        for name, waiter in waiters:
            fd = waiter.arm()
            if fd is None:
                self._dirty.add(name)
                now = True
            else:
                self._armed.append((fd, name, waiter))
                fds.append(fd)
        if now:
            self.disarm(())
            return None
        return fds

    def disarm(self, ready):
        """The poll is over; `ready`: the descriptors it found readable.  True when
        something changed (then flush())."""
        armed, self._armed = self._armed, []
        changed = bool(self._dirty)
        for fd, name, waiter in armed:
            if fd in ready:
                self._dirty.add(name)
                changed = True
            waiter.disarm()             # its descriptor may be closed from now on
        if self.tree is not None and self.tree.disarm(ready):
            changed = True
        if self._efd in ready:
            changed = True
            try:
                os.eventfd_read(self._efd)      # a tree change from here on signals again
            except BlockingIOError:
                pass
        return changed

    # -- what is watched ---------------------------------------------------------------
    def wanted_mailboxes(self):
        """Names of the existing folders whose message events are asked."""
        tree = self.tree
        if tree is None:
            return []
        return sorted(n for n in tree.names if self.spec.events_for(n, tree.subscribed) & MESSAGE_EVENTS)

    def _events_for(self, name):
        return self.spec.events_for(name, self.tree.subscribed)

    def _update_watches(self, initial=False):
        """Watch the folders asked for now (after a tree change), drop the others;
        the names newly watched."""
        wanted = self.wanted_mailboxes()
        if len(wanted) > MAX_WATCHED:
            if initial:
                raise R.NOTIFY_TOO_MANY.error()
            self.overflow = True
            return []
        for name in [n for n in self.watched if n not in wanted]:
            self._unwatch(name)
        adding = [name for name in wanted if name not in self.watched]
        added = [name for name in adding if self._watch(name)]
        self._missing = len(added) < len(adding)     # deleted meanwhile: look again
        return added

    def _watch(self, name):
        try:
            view = self.handler.open_view(self.address, name, readonly=True)
        except StoreError:
            return False        # deleted meanwhile: the tree's next look says so
        try:
            waiter = self.handler.watch(view)
        except BaseException:
            self.handler.close_view(view)
            raise
        self.watched[name] = (view, waiter)
        if FLAG_CHANGE in self._events_for(name):
            # without CONDSTORE a flag change is said when UNSEEN moves: from what, known
            # from the start (else the first \Flagged was said as an UNSEEN change)
            self._measure_unseen(name)
        return True

    def _measure_unseen(self, name):
        """Take the UNSEEN count of a watched mailbox as the one the client knows."""
        try:
            self._unseen[name] = self.handler.status(self.address, name).unseen
        except StoreError:
            self._unseen.pop(name, None)    # deleted meanwhile: the tree's next look says so

    def _unwatch(self, name):
        view, _ = self.watched.pop(name)
        self.handler.unwatch(view)
        self.handler.close_view(view)
        self._unseen.pop(name, None)

    def follow_selected(self):
        """Watch the session's selected mailbox (whichever it is now: SELECT, EXAMINE
        and UNSELECT do not tell us) when selected events are asked."""
        mailbox = self.session.mailbox
        view = mailbox.view if mailbox is not None and self.spec.selected else None
        if view is self._selected:
            return
        if self._selected is not None:
            # its view may be closed already (UNSELECT): only its Waiter goes now
            old, self._selected = self._selected, None
            self.handler.unwatch(old)
        if view is not None:
            self.handler.watch(view)
            self._selected = view

    def close(self):
        """Stop watching (a new NOTIFY, the end of the session)."""
        if self._closed:
            return
        try:
            if self.tree is not None:
                self.tree.close()
            if self._selected is not None:
                self.handler.unwatch(self._selected)
                self._selected = None
            for name in list(self.watched):
                self._unwatch(name)
        finally:
            with self._signal_lock:
                self._closed = True
                os.close(self._efd)

    # -- the first STATUS (NOTIFY SET STATUS) ------------------------------------------
    def initial_status(self):
        """STATUS lines (bytes) of every watched mailbox but the selected one (3.1)."""
        mailbox = self.session.mailbox
        selected = mailbox.name if mailbox is not None else None
        out = []
        for name in sorted(self.watched):
            if name == selected:
                continue
            events = self._events_for(name)
            items = []
            if events & {MESSAGE_NEW, MESSAGE_EXPUNGE}:
                items.append("MESSAGES")
            if MESSAGE_NEW in events:
                items += ["UIDNEXT", "UIDVALIDITY"]
            if FLAG_CHANGE in events or self._condstore():
                items += ["UIDVALIDITY", "HIGHESTMODSEQ"]
            items.append("UNSEEN")
            try:
                out.append(self._status(name, list(dict.fromkeys(items))))
            except StoreError:
                continue
        return out

    def _condstore(self):
        return "CONDSTORE" in self.session.enabled

    def _status(self, name, items):
        status = self.handler.status(self.address, name)
        self._unseen[name] = status.unseen
        body = " ".join(f"{item} {getattr(status, STATUS_ITEMS[item])}" for item in items)
        return b"* STATUS %s (%s)\r\n" % (wire_name(name, self.session.utf8), body.encode())

    # -- the updates -------------------------------------------------------------------
    def flush(self, allow_expunge, poll=False, own_new=False):
        """Send what changed (see the module doc).  `allow_expunge`: EXPUNGE may be
        said now (RFC 3501 7.4.1); `poll`: look for other processes' changes too (also
        done every POLL seconds); `own_new`: the command that just ended added messages
        itself (APPEND, COPY, MOVE): no fetch-atts for new messages (5.2 SHOULD NOT)."""
        if self._closed:
            return
        self.follow_selected()
        session, out = self.session, []
        if not poll and time.monotonic() - self._last_poll >= POLL:
            poll = True
        if poll:
            self._last_poll = time.monotonic()
        if self.tree is not None:
            try:
                lines, changed = self.tree.updates(poll)
                out += lines
                if changed or self._missing:
                    # a mailbox come into scope (created, created again with a new
                    # UIDVALIDITY, subscribed, renamed): its counters, as 5.1 asks for
                    # a new UIDVALIDITY
                    out += self._new_status(self._update_watches())
            except (StoreError, OSError):
                # the tree could not be read now: the next look tries again
                log.warning("NOTIFY: the folder tree of %s could not be read", self.address,
                            exc_info=True)
        if self.overflow or (self.tree is not None and self.tree.overflow):
            if out:
                session.send(b"".join(out))
            self._give_up()
            return
        out += self._mailbox_updates(poll)
        if out:
            session.send(b"".join(out))
        self._selected_updates(allow_expunge, own_new)

    def _give_up(self):
        """5.8: too much to tell: say so and behave as after NOTIFY NONE."""
        session = self.session
        session.send(R.NOTIFY_OVERFLOW.untagged())
        self.close()
        session.notifier = Notifier(session, NotifySpec())

    def _selected_updates(self, allow_expunge, own_new=False):
        session, events = self.session, self.spec.selected
        mailbox = session.mailbox
        if mailbox is None or not events:
            return
        # EXISTS, the FETCH of the fetch-atts asked, then the contexts' ESEARCH (7);
        # when the mailbox is gone nothing: the session says BYE
        send_updates(session, allow_expunge, flags=FLAG_CHANGE in events,
                     notify_fetch=self.spec.fetch, own_new=own_new)

    def _mailbox_updates(self, everything):
        """STATUS lines of the watched mailboxes that changed."""
        signalled, self._dirty = self._dirty, set()
        mailbox = self.session.mailbox
        selected = mailbox.name if mailbox is not None else None
        if selected is not None:
            # said as the selected group asks (or not, 3.1): followed after each
            # command, so that none (its own STORE too) is a STATUS once deselected
            signalled.add(selected)
        names = list(self.watched) if everything else [n for n in signalled if n in self.watched]
        out = []
        for name in names:
            view, _ = self.watched[name]
            try:
                changes = view.changes()
            except (StoreError, OSError):
                log.warning("NOTIFY: %s could not be read", name, exc_info=True)
                continue
            if changes.gone:
                # deleted (the tree says so), or deleted and created again (a new
                # UIDVALIDITY: 5.1 asks it be said)
                self._unwatch(name)
                if self._watch(name):
                    out += self._new_status([name])
                else:
                    self._missing = True
                continue
            for uid in changes.expunged:
                view.forget(uid)
            if name == selected and changes.flags and name in self._unseen:
                self._measure_unseen(name)
            if name == selected or not changes:
                continue
            line = self._event_status(name, changes)
            if line:
                out.append(line)
        return out

    def _new_status(self, names):
        """STATUS lines of mailboxes newly watched (not the selected one)."""
        mailbox = self.session.mailbox
        out = []
        for name in names:
            if mailbox is None or name != mailbox.name:
                try:
                    out.append(self._status(name, ["MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN"]))
                except StoreError:
                    continue
        return out

    def _event_status(self, name, changes):
        events = self._events_for(name)
        items = []
        if (changes.new and MESSAGE_NEW in events) or (changes.expunged and MESSAGE_EXPUNGE in events):
            items += ["MESSAGES", "UIDNEXT"]
        if FLAG_CHANGE in events and changes.flags:
            items.append("UIDVALIDITY")
        if not items:
            return None
        items.append("UNSEEN")
        if self._condstore():
            items.append("HIGHESTMODSEQ")
        try:
            if items == ["UIDVALIDITY", "UNSEEN"]:
                # a flag change without CONDSTORE is said by UNSEEN alone (5.1)
                if self.handler.status(self.address, name).unseen == self._unseen.get(name):
                    return None
            return self._status(name, items)
        except StoreError:
            return None
