"""IMAP commands of the authenticated state (RFC 3501 6.3): SELECT, EXAMINE, CREATE,
DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB, STATUS, APPEND, plus NAMESPACE
(RFC 2342), ENABLE (RFC 5161) and IDLE (RFC 2177).

Mailbox names arrive in modified UTF-7 (RFC 3501 5.1.3) and are decoded here; the
store validates them as paths.  A mix-in of IMAPSession: `self` is the session.
"""

import os
import re
import select
import time

from ..store import SPECIAL_USE
from ..store.errors import NoSuchFolder
from ..store.paths import SEPARATOR
from ..wire import LineTooLong
from . import utf7
from .mailbox import SelectedMailbox
from .parser import astring, flag_list, parse_datetime, quote
from .replies import IMAPBad, IMAPBye, IMAPNo

# STATUS item (RFC 3501 6.3.10) -> field of the store's FolderStatus
STATUS_ITEMS = {"MESSAGES": "messages", "RECENT": "recent", "UIDNEXT": "uidnext",
                "UIDVALIDITY": "uidvalidity", "UNSEEN": "unseen"}
IDLE_POLL = 30.0      # seconds between checks for changes made by other processes


def mailbox_name(tok):
    """A client's mailbox argument -> the folder name (INBOX normalised)."""
    raw = astring(tok)
    try:
        name = utf7.decode(raw)
    except ValueError:
        raise IMAPNo("Mailbox name is not valid modified UTF-7", code="CANNOT") from None
    if name.upper() == "INBOX" or name.upper().startswith("INBOX" + SEPARATOR):
        name = "INBOX" + name[5:]
    return name


def wire_name(name):
    return quote(utf7.encode(name))


class ListPattern:
    """A LIST/LSUB reference + pattern, matched against wire (mUTF-7) names.

    '*' matches anything, '%' anything but the separator.  INBOX is case-insensitive
    (RFC 3501 5.1): the pattern's leading literal letters, when they spell the start of
    INBOX, match INBOX whatever their case ("inbox", "inb*", "Inbox/Sub"); other names
    match case-sensitively."""

    def __init__(self, reference, pattern):
        full = reference + pattern if not pattern.startswith(SEPARATOR) or not reference else pattern
        out = []
        for ch in full:
            if ch == "*":
                out.append(".*")
            elif ch == "%":
                out.append(f"[^{re.escape(SEPARATOR)}]*")
            else:
                out.append(re.escape(ch))
        self.regex = re.compile("".join(out) + r"\Z", re.DOTALL)
        head = re.match(r"[^*%]*", full).group()[:5]
        self.head = head if "INBOX".startswith(head.upper()) else ""

    def match(self, wire):
        if self.regex.match(wire):
            return True
        head = self.head
        if head and (wire == "INBOX" or wire.startswith("INBOX" + SEPARATOR)):
            return bool(self.regex.match(head + wire[len(head):]))
        return False


def list_attributes(node):
    """LIST attributes of a folder-tree node: CHILDREN (RFC 3348), \\Noselect for a
    missing parent (RFC 3501 6.3.8), SPECIAL-USE (RFC 6154)."""
    attrs = ["\\HasChildren" if node.children else "\\HasNoChildren"]
    if not node.selectable:
        attrs.append("\\Noselect")
    if node.name in SPECIAL_USE:
        attrs.append(SPECIAL_USE[node.name])
    return attrs


def pattern_regex(reference, pattern):
    """LIST reference + pattern -> an object whose match(wire_name) says if it matches."""
    return ListPattern(reference, pattern)


class MailboxCommands:
    # -- SELECT / EXAMINE ------------------------------------------------------------
    def cmd_SELECT(self, cmd):
        """Open a mailbox read-write (authenticated or selected; RFC 3501 6.3.1)."""
        return self._select(cmd, readonly=False)

    def cmd_EXAMINE(self, cmd):
        """Open a mailbox read-only (authenticated or selected; RFC 3501 6.3.2)."""
        return self._select(cmd, readonly=True)

    def _select(self, cmd, readonly):
        if len(cmd.args) != 1:
            raise IMAPBad(f"{cmd.name} takes one mailbox name")
        name = mailbox_name(cmd.args[0])
        self._unselect()
        handler = self.server.handler
        address = self.account.address
        view = handler.open_view(address, name, readonly, self.recent_owned.get((address, name), ()))
        try:
            mailbox = SelectedMailbox(view)
            self.send(mailbox.select_responses(view.can_add_keywords()))
        except BaseException:
            handler.close_view(view)
            raise
        self.mailbox = mailbox
        self.state = "selected"
        return f"[{'READ-ONLY' if readonly else 'READ-WRITE'}] {cmd.name} completed"

    # -- folder management -----------------------------------------------------------
    def cmd_CREATE(self, cmd):
        """Create a mailbox and missing superiors (authenticated; RFC 3501 6.3.3)."""
        if len(cmd.args) != 1:
            raise IMAPBad("CREATE takes one mailbox name")
        name = mailbox_name(cmd.args[0]).rstrip(SEPARATOR)
        if name.upper() == "INBOX":
            raise IMAPNo("INBOX always exists", code="ALREADYEXISTS")
        self.server.handler.create(self.account.address, name)

    def cmd_DELETE(self, cmd):
        """Delete a mailbox; INBOX cannot be (authenticated; RFC 3501 6.3.4)."""
        if len(cmd.args) != 1:
            raise IMAPBad("DELETE takes one mailbox name")
        name = mailbox_name(cmd.args[0])
        if name.upper() == "INBOX":
            raise IMAPNo("INBOX cannot be deleted", code="CANNOT")
        if self.mailbox is not None and self.mailbox.name == name:
            self._unselect()
        self.server.handler.delete(self.account.address, name)

    def cmd_RENAME(self, cmd):
        """Rename a mailbox with its inferiors; INBOX moves its mail (RFC 3501 6.3.5)."""
        if len(cmd.args) != 2:
            raise IMAPBad("RENAME takes two mailbox names")
        old, new = mailbox_name(cmd.args[0]), mailbox_name(cmd.args[1]).rstrip(SEPARATOR)
        if new.upper() == "INBOX":
            raise IMAPNo("Cannot rename to INBOX", code="ALREADYEXISTS")
        view = self.mailbox
        if view is not None and old != "INBOX" and (view.name == old or view.name.startswith(old + SEPARATOR)):
            # its directory is about to move: release it rather than report it deleted
            self._unselect()
        self.server.handler.rename(self.account.address, old, new)

    def cmd_SUBSCRIBE(self, cmd):
        """Add a name to the subscription list (authenticated; RFC 3501 6.3.6)."""
        if len(cmd.args) != 1:
            raise IMAPBad("SUBSCRIBE takes one mailbox name")
        self.server.handler.subscribe(self.account.address, mailbox_name(cmd.args[0]), True)

    def cmd_UNSUBSCRIBE(self, cmd):
        """Remove a name from the subscription list (authenticated; RFC 3501 6.3.7)."""
        if len(cmd.args) != 1:
            raise IMAPBad("UNSUBSCRIBE takes one mailbox name")
        self.server.handler.subscribe(self.account.address, mailbox_name(cmd.args[0]), False)

    # -- LIST / LSUB -----------------------------------------------------------------
    def cmd_LIST(self, cmd):
        """List mailboxes matching a pattern (authenticated; RFC 3501 6.3.8, 3348, 6154)."""
        if len(cmd.args) != 2:
            raise IMAPBad("LIST takes a reference and a mailbox pattern")
        reference, pattern = astring(cmd.args[0]), astring(cmd.args[1])
        if pattern == "":
            self.send(f'* LIST (\\Noselect) "{SEPARATOR}" ""\r\n')
            return None
        regex = pattern_regex(reference, pattern)
        lines = []
        for node in self.server.handler.folder_tree(self.account.address):
            if regex.match(utf7.encode(node.name)):
                lines.append(b"* LIST (%s) \"%s\" %s\r\n" % (" ".join(list_attributes(node)).encode(),
                                                          SEPARATOR.encode(), wire_name(node.name)))
        self.send_many(lines)

    def cmd_LSUB(self, cmd):
        """List subscribed names matching a pattern (authenticated; RFC 3501 6.3.9)."""
        if len(cmd.args) != 2:
            raise IMAPBad("LSUB takes a reference and a mailbox pattern")
        regex = pattern_regex(astring(cmd.args[0]), astring(cmd.args[1]))
        existing = {node.name for node in self.server.handler.folder_tree(self.account.address)
                    if node.selectable}
        subscribed = self.server.handler.subscriptions(self.account.address)
        listed = {}
        for name in subscribed:
            if regex.match(utf7.encode(name)):
                listed[name] = "" if name in existing else "\\Noselect"
                continue
            # RFC 3501 6.3.9: "foo/bar" subscribed, "foo" not, and "%" matches "foo":
            # LSUB returns "foo" flagged \Noselect
            levels = name.split(SEPARATOR)
            for i in range(len(levels) - 1, 0, -1):
                parent = SEPARATOR.join(levels[:i])
                if parent not in subscribed and regex.match(utf7.encode(parent)):
                    listed.setdefault(parent, "\\Noselect")
                    break
        self.send_many(b"* LSUB (%s) \"%s\" %s\r\n" % (attrs.encode(), SEPARATOR.encode(), wire_name(name))
                       for name, attrs in listed.items())

    # -- STATUS / APPEND -------------------------------------------------------------
    def cmd_STATUS(self, cmd):
        """Counters of a mailbox without selecting it (authenticated; RFC 3501 6.3.10)."""
        if len(cmd.args) != 2 or not isinstance(cmd.args[1], list) or not cmd.args[1]:
            raise IMAPBad("STATUS takes a mailbox name and a list of items")
        items = []
        for tok in cmd.args[1]:
            item = tok.upper() if isinstance(tok, str) else None
            if item not in STATUS_ITEMS:
                raise IMAPBad(f"Unknown STATUS item {tok!r}")
            items.append(item)
        name = mailbox_name(cmd.args[0])
        status = self.server.handler.status(self.account.address, name)
        body = " ".join(f"{item} {getattr(status, STATUS_ITEMS[item])}" for item in items)
        self.send(b"* STATUS %s (%s)\r\n" % (wire_name(name), body.encode()))

    def cmd_APPEND(self, cmd):
        """Add a message to a mailbox, with flags and date (RFC 3501 6.3.11, 4315)."""
        if len(cmd.args) < 2 or not isinstance(cmd.args[-1], bytes):
            raise IMAPBad("APPEND takes a mailbox, optional flags and date, and a message literal")
        name = mailbox_name(cmd.args[0])
        flags, date = [], None
        options = cmd.args[1:-1]
        if len(options) > 2:
            raise IMAPBad("Too many APPEND arguments")
        for opt in options:
            if isinstance(opt, list):
                flags = flag_list(opt)
            elif date is None:
                date = parse_datetime(opt)
            else:
                raise IMAPBad("APPEND takes one date")
        data = cmd.args[-1]
        if not data:
            raise IMAPNo("Refusing an empty message")
        flags = [f for f in flags if f.lower() != "\\recent"]
        try:
            validity, uid = self.server.handler.append(self.account.address, name, data, flags, date)
        except NoSuchFolder:
            raise IMAPNo("Mailbox does not exist", code="TRYCREATE") from None
        return f"[APPENDUID {validity} {uid}] APPEND completed"

    # -- small extensions ---------------------------------------------------------------
    def cmd_NAMESPACE(self, cmd):
        """One personal namespace, no others (authenticated; RFC 2342)."""
        self.send(f'* NAMESPACE (("" "{SEPARATOR}")) NIL NIL\r\n')

    def cmd_ENABLE(self, cmd):
        """Enable extensions; none of ours needs enabling (authenticated; RFC 5161)."""
        if not cmd.args:
            raise IMAPBad("ENABLE needs at least one capability")
        self.send(b"* ENABLED\r\n")

    # -- IDLE ---------------------------------------------------------------------------
    def cmd_IDLE(self, cmd):
        """Report changes as they happen until DONE (authenticated or selected; RFC 2177).

        The thread sleeps in poll() on the socket and an eventfd that the folder signals
        on every change, so an idle session costs no CPU and new mail shows at once."""
        if cmd.args:
            raise IMAPBad("IDLE takes no arguments")
        self.send(b"+ idling\r\n")
        efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        view = self.mailbox.view if self.mailbox is not None else None
        handler = self.server.handler

        def wake():
            os.eventfd_write(efd, 1)

        if view is not None:
            handler.watch(view, wake)
        poller = select.poll()
        poller.register(self.connection.fileno(), select.POLLIN)
        poller.register(efd, select.POLLIN)
        deadline = time.monotonic() + self.server.limits.timeout
        try:
            while True:
                if self.mailbox is not None:
                    updates = self.mailbox.updates(allow_expunge=True)
                    if self.mailbox.gone:
                        raise IMAPBye("Selected mailbox was deleted")
                    if updates:
                        self.send(b"".join(updates))
                if not self.reader.has_buffered():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise IMAPBye("Autologout; idle for too long")
                    events = poller.poll(min(remaining, IDLE_POLL) * 1000)
                    if not events:
                        continue
                    if any(fd == efd for fd, _ in events):
                        try:
                            os.eventfd_read(efd)
                        except BlockingIOError:
                            pass
                    if not any(fd != efd for fd, _ in events):
                        continue
                try:
                    line = self.reader.readline(self.line_limit)
                except LineTooLong:
                    raise IMAPBad("Expected DONE") from None
                if not line:
                    raise EOFError("connection closed during IDLE")
                if line.rstrip(b"\r\n").upper() == b"DONE":
                    return "IDLE terminated"
                raise IMAPBad("Expected DONE")
        finally:
            if view is not None:
                handler.unwatch(view, wake)
            os.close(efd)
