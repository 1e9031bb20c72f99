"""IMAPFileHandler: everything the IMAP server asks of storage.

Bound to IMAPServer as `server.handler` (the original's ImapFileHandler).  It speaks
store, never protocol: it takes folder names already decoded from modified UTF-7,
returns plain data, and raises store errors (NoSuchFolder, FolderExists, InvalidName)
that the session turns into NO responses.

The selected state is a store FolderView (store/view.py) that open_view() hands out
and close_view() takes back; every change a session makes to it (flags, expunge,
copy, the implicit \\Seen of a FETCH) goes through a method here, the content of a
message is read through read_message(), and IDLE watches it through
watch()/unwatch().  The session reads the view's numbering and its Message values
(uid, flag names, date, size), never an index row or the Folder behind it; STATUS and
APPEND are one-shot store calls (store/folder_ops.py).  What this handler asks of
the store is declared in store/api.py (IMAPStore).
"""

import os
from typing import NamedTuple

from ..store import SPECIAL_USE, FolderExists, NoSuchFolder
from ..store.api import IMAPStore
from ..store.paths import SEPARATOR
from ..store.folder_ops import append_message, appending, folder_status, mailbox_id, read_by_uid
from ..store.quota import folder_sizes
from ..store.special_use import canonical, check as check_special_use
from ..store.url_keys import UrlAuthKeys
from ..store.view import FolderView, Message, ViewMode, close_view, open_view
from .fetch_cache import FetchCache
from .fetch_journal import FILE_NAME as FETCH_JOURNAL
from .sortcache import SortCache


class TreeNode(NamedTuple):
    """One name of a user's folder tree: `selectable` is False for a missing parent of
    a nested folder; `children` when some folder lies below it; `special_use`: its
    special-use attributes (RFC 6154)."""
    name: str
    children: bool
    selectable: bool
    special_use: tuple = ()


class KeptFor:
    """Values derived from a source object, kept by key while the source is the very
    object they were made from (the store hands out the same immutable object while
    nothing changed); past `most` keys all are forgotten.  Shared by the sessions:
    single dict operations under the GIL."""

    def __init__(self, most=10000):
        self._most = most
        self._values = {}

    def get(self, key, source):
        """The value kept for `key` if it was made from `source`, else None."""
        kept = self._values.get(key)
        return kept[1] if kept is not None and kept[0] is source else None

    def put(self, key, source, value):
        if len(self._values) >= self._most:
            self._values.clear()
        self._values[key] = (source, value)


def _tree_nodes(names, uses):
    """folder_tree's nodes of a listing: `names` (INBOX first), `uses` their special-use
    attributes."""
    existing = set(names)
    every = set(names)
    for name in names:
        levels = name.split(SEPARATOR)
        for i in range(1, len(levels)):
            every.add(SEPARATOR.join(levels[:i]))
    parents = set()
    for name in every:
        if SEPARATOR in name:
            parents.add(name.rsplit(SEPARATOR, 1)[0])
    return tuple(TreeNode(name, name in parents, name in existing, uses.get(name, ()))
                 for name in sorted(every, key=lambda n: (n != "INBOX", n)))


class IMAPFileHandler:
    def __init__(self, store: IMAPStore, accounts):
        self.store = store
        self.accounts = accounts
        self.url_keys = UrlAuthKeys(store)
        self.sort_cache = SortCache()   # SORT/THREAD keys of messages, shared by sessions
        self.fetch_cache = FetchCache()     # FETCH metadata rendered once, shared too
        self._trees = KeptFor()     # address -> folder_tree's nodes, by the store's TreeListing
        # LIST's response lines by request, kept for the folder_tree they were made of
        # (cmd_list.py: a client lists the same way again and again)
        self.list_lines = KeptFor()

    # -- accounts -----------------------------------------------------------------
    def authenticate(self, username, password):
        """The Account for good credentials (mailbox tree made if new), else None."""
        account = self.accounts.authenticate(username, password)
        if account is not None:
            self.ready(account)
        return account

    def ready(self, account):
        """An account just logged in, whatever the way (a password, SCRAM): its
        mailbox tree made if new."""
        self.store.ensure_user(account.address)

    # -- folder tree ------------------------------------------------------------------
    def folder_tree(self, address):
        """(TreeNode, ...) for every folder plus the missing parents of nested ones (not
        selectable), INBOX first, then by name: one tuple shared by the sessions, the
        same object while the user's tree is unchanged (LIST keeps its lines for it:
        `list_lines`)."""
        listing = self.store.folder_listing(address)
        nodes = self._trees.get(address, listing)
        if nodes is None:
            nodes = _tree_nodes(listing.names, listing.special_use)
            self._trees.put(address, listing, nodes)
        return nodes

    def subscriptions(self, address):
        return self.store.subscriptions(address)

    def subscribe(self, address, name, on=True):
        self.store.subscribe(address, name, on)

    def create(self, address, name, special_use=()):
        """Create `name` and any missing superiors (RFC 3501 6.3.3); `special_use`: the
        attributes of `name` as the client wrote them (RFC 6154 3), SpecialUseError
        before anything is made when one is unsupported or taken."""
        self.store.folder_path(address, name)   # InvalidName before any superior is made
        special_use = canonical(special_use)
        if special_use:
            if self.store.folder_exists(address, name):
                raise FolderExists(name)        # that, rather than an attribute it has
            check_special_use(self.store.special_use(address), special_use)
        levels = name.split(SEPARATOR)
        for i in range(1, len(levels)):
            parent = SEPARATOR.join(levels[:i])
            if parent.upper() != "INBOX" and not self.store.folder_exists(address, parent):
                self.store.create_folder(address, parent)
        self.store.create_folder(address, name, special_use)    # checked again, under a lock

    def delete(self, address, name):
        # the subscription stays (RFC 3501 6.3.6: never removed unilaterally; LSUB and
        # LIST (SUBSCRIBED) show the name \Noselect / \NonExistent, RFC 5258 3.4)
        self.store.delete_folder(address, name)

    def rename(self, address, old, new):
        """Rename `old` (with inferiors) to `new`, making missing superiors of `new`;
        nothing is created unless the rename can happen."""
        self.store.folder_path(address, new)    # InvalidName first
        if not self.store.folder_exists(address, old):
            self.store.folder_path(address, old)
            raise NoSuchFolder(old)
        if self.store.folder_exists(address, new):
            raise FolderExists(new)
        levels = new.split(SEPARATOR)
        for i in range(1, len(levels)):
            parent = SEPARATOR.join(levels[:i])
            if parent.upper() != "INBOX" and not self.store.folder_exists(address, parent):
                self.store.create_folder(address, parent)
        self.store.rename_folder(address, old, new)

    # -- folders ---------------------------------------------------------------------
    def status(self, address, name):
        """FolderStatus (messages, recent, uidnext, uidvalidity, unseen) of a folder."""
        return folder_status(self.store, address, name)

    def append(self, address, name, data, flag_names, date, view=None):
        """Store a message in folder `name`; returns (UIDVALIDITY, UID) for APPENDUID.
        `view`: the session's selected FolderView, if any (the message's \\Recent
        is claimed for it in the same change when it is of that folder)."""
        self.store.folder_path(address, name)   # InvalidName, not "does not exist" (TRYCREATE)
        # NoSuchFolder when the store opens it (no stat of its own first); then
        # OverQuota (NO [OVERQUOTA]): stored with LF line ends, as the quota counts
        # it; the check and the write under the user's quota lock (store/quota.py)
        return append_message(self.store, address, name, data, flag_names, date, view,
                              guard=lambda: self.store.quota.reserving(
                                  address, lambda: len(data) - data.count(b"\r\n")))

    def check_append_target(self, address, name):
        """InvalidName for a name that can be no folder, NoSuchFolder (TRYCREATE) for
        one that does not exist: before a CATENATE reads its URLs (RFC 4469 5)."""
        self.store.folder_path(address, name)   # InvalidName, not "does not exist" (TRYCREATE)
        if not self.store.folder_exists(address, name):
            raise NoSuchFolder(name)

    # -- URLAUTH (RFC 4467): keys stay in the store, only signatures come out ----------
    def sign_url(self, address, name, rump):
        """The INTERNAL token of `rump` with the access key of `address`'s folder
        (NoSuchFolder when there is none)."""
        if not self.store.folder_exists(address, name):
            raise NoSuchFolder(name)
        return self.url_keys.sign(address, name, rump)

    def verify_url(self, address, name, rump, token):
        return self.url_keys.verify(address, name, rump, token)

    def reset_url_keys(self, address, name=None):
        """RESETKEY: new access keys for folder `name`, or all of the user's."""
        if name is not None and not self.store.folder_exists(address, name):
            raise NoSuchFolder(name)
        self.url_keys.reset(address, name)

    def read_url_message(self, address, name, uid, uidvalidity=None):
        """The message an IMAP URL names, in wire form (MessageGone, NoSuchFolder)."""
        return read_by_uid(self.store, address, name, uid, uidvalidity)
    def append_many(self, address, name, messages, view=None):
        """Store [(data, flag names, date)] in folder `name`, all or none (MULTIAPPEND,
        RFC 3502): each file written under tmp/ first, then all linked in at once.
        Returns (UIDVALIDITY, [UID]) in their order; `view` as append's."""
        self.store.folder_path(address, name)   # InvalidName first
        # NoSuchFolder (opening it), then all or none, the quota too: OverQuota
        # (NO [OVERQUOTA]) for the whole batch
        with appending(self.store, address, name, view) as appender, self.store.quota.reserving(
                address, lambda: sum(len(m[0]) - m[0].count(b"\r\n") for m in messages), len(messages)):
            uids, _dropped = appender.append_many(messages)
            return appender.view.uidvalidity, uids

    # -- the selected folder -------------------------------------------------------------
    def open_view(self, address, name, readonly, owned_recent=(), recent=True) -> FolderView:
        """A session's view of folder `name` (SELECT/EXAMINE); read-write views claim
        \\Recent.  `owned_recent`: what the session held when it last closed it;
        `recent`: False for a session without \\Recent (IMAP4rev2).
        Pair with close_view()."""
        mode = ViewMode.EXAMINE if readonly else ViewMode.SELECT
        return open_view(self.store, address, name, mode, owned_recent, recent)

    def close_view(self, view: FolderView):
        close_view(self.store, view)

    def mailbox_id(self, address, name):
        """The stable id of a folder (RFC 8474 MAILBOXID)."""
        return mailbox_id(self.store, address, name)

    def email_id(self, view: FolderView, msg: Message) -> str:
        """The stable id of a view's message (RFC 8474 EMAILID); MessageGone when it
        was expunged meanwhile."""
        return view.object_id(msg.uid)

    def read_message(self, view: FolderView, msg: Message) -> bytes:
        """The content of a view's message in wire form (CRLF); MessageGone (or
        FileNotFoundError) when it was expunged meanwhile."""
        return view.read_message(msg.uid)

    def fetch_memos(self, view: FolderView, address):
        """fetch_cache.FolderMemos of the view's folder for one FETCH: metadata rendered
        before by any session of any process on this data dir (the folder's journal,
        fetch_journal.py)."""
        return self.fetch_cache.folder(
            (address, view.name, view.uidvalidity),
            lambda: os.path.join(self.store.folder_path(address, view.name), FETCH_JOURNAL))

    def sort_keys(self, view: FolderView, address, uids):
        """sort.LazyKeys of `uids` of a view, in their order (None for one expunged
        meanwhile): from the shared cache, or read from the head of the message file
        (the header only) and kept there."""
        return self.sort_cache.keys_of_view(view, (address, view.name, view.uidvalidity), uids)

    def remember(self, view: FolderView, address, key, compute):
        """compute() (a SORT or THREAD result of the view's UIDs named in `key`) once per
        key and folder: the shared cache keeps the last few (sortcache.SortCache.memo)."""
        return self.sort_cache.memo((address, view.name, view.uidvalidity), key, compute)

    def set_flags(self, view: FolderView, uids, flag_names, mode):
        """STORE: mode '+' adds, '-' removes, '=' replaces the flags named; unknown
        keywords are defined unless removing.  Returns the UIDs whose flags changed."""
        return view.set_flags(uids, flag_names, mode)

    def set_flags_unchanged_since(self, view: FolderView, uids, flag_names, mode, modseq):
        """STORE (UNCHANGEDSINCE modseq), RFC 7162 3.1.3: set_flags() on the messages
        whose modseq is at most `modseq`; returns (UIDs changed, UIDs modified since)."""
        return view.set_flags_unchanged_since(uids, flag_names, mode, modseq)

    def mark_seen(self, view: FolderView, uids):
        """The implicit \\Seen of a FETCH BODY[] (RFC 3501 6.4.5); returns the UIDs that
        were not \\Seen before."""
        return view.mark_seen(uids)

    def expunge_deleted(self, view: FolderView, among=None):
        """Remove the view's \\Deleted messages (only those in `among` when given: UID
        EXPUNGE); returns the UIDs removed.  Chosen and removed under one folder lock:
        a \\Deleted cleared meanwhile by another session keeps its message."""
        return view.expunge_deleted(among)

    def expunge(self, view: FolderView, uids):
        """Remove `uids` whatever their flags (the second half of MOVE)."""
        return view.expunge(uids)

    def copy(self, view: FolderView, uids, address, target_name, move=False):
        """Copy `uids` of a view into `target_name` keeping flags (keywords are
        re-mapped to the target's letters); returns (UIDVALIDITY, [(old, new)]).
        OverQuota when the copies would take the user over quota.  For `move` (the
        first half of MOVE) the messages leave the user's other folder, so the one
        quota root's usage does not grow: refused only when the user is over quota
        already (a lowered limit), and never into the \\Trash folder, so that a user
        over quota can still clean up (as Dovecot's Trash rule allows)."""
        self.store.folder_path(address, target_name)   # InvalidName first
        if not self.store.folder_exists(address, target_name):
            raise NoSuchFolder(target_name)
        if move:
            if SPECIAL_USE.get(target_name) != "\\Trash":
                over = self.store.quota.over(address)
                if over is not None:
                    raise over
            return view.copy_to(uids, self.store, address, target_name)
        size, count = view.stored_size(uids)
        if not count:
            return view.copy_to(uids, self.store, address, target_name)
        with self.store.quota.reserving(address, size, count):
            return view.copy_to(uids, self.store, address, target_name)

    # -- quota (RFC 9208; cmd_quota.py) ------------------------------------------------
    def quota(self, address, name=None):
        """(Usage, QuotaLimits) of the user's one quota root: every folder.  `name`:
        the mailbox asked about (GETQUOTAROOT; it need not exist, InvalidName when
        it can be no folder)."""
        if name is not None:
            self.store.folder_path(address, name)
        return self.store.quota.usage(address), self.store.quota.limits(address)

    def folder_sizes(self, address, name):
        """FolderSizes of a folder (STATUS SIZE, DELETED, DELETED-STORAGE)."""
        return folder_sizes(self.store, address, name)

    def watch(self, view: FolderView):
        """The view's store.waiters.Waiter: woken by every change of its folder (IDLE),
        through a descriptor all the folder's waiters share.  Pair with unwatch()."""
        return view.watch()

    def unwatch(self, view: FolderView):
        view.unwatch()

    def listen_tree(self, address, callback):
        """Have `callback(store.tree_events.TreeEvent)` called for each change of the
        user's folders and subscriptions in this process (NOTIFY); it must only record
        and signal.  Pair with unlisten_tree()."""
        self.store.tree_events.listen(address, callback)

    def unlisten_tree(self, address, callback):
        self.store.tree_events.unlisten(address, callback)

    def tree_changing(self, address):
        """A change of the user's tree by this process is under way (listeners are
        called with None at its end)."""
        return self.store.tree_events.busy(address)

    def watch_tree(self, address):
        """Something with fileno() (readable once any process changed the user's
        folders or subscriptions), drain() and close(); None where that cannot be
        watched (then look from time to time)."""
        return self.store.watch_tree(address)
