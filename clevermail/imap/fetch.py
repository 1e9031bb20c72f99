"""FETCH responses: the attribute list of one untagged FETCH response (RFC 3501
section 7.4.2) for the items of a request (fetch_items.py: the FetchRequest, whose
items carry the render functions made here).

A message is the folder view's Message value (store/view.py: seq, uid, flags as a
frozenset of names, internaldate, size); its content comes from the command's
FetchSource (the file handler's read_message, or a message kept in the shared
fetch_content.ContentCache), read and parsed only for items that need it, at most once
per render.  A request of index items only (FLAGS, UID, INTERNALDATE, RFC822.SIZE,
MODSEQ: FETCH 1:* (UID FLAGS) over a big folder) is fetch_index.py's.
fetch_response() renders one message as the bytes to write (a large literal as it is,
not copied into a line); render_fetch() gives the same as one bytes.  Items derived
from the message text (ENVELOPE, BODY, BODYSTRUCTURE, BODY[section], RFC822*) come from
clevermail.imap.mime.  ENVELOPE, BODY, BODYSTRUCTURE and header sections go through
the message's memo of the shared fetch_cache.FetchCache when the caller hands one:
rendered once, by any session; but the top-level header fields (BODY[HEADER.FIELDS
(...)] and .NOT), whose lists vary, are made each time from the kept header's fields
(header_fields.py).  The section-spec and partial syntax is sections.py's.
"""

import functools

from clevermail.imap import binary, dates, mime
from clevermail.imap.bodystructure import bodystructure
from clevermail.imap.envelope import envelope
from clevermail.imap.header_fields import FieldLines, select
from clevermail.imap.replies import IMAPNo

__all__ = ["FetchSource", "SIMPLE_RENDERERS", "TOP_HEADER", "binary_renderer",
           "binary_size_renderer", "fetch_response", "flag_text", "literal", "quoted_internaldate",
           "render_fetch", "section_renderer", "shown_fields"]

# The header sections the shared cache keeps (fetch_cache.py), as ENVELOPE, BODY and
# BODYSTRUCTURE: small, and asked for again and again (message lists).
HEADER_SECTIONS = frozenset(("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT"))


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


class FetchSource:
    """Where the messages of one FETCH come from: read(msg) gives a message's wire
    bytes, ident(msg) its EMAILID (RFC 8474); repair: whether bare LFs are looked for
    (not in the store's wire form, maildir.to_wire: every LF is part of a CRLF, and the
    check is two passes over the whole message).  kept: the shared
    fetch_content.ContentCache, with `folder` (the folder key of its entries) and
    live(uid) (whether the folder index held the message when the FETCH began: a kept
    message is answered only for one that exists, so a message expunged that the session
    was not told of yet answers as it did before there was a cache); or None."""

    __slots__ = ("read", "ident", "repair", "kept", "folder", "live")

    def __init__(self, read, ident=None, repair=True, kept=None, folder=None, live=None):
        self.read, self.ident, self.repair = read, ident, repair
        self.kept, self.folder, self.live = kept, folder, live

    def parse(self, msg):
        """The message's ParsedMessage: the kept one, else read now."""
        kept = self.kept
        if kept is not None:
            pm = kept.get((self.folder, msg.uid), msg.size)
            if pm is not None and self.live(msg.uid):
                return pm
        return mime.parse(self.read(msg), self.repair)

    def done(self, msg, pm):
        """After a render that read or parsed the message: kept for the next FETCH."""
        if self.kept is not None:
            self.kept.keep((self.folder, msg.uid), pm)


class _Content:
    """The content of the message one render renders: from its FetchSource, read and
    parsed (mime.py) at most once, only if an item needs it.  big: an item gave its
    literal apart from its text ((text, data): written as it is, not copied into the
    line)."""

    __slots__ = ("_source", "_msg", "_parsed", "_items", "_memo", "_head", "big")

    def __init__(self, source, msg, items=None, memo=None):
        self._source, self._msg, self._parsed = source, msg, None
        # this message's rendered metadata kept in this process (a dict: read here,
        # added to through the memo), and the memo (the command's FolderMemos, which
        # looks at the journal, or a MessageMemo), which keeps what is made here
        self._items, self._memo = items, memo
        self._head, self.big = None, False

    def cached(self, item, render):
        """render(self)'s bytes for a metadata item, from the shared cache when another
        FETCH rendered it before (no file read, no parse), else made and kept."""
        items = self._items
        if items is None:
            return render(self)
        # this process's items first, read straight (a hit is most FETCHes), then
        # with the journal (what other processes rendered)
        value = items.get(item)
        if value is None:
            memo, uid = self._memo, self._msg.uid
            value = memo.missing(uid, items, item)
            if value is None:
                value = render(self)
                memo.keep(uid, items, item, value)
                parsed = self._parsed
                if parsed is not None and parsed.parsed_tree:
                    self._siblings(memo, uid, items)
        return value

    def _siblings(self, memo, uid, items):
        """Keep what _PARSED_SIBLINGS the memo lacks, from the message parsed already."""
        for item, render in _PARSED_SIBLINGS:
            if item not in items:
                memo.keep(uid, items, item, render(self))

    def email_id(self):
        """The message's stable id (RFC 8474 EMAILID), through the source's ident(msg)."""
        return self._source.ident(self._msg)

    def field_lines(self):
        """The top-level header's fields as header_fields.field_lines gives them: split
        once per process from the kept BODY[HEADER] (no message file read, no parse
        once any session kept it)."""
        return _FIELD_LINES.get(self.cached(TOP_HEADER, _top_header))

    def head(self):
        """A ParsedMessage of the top-level header alone, enough for ENVELOPE: made from
        the cached BODY[HEADER] when any session kept it before, so that it reads no
        message file and parses no body."""
        if self._parsed is None and self._head is None:
            raw = self.cached(TOP_HEADER, _top_header)
            self._head = mime.parse(raw, repair=False)      # cut from a repaired message
        return self._parsed if self._parsed is not None else self._head

    @property
    def parsed(self):
        if self._parsed is None:
            self._parsed = self._source.parse(self._msg)
        return self._parsed


def _render(req, msg, source, memo, extra_flags, items=None):
    """(the items' values, the _Content): each value bytes, or (text, literal data)."""
    if items is None and memo is not None:
        items = memo.items          # a MessageMemo
    content = _Content(source, msg, items, memo)
    out = [f(msg, content) for f in req._fns]
    if extra_flags and not req._has_flags:
        out.append(_r_flags(msg, content))
    if content._parsed is not None:
        source.done(msg, content._parsed)
    return out, content


def _pieces(head, values, tail):
    """head, the values separated by spaces, tail: as a few bytes, each large literal
    one of them as it is."""
    out, text = [], [head]
    for k, value in enumerate(values):
        if k:
            text.append(b" ")
        if value.__class__ is tuple:
            text.append(value[0])
            out.append(b"".join(text))
            out.append(value[1])
            text = []
        else:
            text.append(value)
    text.append(tail)
    out.append(b"".join(text))
    return out


def fetch_response(req, msg, source, memo=None, extra_flags=False, items=None):
    """The untagged FETCH response of one message ("* seq FETCH (...)" CRLF) as bytes
    to be written one after the other: one, or a few around each large literal (a
    message's bytes go to the output as they are, not copied into a line first).
    source: a FetchSource; memo, extra_flags: as for render_fetch, or memo the command's
    fetch_cache.FolderMemos and `items` the message's dict from its items_of (a FETCH
    of many messages makes no memo object per message)."""
    out, content = _render(req, msg, source, memo, extra_flags, items)
    if not content.big:
        return (b"* %d FETCH (%s)\r\n" % (msg.seq, b" ".join(out)),)
    return _pieces(b"* %d FETCH (" % msg.seq, out, b")\r\n")


def render_fetch(req, msg, read=None, extra_flags=False, ident=None, memo=None, crlf=False):
    """The parenthesized FETCH attribute list for one message.

    msg: a Message value (store/view.py) or one like it.  read(msg): its wire bytes,
    called once at most and only when req.needs_message.  extra_flags adds FLAGS
    when not requested (the session sets it when \\Seen changed implicitly).
    ident(msg): the message's EMAILID, called only for that item.  memo: the
    message's fetch_cache.MessageMemo (metadata items rendered before), or None.
    crlf: read(msg) gives the store's wire form (FetchSource's repair=False).
    """
    out, _ = _render(req, msg, FetchSource(read, ident, repair=not crlf), memo, extra_flags)
    return b"".join(_pieces(b"(", out, b")"))


# ------------------------------------------------------------------ renderers

# INTERNALDATE's text per epoch value: a message is fetched again and again, and a
# folder's dates are few next to the FETCHes that show them (gmtime and a format of
# seven fields made once, then a C-level lookup)
internaldate_text = functools.lru_cache(maxsize=1 << 14)(dates.internaldate)


@functools.lru_cache(maxsize=1 << 14)
def quoted_internaldate(epoch):
    """The INTERNALDATE value with its quotes, as bytes (cached)."""
    return b'"' + internaldate_text(epoch) + b'"'


def _r_flags(msg, content):
    return b"FLAGS (" + flag_text(msg.flags) + b")"


def _r_uid(msg, content):
    return b"UID %d" % msg.uid


def _r_internaldate(msg, content):
    return b"INTERNALDATE " + quoted_internaldate(msg.internaldate)


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


# data from this size on is written as it is, apart from the text around it
# (fetch_response): a copy of it into the line would cost more than the join
_BIG = 4096


def literal(prefix, data):
    """prefix and section data as a string: "" when empty, else a literal (NULs,
    which literals may not carry, become 0x80 as Dovecot does), as one bytes."""
    if not data:
        return prefix + b'""'
    data = _without_nul(data)
    return prefix + b"{%d}\r\n" % len(data) + data


def _literal(prefix, data, content):
    """literal(), but a large one as (text, data), marked on the content."""
    if len(data) < _BIG:
        return literal(prefix, data)
    data = _without_nul(data)
    content.big = True
    return (prefix + b"{%d}\r\n" % len(data), data)


def _without_nul(data):
    # the byte's value, not b"\0": bytes' `in` tries its operand as an int first,
    # and a bytes one fails that with an exception made and dropped each time
    return data.replace(b"\0", b"\x80") if 0 in data else data


# the memo key of BODY[HEADER] (as section_renderer makes it), which head() reads
TOP_HEADER = ((), "HEADER", frozenset())
# the fields of the headers of recently fetched messages, split (shared by the sessions)
_FIELD_LINES = FieldLines()
# a top-level header's (its kept BODY[HEADER]'s) fields, as header_fields.select takes them
shown_fields = _FIELD_LINES.get


def _top_header(content):
    return mime.section(content.parsed, (), "HEADER")


# Kept once a message was read and its MIME structure parsed for a kept item (BODY,
# BODYSTRUCTURE, a part's header): BODY and BODYSTRUCTURE (each a third of the cost of the
# read and parse a later FETCH of it would need again) and the header, from which
# ENVELOPE and header fields are made (_Content.head).
_PARSED_SIBLINGS = (("BODY", _body), ("BODYSTRUCTURE", _bodystructure), (TOP_HEADER, _top_header))


def section_renderer(label, section, partial):
    """BODY[section]<partial> (RFC 3501 6.4.5), answered as `label`; RFC822* too."""
    nums, text, fields = section
    prefix = label + b" "

    def data(content):
        return mime.section(content.parsed, nums, text, fields)

    if not nums and text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        # from the message's header split once (header_fields.py), never kept: the
        # lists vary from FETCH to FETCH, and the answer is one pass over the fields
        names, keep = frozenset(f.lower() for f in fields), text == "HEADER.FIELDS"
        if partial is None:         # the common form, a call less per message
            def render(msg, content):
                return _literal(prefix, select(content.field_lines(), names, keep), content)
            return render

        def data(content):
            return select(content.field_lines(), names, keep)
    elif text in HEADER_SECTIONS:
        # one entry whatever the request's case and order of names (the answer keeps
        # the message's order)
        key = (nums, text, frozenset(f.lower() for f in fields))
        plain = data

        if partial is None:         # the common form, a call less per message
            def render(msg, content):
                return _literal(prefix, content.cached(key, plain), content)
            return render

        def data(content):
            return content.cached(key, plain)
    elif partial is None:
        def render(msg, content):       # BODY[], BODY[TEXT], BODY[1]: a call less
            return _literal(prefix, mime.section(content.parsed, nums, text, fields), content)
        return render

    # a partial (every form without one returned above)
    start, stop = partial[0], partial[0] + partial[1]

    def render(msg, content):
        return _literal(prefix, data(content)[start:stop], content)
    return render


def _binary_content(content, nums):
    try:
        return binary.decoded(content.parsed, nums)
    except binary.UnknownCTE as exc:
        raise IMAPNo(f"Unknown Content-Transfer-Encoding {str(exc)[:40]!r}", "UNKNOWN-CTE") from None


def binary_renderer(label, nums, partial):
    """BINARY[section]<partial> and BINARY.PEEK (RFC 3516 4.2): the decoded content."""
    prefix = label + b" "
    start = partial[0] if partial else 0
    stop = partial[0] + partial[1] if partial else None

    def render(msg, content):
        return prefix + binary.literal(_binary_content(content, nums)[start:stop])
    return render


def binary_size_renderer(label, nums):
    """BINARY.SIZE[section] (RFC 3516 4.3): the size of the decoded content."""
    prefix = label + b" "

    def render(msg, content):
        return prefix + b"%d" % len(_binary_content(content, nums))
    return render


# the renderers of the items named by one word (fetch_items.py makes their FetchItems)
SIMPLE_RENDERERS = {
    "FLAGS": _r_flags, "UID": _r_uid, "INTERNALDATE": _r_internaldate, "RFC822.SIZE": _r_size,
    "MODSEQ": _r_modseq, "ENVELOPE": _r_envelope, "BODY": _r_body,
    "BODYSTRUCTURE": _r_bodystructure,
    "EMAILID": _r_emailid, "THREADID": _r_threadid,         # RFC 8474 5
}
