"""Tests for clevermail.imap.fetch: FETCH item parsing and response rendering.

Responses are also checked with a small strict parser of RFC 3501 response
syntax (quoted strings, literals, lists; ENVELOPE and BODYSTRUCTURE shapes),
as a client would read them, including over randomly mutated messages.
"""

import calendar
import pathlib
import random
import re

import pytest

from clevermail.imap import mime
from clevermail.imap.fetch import flag_text, render_fetch
from clevermail.imap.fetch_index import render_index_only
from clevermail.imap.fetch_items import parse_fetch_items
from clevermail.imap.replies import IMAPBad
from clevermail.store.view import Message

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


def test_add_uid_first_and_once():
    req = parse_fetch_items(["FLAGS"])
    req.add_uid()
    req.add_uid()
    assert [i.label for i in req.items] == [b"UID", b"FLAGS"]
    assert render_fetch(req, Msg(uid=42)) == b"(UID 42 FLAGS (\\Seen $Forwarded))"
    req = parse_fetch_items(["FLAGS", "UID"])
    req.add_uid()
    assert [i.label for i in req.items] == [b"FLAGS", b"UID"]


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


def test_index_items_never_read_the_message():
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
    from clevermail.store.view import FolderView
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


# ------------------------------------------ strict response reader (a client)

class Reader:
    """Parse an RFC 3501 response fragment; assert on anything malformed."""

    def __init__(self, data):
        self.d, self.i = data, 0

    def peek(self):
        return self.d[self.i:self.i + 1]

    def value(self):
        c = self.peek()
        if c == b"(":
            self.i += 1
            out = []
            while self.peek() != b")":
                if out:
                    if self.peek() == b" ":
                        self.i += 1
                    else:   # 1*body and 1*address lists have no separator
                        assert isinstance(out[-1], list) and self.peek() == b"(", self.d[self.i:]
                out.append(self.value())
            self.i += 1
            return out
        if c == b'"':
            j, buf = self.i + 1, bytearray()
            while True:
                ch = self.d[j]
                assert ch not in (13, 10) and 0 < ch < 0x80, (j, self.d)
                if ch == 0x5C:
                    assert self.d[j + 1] in b'"\\'
                    buf.append(self.d[j + 1])
                    j += 2
                elif ch == 0x22:
                    break
                else:
                    buf.append(ch)
                    j += 1
            self.i = j + 1
            return bytes(buf)
        if c == b"{":
            m = re.compile(rb"\{(\d+)\}\r\n").match(self.d, self.i)
            assert m, self.d[self.i:self.i + 20]
            n = int(m.group(1))
            data = self.d[m.end():m.end() + n]
            assert len(data) == n and b"\0" not in data
            self.i = m.end() + n
            return bytes(data)
        m = re.compile(rb"(?:[^ ()\[\]\x00-\x1f\x7f-\xff]|\[[^\]]*\])+").match(self.d, self.i)
        assert m, self.d[self.i:self.i + 20]
        self.i = m.end()
        word = m.group().decode("ascii")
        if word == "NIL":
            return None
        return int(word) if word.isdigit() else word


def read_fetch(data):
    r = Reader(data)
    top = r.value()
    assert r.i == len(data)
    assert len(top) % 2 == 0
    return dict(zip(top[0::2], top[1::2]))


def is_nstring(v):
    return v is None or isinstance(v, bytes)


def check_params(p):
    assert p is None or (isinstance(p, list) and p and len(p) % 2 == 0
                         and all(isinstance(x, bytes) for x in p))


def check_ext(rest):
    dsp, lang, loc = rest
    if dsp is not None:
        assert len(dsp) == 2 and isinstance(dsp[0], bytes)
        check_params(dsp[1])
    assert is_nstring(lang) or all(isinstance(x, bytes) for x in lang)
    assert is_nstring(loc)


def check_envelope(e):
    assert isinstance(e, list) and len(e) == 10
    assert all(is_nstring(e[i]) for i in (0, 1, 8, 9))
    for addrs in e[2:8]:
        assert addrs is None or (addrs and all(len(a) == 4 and all(map(is_nstring, a))
                                               for a in addrs))


def check_body(b, ext):
    assert isinstance(b, list) and b
    if isinstance(b[0], list):
        i = 0
        while isinstance(b[i], list):
            check_body(b[i], ext)
            i += 1
        assert isinstance(b[i], bytes)
        rest = b[i + 1:]
        if ext:
            assert len(rest) == 4
            check_params(rest[0])
            check_ext(rest[1:])
        else:
            assert rest == []
        return
    t, s, params, cid, desc, enc, size = b[:7]
    assert isinstance(t, bytes) and isinstance(s, bytes) and isinstance(enc, bytes)
    check_params(params)
    assert is_nstring(cid) and is_nstring(desc) and isinstance(size, int)
    rest = b[7:]
    if t.upper() == b"TEXT":
        assert isinstance(rest[0], int)
        rest = rest[1:]
    elif (t.upper(), s.upper()) == (b"MESSAGE", b"RFC822"):
        check_envelope(rest[0])
        check_body(rest[1], ext)
        assert isinstance(rest[2], int)
        rest = rest[3:]
    if ext:
        assert len(rest) == 4 and is_nstring(rest[0])
        check_ext(rest[1:])
    else:
        assert rest == []


ALL_ITEMS = ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE",
             "BODY", "BODY[]", "BODY[HEADER]", "BODY[TEXT]", "BODY[1]", "BODY[1.MIME]",
             "BODY[2]", "BODY[2.HEADER]", "BODY[2.TEXT]", "BODY[2.1.TEXT]", "BODY[2.2.MIME]",
             "BODY[HEADER.FIELDS (FROM SUBJECT)]", "BODY.PEEK[HEADER.FIELDS.NOT (TO)]<0.50>",
             "BODY[3.2.1]<5.10>", "BODY[1.1.1.1]", "RFC822", "RFC822.HEADER", "RFC822.TEXT"]


def check_sizes(pm, b, path):
    """Each part's size and line count in BODYSTRUCTURE match BODY[path]."""
    if isinstance(b[0], list):
        k = 0
        while isinstance(b[k], list):     # children come first, then subtype
            check_sizes(pm, b[k], path + (k + 1,))
            k += 1
        return
    path = path or (1,)         # a single-part message's body is part 1
    data = mime.section(pm, path)
    assert len(data) == b[6], (path, b)
    if b[0].upper() == b"TEXT":
        assert data.count(b"\n") == b[7]
    elif (b[0].upper(), b[1].upper()) == (b"MESSAGE", b"RFC822"):
        assert data.count(b"\n") == b[9]
        assert mime.section(pm, path, "HEADER") + mime.section(pm, path, "TEXT") == data
        inner = b[8]
        check_sizes(pm, inner, path if isinstance(inner[0], list) else path + (1,))


def check_message(raw):
    out = read_fetch(fetch(ALL_ITEMS, Msg(raw)))
    check_envelope(out["ENVELOPE"])
    check_body(out["BODYSTRUCTURE"], True)
    check_body(out["BODY"], False)
    check_sizes(mime.parse(raw), out["BODYSTRUCTURE"], ())
    crlf = raw if raw.count(b"\n") == raw.count(b"\r\n") else re.sub(rb"(?<!\r)\n", b"\r\n", raw)
    assert out["RFC822"] == out["BODY[]"] == crlf.replace(b"\0", b"\x80")
    return out


def test_corpus_responses_parse_as_a_client_would():
    for path in sorted(DATA.glob("*.eml")):
        out = check_message(load(path.name))
        assert out["BODY[]"] == load(path.name)


NASTY = [
    b"", b"\r\n", b"\r\n\r\n", b"no header terminator", b"X" * 100000,
    b"Subject: " + b"\xff\xfe\x00\x01" * 50 + b"\r\n\r\nbody",
    b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n\r\nx\r\n----\r\n",
    b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n--a\r\n--a--",
    b"Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\n",
    b"Content-Type: (unterminated comment\r\nFrom: \"unterminated\r\nTo: <a@b\r\n\r\n",
    b"From: ,,,;;;<<<>>>@@@:::\r\nTo: a:b:c;d;\r\nCc: (((\r\n\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/"
    b"mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n--b--\r\n",
]


@pytest.mark.parametrize("raw", NASTY, ids=range(len(NASTY)))
def test_nasty_messages(raw):
    check_message(raw)


MUTATION_TOKENS = [
    b"\r\n", b"\r\n\r\n", b"\n", b"\r", b"--", b"\r\n--", b"--outer\r\n", b"--alt-b--",
    b"--inner", b"------=_Part_0_12345", b"Content-Type: multipart/mixed; boundary=x\r\n",
    b"Content-Type: message/rfc822\r\n\r\n", b"Content-Type: multipart/digest; boundary=q\r\n",
    b"\r\n--x\r\n", b"\r\n--q\r\n\r\n", b"\x00", b"\xff\xfe", b"\xc3\xa9", b"(", b")",
    b'"', b"\\", b"<", b">", b"@", b",", b";", b":", b"=?utf-8?q?", b"*0*=", b" \t ",
    b"A" * 3000,
]


def mutate(rng, raw):
    data = bytearray(raw)
    for _ in range(rng.randint(1, 5)):
        op = rng.randrange(6)
        pos = rng.randint(0, len(data))
        if op == 0 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op == 1:
            del data[pos:pos + rng.randint(1, 40)]
        elif op == 2:
            data[pos:pos] = data[pos:pos + rng.randint(1, 200)]
        elif op == 3:
            data[pos:pos] = rng.choice(MUTATION_TOKENS)
        elif op == 4:
            del data[pos:]
        else:
            data = bytearray(bytes(data).replace(b"\r\n", b"\n"))
    return bytes(data)


def test_random_mutations_never_raise():
    rng = random.Random(20240101)
    corpus = [load(p.name) for p in sorted(DATA.glob("*.eml"))]
    for _ in range(300):
        check_message(mutate(rng, rng.choice(corpus)))


HEADER_ITEMS = ["ENVELOPE", "BODY.PEEK[HEADER.FIELDS (From To Subject)]",
                "BODY.PEEK[HEADER.FIELDS.NOT (Received Date)]", "BODY.PEEK[HEADER.FIELDS (X-None)]",
                "BODY.PEEK[HEADER.FIELDS (Subject)]<3.10>", "RFC822.HEADER"]


def test_header_items_from_the_kept_header_equal_those_from_the_file():
    """ENVELOPE and top-level header fields rendered from the cached BODY[HEADER]
    (fetch._Content.head) are byte for byte those rendered from the whole message,
    for the corpus, the nasty messages and random mutations of both."""
    from clevermail.imap.fetch_cache import FetchCache
    rng = random.Random(20261203)
    corpus = [load(p.name) for p in sorted(DATA.glob("*.eml"))] + NASTY
    messages = corpus + [mutate(rng, rng.choice(corpus)) for _ in range(300)]
    for n, raw in enumerate(messages):
        cache = FetchCache()
        msg = Msg(raw)
        fetch("BODY.PEEK[HEADER]", msg, memo=cache.memo(("u", "INBOX", 1), n))
        assert msg.raw_calls == 1
        for items in HEADER_ITEMS:
            kept = fetch(items, msg, memo=cache.memo(("u", "INBOX", 1), n))
            assert kept == fetch(items, Msg(raw)), (n, items)
        assert msg.raw_calls == 1               # none of them read the message again
