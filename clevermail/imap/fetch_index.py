"""FETCH of index items only (FLAGS, UID, INTERNALDATE, RFC822.SIZE: RFC 3501 6.4.5;
MODSEQ: RFC 7162 3.1.4) for many messages at once: FETCH 1:* (UID FLAGS) is what every
client sends on every sync of a folder.  No message file is read.

render_index_only() renders such a request from Message values, or from the plain
tuples FolderView.iter_messages gives, with one format operation per message.
render_columns() renders it from the index as columns (store/view_index.py
IndexColumns) with no Python step per message: a line is a run of text pieces, each
number taken from a table of decimal strings (made once per process), the flags
rendered once per distinct flag set, the pieces of a block of lines interleaved by
slice assignment, joined at once and encoded.  Both give the same bytes
(tests/test_imap_fetch_index.py compares them).  The pieces are str, not bytes:
bytes.join takes a buffer per item (80 bytes each, a 13 MB array for 32,768 lines of
five pieces), and that array's pages, mapped and unmapped in a process of many
threads, made the join of the lines cost more than all the rest (str.join and one
encode: a fifth of that).
"""

import threading
from operator import itemgetter

from clevermail.imap.fetch import flag_text, quoted_internaldate

__all__ = ["render_columns", "render_index_only"]

# Index items as format pieces: joined into one bytes format per request.
_INDEX_FORMATS = {"FLAGS": b"FLAGS (%s)", "UID": b"UID %d", "INTERNALDATE": b"INTERNALDATE %s",
                  "RFC822.SIZE": b"RFC822.SIZE %d", "MODSEQ": b"MODSEQ (%d)"}


def _flag_text_into(texts, flags):
    """flag_text(flags), kept in `texts` (a plain dict, for one render_index_only call:
    a loop tests `flags in texts` and subscripts it, two C-level lookups; a dict
    subclass's [] with __missing__ would go through a lookup of __getitem__ and a call
    for every message)."""
    text = texts[flags] = flag_text(flags)
    return text


# an index item -> its value's place in the row render_index_only makes of a message:
# (seq, uid, flag text, quoted INTERNALDATE, size, modseq)
_ROW_PLACE = {"UID": 1, "FLAGS": 2, "INTERNALDATE": 3, "RFC822.SIZE": 4, "MODSEQ": 5}


def render_index_only(req, messages):
    """Untagged FETCH lines for a request of index items only (not
    req.needs_message), one per message of `messages`: Message values, or the plain
    tuples in Message's field order that FolderView.iter_messages gives (built from
    the index, no file opened); they are unpacked, never asked for names."""
    names = [item.name for item in req.items]
    fmt = b"* %d FETCH (" + b" ".join(_INDEX_FORMATS[n] for n in names) + b")\r\n"
    texts, add = {}, _flag_text_into
    if names == ["UID", "FLAGS"]:
        # what every client sends on every sync: one format and two dict lookups per
        # line, a function call only for a new flag set
        return [fmt % (seq, uid, texts[flags] if flags in texts else add(texts, flags))
                for seq, uid, flags, _, _, _ in messages]
    # each line's values picked from a row by one C-level itemgetter (a tuple of them,
    # in the request's order, the sequence number first); no Python call per item
    pick = itemgetter(0, *[_ROW_PLACE[n] for n in names])
    if "INTERNALDATE" in names:
        date = quoted_internaldate
        return [fmt % pick((seq, uid, texts[flags] if flags in texts else add(texts, flags),
                            date(when), size, modseq))
                for seq, uid, flags, when, size, modseq in messages]
    return [fmt % pick((seq, uid, texts[flags] if flags in texts else add(texts, flags), None, size,
                        modseq))
            for seq, uid, flags, _, size, modseq in messages]


# -- from columns ------------------------------------------------------------------------

# str(n) at index n, grown on demand (under the lock) up to _DECIMALS_CAP numbers,
# about 60 bytes each: sequence numbers and UIDs of folders up to that size
_DECIMALS = []
_DECIMALS_CAP = 1 << 18
_decimals_lock = threading.Lock()
# lines per joined chunk: a few large writes, and memory bounded for any folder
BLOCK = 1 << 15
# lines of the first chunk: past the output's bound (session_output.OUTPUT_BOUND, 64 KiB:
# about 1,500 of the shortest lines), so it is written at once while the rest is made;
# a client of a large folder sees its first lines after a sixteenth of the work
FIRST_BLOCK = 1 << 11

# the items render_columns answers, and what each reads of the columns
_COLUMN_OF = {"UID": lambda cols: cols.uids, "RFC822.SIZE": lambda cols: cols.sizes(),
              "MODSEQ": lambda cols: cols.modseqs()}


def _decimal_table(top):
    """The table of decimal strings if it reaches `top` (grown now when needed), else
    None (past the cap)."""
    table = _DECIMALS
    if top < len(table):
        return table
    if top >= _DECIMALS_CAP:
        return None
    with _decimals_lock:
        if top >= len(table):
            # an eighth more: a few new messages do not grow it again.  repr of an int
            # is its decimal string, and a builtin of one argument is called without
            # the argument tuple str() is given: a quarter less time
            size = min(_DECIMALS_CAP, top + 1 + top // 8)
            table.extend(list(map(repr, range(len(table), size))))
    return table


def _decimals(numbers, ascending=False):
    """str(n) for each of `numbers` (ints; a list, `ascending` or not, or a range of
    step 1), from the table where it reaches."""
    if not numbers:
        return []
    if isinstance(numbers, range) and numbers.step == 1:
        low, top = numbers.start, numbers.stop - 1
    elif ascending:
        low, top = numbers[0], numbers[-1]
    else:
        low, top = min(numbers), max(numbers)
    table = _decimal_table(top) if low >= 0 else None
    if table is None:
        return list(map(str, numbers))
    if isinstance(numbers, range) or (ascending and top - low == len(numbers) - 1):
        # a run of consecutive numbers (ascending, so distinct: the UIDs of a folder
        # nothing was expunged from): a slice of the table
        return table[low:top + 1]
    return _pick(table, numbers)


def _pick(mapping, keys):
    """mapping[key] for each of `keys` (a sequence), as a sequence: an itemgetter of
    them all (a tuple of known size, a quarter faster than a list grown by a map of
    __getitem__); one of a single key gives the item itself, one of none is an error."""
    if len(keys) < 2:
        return [mapping[key] for key in keys]
    return itemgetter(*keys)(mapping)


def _flag_pieces(keys, flag_names, before, after):
    """Each distinct flag key of `keys` -> the text of its FLAGS item with the constant
    text around it (`before`, `after`), each rendered once.  A plain dict: a subclass's
    [] goes through a lookup of __getitem__ per item (dict's is a method, not a slot),
    a fifth of the whole FETCH."""
    return {key: before + flag_text(flag_names[key]).decode() + after for key in set(keys)}


def _slots(names):
    """A line as a list of slots: constant text (a one-item tuple), or the name of a
    column ("SEQ", an item name)."""
    slots = [("* ",), "SEQ", (" FETCH (",)]
    for k, name in enumerate(names):
        slots.append(((" " if k else "") + name + (" (" if name in ("FLAGS", "MODSEQ") else " "),))
        slots.append(name)
        if name in ("FLAGS", "MODSEQ"):
            slots.append((")",))
    slots.append((")\r\n",))
    merged = []
    for slot in slots:
        if isinstance(slot, tuple) and merged and isinstance(merged[-1], tuple):
            merged[-1] = (merged[-1][0] + slot[0],)
        else:
            merged.append(slot)
    return merged


def render_columns(req, cols, block=BLOCK, first=FIRST_BLOCK):
    """The untagged FETCH lines of a request of index items only for the messages of
    `cols` (store.view_index.IndexColumns), as chunks of many lines each; None when an
    item is not one the columns answer (INTERNALDATE, or an item asked twice:
    render_index_only).  The flags are rendered before this returns (a caller announces
    the keywords they show after that); the chunks are joined as they are taken."""
    names = [item.name for item in req.items]
    if not all(n in _COLUMN_OF or n == "FLAGS" for n in names) or len(set(names)) < len(names):
        return None
    slots = _slots(names)
    if "FLAGS" in names:
        # always between two constants (_slots): they go into its pieces
        i = slots.index("FLAGS")
        keys = cols.flag_keys
        # every flag set read now: its keywords known
        pieces = _flag_pieces(keys, cols.flag_names, slots[i - 1][0], slots[i + 1][0])
        slots[i - 1:i + 2] = [lambda a, b: _pick(pieces, keys[a:b])]
    for k, slot in enumerate(slots):
        if isinstance(slot, str):
            values = cols.seqs if slot == "SEQ" else _COLUMN_OF[slot](cols)
            ascending = cols.ascending and slot in ("SEQ", "UID")
            slots[k] = lambda a, b, v=values, asc=ascending: _decimals(v[a:b], asc)
    return _chunks(len(cols), block, slots, min(first, block))


def _chunks(n, block, slots, first):
    """Lines [a, b) at a time, the first `first` of them, then `block`: each slot
    (constant text, or a call giving the pieces of those lines) set into every
    len(slots)-th place of one list, joined, encoded (UTF-8: flag_text's encoding,
    ASCII but for a keyword that is not)."""
    width = len(slots)
    starts = ([0] if n else []) + list(range(first, n, block))
    for a in starts:
        b = min(n, a + (first if a == 0 else block))
        flat = [None] * ((b - a) * width)
        for k, slot in enumerate(slots):
            flat[k::width] = [slot[0]] * (b - a) if isinstance(slot, tuple) else slot(a, b)
        yield "".join(flat).encode()
