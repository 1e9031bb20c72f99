"""IMAP SEARCH: parse search keys, then test them one message at a time.

This module owns the `search` grammar of RFC 3501 section 9 and the matching
rules of RFC 3501 section 6.4.4: CHARSET (US-ASCII, UTF-8), every RFC 3501
search key, bare sequence sets, nested lists, implicit AND.  Strings match as case-insensitive substrings of decoded
text: header values unfolded and decoded from RFC 2047 encoded words, bodies
decoded per RFC 2045 Content-Transfer-Encoding and charset, found in the
part tree of mime.py as FETCH finds them (decode.py does the decoding; this
module decides what matches; search_view.py is a message as the keys see it).

The session resolves the mailbox and hands each message to matches() as the folder
view's Message value (store/view.py: seq, uid, flags as a frozenset of names with
\\Recent among them, internaldate, size) and a `ctx` (max_seq, max_uid, and
read(msg): the message's wire bytes, through the file handler; saved: the UIDs of
the SEARCHRES result "$", RFC 5182).  Keys are costed (flags/UID/size < headers < body)
and AND tries cheap keys first, so flag-only searches never read a message.
A search that is only an AND of flag keys (UNSEEN, UNDELETED, ALL, ...) also
says so as `SearchProgram.flag_tests`, so the session can have the folder view
answer it from its index without building a message object per message.
`SearchProgram.relative` says whether a key depends on more than the message itself
(sequence numbers, "*", the saved result "$"): a search context (RFC 5267) kept up to
date must then test every message again after a change, not only the changed ones.
"""

import collections
import operator

from clevermail.imap import dates
from clevermail.imap.replies import IMAPBad, IMAPNo
from clevermail.imap.search_view import MessageView, utc_date
from clevermail.imap.seqset import parse_sequence_set

__all__ = ["SearchProgram", "parse_search"]

CHARSETS = ("US-ASCII", "UTF-8")
_BADCHARSET = "BADCHARSET (US-ASCII UTF-8)"
# Each NOT/OR/list level costs a few stack frames when parsing and evaluating;
# the bound keeps a hostile "NOT NOT NOT ..." from reaching the recursion limit
# while leaving room for clients that write long "OR OR OR ..." chains.
_MAX_DEPTH = 200
_MAX_NUMBER = 0xFFFFFFFF  # number = unsigned 32-bit (RFC 3501 section 9)
_MAX_NUMBER64 = (1 << 63) - 1  # LARGER, SMALLER: number64 (RFC 9051 9, Appendix E 1)

# Evaluation cost tiers: what a key has to read.
CHEAP, HEADERS, BODY = 0, 1, 2


# One compiled key: its cost tier, test(msg, ctx, view) -> bool, and `flags`:
# ((casefolded flag name, wanted), ...) when the key is exactly "has / lacks
# these flags" (ALL is the empty tuple), else None.
_Node = collections.namedtuple("_Node", "cost test flags", defaults=(None,))


def _and(nodes):
    if len(nodes) == 1:
        return nodes[0]
    flags = None
    if all(n.flags is not None for n in nodes):
        flags = tuple(t for n in nodes for t in n.flags)
    # Stable sort: cheapest first, so a failing flag test spares raw().
    nodes = sorted(nodes, key=lambda n: n.cost)
    tests = tuple(n.test for n in nodes)
    return _Node(nodes[-1].cost, lambda m, c, v: all(t(m, c, v) for t in tests), flags)


def _or(a, b):
    a, b = sorted((a, b), key=lambda n: n.cost)
    ta, tb = a.test, b.test
    return _Node(b.cost, lambda msg, ctx, view: ta(msg, ctx, view) or tb(msg, ctx, view))


def _not(a):
    ta = a.test
    flags = None
    if a.flags is not None and len(a.flags) == 1:
        flags = ((a.flags[0][0], not a.flags[0][1]),)
    return _Node(a.cost, lambda msg, ctx, view: not ta(msg, ctx, view), flags)


# ---------------------------------------------------------------- parsing

class _Tokens(collections.deque):
    """The unread tokens of one list (the top level or one parenthesized list);
    `found` is shared by all the lists of one search (what parse_search reports)."""

    def __init__(self, tokens, found=None):
        super().__init__(tokens)
        self.found = {} if found is None else found

    def next(self, what):
        if not self:
            raise IMAPBad(f"Missing {what}")
        return self.popleft()


def _show(tok):
    """A token made safe to echo in a reply line (no CR/LF, bounded)."""
    if isinstance(tok, bytes):
        tok = tok.decode("ascii", "replace")
    if not isinstance(tok, str):
        return "(list)"
    return "".join(c if c.isascii() and c.isprintable() else "?" for c in tok[:40])


def _atom(p, what):
    tok = p.next(what)
    if not isinstance(tok, str) or not tok:
        raise IMAPBad(f"Expected an atom for {what}")
    return tok


def _string(p, key):
    """astring argument -> casefolded text (UTF-8; US-ASCII is a subset)."""
    tok = p.next(f"string after {key}")
    if isinstance(tok, bytes):
        try:
            tok = tok.decode("utf-8")
        except UnicodeDecodeError:
            raise IMAPBad(f"{key} string is not valid UTF-8") from None
    elif not isinstance(tok, str):
        raise IMAPBad(f"{key} needs a string, not a list")
    return str(tok).casefold()


def _date(p, key):
    """date = date-text / DQUOTE date-text DQUOTE; date-text = d-Mon-yyyy."""
    tok = p.next(f"date after {key}")
    if isinstance(tok, bytes):
        tok = tok.decode("ascii", "replace")
    if isinstance(tok, str):
        try:
            return dates.parse_date(str(tok))
        except ValueError:
            pass  # malformed, or 31-Feb-2020 and friends
    raise IMAPBad(f"Invalid date {_show(tok)} after {key} (expected d-Mon-yyyy)")


def _number(p, key, limit=_MAX_NUMBER):
    tok = p.next(f"number after {key}")
    if (not isinstance(tok, str) or not tok.isascii() or not tok.isdigit()
            or len(tok) > 19 or int(tok) > limit):
        raise IMAPBad(f"Invalid number {_show(tok)} after {key}")
    return int(tok)


def _has(flag):
    return _Node(CHEAP, lambda m, c, v: flag in v.flags, ((flag, True),))


def _keyword(present):
    def parse(p, depth):
        node = _has(_atom(p, "keyword").casefold())
        return node if present else _not(node)
    return parse


def _address_key(field):
    """FROM, TO, CC, BCC: a substring of the parsed addresses (decode.address_text),
    not of the raw field with its comments and quoting."""
    def parse(p, depth):
        needle = _string(p, field.upper())

        def test(m, c, v):
            return any(needle in value for value in v.addresses(field))
        return _Node(HEADERS, test)
    return parse


def _header_key(field):
    return lambda p, depth: _header_node(field, _string(p, field.upper()))


def _header_node(field, needle):
    # Present and containing the string; "" therefore means "has the field".
    def test(m, c, v):
        return any(needle in value for name, value in v.headers if name == field)
    return _Node(HEADERS, test)


def _parse_header(p, depth):
    tok = p.next("field name after HEADER")
    if isinstance(tok, bytes):
        tok = tok.decode("latin-1")
    elif not isinstance(tok, str):
        raise IMAPBad("HEADER needs a field name, not a list")
    return _header_node(tok.strip().lower(), _string(p, "HEADER"))


def _parse_body(p, depth):
    needle = _string(p, "BODY")
    return _Node(BODY, lambda m, c, v: needle in v.body)


def _parse_text(p, depth):
    needle = _string(p, "TEXT")
    return _Node(BODY, lambda m, c, v: needle in v.text)


# BEFORE is "<", ON "==", SINCE ">=", on dates only (RFC 3501 6.4.4).
_COMPARE = {"BEFORE": operator.lt, "ON": operator.eq, "SINCE": operator.ge}


def _date_key(kind, sent):
    compare = _COMPARE[kind]

    def parse(p, depth):
        when = _date(p, "SENT" + kind if sent else kind)

        def test(m, c, v):
            # SENT*: the Date: field as written, in its own zone; else the
            # internal date in UTC.  An unknown date (no or bad Date:) never matches.
            day = v.sent_date() if sent else utc_date(m.internaldate)
            return day is not None and compare(day, when)
        return _Node(HEADERS if sent else CHEAP, test)
    return parse


def _size_key(key, compare):
    def parse(p, depth):
        limit = _number(p, key, _MAX_NUMBER64)
        return _Node(CHEAP, lambda m, c, v: compare(m.size, limit))
    return parse


def _parse_uid(p, depth):
    text = _atom(p, "sequence set after UID")
    uids = parse_sequence_set(text)
    if "*" in text:
        p.found["relative"] = True      # "*" is the highest UID: new mail moves it
    return _Node(CHEAP, lambda m, c, v: uids.contains(m.uid, c.max_uid))


_MAX_MODSEQ = (1 << 63) - 1


def _parse_modseq(p, depth):
    """MODSEQ [entry-name entry-type-req] mod-sequence-valzer (RFC 7162 3.1.5): the
    messages whose modseq is at least the value.  The store keeps one modseq per
    message, not one per flag, so an entry name ("/flags/\\seen") is checked, then
    answered with the message's."""
    tok = p.next("MODSEQ value")
    if isinstance(tok, bytes):
        name = tok.decode("ascii", "replace").lower()
        kind = p.next("entry type after the MODSEQ entry name")
        if not name.startswith("/flags/") or len(name) == 7:
            raise IMAPBad(f"Invalid MODSEQ entry name {_show(tok)}")
        if not isinstance(kind, str) or kind.lower() not in ("priv", "shared", "all"):
            raise IMAPBad(f"Invalid MODSEQ entry type {_show(kind)}")
        tok = p.next("MODSEQ value")
    if (not isinstance(tok, str) or not tok.isascii() or not tok.isdigit() or len(tok) > 19
            or int(tok) > _MAX_MODSEQ):
        raise IMAPBad(f"Invalid MODSEQ value {_show(tok)}")
    least = int(tok)
    p.found["modseq"] = True
    return _Node(CHEAP, lambda m, c, v: m.modseq >= least)


def _parse_emailid(p, depth):
    """EMAILID (RFC 8474 6): the message with that id (an exact, case-sensitive match)."""
    wanted = _atom(p, "object id after EMAILID")
    return _Node(HEADERS, lambda m, c, v: c.email_id(m) == wanted)


def _parse_threadid(p, depth):
    """THREADID (RFC 8474 6): no message has one here (FETCH THREADID is NIL)."""
    _atom(p, "object id after THREADID")
    return _Node(CHEAP, lambda m, c, v: False)


def _parse_or(p, depth):
    a = _parse_key(p, depth + 1)
    return _or(a, _parse_key(p, depth + 1))


def _fixed(node):
    return lambda p, depth: node


# Key name (upper case) -> parse(p, depth) -> _Node.  A table, not getattr on
# client input.
_KEYS = {
    "ALL": _fixed(_Node(CHEAP, lambda m, c, v: True, ())),
    "RECENT": _fixed(_Node(CHEAP, lambda m, c, v: "\\recent" in v.flags)),
    "OLD": _fixed(_Node(CHEAP, lambda m, c, v: "\\recent" not in v.flags)),
    "NEW": _fixed(_Node(CHEAP, lambda m, c, v: "\\recent" in v.flags and "\\seen" not in v.flags)),
    "KEYWORD": _keyword(True),
    "UNKEYWORD": _keyword(False),
    "BCC": _address_key("bcc"),
    "CC": _address_key("cc"),
    "FROM": _address_key("from"),
    "SUBJECT": _header_key("subject"),
    "TO": _address_key("to"),
    "HEADER": _parse_header,
    "BODY": _parse_body,
    "TEXT": _parse_text,
    "LARGER": _size_key("LARGER", operator.gt),
    "SMALLER": _size_key("SMALLER", operator.lt),
    "UID": _parse_uid,
    "MODSEQ": _parse_modseq,
    "EMAILID": _parse_emailid,
    "THREADID": _parse_threadid,
    "NOT": lambda p, depth: _not(_parse_key(p, depth + 1)),
    "OR": _parse_or,
}
for _name in ("ANSWERED", "DELETED", "DRAFT", "FLAGGED", "SEEN"):
    _KEYS[_name] = _fixed(_has("\\" + _name.lower()))
    _KEYS["UN" + _name] = _fixed(_not(_has("\\" + _name.lower())))
for _name in _COMPARE:
    _KEYS[_name] = _date_key(_name, sent=False)
    _KEYS["SENT" + _name] = _date_key(_name, sent=True)
del _name


def _parse_key(p, depth):
    if depth > _MAX_DEPTH:
        raise IMAPBad("Search keys nested too deeply")
    tok = p.next("search key")
    if isinstance(tok, list):
        return _parse_keys(_Tokens(tok, p.found), depth + 1)
    if not isinstance(tok, str) or not tok:
        raise IMAPBad(f"Invalid search key {_show(tok)}")
    if tok == "$":
        p.found["relative"] = True
        # the saved result of SEARCHRES (RFC 5182 2.1): UIDs, so an expunge cannot shift it
        return _Node(CHEAP, lambda m, c, v: m.uid in c.saved)
    if tok[0] in "0123456789*":
        # A bare sequence set is a key: message sequence numbers (RFC 3501 6.4.4).
        seqs = parse_sequence_set(tok)
        p.found["relative"] = True      # an expunge renumbers, new mail moves "*"
        return _Node(CHEAP, lambda m, c, v: seqs.contains(m.seq, c.max_seq))
    parse = _KEYS.get(tok.upper())
    if parse is None:
        raise IMAPBad(f"Unknown search key {_show(tok)}")
    return parse(p, depth)


def _parse_keys(p, depth):
    """One or more keys up to the end of this token list, ANDed."""
    if not p:
        raise IMAPBad("Empty search criteria")
    nodes = [_parse_key(p, depth)]
    while p:
        nodes.append(_parse_key(p, depth))
    return _and(nodes)


class SearchProgram:
    """Compiled search criteria; matches() tests one message."""

    def __init__(self, root, charset, modseq=False, relative=False):
        self._root = root
        self.charset = charset
        # a key depends on sequence numbers, "*" or "$", not only on the message
        self.relative = relative
        # a MODSEQ key is among them (RFC 7162: the reply says the highest modseq)
        self.modseq = modseq
        # True if some key reads headers or body, i.e. may call ctx.read(msg).
        self.needs_message = root.cost > CHEAP
        # ((casefolded flag name, wanted), ...) when matching is only "has these
        # flags, lacks those" (() for ALL): see the module docstring.  Else None.
        self.flag_tests = root.flags

    def matches(self, msg, ctx) -> bool:
        return bool(self._root.test(msg, ctx, MessageView(msg, ctx.read)))


def parse_search(args: list) -> SearchProgram:
    """Tokens after SEARCH (or UID SEARCH) -> SearchProgram; IMAPBad / IMAPNo."""
    p = _Tokens(args)
    charset = "US-ASCII"
    if p and isinstance(p[0], str) and p[0].upper() == "CHARSET":
        p.popleft()
        # TODO: after ENABLE UTF8=ACCEPT (not offered yet) a CHARSET is a BAD
        # (RFC 6855 section 3).
        name = p.next("charset name")
        if isinstance(name, bytes):
            name = name.decode("ascii", "replace")
        if not isinstance(name, str) or name.upper() not in CHARSETS:
            raise IMAPNo(f"Unsupported charset {_show(name)}", code=_BADCHARSET)
        charset = name.upper()
    # US-ASCII strings are decoded as UTF-8 too: a strict superset, so a client
    # that mislabels UTF-8 still finds its mail.
    root = _parse_keys(p, 0)
    return SearchProgram(root, charset, modseq=p.found.get("modseq", False),
                         relative=p.found.get("relative", False))
