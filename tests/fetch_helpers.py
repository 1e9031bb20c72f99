"""Helpers of the FETCH tests (test_imap_fetch.py, test_imap_fetch_strict.py,
test_imap_fetch_cache.py, test_imap_fetch_content.py): a message as the folder view's
Message value gives it, with its content and a count of its reads, and render_fetch over
parsed items; the autouse fixture that closes the folders of a session test's store; a
record of the messages a handler reads."""

import calendar
import pathlib

import pytest

from clevermail.imap.fetch import render_fetch
from clevermail.imap.fetch_items import parse_fetch_items

DATA = pathlib.Path(__file__).parent / "data" / "messages"
# RFC 3501's INTERNALDATE example instant.
T0 = calendar.timegm((1996, 7, 17, 9, 44, 25))
def load(name):
    return (DATA / name).read_bytes().replace(b"\n", b"\r\n")


class Msg:
    """A message as the folder view's Message value gives it (seq, uid, flags as a
    frozenset of names, internaldate, size), with its content for read(), which
    counts the reads."""

    def __init__(self, raw=b"", uid=7, flags=("\\Seen", "$Forwarded"), internaldate=T0, seq=1):
        self._raw, self.seq, self.uid, self.flags = raw, seq, uid, frozenset(flags)
        self.internaldate, self.size = internaldate, len(raw)
        self.raw_calls = 0


def read(msg):
    """The file handler's read_message, for a Msg."""
    msg.raw_calls += 1
    return msg._raw


def fetch(items, msg, **kw):
    return render_fetch(parse_fetch_items(items), msg, read, **kw)


@pytest.fixture(autouse=True)
def folders_closed(request):
    """After a session test (one using the `handler` fixture of imap_helpers), the
    folders its store holds and the FETCH journals are closed: their descriptors (the
    flock file, the uidlist, the modseq log, the journal) stay open for the life of the
    process otherwise, and the whole suite comes near the 1,024 select() can take."""
    handler = request.getfixturevalue("handler") if "handler" in request.fixturenames else None
    yield
    if handler is not None:     # the sessions have ended (open_session was set up later)
        folders = handler.store.folders
        for held in (folders.in_use, folders._unused):
            for folder in list(held.values()):
                folder.close()
        handler.fetch_cache.close()


def record_reads(handler, monkeypatch):
    """The UIDs whose file `handler` reads from now on, in order (a list that grows)."""
    seen = []
    original = handler.read_message

    def read_message(view, msg):
        seen.append(msg.uid)
        return original(view, msg)
    monkeypatch.setattr(handler, "read_message", read_message)
    return seen
