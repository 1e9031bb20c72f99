"""FETCH data items: the request (RFC 3501 section 6.4.5) and the attribute
list of one untagged FETCH response (RFC 3501 section 7.4.2).

parse_fetch_items() turns the token after the sequence set into a
FetchRequest whose items each carry a render function chosen once.
render_index_only() answers a request of index items only (FLAGS, UID,
INTERNALDATE, RFC822.SIZE: FETCH 1:* (UID FLAGS) over a big folder) from the
folder view's index rows with one format operation per message: no regex, no
MIME code, no message file.  render_fetch() renders one message.  Items derived from
the message text (ENVELOPE, BODY, BODYSTRUCTURE, BODY[section], RFC822*) come
from clevermail.imap.mime, which parses a message at most once per render
(or once per `cache` dict the caller keeps).
"""

from clevermail.imap import dates, mime
from clevermail.imap.parser import is_atom, quote_astring, section_end
from clevermail.imap.replies import IMAPBad

__all__ = ["FetchItem", "FetchRequest", "parse_fetch_items", "render_fetch", "render_index_only"]

# Items answered from the index alone (no message bytes needed).
_NO_MESSAGE = frozenset(("FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE"))
_MACROS = {
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_MAX_NUMBER = 0xFFFFFFFF          # RFC 3501 number: unsigned 32-bit


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
    """Parsed FETCH items in request order, with what serving them needs."""

    __slots__ = ("items", "needs_message", "sets_seen", "_fns", "_has_flags")

    def __init__(self, items):
        self.items = list(items)
        self._compile()

    def _compile(self):
        items = self.items
        self.needs_message = any(i.name not in _NO_MESSAGE for i in items)
        # RFC 3501 6.4.5: BODY[...] (not PEEK), RFC822 and RFC822.TEXT set \Seen.
        self.sets_seen = any(i.section is not None and not i.peek for i in items)
        self._has_flags = any(i.name == "FLAGS" for i in items)
        self._fns = tuple(i.render for i in items)

    def add_uid(self):
        """UID FETCH always answers UID (RFC 3501 6.4.8): add it first if absent."""
        if not any(i.name == "UID" for i in self.items):
            self.items.insert(0, _SIMPLE["UID"])
            self._compile()

    def __repr__(self):
        return "FetchRequest(%r)" % (self.items,)


def render_fetch(req, msg, extra_flags=False, cache=None):
    """The parenthesized FETCH attribute list for one message.

    msg needs uid, flags, internaldate, size and raw() (only called when
    req.needs_message).  cache: optional dict kept by the caller to reuse the
    parsed message across calls for the same message.  extra_flags adds FLAGS
    when not requested (the session sets it when \\Seen changed implicitly).
    """
    if cache is None and req.needs_message:
        cache = {}
    out = [f(msg, cache) for f in req._fns]
    if extra_flags and not req._has_flags:
        out.append(_r_flags(msg, cache))
    return b"(" + b" ".join(out) + b")"


# Index items as format pieces: joined into one bytes format per request.
_INDEX_FORMATS = {"FLAGS": b"FLAGS (%s)", "UID": b"UID %d", "INTERNALDATE": b"INTERNALDATE %s",
                  "RFC822.SIZE": b"RFC822.SIZE %d"}


def render_index_only(req, seqs, rows, recent, flag_names):
    """Untagged FETCH lines for a request of index items only (not
    req.needs_message).  rows[i] is the index row of seqs[i] (uid, flags letters,
    date, wsize; store/view.py FolderView.index_rows) or None for a message
    expunged meanwhile, which is skipped.  recent: UIDs shown with \\Recent;
    flag_names: letters -> flag names."""
    names = [item.name for item in req.items]
    fmt = b"* %d FETCH (" + b" ".join(_INDEX_FORMATS[n] for n in names) + b")\r\n"
    flag_cache = {}

    def flags(uid, row):
        key = (row.flags, uid in recent)
        text = flag_cache.get(key)
        if text is None:
            text = flag_cache[key] = " ".join(flag_names(row.flags) + (("\\Recent",) if key[1] else ())).encode()
        return text

    if names == ["UID", "FLAGS"]:
        # what every client sends on every sync: one format and one cache lookup per
        # line, no function call
        get = flag_cache.get
        return [fmt % (seq, row.uid, get((row.flags, row.uid in recent)) or flags(row.uid, row))
                for seq, row in zip(seqs, rows) if row is not None]
    getters = {"FLAGS": lambda row: flags(row.uid, row), "UID": lambda row: row.uid,
               "INTERNALDATE": lambda row: dates.format_datetime(float(row.date)).encode(),
               "RFC822.SIZE": lambda row: row.wsize}
    cols = [getters[n] for n in names]
    return [fmt % (seq, *[g(row) for g in cols]) for seq, row in zip(seqs, rows) if row is not None]


# ------------------------------------------------------------------ renderers

def _flags(msg):
    return " ".join(msg.flags).encode()


def _internaldate(msg):
    return dates.internaldate(msg.internaldate)


def _r_flags(msg, cache):
    return b"FLAGS (" + _flags(msg) + b")"


def _r_uid(msg, cache):
    return b"UID %d" % msg.uid


def _r_internaldate(msg, cache):
    return b'INTERNALDATE "' + _internaldate(msg) + b'"'


def _r_size(msg, cache):
    return b"RFC822.SIZE %d" % msg.size


def _parsed(msg, cache):
    pm = cache.get("mime")
    if pm is None:
        pm = cache["mime"] = mime.parse(msg.raw())
    return pm


def _r_envelope(msg, cache):
    return b"ENVELOPE " + mime.envelope(_parsed(msg, cache))


def _r_body(msg, cache):
    return b"BODY " + mime.bodystructure(_parsed(msg, cache), extended=False)


def _r_bodystructure(msg, cache):
    return b"BODYSTRUCTURE " + mime.bodystructure(_parsed(msg, cache))


def _literal(data):
    """Section data as a string: "" when empty, else a literal (NULs, which
    literals may not carry, become 0x80 as Dovecot does)."""
    if not data:
        return b'""'
    if b"\0" in data:
        data = data.replace(b"\0", b"\x80")
    return b"{%d}\r\n" % len(data) + data


def _section_renderer(label, section, partial):
    nums, text, fields = section
    prefix = label + b" "
    if partial is None:
        def render(msg, cache):
            return prefix + _literal(mime.section(_parsed(msg, cache), nums, text, fields))
    else:
        start, stop = partial[0], partial[0] + partial[1]

        def render(msg, cache):
            data = mime.section(_parsed(msg, cache), nums, text, fields)
            return prefix + _literal(data[start:stop])
    return render


def _section_item(name, label, section, partial=None, peek=False):
    return FetchItem(name, _section_renderer(label, section, partial),
                     label, section, partial, peek)


_SIMPLE = {
    "FLAGS": FetchItem("FLAGS", _r_flags),
    "UID": FetchItem("UID", _r_uid),
    "INTERNALDATE": FetchItem("INTERNALDATE", _r_internaldate),
    "RFC822.SIZE": FetchItem("RFC822.SIZE", _r_size),
    "ENVELOPE": FetchItem("ENVELOPE", _r_envelope),
    "BODY": FetchItem("BODY", _r_body),
    "BODYSTRUCTURE": FetchItem("BODYSTRUCTURE", _r_bodystructure),
    # RFC 3501 6.4.5: RFC822 = BODY[], RFC822.HEADER = BODY.PEEK[HEADER],
    # RFC822.TEXT = BODY[TEXT]; each answers under its own name.
    "RFC822": _section_item("RFC822", b"RFC822", ((), None, ())),
    "RFC822.HEADER": _section_item("RFC822.HEADER", b"RFC822.HEADER",
                                   ((), "HEADER", ()), peek=True),
    "RFC822.TEXT": _section_item("RFC822.TEXT", b"RFC822.TEXT", ((), "TEXT", ())),
}


# -------------------------------------------------------------------- parsing

def parse_fetch_items(arg):
    """FetchRequest for the FETCH argument after the sequence set: a macro
    (ALL FAST FULL), one fetch-att atom, or a list of fetch-att atoms."""
    if isinstance(arg, list):
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


def _shown(atom):
    return atom if len(atom) <= 60 else atom[:57] + "..."


def _bad(what, atom):
    return IMAPBad("%s in fetch item %s" % (what, _shown(atom)))


def _parse_item(atom):
    up = atom.upper()
    simple = _SIMPLE.get(up)
    if simple is not None:
        return simple
    if up.startswith("BODY["):
        peek, rest = False, atom[5:]
    elif up.startswith("BODY.PEEK["):
        peek, rest = True, atom[10:]
    else:
        raise IMAPBad("Unknown fetch item: %s" % _shown(atom))
    close = section_end(rest)
    if close < 0:
        raise _bad("Missing ]", atom)
    nums, text, fields, label = _parse_section(rest[:close], atom)
    tail = rest[close + 1:]
    partial = _parse_partial(tail, atom) if tail else None
    label = b"BODY[" + label.encode() + b"]"
    if partial is not None:
        label += b"<%d>" % partial[0]
    # BODY.PEEK[...] answers as BODY[...] (RFC 3501 7.4.2).
    return _section_item("BODY[]", label, (nums, text, fields), partial, peek)


def _parse_section(spec, atom):
    """section-spec (RFC 3501 9) -> (nums, text, fields, echo label)."""
    n, i, nums = len(spec), 0, []
    while i < n and "0" <= spec[i] <= "9":
        j = i
        while j < n and "0" <= spec[j] <= "9":
            j += 1
        digits = spec[i:j]
        if digits[0] == "0" or len(digits) > 10 or int(digits) > _MAX_NUMBER:
            raise _bad("Invalid part number", atom)
        nums.append(int(digits))
        i = j
        if i == n:
            break
        if spec[i] != "." or i + 1 == n:
            raise _bad("Invalid section", atom)
        i += 1
    rest = spec[i:]
    up = rest.upper()
    fields = ()
    if not rest:
        text = None
    elif up in ("HEADER", "TEXT") or (up == "MIME" and nums):
        text = up
    elif up.startswith("HEADER.FIELDS.NOT "):
        text, fields = "HEADER.FIELDS.NOT", _header_list(rest[18:], atom)
    elif up.startswith("HEADER.FIELDS "):
        text, fields = "HEADER.FIELDS", _header_list(rest[14:], atom)
    else:
        raise _bad("Invalid section", atom)
    label = ".".join(map(str, nums))
    if text:
        label += ("." if nums else "") + text
    if fields:
        # A header name is echoed as the client could have sent it: an atom
        # ("]" is no ATOM-CHAR, so it never ends the echoed section) or quoted.
        label += " (" + " ".join(quote_astring(f).decode("ascii") for f in fields) + ")"
    return tuple(nums), text, fields, label


def _header_list(s, atom):
    """header-list = "(" header-fld-name *(SP header-fld-name) ")"; names are
    astrings, returned as the client wrote them."""
    if len(s) < 2 or s[0] != "(" or s[-1] != ")":
        raise _bad("Invalid header list", atom)
    inner, names, i = s[1:-1], [], 0
    n = len(inner)
    while i < n:
        c = inner[i]
        if c == " ":
            i += 1
        elif c == '"':
            j, buf = i + 1, []
            while j < n and inner[j] != '"':
                if inner[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(inner[j])
                j += 1
            if j >= n:
                raise _bad("Unterminated header name", atom)
            name = "".join(buf)
            # The command parser lets only printable ASCII into a section; the
            # same rule here keeps the echo a quoted string, never a literal.
            if any(not " " <= ch <= "~" for ch in name):
                raise _bad("Invalid header name", atom)
            names.append(name)
            i = j + 1
        else:
            j = inner.find(" ", i)
            j = n if j < 0 else j
            word = inner[i:j]
            if not is_atom(word):
                raise _bad("Invalid header name", atom)
            names.append(word)
            i = j
    if not names:
        raise _bad("Empty header list", atom)
    return tuple(names)


def _parse_partial(tail, atom):
    """"<" number "." nz-number ">" -> (offset, count)."""
    offset, dot, count = tail[1:-1].partition(".")
    if (tail[0] != "<" or tail[-1] != ">" or not dot or not _digits(offset)
            or not _digits(count) or count[0] == "0"):
        raise _bad("Invalid partial", atom)
    offset, count = int(offset), int(count)
    if offset > _MAX_NUMBER or count > _MAX_NUMBER:
        raise _bad("Invalid partial", atom)
    return offset, count


def _digits(s):
    return 0 < len(s) <= 10 and all("0" <= c <= "9" for c in s)
