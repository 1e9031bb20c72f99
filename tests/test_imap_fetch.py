"""Tests for clevermail.imap.fetch and fetch_items: FETCH item parsing (the kept,
immutable requests too) and response rendering, the index-only renderer agreeing with
it.  Responses read by a strict client over the corpus and mutated messages:
test_imap_fetch_strict.py."""

import pytest

from clevermail.imap.fetch import flag_text, render_fetch
from clevermail.imap.fetch_index import render_index_only
from clevermail.imap.fetch_items import parse_fetch_items
from clevermail.imap.replies import IMAPBad
from clevermail.store.view import Message
from fetch_helpers import T0, Msg, fetch, load


# ------------------------------------------------------------------- parsing

def labels(arg):
    return [i.label for i in parse_fetch_items(arg).items]


def test_macros():
    assert labels("ALL") == [b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"ENVELOPE"]
    assert labels("fast") == [b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE"]
    assert labels("Full") == [b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"ENVELOPE", b"BODY"]


def test_single_atom_and_list_case_insensitive():
    assert labels("uid") == [b"UID"]
    assert labels(["uid", "Flags", "rfc822.size", "BodyStructure"]) == [
        b"UID", b"FLAGS", b"RFC822.SIZE", b"BODYSTRUCTURE"]


@pytest.mark.parametrize("atom, label, section, partial, peek", [
    ("BODY[]", b"BODY[]", ((), None, ()), None, False),
    ("body.peek[]", b"BODY[]", ((), None, ()), None, True),
    ("BODY[header]", b"BODY[HEADER]", ((), "HEADER", ()), None, False),
    ("BODY.PEEK[TEXT]<0.100>", b"BODY[TEXT]<0>", ((), "TEXT", ()), (0, 100), True),
    ("BODY[1]", b"BODY[1]", ((1,), None, ()), None, False),
    ("BODY[1.2.mime]", b"BODY[1.2.MIME]", ((1, 2), "MIME", ()), None, False),
    ("BODY[3.Header]", b"BODY[3.HEADER]", ((3,), "HEADER", ()), None, False),
    ("BODY[1.2.TEXT]<10.5>", b"BODY[1.2.TEXT]<10>", ((1, 2), "TEXT", ()), (10, 5), False),
    ("BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>", b"BODY[HEADER.FIELDS (FROM TO)]<0>",
     ((), "HEADER.FIELDS", ("FROM", "TO")), (0, 100), True),
    ('BODY[header.fields.not (From "X-Spam Flag"  "to")]',
     b'BODY[HEADER.FIELDS.NOT (From "X-Spam Flag" to)]',
     ((), "HEADER.FIELDS.NOT", ("From", "X-Spam Flag", "to")), None, False),
    ("BODY[3.HEADER.FIELDS (X)]", b"BODY[3.HEADER.FIELDS (X)]",
     ((3,), "HEADER.FIELDS", ("X",)), None, False),
    ("RFC822", b"RFC822", ((), None, ()), None, False),
    ("RFC822.HEADER", b"RFC822.HEADER", ((), "HEADER", ()), None, True),
    ("RFC822.TEXT", b"RFC822.TEXT", ((), "TEXT", ()), None, False),
])
def test_section_items(atom, label, section, partial, peek):
    (item,) = parse_fetch_items(atom).items
    assert (item.label, item.section, item.partial, item.peek) == (label, section, partial, peek)


@pytest.mark.parametrize("arg", [
    "BOGUS", "BODY.PEEK", "BODY[", "BODY[FOO]", "BODY[0]", "BODY[01]", "BODY[1.]",
    "BODY[.1]", "BODY[1..2]", "BODY[MIME]", "BODY[1.MIMEX]", "BODY[HEADER.FIELDS]",
    "BODY[HEADER.FIELDS ()]", "BODY[HEADER.FIELDS FROM]", "BODY[HEADER.FIELDS (\"FROM)]",
    "BODY[HEADER.FIELDS ((FROM))]", 'BODY[HEADER.FIELDS ("caf\u00e9")]', 'BODY[HEADER.FIELDS ("a\tb")]', "BODY[TEXT]<0>", "BODY[TEXT]<0.0>", "BODY[TEXT]<a.1>",
    "BODY[TEXT]<1.2", "BODY[TEXT]x", "BODY[99999999999]", "BODY[TEXT]<9223372036854775808.1>",
    "BINARY[TEXT]", "BINARY.SIZE[1]<0.1>", "ENVELOPE.PEEK", [], ["FLAGS", "ALL"], ["FLAGS", b"UID"], ["FLAGS", ["UID"]],
    b"FLAGS", None,
])
def test_malformed_items_are_bad(arg):
    with pytest.raises(IMAPBad):
        parse_fetch_items(arg)


def test_bad_text_names_the_item():
    with pytest.raises(IMAPBad) as exc:
        parse_fetch_items(["FLAGS", "BODY[FOO]"])
    assert "BODY[FOO]" in exc.value.text


@pytest.mark.parametrize("arg, needs, seen", [
    (["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE"], False, False),
    ("ENVELOPE", True, False), ("BODYSTRUCTURE", True, False), ("BODY", True, False),
    ("BODY.PEEK[]", True, False), ("RFC822.HEADER", True, False),
    ("BODY[]", True, True), ("BODY[1.MIME]", True, True), ("RFC822", True, True),
    ("RFC822.TEXT", True, True), (["BODY.PEEK[]", "BODY[TEXT]"], True, True),
    (["BODY.PEEK[]", "BODY[]"], True, True), (["BODY[1]", "BODY.PEEK[1]"], True, True),
])
def test_needs_message_and_sets_seen(arg, needs, seen):
    req = parse_fetch_items(arg)
    assert (req.needs_message, req.sets_seen) == (needs, seen)


def test_with_uid_first_and_once():
    req = parse_fetch_items(["FLAGS"])
    uid = req.with_uid()
    assert uid.with_uid() is uid and req.with_uid() is uid        # made once
    assert [i.label for i in uid.items] == [b"UID", b"FLAGS"]
    assert [i.label for i in req.items] == [b"FLAGS"]              # the request stays as it was
    assert render_fetch(uid, Msg(uid=42)) == b"(UID 42 FLAGS (\\Seen $Forwarded))"
    req = parse_fetch_items(["FLAGS", "UID"])
    assert req.with_uid() is req


def test_with_modseq_last_and_once():
    req = parse_fetch_items(["UID", "BODY[]"])
    modseq = req.with_modseq()
    assert [i.label for i in modseq.items] == [b"UID", b"BODY[]", b"MODSEQ"]
    assert modseq.wants_modseq and not req.wants_modseq
    assert modseq.with_modseq() is modseq and modseq.sets_seen and modseq.needs_message
    assert [i.label for i in modseq.with_uid().items] == [b"UID", b"BODY[]", b"MODSEQ"]


def test_a_repeated_item_list_is_one_kept_request():
    from clevermail.imap.parser import Atom
    first = parse_fetch_items([Atom("UID"), Atom("BODY.PEEK[HEADER.FIELDS (From To)]")])
    # the same text again, as atoms or quoted strings: the same request, not parsed again
    assert parse_fetch_items(["UID", "BODY.PEEK[HEADER.FIELDS (From To)]"]) is first
    assert parse_fetch_items(Atom("fast")) is parse_fetch_items("fast")
    assert isinstance(first.items, tuple)       # nothing can change a kept request
    # another case or order is another request, with its own labels
    other = parse_fetch_items(["UID", "BODY.PEEK[HEADER.FIELDS (to from)]"])
    assert other is not first and other.items[1].label == b"BODY[HEADER.FIELDS (to from)]"


def test_long_item_lists_are_parsed_each_time_and_never_kept():
    many = ["UID", "FLAGS"] * 20 + ["BODY.PEEK[HEADER.FIELDS (%s)]" % ("X" * 300)]
    first = parse_fetch_items(many)
    assert parse_fetch_items(list(many)) is not first
    assert [i.label for i in first.items][:2] == [b"UID", b"FLAGS"] and len(first.items) == 3


def test_a_bad_list_is_bad_every_time():
    for _ in range(2):
        with pytest.raises(IMAPBad):
            parse_fetch_items(["FLAGS", "BODY[FOO]"])


def test_duplicates_answered_once():
    assert labels(["FLAGS", "flags", "BODY[]", "BODY.PEEK[]", "BODY[]<0.5>"]) == [
        b"FLAGS", b"BODY[]", b"BODY[]<0>"]


# ----------------------------------------------------------------- rendering

def test_index_items_never_read_the_message():
    msg = Msg(b"never read")
    out = fetch(["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE"], msg)
    assert out == (b'(UID 7 FLAGS (\\Seen $Forwarded) '
                   b'INTERNALDATE "17-Jul-1996 09:44:25 +0000" RFC822.SIZE 10)')
    assert msg.raw_calls == 0
    assert fetch("FLAGS", Msg(flags=[])) == b"(FLAGS ())"
    assert fetch("INTERNALDATE", Msg(internaldate=T0 - 16 * 86400)) == (
        b'(INTERNALDATE "01-Jul-1996 09:44:25 +0000")')


def test_body_sections_render_as_literals():
    msg = Msg(b"Subject: hi\r\nFrom: a@b\r\n\r\nHello world!")
    assert fetch(["UID", "FLAGS", "BODY[]"], msg) == (
        b"(UID 7 FLAGS (\\Seen $Forwarded) BODY[] {38}\r\n"
        b"Subject: hi\r\nFrom: a@b\r\n\r\nHello world!)")
    assert fetch("BODY[TEXT]", msg) == b"(BODY[TEXT] {12}\r\nHello world!)"
    assert fetch("BODY.PEEK[HEADER]", msg) == (
        b"(BODY[HEADER] {26}\r\nSubject: hi\r\nFrom: a@b\r\n\r\n)")
    assert fetch("BODY.PEEK[HEADER.FIELDS (from)]", msg) == (
        b"(BODY[HEADER.FIELDS (from)] {13}\r\nFrom: a@b\r\n\r\n)")
    assert fetch("BODY[1]", msg) == b"(BODY[1] {12}\r\nHello world!)"
    assert fetch("BODY[2]", msg) == b'(BODY[2] "")'


def test_partials():
    msg = Msg(b"Subject: hi\r\n\r\nHello world!")
    assert fetch("BODY[TEXT]<6.5>", msg) == b"(BODY[TEXT]<6> {5}\r\nworld)"
    assert fetch("BODY[TEXT]<6.500>", msg) == b"(BODY[TEXT]<6> {6}\r\nworld!)"
    assert fetch("BODY.PEEK[TEXT]<12.1>", msg) == b'(BODY[TEXT]<12> "")'
    assert fetch("BODY[]<0.7>", msg) == b"(BODY[]<0> {7}\r\nSubject)"


def test_rfc822_items():
    msg = Msg(b"Subject: hi\r\n\r\nbody")
    assert fetch(["RFC822.HEADER", "RFC822.TEXT", "RFC822"], msg) == (
        b"(RFC822.HEADER {15}\r\nSubject: hi\r\n\r\n RFC822.TEXT {4}\r\nbody "
        b"RFC822 {19}\r\nSubject: hi\r\n\r\nbody)")


def test_structure_items():
    msg = Msg(load("simple.eml"))
    out = fetch(["ENVELOPE", "BODY", "BODYSTRUCTURE"], msg)
    assert out == (
        b'(ENVELOPE ("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" '
        b'"IMAP4rev1 WG mtg summary and minutes" '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'((NIL NIL "imap" "cac.washington.edu")) '
        b'((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) '
        b'NIL NIL "<B27397-0100000@cac.washington.edu>") '
        b'BODY ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7bit" 33 2) '
        b'BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7bit" 33 2'
        b' NIL NIL NIL NIL))')
    assert msg.raw_calls == 1            # parsed once per render


def test_fast_never_reads_the_message():
    assert render_fetch(parse_fetch_items("FAST"), Msg(b"x" * 5)) == (
        b'(FLAGS (\\Seen $Forwarded) INTERNALDATE "17-Jul-1996 09:44:25 +0000" RFC822.SIZE 5)')


def test_flag_text_has_one_order_whatever_the_set():
    # Maildir letter order for system flags (D F R S T), as before the frozenset
    names = ["$b", "\\Recent", "\\Seen", "$a", "\\Answered", "\\Deleted", "\\Flagged", "\\Draft"]
    texts = {flag_text(frozenset(names[i:] + names[:i])) for i in range(len(names))}
    assert texts == {b"\\Draft \\Flagged \\Answered \\Seen \\Deleted $a $b \\Recent"}
    assert flag_text(frozenset()) == b""


def test_extra_flags():
    msg = Msg(b"\r\nx")
    assert fetch("BODY[TEXT]", msg, extra_flags=True) == (
        b"(BODY[TEXT] {1}\r\nx FLAGS (\\Seen $Forwarded))")
    assert fetch(["FLAGS", "BODY[TEXT]"], msg, extra_flags=True) == (
        b"(FLAGS (\\Seen $Forwarded) BODY[TEXT] {1}\r\nx)")
    assert fetch("UID", msg, extra_flags=True) == b"(UID 7 FLAGS (\\Seen $Forwarded))"


def test_nul_in_literal_becomes_0x80():
    assert fetch("BODY[TEXT]", Msg(b"\r\na\0b")) == b"(BODY[TEXT] {3}\r\na\x80b)"


def test_nested_sections_via_fetch():
    msg = Msg(load("nested_rfc822.eml"))
    out = fetch(["BODY.PEEK[2.1]", "BODY.PEEK[2.HEADER.FIELDS (Subject)]", "BODY[9.1]"], msg)
    assert out == (b'(BODY[2.1] {5}\r\nNoon? BODY[2.HEADER.FIELDS (Subject)] {18}\r\n'
                   b'Subject: Lunch\r\n\r\n BODY[9.1] "")')


def never_read(msg):
    raise AssertionError("an index item read the message")


@pytest.mark.parametrize("items", [["UID", "FLAGS"], "FAST", ["RFC822.SIZE", "UID"],
                                   ["INTERNALDATE", "FLAGS", "UID"]])
def test_index_only_agrees_with_the_general_renderer(items):
    req = parse_fetch_items(items)
    msgs = [Message(1, 3, frozenset({"\\Seen", "$Forwarded"}), T0, 120),
            Message(2, 4, frozenset({"\\Recent"}), T0 + 86399, 7),
            Message(5, 9, frozenset({"\\Flagged", "\\Seen"}), 0, 1)]
    expected = [b"* %d FETCH %s\r\n" % (m.seq, render_fetch(req, m, never_read)) for m in msgs]
    assert render_index_only(req, msgs) == expected
    # FolderView.iter_messages' plain tuples in Message's field order: the same lines
    assert render_index_only(req, (tuple(m) for m in msgs)) == expected


def test_index_only_empty_flags_and_no_messages():
    req = parse_fetch_items(["UID", "FLAGS"])
    assert render_index_only(req, [Message(1, 1, frozenset(), T0, 0),
                                   Message(3, 3, frozenset({"\\Seen"}), T0, 0)]) == [
        b"* 1 FETCH (UID 1 FLAGS ())\r\n", b"* 3 FETCH (UID 3 FLAGS (\\Seen))\r\n"]
    assert render_index_only(req, []) == []


def test_index_only_fetch_of_a_session_opens_no_message_file(tmp_path, monkeypatch):
    """FETCH 1:* (UID FLAGS), what every client sends on every sync, is answered from
    the folder view's Message values: the real path, with every way to a message file
    made to fail."""
    from clevermail.store.folder import Folder
    from imap_helpers import ALICE, make_handler, message
    from clevermail.imap.cmd_selected import cmd_fetch, cmd_uid_fetch
    from clevermail.imap.parser import parse_command
    from clevermail.imap.selected_mailbox import SelectedMailbox
    from clevermail.imap.session import uid_form

    handler = make_handler(tmp_path)
    for i in range(1, 4):
        handler.store.deliver_local("", [ALICE], message(i))

    def no_file(*args, **kwargs):
        raise AssertionError("an index-only FETCH opened a message file")
    monkeypatch.setattr(Folder, "open_message", no_file)
    monkeypatch.setattr(Folder, "read_message", no_file)

    class Session:
        """Just what cmd_fetch uses of a session: the selected mailbox and send_many."""
        def __init__(self, view):
            self.mailbox, self.sent = SelectedMailbox(view), []

        def send_many(self, chunks):
            self.sent.extend(chunks)

    view = handler.open_view(ALICE, "INBOX", readonly=False)
    try:
        handler.set_flags(view, [2], ["\\Seen"], "+")
        session = Session(view)
        cmd_fetch(session, parse_command(b"a FETCH 1:* (UID FLAGS)", None, 0))
        cmd_uid_fetch(session, uid_form(parse_command(b"b UID FETCH 2 FAST", None, 0)))
    finally:
        handler.close_view(view)
    lines = b"".join(session.sent).splitlines(keepends=True)
    assert lines[:3] == [b"* 1 FETCH (UID 1 FLAGS (\\Recent))\r\n",
                         b"* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent))\r\n",
                         b"* 3 FETCH (UID 3 FLAGS (\\Recent))\r\n"]
    assert lines[3].startswith(b"* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent) INTERNALDATE ") and len(lines) == 4
