"""IMAP commands of the authenticated state (RFC 3501 6.3): SELECT, EXAMINE, CREATE
(with CREATE-SPECIAL-USE, RFC 6154 3), DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST,
LSUB, STATUS, APPEND, plus NAMESPACE (RFC 2342) and ENABLE (RFC 5161), with CONDSTORE and QRESYNC's parts of them (RFC
7162: SELECT/EXAMINE parameters, STATUS HIGHESTMODSEQ, ENABLE; condstore.py reads and
says them), UTF8=ACCEPT's (RFC 6855: names in UTF-8, APPEND's "UTF8 (literal8)",
8-bit header fields refused without it) and IMAP4rev2's (rev2.py).  IDLE, allowed
here too, is idle.py.

Plain functions `cmd_x(session, cmd)` registered in IMAPSession.COMMANDS, which
checks the state before calling them.  What they use of the session: `account`,
`mailbox` (the SelectedMailbox or None), `recent_owned`, `server.handler` (the
IMAPFileHandler: every folder operation goes through it), `send`, `send_many`,
`select_mailbox` and `unselect`.  They return the text of the tagged OK (None: "<name>
completed") or raise an IMAPError (replies.py) or a store error.  Mailbox names are
decoded by names.py; the store validates them as paths.
"""

import functools
import re

from ..store.errors import NoSuchFolder
from ..store.paths import SEPARATOR
from . import binary, catenate, rev2
from . import replies as R
from . import cmd_quota as quota
from .condstore import changed_fetches, select_params, vanished_earlier, vanished_line
from .names import ListPattern, check_new_name, list_form, mailbox_name, wire_name
from .parser import Atom, Literal, Literal8, astring, flag_list, parse_datetime
from .seqset import uid_set_text
from .selected_mailbox import SelectedMailbox

_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
# STATUS item (RFC 3501 6.3.10) -> field of the store's FolderStatus
STATUS_ITEMS = {"MESSAGES": "messages", "RECENT": "recent", "UIDNEXT": "uidnext",
                "UIDVALIDITY": "uidvalidity", "UNSEEN": "unseen",
                "HIGHESTMODSEQ": "highestmodseq",     # RFC 7162 3.1.6
                "MAILBOXID": None,                   # RFC 8474 4.3: asked of the handler
                **quota.STATUS_ITEMS}    # SIZE, DELETED, DELETED-STORAGE, APPENDLIMIT
# ENABLE (RFC 5161) of ours -> what it turns on (QRESYNC implies CONDSTORE, RFC 7162 3.2.3)
# UTF8=ACCEPT (RFC 6855 3) and IMAP4rev2 (RFC 9051 Appendix A) are the session's own
ENABLES = {"CONDSTORE": ("CONDSTORE",), "QRESYNC": ("QRESYNC", "CONDSTORE"),
           "UTF8=ACCEPT": ("UTF8=ACCEPT",), "IMAP4REV2": ("IMAP4rev2",)}


def one_mailbox(session, cmd):
    """The folder name of a command that takes exactly one mailbox argument."""
    if len(cmd.args) != 1:
        raise R.ONE_MAILBOX_ARG.error(cmd.name)
    return mailbox_name(cmd.args[0], session.utf8)


# -- SELECT / EXAMINE ------------------------------------------------------------------
def cmd_select(session, cmd):
    """Open a mailbox read-write.
    States: authenticated, selected.
    RFC 3501 6.3.1."""
    return _select(session, cmd, readonly=False)


def cmd_examine(session, cmd):
    """Open a mailbox read-only.
    States: authenticated, selected.
    RFC 3501 6.3.2."""
    return _select(session, cmd, readonly=True)


def _select(session, cmd, readonly):
    if not cmd.args:
        raise R.ONE_MAILBOX_ARG.error(cmd.name)
    name = mailbox_name(cmd.args[0], session.utf8)
    params = select_params(cmd.args[1:], "QRESYNC" in session.enabled)
    if params.condstore:
        session.enabled.add("CONDSTORE")     # a CONDSTORE enabling SELECT (RFC 7162 3.1.8)
    # a failed SELECT leaves no mailbox selected (RFC 3501 6.3.1); the CLOSED code
    # marks where the old mailbox's responses end (RFC 7162 3.2.11)
    if session.mailbox is not None:
        session.unselect()
        session.send(b"* OK [CLOSED] Previous mailbox closed\r\n")
    handler = session.server.handler
    address = session.account.address
    view = handler.open_view(address, name, readonly, session.recent_owned.get((address, name), ()),
                             recent=not session.rev2)
    try:
        mailbox = SelectedMailbox(view, session.enabled)
        out = [mailbox.select_responses()]
        if session.rev2:
            out.append(rev2.list_line(session, name))      # RFC 9051 6.3.2
        resync = params.resync
        if resync is not None and resync.uidvalidity == view.uidvalidity:
            # RFC 7162 3.2.5.1: what vanished and what changed since the client's modseq
            out += vanished_line(vanished_earlier(view, resync.modseq, resync.known), earlier=True)
            out += changed_fetches(view, resync.modseq, resync.known)
        session.send_many(out)
    except BaseException:
        handler.close_view(view)
        raise
    session.select_mailbox(mailbox)
    return f"[{'READ-ONLY' if readonly else 'READ-WRITE'}] {cmd.name} completed"


# -- folder management -------------------------------------------------------------------
def cmd_create(session, cmd):
    """Create a mailbox and its missing superiors, with special-use attributes.
    States: authenticated, selected.
    RFC 3501 6.3.3, RFC 6154 3."""
    if not cmd.args:
        raise R.CREATE_ARGS.error()
    name = mailbox_name(cmd.args[0], session.utf8).rstrip(SEPARATOR)
    special_use = create_params(cmd.args[1:])
    if name.upper() == "INBOX":
        raise R.INBOX_EXISTS.error()
    check_new_name(name)
    handler = session.server.handler
    handler.create(session.account.address, name, special_use)
    return f"[MAILBOXID ({handler.mailbox_id(session.account.address, name)})] CREATE completed"


def create_params(args):
    """CREATE's arguments after the name (RFC 4466 create-params) -> the special-use
    attributes asked by `(USE (\\Attr ...))` (RFC 6154 3), as written; BAD for any
    other parameter or shape."""
    if not args:
        return ()
    if len(args) != 1 or not isinstance(args[0], list) or not args[0]:
        raise R.CREATE_ARGS.error()
    params, attrs, used = args[0], [], False
    for i in range(0, len(params), 2):
        word = params[i].upper() if isinstance(params[i], str) else None
        value = params[i + 1] if i + 1 < len(params) else None
        if word != "USE" or used or not isinstance(value, list):
            raise R.CREATE_ARGS.error()
        for attr in value:
            # use-attr: "\" atom (RFC 6154 6); which ones are supported is the store's
            if not isinstance(attr, str) or len(attr) < 2 or attr[0] != "\\":
                raise R.CREATE_ARGS.error()
            attrs.append(str(attr))
        used = True
    return tuple(attrs)


def cmd_delete(session, cmd):
    """Delete a mailbox; INBOX cannot be.
    States: authenticated, selected.
    RFC 3501 6.3.4."""
    name = one_mailbox(session, cmd)
    if name.upper() == "INBOX":
        raise R.INBOX_UNDELETABLE.error()
    if session.mailbox is not None and session.mailbox.name == name:
        session.unselect()
    session.server.handler.delete(session.account.address, name)


def cmd_rename(session, cmd):
    """Rename a mailbox with its inferiors; renaming INBOX moves its mail.
    States: authenticated, selected.
    RFC 3501 6.3.5."""
    if len(cmd.args) != 2:
        raise R.RENAME_ARGS.error()
    utf8 = session.utf8
    old, new = mailbox_name(cmd.args[0], utf8), mailbox_name(cmd.args[1], utf8).rstrip(SEPARATOR)
    if new.upper() == "INBOX":
        raise R.RENAME_TO_INBOX.error()
    check_new_name(new)
    mailbox = session.mailbox
    if mailbox is not None and old != "INBOX" and (mailbox.name == old or mailbox.name.startswith(old + SEPARATOR)):
        # its directory is about to move: release it rather than report it deleted
        session.unselect()
    session.server.handler.rename(session.account.address, old, new)
    if session.rev2 and old != "INBOX":
        # RFC 9051 6.3.9.7 (INBOX stays: its mail moved, 6.3.6)
        session.send(rev2.list_line(session, new, oldname=old))


def cmd_subscribe(session, cmd):
    """Add a name to the subscription list; it need not exist.
    States: authenticated, selected.
    RFC 3501 6.3.6."""
    session.server.handler.subscribe(session.account.address, one_mailbox(session, cmd), True)


def cmd_unsubscribe(session, cmd):
    """Remove a name from the subscription list.
    States: authenticated, selected.
    RFC 3501 6.3.7."""
    session.server.handler.subscribe(session.account.address, one_mailbox(session, cmd), False)


# -- LIST / LSUB -------------------------------------------------------------------------
def cmd_lsub(session, cmd):
    """List the subscribed names matching a reference and pattern.
    States: authenticated, selected.
    RFC 3501 6.3.9."""
    if len(cmd.args) != 2:
        raise R.LIST_ARGS.error(cmd.name)
    matcher = ListPattern(astring(cmd.args[0]), astring(cmd.args[1]))
    handler, address, utf8 = session.server.handler, session.account.address, session.utf8
    existing = {node.name for node in handler.folder_tree(address) if node.selectable}
    subscribed = handler.subscriptions(address)
    listed = {}
    for name in subscribed:
        if matcher.match(list_form(name, utf8)):
            listed[name] = "" if name in existing else "\\Noselect"
            continue
        # RFC 3501 6.3.9: "foo/bar" subscribed, "foo" not, and "%" matches "foo":
        # LSUB returns "foo" flagged \Noselect
        levels = name.split(SEPARATOR)
        for i in range(len(levels) - 1, 0, -1):
            parent = SEPARATOR.join(levels[:i])
            if parent not in subscribed and matcher.match(list_form(parent, utf8)):
                listed.setdefault(parent, "\\Noselect")
                break
    session.send_many(b"* LSUB (%s) \"%s\" %s\r\n" % (attrs.encode(), SEPARATOR.encode(), wire_name(name, utf8))
                      for name, attrs in listed.items())


# -- STATUS / APPEND ---------------------------------------------------------------------
def cmd_status(session, cmd):
    """Counters of a mailbox without selecting it.
    States: authenticated, selected.
    RFC 3501 6.3.10."""
    if len(cmd.args) != 2 or not isinstance(cmd.args[1], list) or not cmd.args[1]:
        raise R.STATUS_ARGS.error()
    items = []
    for tok in cmd.args[1]:
        item = tok.upper() if isinstance(tok, str) else None
        if item not in STATUS_ITEMS or (item == "RECENT" and session.rev2):
            raise R.UNKNOWN_STATUS_ITEM.error(tok)      # RFC 9051 has no RECENT item
        items.append(item)
    if "HIGHESTMODSEQ" in items:
        session.enable_condstore()      # a CONDSTORE enabling command (RFC 7162 3.1)
    tok = cmd.args[0]
    name = mailbox_name(tok, session.utf8) if isinstance(tok, list) else _name(tok, session.utf8)
    session.send(status_line(session, name, tuple(items)))


# A client asks STATUS of the same few mailboxes with the same items again and again:
# the name's decoding and spelling, and what each item reads, are kept (pure).
_name = functools.lru_cache(maxsize=1024)(mailbox_name)
_wire_name = functools.lru_cache(maxsize=1024)(wire_name)


@functools.lru_cache(maxsize=256)
def _status_plan(items):
    """A tuple of STATUS items -> ([(item, FolderStatus field or None: MAILBOXID)],
    whether cmd_quota's values are asked)."""
    return [(item, STATUS_ITEMS[item]) for item in items], any(i in quota.STATUS_ITEMS for i in items)


def status_line(session, name, items):
    """The STATUS response (bytes) of mailbox `name` with `items` (a tuple of
    STATUS_ITEMS keys); STATUS and LIST-STATUS (RFC 5819) send it."""
    handler, address = session.server.handler, session.account.address
    status = handler.status(address, name)
    plan, sizes = _status_plan(items)
    extra = quota.status_values(session, name, items) if sizes else {}   # sizes read only when asked
    parts = []
    for item, field in plan:
        if field is None:
            value = f"({handler.mailbox_id(address, name)})"
        else:
            value = extra[field] if field in extra else getattr(status, field)
        parts.append(f"{item} {value}")
    return b"* STATUS %s (%s)\r\n" % (_wire_name(name, session.utf8), " ".join(parts).encode())


def cmd_append(session, cmd):
    """Add messages (one, or several: MULTIAPPEND, all or none) with flags and dates.
    States: authenticated, selected.
    RFC 3501 6.3.11, RFC 3502, RFC 4315 (UIDPLUS), RFC 4469 (CATENATE)."""
    if len(cmd.args) < 2 or not isinstance(cmd.args[-1], (bytes, list)):
        raise R.APPEND_ARGS.error()
    tok = cmd.args[0]
    name = mailbox_name(tok, session.utf8) if isinstance(tok, list) else _name(tok, session.utf8)
    messages = append_messages(cmd.args[1:])
    handler = session.server.handler
    if any(isinstance(data, catenate.Parts) for data, _, _ in messages):
        try:
            handler.check_append_target(session.account.address, name)
        except NoSuchFolder:
            raise R.TRYCREATE.error() from None
        limit = session.server.limits.message_size
        messages = [(catenate.assemble(session, data, limit) if isinstance(data, catenate.Parts) else data,
                     names, date) for data, names, date in messages]
    if not session.utf8 and any(not _header(data).isascii() for data, _, _ in messages):
        # RFC 6855 4: a client that did not enable UTF-8 sends 7-bit header fields
        raise R.EIGHT_BIT_HEADER.error()
    # the selected mailbox's view: an APPEND to it claims the \Recent for it at once
    view = session.mailbox.view if session.mailbox is not None else None
    try:
        if len(messages) == 1:
            validity, uid = handler.append(session.account.address, name, *messages[0], view=view)
            uids = [uid]
        else:
            # every message is read and checked before any is stored (RFC 3502 6)
            validity, uids = handler.append_many(session.account.address, name, messages, view=view)
    except NoSuchFolder:
        raise R.TRYCREATE.error() from None
    return f"[APPENDUID {validity} {uid_set_text(uids)}] APPEND completed"


def _header(message):
    """The header section of a message in wire form (all of it without a blank line)."""
    end = _BLANK_LINE.search(message)
    return message[:end.start()] if end else message


def append_messages(args):
    """The arguments after the mailbox name -> [(message, flag names, date or None)]:
    each message a literal with an optional flag list and date-time before it
    (RFC 3502 append-message), or "UTF8 (literal8)" (RFC 6855 4); a lone quoted
    message is taken as RFC 3501 grammar allows.  Nothing is stored when one of them
    is wrong."""
    out, flags, date = [], None, None
    last = len(args) - 1
    catenated = set()                   # indexes of lists that are CATENATE's parts
    for i, tok in enumerate(args):
        if i in catenated:
            continue
        if isinstance(tok, Atom) and tok.upper() == "CATENATE" and i < last and isinstance(args[i + 1], list):
            # RFC 4469: the message is made of these parts when the command runs
            names = [f for f in (flags or []) if f.lower() != "\\recent"]
            out.append((catenate.Parts(catenate.parse_parts(args[i + 1])), names, date))
            catenated.add(i + 1)
            flags, date = None, None
            continue
        if isinstance(tok, Atom) and tok.upper() == "UTF8" and i < last and isinstance(args[i + 1], list):
            # RFC 6855 4: the message, its header fields maybe UTF-8, as a literal8
            inner = args[i + 1]
            if len(inner) != 1 or not isinstance(inner[0], Literal):
                raise R.UTF8_APPEND_ARGS.error()
            tok = inner[0]
            catenated.add(i + 1)
        if isinstance(tok, Literal) or (i == last and isinstance(tok, bytes) and not out):
            if not tok:
                raise R.EMPTY_MESSAGE.error()
            if isinstance(tok, Literal8):
                tok = binary.storable(tok)      # NULs, bare CR/LF: such parts become base64
            # \Recent is the server's to set (RFC 3501 2.3.2)
            names = [f for f in (flags or []) if f.lower() != "\\recent"]
            out.append((tok, names, date))
            flags, date = None, None
        elif isinstance(tok, list):
            if flags is not None or date is not None:
                raise R.APPEND_TOO_MANY.error()
            flags = flag_list(tok)
        elif date is None:
            date = parse_datetime(tok)
        else:
            raise R.APPEND_TWO_DATES.error()
    if flags is not None or date is not None or not out:
        raise R.APPEND_ARGS.error()
    return out


# -- small extensions ----------------------------------------------------------------------
def cmd_namespace(session, cmd):
    """One personal namespace, no others.
    States: authenticated, selected.
    RFC 2342."""
    session.send(f'* NAMESPACE (("" "{SEPARATOR}")) NIL NIL\r\n')


def cmd_enable(session, cmd):
    """Enable CONDSTORE, QRESYNC, UTF8=ACCEPT, IMAP4rev2; ENABLED lists those turned on.
    States: authenticated, selected.
    RFC 5161, RFC 7162 3.1 and 3.2.3, RFC 6855 3, RFC 9051 Appendix A."""
    if not cmd.args:
        raise R.ENABLE_ARGS.error()
    newly, condstore = [], False
    for tok in cmd.args:
        word = tok.upper() if isinstance(tok, Atom) else None
        for cap in ENABLES.get(word, ()):
            if cap == "CONDSTORE":
                condstore = True
                if cap == word and cap not in session.enabled and cap not in newly:
                    newly.append(cap)
            elif cap not in session.enabled:
                session.enabled.add(cap)
                newly.append(cap)
    session.send(b"* ENABLED" + b"".join(b" " + c.encode() for c in newly) + b"\r\n")
    if condstore:
        session.enable_condstore()      # then HIGHESTMODSEQ when a mailbox is selected
