"""What the file handlers need from the store, declared once (typing.Protocol).

MailStore (store/mailstore.py) satisfies every Protocol here; the file handlers
annotate their `store` with them, so an editor can follow a message from a protocol
session through its handler into the store, and a reader sees the whole surface a
protocol may use.  A session never gets a Folder: it gets a FolderView
(store/view.py) from its handler and hands it back to the handler to change anything.
"""

from typing import Protocol

from .folder import Folder
from .tree import TreeListing
from .tree_events import TreeEvents


class MailboxTree(Protocol):
    """A user's folders by name (IMAP CREATE/DELETE/RENAME/LIST/LSUB/SUBSCRIBE)."""

    def ensure_user(self, address: str) -> str: ...
    def user_root(self, address: str) -> str: ...
    def folder_path(self, address: str, name: str) -> str: ...
    def folder_exists(self, address: str, name: str) -> bool: ...
    def list_folders(self, address: str) -> list: ...
    def create_folder(self, address: str, name: str, special_use: tuple = ()) -> None: ...
    def special_use(self, address: str) -> dict: ...
    def folder_listing(self, address: str) -> TreeListing: ...    # both at once; one object while unchanged
    def delete_folder(self, address: str, name: str) -> None: ...
    def rename_folder(self, address: str, old: str, new: str) -> None: ...
    def subscriptions(self, address: str) -> list: ...
    def subscribe(self, address: str, name: str, on: bool = True) -> None: ...
    tree_events: TreeEvents     # the changes above, told to listeners (IMAP NOTIFY)
    def watch_tree(self, address: str) -> object: ...   # any process's changes (or None)


class FolderSource(Protocol):
    """Shared Folder objects, opened and released in pairs (the handler wraps them in
    a FolderView before a session sees them)."""

    def open_folder(self, address: str, name: str) -> Folder: ...
    def release_folder(self, folder: Folder) -> None: ...


class IMAPStore(MailboxTree, FolderSource, Protocol):
    """Everything IMAPFileHandler (imap/handler.py) asks of the store."""


class POP3Store(FolderSource, Protocol):
    """Everything POP3FileHandler (pop3/handler.py) asks of the store: the user's
    root (for the maildrop lock file) and the INBOX folder."""

    def ensure_user(self, address: str) -> str: ...


class PendingCopy(Protocol):
    """A prepared, fsynced, still invisible message (store/delivery.PendingDelivery):
    commit() makes it visible durably, abort() takes back a prepare or a commit;
    after commit(), `committed` holds each copy's file path, in the addresses' order,
    and copies() gives (address, folder name, file path) of each."""

    committed: list

    def commit(self) -> None: ...
    def abort(self) -> None: ...
    def copies(self) -> list: ...


class LocalDelivery(Protocol):
    """Everything SMTPFileHandler (smtp/handler.py) and the relay worker (through
    service.py's local_deliver) ask of the store: the one final-delivery path, which
    adds Return-Path: <sender> (RFC 5321 4.4; <> for a null sender)."""

    def prepare_local(self, sender: str, addresses: list, *parts: bytes,
                      clean: bool = False, folder: str | None = None,
                      flags: tuple = ()) -> PendingCopy: ...
    def deliver_local(self, sender: str, addresses: list, data: bytes) -> None: ...
