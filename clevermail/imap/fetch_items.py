"""The FETCH item list parsed (RFC 3501 6.4.5 and 9: fetch-att; RFC 3516 BINARY[...];
the section-spec and partial syntax are sections.py's): parse_fetch_items() gives the
FetchRequest of fetch.py whose items carry their render functions.  Pure: text in,
items or IMAPBad out.

The requests are kept by their text (a bounded table): clients send the same few item
lists again and again (imaptest's bench: a dozen), and a FetchRequest is immutable, so
a repeated list is looked up, not parsed and compiled again."""

import functools

from clevermail.imap.fetch import (FetchRequest, _SIMPLE, _binary_item, _binary_size_item,
                                   _section_item)
from clevermail.imap.parser import section_end
from clevermail.imap.replies import IMAPBad
from clevermail.imap.sections import bad, parse_partial, parse_section_spec, shown

__all__ = ["parse_fetch_items"]

_MACROS = {
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}


# what the table keeps at most: 1024 requests of at most 16 items of 200 characters
# (a hostile list of thousands of items is parsed each time, never kept)
_KEPT = 1024
_KEPT_ITEMS = 16
_KEPT_TEXT = 200


def parse_fetch_items(arg):
    """FetchRequest for the FETCH argument after the sequence set: a macro
    (ALL FAST FULL), one fetch-att atom, or a list of fetch-att atoms."""
    if isinstance(arg, str):
        if len(arg) <= _KEPT_TEXT:
            return _parse_kept(str(arg), False)
    elif (isinstance(arg, list) and len(arg) <= _KEPT_ITEMS
          and all(isinstance(atom, str) and len(atom) <= _KEPT_TEXT for atom in arg)):
        # a tuple of plain str: what the request depends on (an Atom and a quoted
        # string of the same text are read alike)
        return _parse_kept(tuple(map(str, arg)), True)
    return _parse(arg, isinstance(arg, list))


@functools.lru_cache(maxsize=_KEPT)
def _parse_kept(key, is_list):
    """_parse of a str or a tuple of str, kept (a request that is bad raises each time:
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


def _parse_item(atom):
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
        return _binary_size_item(b"BINARY.SIZE[" + label.encode() + b"]", nums)
    partial = parse_partial(tail, atom) if tail else None
    answer = b"BINARY[" + label.encode() + b"]"
    if partial is not None:
        answer += b"<%d>" % partial[0]
    # BINARY.PEEK[...] answers as BINARY[...] (RFC 3516 4.2)
    return _binary_item(answer, nums, partial, kind == "BINARY.PEEK")
