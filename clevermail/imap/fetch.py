"""FETCH data items: the request (RFC 3501 section 6.4.5) and the attribute
list of one untagged FETCH response (RFC 3501 section 7.4.2).

fetch_items.parse_fetch_items() turns the token after the sequence set into a
FetchRequest whose items each carry a render function chosen once (made here).  A message is
the folder view's Message value (store/view.py: seq, uid, flags as a frozenset of
names, internaldate, size); its content comes from a `read(msg)` the caller passes
(the file handler's read_message), called only for items that need it.
A request of index items only (FLAGS, UID, INTERNALDATE, RFC822.SIZE, MODSEQ:
FETCH 1:* (UID FLAGS) over a big folder) is fetch_index.py's.  render_fetch()
renders one message.  Items derived from the message text (ENVELOPE, BODY,
BODYSTRUCTURE, BODY[section], RFC822*) come from clevermail.imap.mime, which parses
a message at most once per render.  ENVELOPE, BODY, BODYSTRUCTURE and header sections
go through the message's memo of the shared fetch_cache.FetchCache when the caller
hands one: rendered once, by any session.  The section-spec and partial syntax is
sections.py's.
"""

import functools

from clevermail.imap import binary, dates, mime
from clevermail.imap.bodystructure import bodystructure
from clevermail.imap.envelope import envelope
from clevermail.imap.replies import IMAPNo

__all__ = ["FetchItem", "FetchRequest", "flag_text", "render_fetch"]

# Items the shared cache keeps (fetch_cache.py), and the header sections it keeps:
# small, and asked for again and again (message lists).
_CACHED = frozenset(("ENVELOPE", "BODY", "BODYSTRUCTURE"))
_HEADER_SECTIONS = frozenset(("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT"))
# Items answered from the index alone (no message bytes needed); MODSEQ is RFC 7162's.
_NO_MESSAGE = frozenset(("FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE", "MODSEQ"))


class FetchItem:
    """One requested item.

    name: FLAGS UID INTERNALDATE RFC822.SIZE RFC822 RFC822.HEADER RFC822.TEXT
    ENVELOPE BODY BODYSTRUCTURE, or "BODY[]" for any BODY[section] request.
    section: (part numbers, HEADER/HEADER.FIELDS/HEADER.FIELDS.NOT/TEXT/MIME
    or None, header names) for BODY[...] and RFC822*, else None.
    partial: (offset, count) or None.  label: the response item name.
    """

    __slots__ = ("name", "label", "section", "partial", "peek", "render")

    def __init__(self, name, render, label=None, section=None, partial=None, peek=False):
        self.name, self.render = name, render
        self.label = label if label is not None else name.encode("ascii")
        self.section, self.partial, self.peek = section, partial, peek

    def __repr__(self):
        return "FetchItem(%s%s)" % (self.label.decode("ascii", "replace"),
                                    ", peek" if self.peek else "")


class FetchRequest:
    """Parsed FETCH items in request order, with what serving them needs.  Immutable:
    fetch_items.parse_fetch_items hands the same request to every FETCH that sends the
    same items (clients repeat a few lists), and the UID FETCH and MODSEQ forms are
    requests of their own, made once (with_uid, with_modseq)."""

    __slots__ = ("items", "names", "needs_message", "sets_seen", "cached", "wants_modseq",
                 "_fns", "_has_flags", "_with_uid", "_with_modseq")

    def __init__(self, items):
        self.items = items = tuple(items)
        self.names = tuple(i.name for i in items)
        self.needs_message = any(i.name not in _NO_MESSAGE for i in items)
        # RFC 3501 6.4.5: BODY[...] (not PEEK), RFC822 and RFC822.TEXT set \Seen.
        self.sets_seen = any(i.section is not None and not i.peek for i in items)
        self._has_flags = "FLAGS" in self.names
        # MODSEQ is asked for (a CONDSTORE enabling FETCH, RFC 7162 3.1)
        self.wants_modseq = "MODSEQ" in self.names
        # an item the shared cache keeps (fetch_cache.py): worth the message's memo
        self.cached = any(i.name in _CACHED or (i.section is not None and i.section[1] in _HEADER_SECTIONS)
                          for i in items)
        self._fns = tuple(i.render for i in items)
        self._with_uid = self if "UID" in self.names else None
        self._with_modseq = self if self.wants_modseq else None

    def with_uid(self):
        """UID FETCH always answers UID (RFC 3501 6.4.8): this request with UID first
        if it lacks it."""
        if self._with_uid is None:
            self._with_uid = FetchRequest((_SIMPLE["UID"],) + self.items)
        return self._with_uid

    def with_modseq(self):
        """CHANGEDSINCE answers MODSEQ too (RFC 7162 3.1.4.1): this request with MODSEQ
        last if it lacks it."""
        if self._with_modseq is None:
            self._with_modseq = FetchRequest(self.items + (_SIMPLE["MODSEQ"],))
        return self._with_modseq

    def __repr__(self):
        return "FetchRequest(%r)" % (self.items,)


@functools.lru_cache(maxsize=4096)
def flag_text(flags):
    """A frozenset of flag names as the inside of a FETCH FLAGS list, in one order
    whatever the set's: the system flags in Maildir letter order (D F R S T, as
    CleverMail always listed them), then keywords alphabetically, \\Recent last.
    Cached: a folder has a handful of flag combinations."""
    return " ".join(sorted(flags, key=_flag_order)).encode()


_SYSTEM_ORDER = {"\\Draft": 0, "\\Flagged": 1, "\\Answered": 2, "\\Seen": 3, "\\Deleted": 4,
                 "\\Recent": 6}
_KEYWORD_RANK = 5


def _flag_order(name):
    return (_SYSTEM_ORDER.get(name, _KEYWORD_RANK), name)


class _Content:
    """The content of the message one render_fetch call renders: read through the
    caller's `read(msg)` and parsed (mime.py) at most once, only if an item needs it."""

    __slots__ = ("_read", "_msg", "_parsed", "_ident", "_memo", "_repair", "_head")

    def __init__(self, read, msg, ident=None, memo=None, repair=True):
        self._read, self._msg, self._parsed, self._ident = read, msg, None, ident
        self._repair = repair
        self._head = None
        self._memo = memo       # fetch_cache.MessageMemo: this message's rendered metadata

    def cached(self, item, render):
        """render(self)'s bytes for a metadata item, from the shared cache when another
        FETCH rendered it before (no file read, no parse), else made and kept."""
        memo = self._memo
        if memo is None:
            return render(self)
        value = memo.get(item)
        if value is None:
            value = render(self)
            memo.put(item, value)
            parsed = self._parsed
            if parsed is not None and parsed.parsed_tree:
                self._siblings(memo)
        return value

    def _siblings(self, memo):
        """Keep what _PARSED_SIBLINGS the memo lacks, from the message parsed already."""
        for item, render in _PARSED_SIBLINGS:
            if not memo.has(item):
                memo.put(item, render(self))

    def email_id(self):
        """The message's stable id (RFC 8474 EMAILID), through the caller's ident(msg)."""
        return self._ident(self._msg)

    def head(self):
        """A ParsedMessage of the top-level header alone, enough for ENVELOPE and
        BODY[HEADER.FIELDS (...)]: made from the cached BODY[HEADER] when any session
        kept it before, so a FETCH of other header fields than the last one reads no
        message file (webmails and imaptest vary the list) and parses no body."""
        if self._parsed is None and self._head is None:
            raw = self.cached(_TOP_HEADER, _top_header)
            self._head = mime.parse(raw, repair=False)      # cut from a repaired message
        return self._parsed if self._parsed is not None else self._head

    @property
    def parsed(self):
        if self._parsed is None:
            self._parsed = mime.parse(self._read(self._msg), self._repair)
        return self._parsed


def render_fetch(req, msg, read=None, extra_flags=False, ident=None, memo=None, crlf=False):
    """The parenthesized FETCH attribute list for one message.

    msg: a Message value (store/view.py) or one like it.  read(msg): its wire bytes,
    called once at most and only when req.needs_message.  extra_flags adds FLAGS
    when not requested (the session sets it when \\Seen changed implicitly).
    ident(msg): the message's EMAILID, called only for that item.  memo: the
    message's fetch_cache.MessageMemo (metadata items rendered before), or None.
    crlf: read(msg) gives the store's wire form (maildir.to_wire: every LF is part
    of a CRLF), so the bare-LF check, two passes over the whole message (milliseconds
    for a large one), is skipped.
    """
    content = _Content(read, msg, ident, memo, repair=not crlf)
    out = [f(msg, content) for f in req._fns]
    if extra_flags and not req._has_flags:
        out.append(_r_flags(msg, content))
    return b"(" + b" ".join(out) + b")"


# ------------------------------------------------------------------ renderers

def _internaldate(msg):
    return dates.internaldate(msg.internaldate)


def _r_flags(msg, content):
    return b"FLAGS (" + flag_text(msg.flags) + b")"


def _r_uid(msg, content):
    return b"UID %d" % msg.uid


def _r_internaldate(msg, content):
    return b'INTERNALDATE "' + _internaldate(msg) + b'"'


def _r_size(msg, content):
    return b"RFC822.SIZE %d" % msg.size


def _r_modseq(msg, content):
    return b"MODSEQ (%d)" % msg.modseq


def _r_emailid(msg, content):
    return b"EMAILID (" + content.email_id().encode("ascii") + b")"


def _r_threadid(msg, content):
    # RFC 8474 5.2: a server that does not give messages thread ids answers NIL
    return b"THREADID NIL"


def _envelope(content):
    return envelope(content.head())


def _body(content):
    return bodystructure(content.parsed, extended=False)


def _bodystructure(content):
    return bodystructure(content.parsed)


def _r_envelope(msg, content):
    return b"ENVELOPE " + content.cached("ENVELOPE", _envelope)


def _r_body(msg, content):
    return b"BODY " + content.cached("BODY", _body)


def _r_bodystructure(msg, content):
    return b"BODYSTRUCTURE " + content.cached("BODYSTRUCTURE", _bodystructure)


def _literal(data):
    """Section data as a string: "" when empty, else a literal (NULs, which
    literals may not carry, become 0x80 as Dovecot does)."""
    if not data:
        return b'""'
    if b"\0" in data:
        data = data.replace(b"\0", b"\x80")
    return b"{%d}\r\n" % len(data) + data


# the memo key of BODY[HEADER] (as _section_renderer makes it), which head() reads
_TOP_HEADER = ((), "HEADER", frozenset())


def _top_header(content):
    return mime.section(content.parsed, (), "HEADER")


# Kept once a message was read and its MIME structure parsed for a kept item (BODY,
# BODYSTRUCTURE, a part's header): BODY and BODYSTRUCTURE (each a third of the cost of the
# read and parse a later FETCH of it would need again) and the header, from which
# ENVELOPE and header fields are made (_Content.head).
_PARSED_SIBLINGS = (("BODY", _body), ("BODYSTRUCTURE", _bodystructure), (_TOP_HEADER, _top_header))


def _section_renderer(label, section, partial):
    nums, text, fields = section
    prefix = label + b" "

    def data(content):
        return mime.section(content.parsed, nums, text, fields)

    if not nums and text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        def data(content):
            return mime.section(content.head(), nums, text, fields)

    if text in _HEADER_SECTIONS:
        # one entry whatever the request's case and order of names (the answer keeps
        # the message's order)
        key = (nums, text, frozenset(f.lower() for f in fields))
        plain = data

        def data(content):
            return content.cached(key, plain)

    if partial is None:
        def render(msg, content):
            return prefix + _literal(data(content))
    else:
        start, stop = partial[0], partial[0] + partial[1]

        def render(msg, content):
            return prefix + _literal(data(content)[start:stop])
    return render


def _binary_content(content, nums):
    try:
        return binary.decoded(content.parsed, nums)
    except binary.UnknownCTE as exc:
        raise IMAPNo(f"Unknown Content-Transfer-Encoding {str(exc)[:40]!r}", "UNKNOWN-CTE") from None


def _binary_item(label, nums, partial, peek):
    """BINARY[section]<partial> and BINARY.PEEK (RFC 3516 4.2): the decoded content."""
    prefix = label + b" "
    start = partial[0] if partial else 0
    stop = partial[0] + partial[1] if partial else None

    def render(msg, content):
        return prefix + binary.literal(_binary_content(content, nums)[start:stop])
    # `section` is set (and not the BODY[] one) so that BINARY[] sets \Seen as BODY[] does
    return FetchItem("BINARY[]", render, label, (nums, None, ()), partial, peek)


def _binary_size_item(label, nums):
    """BINARY.SIZE[section] (RFC 3516 4.3): the size of the decoded content."""
    prefix = label + b" "

    def render(msg, content):
        return prefix + b"%d" % len(_binary_content(content, nums))
    return FetchItem("BINARY.SIZE", render, label)


def _section_item(name, label, section, partial=None, peek=False):
    return FetchItem(name, _section_renderer(label, section, partial),
                     label, section, partial, peek)


_SIMPLE = {
    "FLAGS": FetchItem("FLAGS", _r_flags),
    "UID": FetchItem("UID", _r_uid),
    "INTERNALDATE": FetchItem("INTERNALDATE", _r_internaldate),
    "RFC822.SIZE": FetchItem("RFC822.SIZE", _r_size),
    "MODSEQ": FetchItem("MODSEQ", _r_modseq),
    "ENVELOPE": FetchItem("ENVELOPE", _r_envelope),
    "BODY": FetchItem("BODY", _r_body),
    "BODYSTRUCTURE": FetchItem("BODYSTRUCTURE", _r_bodystructure),
    "EMAILID": FetchItem("EMAILID", _r_emailid),          # RFC 8474 5
    "THREADID": FetchItem("THREADID", _r_threadid),
    # RFC 3501 6.4.5: RFC822 = BODY[], RFC822.HEADER = BODY.PEEK[HEADER],
    # RFC822.TEXT = BODY[TEXT]; each answers under its own name.
    "RFC822": _section_item("RFC822", b"RFC822", ((), None, ())),
    "RFC822.HEADER": _section_item("RFC822.HEADER", b"RFC822.HEADER",
                                   ((), "HEADER", ()), peek=True),
    "RFC822.TEXT": _section_item("RFC822.TEXT", b"RFC822.TEXT", ((), "TEXT", ())),
}
