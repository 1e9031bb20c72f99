"""The actions a Sieve run returns (RFC 5228 4, and the extensions' actions), in
the order the script gave them; what final delivery (deliver.py) carries out.
A run's list always ends with the implicit keep when nothing cancelled it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Keep:
    flags: tuple = ()              # IMAP flag names (imap4flags), () for none
    implicit: bool = False


@dataclass(frozen=True)
class FileInto:
    mailbox: str
    flags: tuple = ()
    create: bool = False           # RFC 5490 :create


@dataclass(frozen=True)
class Redirect:
    address: str


@dataclass(frozen=True)
class Reject:
    reason: str
    extended: bool = False         # ereject (RFC 5429 2.1)


@dataclass(frozen=True)
class Vacation:
    reason: str
    days: int
    subject: str = None
    sender: str = None             # :from
    addresses: tuple = ()
    mime: bool = False
    handle: str = ""


@dataclass(frozen=True)
class Discard:
    """Recorded for the log only: it stores nothing."""
