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


class SpecialUseError(StoreError):
    """A special-use attribute the store does not support, or one that only one folder
    may carry already on another (`holder`: that folder's name; special_use.py)."""

    def __init__(self, attribute, holder=None):
        self.attribute, self.holder = attribute, holder
        why = "unsupported" if holder is None else f"already on {holder}"
        super().__init__(f"special-use attribute {attribute}: {why}")
