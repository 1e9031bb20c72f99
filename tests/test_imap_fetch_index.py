"""Tests for clevermail.imap.fetch_index: FETCH of index items only (UID, FLAGS,
RFC822.SIZE, MODSEQ) rendered from the index's columns must give byte for byte what
the general renderer (render_index_only over FolderView.iter_messages) gives.

First pure, over columns made up here (numbers past the decimal table, keywords,
\\Recent, blocks); then sessions over socketpairs, where each FETCH is sent twice,
once as served and once with the columns refused (the general path), over varied
flags and keywords, \\Recent held by none, a few, many and all messages, MODSEQ with
CONDSTORE enabled, sequence and UID sets of one or several runs, and a message another
session expunged that this one was not told of yet.
"""

import itertools

import pytest

from clevermail.imap import cmd_selected, fetch_index
from clevermail.imap.fetch_index import render_columns, render_index_only
from clevermail.imap.fetch_items import FetchRequest
from clevermail.imap.fetch_items import parse_fetch_items
from clevermail.imap.parser import Atom
from clevermail.imap.seqset import parse_sequence_set
from clevermail.store.view_index import FlagKeyNames, index_columns
from imap_helpers import (  # noqa: F401 (handler, open_session, store: fixtures)
    ALICE, deliver, handler, open_session, store, two_logged_in)

ITEM_LISTS = [["UID", "FLAGS"], ["FLAGS"], ["FLAGS", "UID"], ["UID"], ["RFC822.SIZE", "UID"],
              ["UID", "FLAGS", "MODSEQ"], ["MODSEQ", "FLAGS", "RFC822.SIZE"], ["FLAGS", "MODSEQ", "UID"]]


class Columns:
    """What render_columns reads of store.view_index.IndexColumns, made up."""

    def __init__(self, rows, flag_names, ascending):
        self.seqs = [r[0] for r in rows] if not ascending else range(rows[0][0], rows[0][0] + len(rows))
        self.uids = [r[1] for r in rows]
        self.flag_keys = [r[2] for r in rows]
        self.flag_names = flag_names
        self._sizes = [r[3] for r in rows]
        self._modseqs = [r[4] for r in rows]
        self.ascending = ascending

    def __len__(self):
        return len(self.uids)

    def sizes(self):
        return self._sizes

    def modseqs(self):
        return self._modseqs


LETTERS = {"": (), "S": ("\\Seen",), "FS": ("\\Flagged", "\\Seen"), "Sa": ("\\Seen", "$Forwarded"),
           "ab": ("$Forwarded", "Junk"), "DRT": ("\\Draft", "\\Answered", "\\Deleted")}


def made_up_rows(start, count, uid_step, big=0):
    keys = itertools.cycle(["S", ("S", True), "", "FS", ("ab", True), "Sa", ("", True), "DRT"])
    return [(start + i, 1 + i * uid_step + big, next(keys), (i * 7919) % 100_000 + big, 1 + i * 3 + big)
            for i in range(count)]


def general(req, cols):
    names = cols.flag_names
    messages = [(seq, uid, names[key], 0, size, modseq) for seq, uid, key, size, modseq
                in zip(cols.seqs, cols.uids, cols.flag_keys, cols.sizes(), cols.modseqs())]
    return b"".join(render_index_only(req, messages))


@pytest.mark.parametrize("items", ITEM_LISTS)
@pytest.mark.parametrize("start,count,uid_step,big,ascending", [
    (1, 100, 1, 0, True), (1, 100, 3, 0, True), (5, 37, 2, 0, True), (1, 1, 1, 0, True),
    (1, 60, 1, 4_000_000_000, True),            # UIDs and sizes past the decimal table
    (1, 60, 1, 0, False)])
def test_columns_give_the_bytes_of_the_general_renderer(items, start, count, uid_step, big, ascending):
    rows = made_up_rows(start, count, uid_step, big)
    if not ascending:
        rows = rows[::-1]
    cols = Columns(rows, FlagKeyNames(lambda letters: LETTERS[letters], False), ascending)
    req = parse_fetch_items(items)
    expected = general(req, cols)
    for block in (7, 1 << 15):
        chunks = list(render_columns(req, cols, block=block))
        assert b"".join(chunks) == expected
        assert len(chunks) == -(-count // block)
    # a first chunk smaller than the rest (written while the rest is made)
    chunks = list(render_columns(req, cols, block=16, first=5))
    assert b"".join(chunks) == expected
    assert [c.count(b"\r\n") for c in chunks] == [min(count, 5)] + [16] * ((count - 5) // 16) + (
        [(count - 5) % 16] if count > 5 and (count - 5) % 16 else [])


def test_the_decimal_table_grows_and_stops_at_its_cap(monkeypatch):
    monkeypatch.setattr(fetch_index, "_DECIMALS", [])
    monkeypatch.setattr(fetch_index, "_DECIMALS_CAP", 1000)

    def decimals(numbers, ascending=False):
        return list(fetch_index._decimals(numbers, ascending))     # a list or a tuple
    assert decimals(range(5, 10)) == ["5", "6", "7", "8", "9"]
    assert len(fetch_index._DECIMALS) == 10 + 9 // 8
    assert decimals([990, 3], ascending=False) == ["990", "3"]
    assert len(fetch_index._DECIMALS) == 1000
    assert decimals([999, 1000, 123456]) == ["999", "1000", "123456"]   # past the cap
    assert decimals(range(998, 1002)) == ["998", "999", "1000", "1001"]
    assert decimals([]) == [] and len(fetch_index._DECIMALS) == 1000
    assert decimals([7]) == ["7"] and decimals([7], ascending=True) == ["7"]


@pytest.mark.parametrize("numbers", [[3, 4, 5, 6], [3, 5, 6, 7], [3, 4, 5, 7], [1, 2], [10, 20],
                                     [997, 998, 999, 1000], [2**40, 2**40 + 1]])
def test_ascending_numbers_in_a_run_or_not(monkeypatch, numbers):
    """A run of consecutive numbers is a slice of the table, others are looked up one
    by one: the same strings, inside the table, across its end and past it."""
    monkeypatch.setattr(fetch_index, "_DECIMALS_CAP", 1000)
    monkeypatch.setattr(fetch_index, "_DECIMALS", [])
    assert list(fetch_index._decimals(numbers, ascending=True)) == [str(n) for n in numbers]


def test_items_the_columns_do_not_give_are_left_to_the_general_renderer():
    cols = Columns(made_up_rows(1, 3, 1), FlagKeyNames(lambda letters: LETTERS[letters], False), True)
    assert render_columns(parse_fetch_items(["UID", "INTERNALDATE"]), cols) is None
    twice = FetchRequest(parse_fetch_items(["FLAGS"]).items * 2)      # the parser never makes one
    assert render_columns(twice, cols) is None


def test_flags_are_rendered_before_the_lines_are_taken():
    """A caller announces the keywords the lines show once render_columns returned: every
    flag set must be read by then, not while the chunks are joined."""
    asked = []

    def names(letters):
        asked.append(letters)
        return LETTERS[letters]
    cols = Columns(made_up_rows(1, 40, 1), FlagKeyNames(names, False), True)
    chunks = render_columns(parse_fetch_items(["UID", "FLAGS"]), cols, block=8)
    assert set(asked) == set(LETTERS)
    before = list(asked)
    assert next(chunks).startswith(b"* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent))\r\n")
    assert len(b"".join(chunks).splitlines()) == 40 - 8 and asked == before


def test_sequence_sets_as_ranges():
    assert parse_sequence_set(Atom("1:*")).numbers(5) == range(1, 6)
    assert parse_sequence_set(Atom("3,2,4:*")).numbers(5) == range(2, 6)
    assert parse_sequence_set(Atom("1,3,5:*")).numbers(6) == [1, 3, 5, 6]
    assert parse_sequence_set(Atom("7:9")).numbers(6) == []
    uids = [2, 5, 6, 9, 12]
    assert parse_sequence_set(Atom("1:*")).positions(uids, 12) == range(1, 6)
    assert parse_sequence_set(Atom("5:9")).positions(uids, 12) == range(2, 5)
    assert parse_sequence_set(Atom("1,6,12:*")).positions(uids, 12) == [3, 5]
    assert parse_sequence_set(Atom("13:20")).positions(uids, 12) == []
    for text in ("1:*", "2,4:7,11", "3:1", "*", "100"):
        s = parse_sequence_set(Atom(text))
        assert list(s.numbers(9)) == list(s.iter(9))
        assert list(s.positions(uids, 12)) == [uids.index(u) + 1 for u in s.resolve(uids, 12)]


# -- sessions: the columns against the general path ---------------------------------------------

def fetch_both(client, monkeypatch, command):
    """The FETCH lines of `command` as served, checked against those of the same
    command with the columns refused (other lines, such as the HIGHESTMODSEQ of a
    FETCH that enables CONDSTORE, come once)."""
    served = [line for line in client.expect(command).untagged if " FETCH (" in line]
    with monkeypatch.context() as m:
        m.setattr(cmd_selected, "index_columns", lambda view, seqs: None)
        general_ = [line for line in client.expect(command).untagged if " FETCH (" in line]
    assert served == general_, command
    return served


COMMANDS = ["FETCH 1:* (UID FLAGS)", "UID FETCH 1:* (FLAGS)", "FETCH 1:* (FLAGS)",
            "FETCH 2:5,9,30:* (FLAGS UID)", "UID FETCH 3:12 (FLAGS RFC822.SIZE)",
            "FETCH 1:* (UID FLAGS MODSEQ)", "UID FETCH 1:* (FLAGS MODSEQ)", "FETCH 7 (FLAGS)",
            "UID FETCH 10000:* (FLAGS)"]


def test_sessions_see_the_same_lines(open_session, store, monkeypatch):
    a, b = two_logged_in(open_session)
    deliver(store, 40)
    a.select()                      # takes \Recent of 1..40: all recent
    for command in COMMANDS[:3]:
        assert len(fetch_both(a, monkeypatch, command)) == 40
    b.select()                      # none of them recent for b
    b.expect("STORE 1:10 +FLAGS (\\Seen)")
    b.expect("STORE 5:15 +FLAGS (\\Flagged $Forwarded)")
    b.expect("STORE 12,14,20 +FLAGS (Junk \\Answered \\Draft)")
    b.expect("STORE 3 +FLAGS (\\Deleted)")
    for c in (a, b):
        c.expect("NOOP")
        for command in COMMANDS:
            fetch_both(c, monkeypatch, command)
    deliver(store, 2, start=41)     # a few new ones: b takes their \Recent
    b.expect("NOOP")
    assert "\\Recent" in fetch_both(b, monkeypatch, "FETCH 42 (FLAGS)")[0]
    for command in COMMANDS:
        fetch_both(b, monkeypatch, command)
    deliver(store, 20, start=43)    # many new ones: b holds \Recent of 22 of 62
    b.expect("NOOP")
    for command in COMMANDS:
        fetch_both(b, monkeypatch, command)
    a.expect("ENABLE CONDSTORE")
    a.expect("NOOP")
    for command in COMMANDS:
        lines = fetch_both(a, monkeypatch, command)
        # solicited lines carry MODSEQ when asked (RFC 7162 3.1.4.1 adds it to unsolicited ones)
        assert all(("MODSEQ (" in line) == ("MODSEQ" in command) for line in lines), command


def test_a_message_expunged_but_not_yet_reported(open_session, store, monkeypatch):
    """b expunges message 2; a, not told yet, still sees it (RFC 2180 4.1): the
    columns step aside and the lines are those of the general path."""
    a, b = two_logged_in(open_session)
    deliver(store, 5)
    a.select()
    b.select()
    b.expect("STORE 2 +FLAGS.SILENT (\\Deleted \\Seen)")
    b.expect("EXPUNGE")
    lines = fetch_both(a, monkeypatch, "FETCH 1:* (UID FLAGS)")
    assert "* 2 FETCH (UID 2 FLAGS (\\Seen \\Deleted \\Recent))" in lines and len(lines) == 5
    # a UID FETCH may tell of the expunge, after its lines (RFC 3501 7.4.1)
    reply = a.expect("UID FETCH 1:* (FLAGS)")
    assert reply.untagged == lines + ["* 2 EXPUNGE"]
    assert len(fetch_both(a, monkeypatch, "FETCH 1:* (UID FLAGS)")) == 4


def test_index_columns_hold_recent_as_the_view_does(store):
    """_flag_keys' four cases (no \\Recent, a few, many, all) give iter_messages' flags."""
    from clevermail.store.view import FolderView, ViewMode
    deliver(store, 40)
    folder = store.open_folder(ALICE, "INBOX")
    try:
        views = [FolderView(folder, "INBOX", ViewMode.SELECT)]          # all 40 recent
        views.append(FolderView(folder, "INBOX", ViewMode.SELECT))       # none
        deliver(store, 1, start=41)
        views[1].changes()                                               # one of 41: a few
        views.append(FolderView(folder, "INBOX", ViewMode.SELECT))       # none
        deliver(store, 20, start=42)
        views[2].changes()                                               # 20 of 61: many
        assert [len(v.recent) for v in views] == [40, 1, 20]
        for v in views:
            for seqs in (range(1, len(v) + 1), range(30, len(v) + 1), [1, 5, len(v)], range(2, 2)):
                cols = index_columns(v, seqs)
                flags = [cols.flag_names[k] for k in cols.flag_keys]
                assert flags == [row[2] for row in v.iter_messages(seqs)]
    finally:
        store.release_folder(folder)


@pytest.mark.parametrize("items", [
    ["INTERNALDATE"], ["UID", "FLAGS", "INTERNALDATE"], ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "MODSEQ", "UID"],
    ["UID", "FLAGS", "INTERNALDATE", "FLAGS"], ["RFC822.SIZE"], ["MODSEQ", "UID", "MODSEQ"]] + ITEM_LISTS)
def test_index_only_lines_are_those_of_the_per_message_renderer(items):
    """render_index_only gives, line for line, what fetch_response gives each message
    (INTERNALDATE from its cache of texts: dates apart, alike, past 2038, fractional)."""
    from clevermail.imap.fetch import fetch_response
    from clevermail.store.view_values import Message
    flag_sets = [frozenset(), frozenset({"\\Seen"}), frozenset({"$Forwarded", "\\Recent", "\\Flagged"})]
    dates = [0, 829734265, 829734265, 829734265.75, 2 ** 32 + 17, 1796353387]
    rows = [(i + 1, 10 + 3 * i, flag_sets[i % 3], dates[i % len(dates)], 100 + i, 5 + i)
            for i in range(12)]
    req = parse_fetch_items(items)
    expected = [b"".join(fetch_response(req, Message(*row), None)) for row in rows]
    assert render_index_only(req, rows) == expected
    assert render_index_only(req, [Message(*row) for row in rows]) == expected
