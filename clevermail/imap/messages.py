"""IMAP commands of the selected state (RFC 3501 6.4): CHECK, CLOSE, EXPUNGE, SEARCH,
FETCH, STORE, COPY, UID, plus UNSELECT (RFC 3691), MOVE (RFC 6851) and UID EXPUNGE
with COPYUID (RFC 4315).

Message sets are resolved against the session's own folder view (store/view.py,
rendered by mailbox.py); every change goes through the file handler
(imap/handler.py), and nothing is sent to the socket while the store works.  A mix-in
of IMAPSession: `self` is the session.
"""

from ..store.errors import MessageGone, NoSuchFolder
from .fetch import parse_fetch_items, render_fetch, render_index_only
from .mailboxes import mailbox_name
from .parser import Atom, flag_list
from .replies import IMAPBad, IMAPNo
from .search import parse_search
from .seqset import parse_sequence_set


class _SearchContext:
    __slots__ = ("max_seq", "max_uid")

    def __init__(self, max_seq, max_uid):
        self.max_seq, self.max_uid = max_seq, max_uid


def uid_set_text(uids):
    """Ascending UIDs -> compact IMAP set text ("1:3,7") for COPYUID/APPENDUID."""
    parts = []
    start = prev = None
    for uid in uids:
        if start is None:
            start = prev = uid
        elif uid == prev + 1:
            prev = uid
        else:
            parts.append(f"{start}:{prev}" if prev != start else str(start))
            start = prev = uid
    if start is not None:
        parts.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(parts)


class MessageCommands:
    # -- set resolution --------------------------------------------------------------
    def _seqs(self, token, uid_mode):
        """Sequence numbers named by a sequence set (message numbers or UIDs)."""
        if not isinstance(token, Atom):
            raise IMAPBad("Expected a sequence set")
        seqset = parse_sequence_set(token)
        view = self.mailbox.view
        if uid_mode:
            if not view.uids:
                return []
            return [view.seq_of(uid) for uid in seqset.resolve(view.uids, view.uids[-1])]
        if seqset.max_number() > len(view):
            raise IMAPBad("Invalid message sequence number")
        return list(seqset.iter(len(view)))

    # -- simple state changes ------------------------------------------------------------
    def cmd_CHECK(self, cmd):
        """Checkpoint: our writes are durable already, so just resync (RFC 3501 6.4.1)."""

    def cmd_CLOSE(self, cmd):
        """Expunge \\Deleted silently (unless read-only) and unselect (RFC 3501 6.4.2)."""
        view = self.mailbox.view
        if not view.readonly:
            self.server.handler.expunge_deleted(view)
        self._unselect()

    def cmd_UNSELECT(self, cmd):
        """Unselect without expunging (RFC 3691)."""
        self._unselect()

    def cmd_EXPUNGE(self, cmd):
        """Remove \\Deleted messages; EXPUNGE responses follow (RFC 3501 6.4.3)."""
        self._expunge(None)

    def _expunge(self, only_uids):
        view = self.mailbox.view
        if view.readonly:
            raise IMAPNo("Mailbox is read-only", code="READ-ONLY")
        self.server.handler.expunge_deleted(view, only_uids)

    # -- SEARCH ---------------------------------------------------------------------------
    def cmd_SEARCH(self, cmd):
        """Message numbers matching search keys (selected; RFC 3501 6.4.4)."""
        return self._search(cmd.args, uid_mode=False)

    def _search(self, args, uid_mode):
        program = parse_search(args)
        view = self.mailbox.view
        if program.flag_tests is not None:
            # The common client searches (UNSEEN, UNDELETED, ...) only test system
            # flags: the view answers them from the index, no per-message objects
            hits = view.flag_search(program.flag_tests, uids=uid_mode)
            if hits is not None:
                self.send(b"* SEARCH" + b"".join(b" %d" % n for n in hits) + b"\r\n")
                return
        ctx = _SearchContext(len(view), view.uids[-1] if view.uids else 0)
        hits = []
        for msg in view.messages(range(1, len(view) + 1)):
            try:
                if program.matches(msg, ctx):
                    hits.append(msg.uid if uid_mode else msg.seq)
            except (FileNotFoundError, MessageGone):
                continue  # expunged by someone else mid-search: not a match
        self.send(b"* SEARCH" + b"".join(b" %d" % n for n in hits) + b"\r\n")

    # -- FETCH ----------------------------------------------------------------------------
    def cmd_FETCH(self, cmd):
        """Message data items for a set (selected; RFC 3501 6.4.5)."""
        return self._fetch(cmd.args, uid_mode=False)

    def _fetch(self, args, uid_mode):
        if len(args) != 2:
            raise IMAPBad("FETCH takes a sequence set and data items")
        seqs = self._seqs(args[0], uid_mode)
        request = parse_fetch_items(args[1])
        if uid_mode:
            request.add_uid()
        view = self.mailbox.view
        if not request.needs_message:
            # FLAGS/UID/INTERNALDATE/RFC822.SIZE only (FETCH 1:* (UID FLAGS) on every
            # sync): straight from the index rows, no message file opened
            rows = view.index_rows(seqs)
            self.send_many(render_index_only(request, seqs, rows, view.recent, view.flag_names))
            if None in rows:
                raise IMAPNo("Some messages were expunged meanwhile and were not fetched", code="EXPUNGEISSUED")
            return
        messages = view.messages(seqs)
        seen_now = set()
        if request.sets_seen and not view.readonly:
            seen_now = self.server.handler.mark_seen(view, [m.uid for m in messages])
        missing = False

        def lines():
            nonlocal missing
            for msg in messages:
                try:
                    data = render_fetch(request, msg, extra_flags=msg.uid in seen_now)
                except (FileNotFoundError, MessageGone):
                    missing = True
                    continue
                yield b"* %d FETCH %s\r\n" % (msg.seq, data)
        self.send_many(lines())
        if missing or len(messages) < len(seqs):
            raise IMAPNo("Some messages were expunged meanwhile and were not fetched", code="EXPUNGEISSUED")

    # -- STORE ----------------------------------------------------------------------------
    def cmd_STORE(self, cmd):
        """Change flags; FETCH responses unless .SILENT (selected; RFC 3501 6.4.6)."""
        return self._store(cmd.args, uid_mode=False)

    def _store(self, args, uid_mode):
        if len(args) < 3 or not isinstance(args[1], Atom):
            raise IMAPBad("STORE takes a sequence set, a data item and flags")
        seqs = self._seqs(args[0], uid_mode)
        item = args[1].upper()
        silent = item.endswith(".SILENT")
        base = item[:-7] if silent else item
        modes = {"FLAGS": "=", "+FLAGS": "+", "-FLAGS": "-"}
        if base not in modes:
            raise IMAPBad(f"Unknown STORE data item {args[1]}")
        flags = flag_list(args[2]) if len(args) == 3 else [f for tok in args[2:] for f in flag_list(tok)]
        view = self.mailbox.view
        if view.readonly:
            raise IMAPNo("Mailbox is read-only", code="READ-ONLY")
        messages = view.messages(seqs)
        self.server.handler.set_flags(view, [m.uid for m in messages], flags, modes[base])
        if not silent:
            out = []
            for msg in messages:
                names = msg.flags       # as they are now, \\Recent included
                uid_part = b"UID %d " % msg.uid if uid_mode else b""
                out.append(b"* %d FETCH (%sFLAGS (%s))\r\n" % (msg.seq, uid_part, " ".join(names).encode()))
            self.send_many(out)
        if len(messages) < len(seqs):
            raise IMAPNo("Some messages were expunged meanwhile", code="EXPUNGEISSUED")

    # -- COPY / MOVE ----------------------------------------------------------------------
    def cmd_COPY(self, cmd):
        """Copy messages to another mailbox, COPYUID in the reply (RFC 3501 6.4.7, 4315)."""
        return self._copy(cmd.args, uid_mode=False, move=False)

    def cmd_MOVE(self, cmd):
        """Move messages: copy, then expunge them here (selected; RFC 6851)."""
        return self._copy(cmd.args, uid_mode=False, move=True)

    def _copy(self, args, uid_mode, move):
        if len(args) != 2:
            raise IMAPBad("Expected a sequence set and a mailbox name")
        seqs = self._seqs(args[0], uid_mode)
        target = mailbox_name(args[1])
        view = self.mailbox.view
        if move and view.readonly:
            raise IMAPNo("Mailbox is read-only", code="READ-ONLY")
        uids = [view.uid_at(s) for s in seqs]
        handler = self.server.handler
        try:
            validity, pairs = handler.copy(view, uids, self.account.address, target)
        except NoSuchFolder:
            raise IMAPNo("Mailbox does not exist", code="TRYCREATE") from None
        code = ""
        if pairs:
            code = f"[COPYUID {validity} {uid_set_text([p[0] for p in pairs])} {uid_set_text([p[1] for p in pairs])}] "
        if move:
            if code:
                self.send(f"* OK {code}Moved\r\n")
            handler.expunge(view, [p[0] for p in pairs])
            return "MOVE completed"
        return f"{code}COPY completed"

    # -- UID ------------------------------------------------------------------------------
    def cmd_UID(self, cmd):
        """UID FETCH/SEARCH/STORE/COPY/MOVE/EXPUNGE (selected; RFC 3501 6.4.8, 4315, 6851)."""
        if not cmd.args or not isinstance(cmd.args[0], Atom):
            raise IMAPBad("UID needs a command")
        sub, args = cmd.args[0].upper(), cmd.args[1:]
        if sub == "FETCH":
            self._fetch(args, uid_mode=True)
        elif sub == "SEARCH":
            self._search(args, uid_mode=True)
        elif sub == "STORE":
            self._store(args, uid_mode=True)
        elif sub in ("COPY", "MOVE"):
            return self._copy(args, uid_mode=True, move=sub == "MOVE")
        elif sub == "EXPUNGE":
            if len(args) != 1:
                raise IMAPBad("UID EXPUNGE takes a UID set")
            seqs = self._seqs(args[0], uid_mode=True)
            view = self.mailbox.view
            self._expunge({view.uid_at(s) for s in seqs})
        else:
            raise IMAPBad(f"Unknown UID command {cmd.args[0]}")
        return f"UID {sub} completed"
