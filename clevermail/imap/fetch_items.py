"""The FETCH request: the item list parsed (RFC 3501 6.4.5 and 9: fetch-att; RFC 3516
BINARY[...]; the section-spec and partial syntax are sections.py's) into a FetchRequest
of FetchItems, each carrying the render function fetch.py makes for it, chosen once.
Pure: text in, items or IMAPBad out.

The requests are kept by their text (a bounded table): clients send the same few item
lists again and again (imaptest's bench: a dozen), and a FetchRequest is immutable, so
a repeated list is looked up, not parsed and compiled again; so is each item by its
text (lists that vary, as imaptest's, repeat their items)."""

import functools

from clevermail.imap.fetch import (HEADER_SECTIONS, SIMPLE_RENDERERS, binary_renderer,
                                   binary_size_renderer, section_renderer)
from clevermail.imap.parser import section_end
from clevermail.imap.replies import IMAPBad
from clevermail.imap.sections import bad, parse_partial, parse_section_spec, shown

__all__ = ["CACHED_ITEMS", "FetchItem", "FetchRequest", "parse_fetch_items"]

# Items the shared cache keeps (fetch_cache.py), with HEADER_SECTIONS.
CACHED_ITEMS = frozenset(("ENVELOPE", "BODY", "BODYSTRUCTURE"))
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
        self.cached = any(i.name in CACHED_ITEMS or (i.section is not None and i.section[1] in HEADER_SECTIONS)
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


def _section_item(name, label, section, partial=None, peek=False):
    return FetchItem(name, section_renderer(label, section, partial), label, section, partial, peek)


_SIMPLE = {name: FetchItem(name, render) for name, render in SIMPLE_RENDERERS.items()}
# RFC 3501 6.4.5: RFC822 = BODY[], RFC822.HEADER = BODY.PEEK[HEADER], RFC822.TEXT =
# BODY[TEXT]; each answers under its own name.
_SIMPLE.update({
    "RFC822": _section_item("RFC822", b"RFC822", ((), None, ())),
    "RFC822.HEADER": _section_item("RFC822.HEADER", b"RFC822.HEADER", ((), "HEADER", ()), peek=True),
    "RFC822.TEXT": _section_item("RFC822.TEXT", b"RFC822.TEXT", ((), "TEXT", ())),
})


_MACROS = {
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}


# what the table keeps at most: 1024 requests of at most 16 items and 400 characters
# (a hostile list of thousands of items is parsed each time, never kept)
_KEPT = 1024
_KEPT_ITEMS = 16
_KEPT_TEXT = 400


def parse_fetch_items(arg):
    """FetchRequest for the FETCH argument after the sequence set: a macro
    (ALL FAST FULL), one fetch-att atom, or a list of fetch-att atoms."""
    # The key is the text: an Atom and a quoted string of the same text are read alike
    # (and hash and compare alike).  A list holding a literal (bytes, never equal to a
    # str) is refused by _parse, which raises, so nothing is kept; one holding a list
    # cannot be a key (TypeError): parsed, and refused, by _parse.
    if isinstance(arg, str):
        if len(arg) <= _KEPT_TEXT:
            return _parse_kept(arg, False)
    elif isinstance(arg, list) and len(arg) <= _KEPT_ITEMS:
        try:
            if sum(map(len, arg)) <= _KEPT_TEXT:
                return _parse_kept(tuple(arg), True)
        except TypeError:
            pass
    return _parse(arg, isinstance(arg, list))


@functools.lru_cache(maxsize=_KEPT)
def _parse_kept(key, is_list):
    """_parse of a str or a tuple, kept (a request that is bad raises each time:
    lru_cache keeps no exception)."""
    return _parse(list(key) if is_list else key, is_list)


def _parse(arg, is_list):
    if is_list:
        if not arg:
            raise IMAPBad("Empty list of fetch items")
        atoms = arg
    elif isinstance(arg, str):
        atoms = _MACROS.get(arg.upper()) or [arg]
    else:
        raise IMAPBad("Invalid fetch items")
    items, seen = [], {}
    for atom in atoms:
        if not isinstance(atom, str):
            raise IMAPBad("Invalid fetch item: expected an atom")
        if atom.upper() in _MACROS and atoms is arg:
            # RFC 3501 9: macros stand alone, never inside a list.
            raise IMAPBad("Fetch macro %s must be used alone" % atom.upper())
        item = _parse_item(atom)
        key = (item.label, item.partial)
        if key not in seen:          # a repeated item is answered once...
            seen[key] = len(items)
            items.append(item)
        elif items[seen[key]].peek and not item.peek:
            items[seen[key]] = item  # ...but BODY[] after BODY.PEEK[] still sets \Seen
    return FetchRequest(items)


# the items kept by their text (the table of lists misses when the lists vary, as
# imaptest's bench makes them from 7 names and header-field lists of 1-4 of 7 more; the
# items themselves repeat): up to 4096 atoms of at most 400 characters
_KEPT_ATOMS = 4096


def _parse_item(atom):
    """The FetchItem of one fetch-att (kept for a short one: FetchItems are immutable)."""
    if len(atom) <= _KEPT_TEXT:
        return _parse_item_kept(atom)
    return _parse_one(atom)


@functools.lru_cache(maxsize=_KEPT_ATOMS)
def _parse_item_kept(atom):
    return _parse_one(atom)


def _parse_one(atom):
    up = atom.upper()
    simple = _SIMPLE.get(up)
    if simple is not None:
        return simple
    if up.startswith("BODY["):
        peek, rest = False, atom[5:]
    elif up.startswith("BODY.PEEK["):
        peek, rest = True, atom[10:]
    elif up.startswith(("BINARY[", "BINARY.PEEK[", "BINARY.SIZE[")):
        return _parse_binary(atom, up)
    else:
        raise IMAPBad("Unknown fetch item: %s" % shown(atom))
    close = section_end(rest)
    if close < 0:
        raise bad("Missing ]", atom)
    nums, text, fields, label = parse_section_spec(rest[:close], atom)
    tail = rest[close + 1:]
    partial = parse_partial(tail, atom) if tail else None
    label = b"BODY[" + label.encode() + b"]"
    if partial is not None:
        label += b"<%d>" % partial[0]
    # BODY.PEEK[...] answers as BODY[...] (RFC 3501 7.4.2).
    return _section_item("BODY[]", label, (nums, text, fields), partial, peek)


def _parse_binary(atom, up):
    """BINARY[section-binary]<partial>, BINARY.PEEK[...]<partial>, BINARY.SIZE[...]:
    section-binary is part numbers only (RFC 3516 5)."""
    kind, _, rest = atom.partition("[")
    kind = kind.upper()
    close = section_end(rest)
    if close < 0:
        raise bad("Missing ]", atom)
    spec, tail = rest[:close], rest[close + 1:]
    nums, text, _, label = parse_section_spec(spec, atom)
    if text is not None:
        raise bad("Only part numbers are allowed in a BINARY section", atom)
    if kind == "BINARY.SIZE":
        if tail:
            raise bad("No partial allowed", atom)
        label = b"BINARY.SIZE[" + label.encode() + b"]"
        return FetchItem("BINARY.SIZE", binary_size_renderer(label, nums), label)
    partial = parse_partial(tail, atom) if tail else None
    answer = b"BINARY[" + label.encode() + b"]"
    if partial is not None:
        answer += b"<%d>" % partial[0]
    # BINARY.PEEK[...] answers as BINARY[...] (RFC 3516 4.2); `section` is set (and not
    # the BODY[] one) so that BINARY[] sets \Seen as BODY[] does
    return FetchItem("BINARY[]", binary_renderer(answer, nums, partial), answer, (nums, None, ()),
                     partial, kind == "BINARY.PEEK")
