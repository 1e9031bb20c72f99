"""A FETCH of kept metadata over many messages made item by item
(clevermail/imap/fetch_columns.py): the same answer, byte for byte, as the per-message
way (fetch.fetch_response) gives it; taken only when every message has every value
kept, else the per-message way serves the whole FETCH; the keyword a line shows is
announced before it (FLAGS); a request it cannot make (a part's header, a partial, a
\\Seen-setting body, EMAILID) never takes it."""

import pytest

from clevermail.imap import fetch_columns
from clevermail.imap.fetch_items import parse_fetch_items
from clevermail.imap.parser import parse_command
from clevermail.store.view import FolderView
from imap_helpers import (  # noqa: F401 (client, handler, open_session, selected, store: fixtures)
    ALICE, append, client, deliver, handler, message, open_session, selected, store, two_logged_in)

# imaptest's bench FETCH items (client-state.c STATE_FETCH) and a client's message list
ITEMS = [
    "(UID FLAGS ENVELOPE INTERNALDATE BODY BODYSTRUCTURE RFC822.SIZE)",
    "(BODY.PEEK[HEADER.FIELDS (From To Cc Subject References In-Reply-To Message-ID)])",
    "(ENVELOPE BODY.PEEK[HEADER.FIELDS (Subject)] INTERNALDATE)",
    "(BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (From Cc)] BODY)",
    "(RFC822.HEADER UID)",
    "(BODY.PEEK[HEADER] FLAGS)",
    "(BODY.PEEK[HEADER.FIELDS.NOT (Date Subject)] MODSEQ RFC822.SIZE)",
    "(UID THREADID ENVELOPE)",
]


class Served(list):
    """How many lines of each FETCH the columns made (FETCHes with none left out);
    `off`: ColumnPlan.lines makes none (the per-message way answers every message)."""
    off = False


@pytest.fixture(name="columns")
def _columns(monkeypatch):
    served = Served()
    real = fetch_columns.ColumnPlan.lines

    def lines(self, messages, items_of):
        out = [None] * len(messages) if served.off else real(self, messages, items_of)
        made = sum(line is not None for line in out)
        if made:
            served.append(made)
        return out
    monkeypatch.setattr(fetch_columns.ColumnPlan, "lines", lines)
    return served


def _odd_messages(store):
    """Messages whose answers test the edges: a header longer than a large literal
    (fetch._BIG: the per-message way writes it apart), a NUL in a header (0x80 in a
    literal), no Subject (an empty HEADER.FIELDS answer is the blank line), a
    multipart with 8-bit text."""
    big = b"".join(b"X-Long-%d: %s\r\n" % (i, b"v" * 70) for i in range(80))
    store.deliver_local("", [ALICE], b"From: a@x.test\r\nSubject: long\r\n" + big + b"\r\nbody\r\n")
    store.deliver_local("", [ALICE], b"From: a@x.test\r\nSubject: n\x00ul\r\nCc: c@x.test\r\n\r\nbody\r\n")
    store.deliver_local("", [ALICE], b"From: nobody@x.test\r\n\r\nno subject\r\n")
    store.deliver_local("", [ALICE], (
        b"From: b@x.test\r\nTo: c@x.test\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        b"caf\xc3\xa9\r\n--zz\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n\r\nJVBERi0=\r\n--zz--\r\n"))


@pytest.mark.parametrize("items", ITEMS)
def test_the_columns_answer_as_the_per_message_way(open_session, store, columns, items):
    deliver(store, 3)
    _odd_messages(store)
    a, b = two_logged_in(open_session, select=True)
    if "MODSEQ" in items:       # (the first MODSEQ enables CONDSTORE: HIGHESTMODSEQ said once)
        b.expect("ENABLE CONDSTORE")
    a.expect("STORE 2 +FLAGS (\\Seen $Important)")
    a.expect(f"FETCH 1:7 {items}")          # rendered and kept one by one
    assert columns == []
    b.expect("NOOP")
    made = b.expect(f"FETCH 1:7 {items}").lines("* ")
    by_uid = b.expect(f"UID FETCH 2:6 {items}").lines("* ")
    assert columns == [7, 5]
    columns.off = True
    assert b.expect(f"FETCH 1:7 {items}").lines("* ") == made
    assert b.expect(f"UID FETCH 2:6 {items}").lines("* ") == by_uid
    assert [line.split(" ", 3)[1:3] for line in made] == [[str(n), "FETCH"] for n in range(1, 8)]


def test_a_message_without_its_values_kept_is_rendered_one_by_one(selected, store, columns):
    items = "(ENVELOPE BODY.PEEK[HEADER.FIELDS (Subject)])"
    selected.expect(f"FETCH 1:3 {items}")
    assert columns == []
    deliver(store, 1, start=4)
    selected.expect("NOOP")
    reply = selected.expect(f"FETCH 1:4 {items}")      # message 4 was never rendered
    assert columns == [3]
    assert [line.split(" ", 2)[1] for line in reply.lines("* ")] == ["1", "2", "3", "4"]
    assert "message 4" in reply.untagged[-1]
    again = selected.expect(f"FETCH 1:4 {items}")      # now all are kept
    assert columns == [3, 4]
    assert again.untagged == reply.untagged


def test_a_keyword_set_while_the_fetch_runs_is_announced_before_the_lines(open_session, store, columns,
                                                                          monkeypatch):
    deliver(store, 3)
    a, b = two_logged_in(open_session, select=True)
    items = "(FLAGS ENVELOPE)"
    b.expect(f"FETCH 1:3 {items}")
    # set by the other session after b's command began (its check of keywords before
    # every command found none), before b's FETCH reads the messages' flags
    real = FolderView.messages

    def messages(view, *args, **kw):
        if not setting:
            setting.append(a.expect("STORE 3 +FLAGS ($Urgent)"))
        return real(view, *args, **kw)
    setting = []
    monkeypatch.setattr(FolderView, "messages", messages)
    reply = b.expect(f"FETCH 1:3 {items}")
    assert setting and columns == [3]
    flags = [i for i, line in enumerate(reply.untagged) if line.startswith("* FLAGS ")]
    shown = [i for i, line in enumerate(reply.untagged) if "$Urgent" in line and " FETCH " in line]
    assert flags and shown and flags[0] < shown[0]
    assert "$Urgent" in reply.untagged[flags[0]]


def test_one_message_and_index_items_keep_their_own_ways(selected, columns):
    selected.expect("FETCH 1 (ENVELOPE)")
    selected.expect("FETCH 1 (ENVELOPE)")
    selected.expect("FETCH 1:3 (UID FLAGS RFC822.SIZE)")     # the index's columns (fetch_index.py)
    assert columns == []


@pytest.mark.parametrize("items", [
    "(BODY.PEEK[1.HEADER])", "(BODY.PEEK[HEADER]<0.10>)", "(BODY[HEADER.FIELDS (Subject)])",
    "(ENVELOPE EMAILID)", "(BODY.PEEK[TEXT])", "(RFC822)", "(BINARY.PEEK[1])",
])
def test_a_request_the_columns_cannot_make_has_no_plan(items):
    cmd = parse_command(f"a FETCH 1:* {items}".encode(), None, 1 << 20)
    assert fetch_columns.plan(parse_fetch_items(cmd.args[1])) is None


def test_a_request_of_kept_items_has_a_plan_that_needs_them():
    cmd = parse_command(b"a FETCH 1:* (UID ENVELOPE BODY.PEEK[HEADER.FIELDS (To)] BODY)", None, 1 << 20)
    got = fetch_columns.plan(parse_fetch_items(cmd.args[1]))
    assert got is not None and len(got.columns) == 4
    assert set(got.needs) == {"ENVELOPE", "BODY", ((), "HEADER", frozenset())}
