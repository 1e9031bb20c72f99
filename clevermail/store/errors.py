"""Store errors: raised by the store and file handlers, mapped to replies by sessions."""


class StoreError(Exception):
    """Base class of everything the store raises on purpose."""


class InvalidName(StoreError):
    """An untrusted name (user, folder) that cannot become a path."""


class NoSuchFolder(StoreError):
    """The folder does not exist."""


class FolderExists(StoreError):
    """CREATE or RENAME onto an existing folder."""


class FolderInUse(StoreError):
    """The folder or maildrop is held exclusively by another session (POP3)."""


class MessageGone(StoreError):
    """The message was expunged by someone else."""
