"""MIME structure of one stored message, as IMAP FETCH and SEARCH need it.

Owns, for RFC 3501 sections 6.4.5 and 7.4.2:
- the part tree of a raw message (RFC 2045/2046 multipart and message/rfc822),
  byte offsets into the CRLF form: IMAP's one MIME parser and header
  splitter (SEARCH decodes the same parts in decode.py);
- (BODY and BODYSTRUCTURE are written from this tree by bodystructure.py);
- the bytes of BODY[section] (HEADER, HEADER.FIELDS[.NOT], TEXT, MIME, parts).
ENVELOPE, address parsing and nstring quoting live in envelope.py.  Content-Type, Content-Disposition,
Content-Language and Content-Transfer-Encoding values (tokens, quoted
strings, parameters, RFC 2231 continuations) are parsed in params.py.

Where RFC 3501 is silent the results follow Dovecot: boundaries match as line
prefixes and the CRLF before a boundary belongs to it, a multipart without
parts shows one empty text/plain part, Content-* headers count only in MIME
parts (MIME-Version or Content-Type present, or inside a multipart), RFC 2047
words stay encoded.  Like Dovecot (lib-imap/imap-bodystructure.c,
lib-mail/message-part-data.c), type, subtype, parameter names and values,
encoding and disposition are written as the message spells them; only the
defaults are Dovecot's lower-case ones: "text" "plain" ("charset" "us-ascii"),
"7bit", and "message" "rfc822" for every encapsulated message.
Nothing here raises on malformed mail: oddities fall back to plain parts.
Header text is handled as latin-1 `str` so every 8-bit byte round-trips.
"""

import functools
import re

from clevermail.imap.params import ascii_lower, param, parse_content_type

LEAF, MULTIPART, RFC822 = 0, 1, 2
# Bounds against hostile nesting (Dovecot uses the same orders of magnitude);
# they also keep our recursion far below Python's limit.
MAX_DEPTH = 100
MAX_PARTS = 10000

_BARE_LF = re.compile(rb"(?<!\r)\n")


class Part:
    """One MIME part: [hstart, bstart) is its header, [bstart, end) its body.

    fields: [lower-case name, line start, colon index or -1, end] per header
    field (continuation lines included).  children: sub-parts of a multipart,
    or the single encapsulated message of a message/rfc822 part.  ctype is
    None without a (MIME) Content-Type; csub is None when that header has no
    usable "/subtype" (Dovecot then writes "" and reads no parameters).
    unparsed: a multipart or message past MAX_DEPTH or MAX_PARTS, shown as
    application/octet-stream and not parsed further (SEARCH reads it as text).
    """

    __slots__ = ("hstart", "bstart", "end", "fields", "kind", "ctype", "csub",
                 "params", "mime", "children", "unparsed")

    def __init__(self, pos):
        self.hstart = self.bstart = self.end = pos
        self.fields = []
        self.kind = LEAF
        self.ctype = self.csub = None
        self.params = []
        self.mime = self.unparsed = False
        self.children = []


class ParsedMessage:
    """A raw message in CRLF form with its part tree, built on first use.
    structures: (BODYSTRUCTURE, BODY) once bodystructure.py wrote them, else None."""

    __slots__ = ("raw", "_root", "_top", "structures")

    def __init__(self, raw, repair=True):
        # Sizes and offsets are defined on the CRLF form; stored mail should
        # already be CRLF, bare LFs are repaired rather than trusted.  The
        # parser itself finds lines by their LF, so a caller that needs no
        # offsets (SEARCH reads text only) may skip the two scans this costs.
        if repair and raw.count(b"\n") != raw.count(b"\r\n"):
            raw = _BARE_LF.sub(b"\r\n", raw)
        self.raw = raw
        self._root = self._top = self.structures = None

    # The tree and the header are made on first use, each by one assignment of what a
    # parse with its own state made: a message kept for several sessions (fetch_content.py)
    # may be parsed by two threads at once, and both make the same tree.
    @property
    def root(self):
        if self._root is None:
            self._root = self._part(0, (), 0, False, False, [0])[0]
        return self._root

    def parsed_root(self):
        """The part tree if it was made, else None (nothing is parsed)."""
        return self._root

    def parsed_top(self):
        """The top-level header part if top() made it, else None."""
        return self._top

    @property
    def parsed_tree(self):
        """Whether the part tree was made (root asked for)."""
        return self._root is not None

    def top(self):
        """The top-level header only: enough for BODY[HEADER] and friends."""
        if self._root is not None:
            return self._root
        if self._top is None:
            p = Part(0)
            _header(self.raw, 0, len(self.raw), (), p)
            p.end = len(self.raw)
            self._top = p
        return self._top

    def field_bytes(self, f):
        """A header field's value, unfolded (CR and LF removed), as bytes."""
        if f[2] < 0:
            return b""
        return self.raw[f[2] + 1:f[3]].replace(b"\r", b"").replace(b"\n", b"")

    def field_value(self, f):
        """A header field's value, unfolded (CR and LF removed), as str."""
        return self.field_bytes(f).decode("latin-1")

    def _part(self, pos, stack, depth, in_multipart, digest_child, count):
        """Parse the part at pos; return it and the boundary hit ending it.  count:
        [parts made so far] of this parse."""
        raw, n = self.raw, len(self.raw)
        p = Part(pos)
        count[0] += 1
        top = self._top if depth == 0 else None
        if top is not None:
            # the message's header, read already by top() (ENVELOPE, BODY[HEADER] before
            # BODY): the same fields, never changed once made
            p.fields, p.bstart, hit = top.fields, top.bstart, None
        else:
            hit = _header(raw, pos, n, stack, p)
        self._mime_fields(p, in_multipart, digest_child)
        if p.kind != LEAF and (depth >= MAX_DEPTH or count[0] >= MAX_PARTS):
            p.kind, p.ctype, p.csub = LEAF, "application", "octet-stream"
            p.unparsed = True
        if hit is not None:
            # A boundary cut the header short: the part has no body.
            p.end = p.bstart
            if p.kind == RFC822:
                p.children = [Part(p.end)]
            return p, hit
        if p.kind == RFC822:
            child, hit = self._part(p.bstart, stack, depth + 1, False, False, count)
            p.children = [child]
            p.end = child.end
            return p, hit
        boundary = param(p.params, "boundary") if p.kind == MULTIPART else None
        if not boundary:
            # Leaf, or a multipart without boundary (Dovecot: no parts).
            hit = _find(raw, p.bstart, n, stack)
            p.end = hit[0] if hit else n
            return p, hit
        own = len(stack)
        inner = stack + (boundary.encode("latin-1"),)
        digest = ascii_lower(p.csub) == "digest"
        hit = _find(raw, p.bstart, n, inner)
        while True:
            if hit is None:            # never closed: runs to the end
                p.end = n
                break
            if hit[1] != own:          # an outer boundary ends us too
                p.end = hit[0]
                break
            if hit[2]:                 # close delimiter: epilogue follows
                hit = _find(raw, hit[3], n, stack)
                p.end = hit[0] if hit else n
                break
            if not hit[4]:             # delimiter on the last, unended line
                p.end, hit = n, None
                break
            if count[0] >= MAX_PARTS:
                hit = _find(raw, hit[3], n, inner)
                continue
            child, hit = self._part(hit[3], inner, depth + 1, True, digest, count)
            p.children.append(child)
        return p, hit

    def _mime_fields(self, p, in_multipart, digest_child):
        mime, ct = in_multipart, None
        for f in p.fields:
            if f[0] == "mime-version":
                mime = True
            elif f[0] == "content-type" and ct is None:
                ct, mime = f, True
        p.mime = mime
        if ct is not None:
            p.ctype, p.csub, params = _content_type(self.field_value(ct))
            p.params = list(params)
        if p.ctype is None:
            if digest_child:   # RFC 2046 5.1.5: digest parts default to messages
                p.kind, p.ctype, p.csub = RFC822, "message", "rfc822"
            return
        if p.csub is None:     # Dovecot: "multipart/" and "message/rfc822" only
            return
        t = ascii_lower(p.ctype)
        if t == "multipart":
            p.kind = MULTIPART
        elif t == "message" and ascii_lower(p.csub) == "rfc822":
            p.kind = RFC822


def _content_type(value):
    """parse_content_type(value) (params a tuple when kept): the short values, which
    repeat from message to message (text/plain; charset=utf-8), are read once."""
    if len(value) > _KEPT_VALUE:
        return parse_content_type(value)
    return _kept_content_type(value)


# Content-Type values up to this length are kept (at most _KEPT_TYPES of them), so the
# table stays small whatever a sender writes.
_KEPT_VALUE = 200
_KEPT_TYPES = 512


@functools.lru_cache(maxsize=_KEPT_TYPES)
def _kept_content_type(value):
    ctype, csub, params = parse_content_type(value)
    return ctype, csub, tuple(params)


def parse(raw, repair=True):
    """Wrap raw message bytes; the part tree is computed lazily.  repair=False
    leaves bare LFs alone (see ParsedMessage): only for callers of text, or of
    bytes known to have none (the store's wire form, maildir.to_wire)."""
    return ParsedMessage(raw, repair)


# ---------------------------------------------------------------- structure

def _header(raw, pos, n, stack, p):
    """Read header lines from pos into p.fields and set p.bstart.

    Returns the boundary hit that cut the header short, else None.
    """
    fields, start = p.fields, pos
    while pos < n:
        if stack and raw.startswith(b"--", pos):
            hit = _match(raw, pos, start, n, stack)
            if hit is not None:
                p.bstart = hit[0]
                return hit
        nl = raw.find(b"\n", pos)
        eol = n if nl < 0 else nl + 1
        c = raw[pos]
        if c == 10 or (c == 13 and eol == pos + 2):     # the blank line
            p.bstart = eol
            return None
        if (c == 32 or c == 9) and fields:
            fields[-1][3] = eol
        else:
            colon = raw.find(b":", pos, eol)
            name = raw[pos:colon if colon >= 0 else eol].rstrip()
            fields.append([name.decode("latin-1").lower(), pos, colon, eol])
        pos = eol
    p.bstart = n
    return None


def _match(raw, pos, first, n, stack):
    """Boundary hit for the line at pos starting with "--", or None.

    A hit is (start of the CRLF owned by the boundary, stack index, is close
    delimiter, start of next line, line had LF).  Like Dovecot, the longest
    matching boundary wins and only the line prefix must match (RFC 2046).
    """
    best, blen = -1, -1
    for idx in range(len(stack) - 1, -1, -1):
        b = stack[idx]
        if len(b) > blen and raw.startswith(b, pos + 2):
            best, blen = idx, len(b)
    if best < 0:
        return None
    nl = raw.find(b"\n", pos)
    if pos == first:
        crlf = pos
    else:
        crlf = pos - 2 if raw[pos - 2:pos] == b"\r\n" else pos - 1
        crlf = max(crlf, first)
    close = raw.startswith(b"--", pos + 2 + blen)
    return (crlf, best, close, n if nl < 0 else nl + 1, nl >= 0)


def _find(raw, pos, n, stack):
    """First boundary hit in the body starting at pos (a line start)."""
    if not stack:
        return None
    if raw.startswith(b"--", pos):
        hit = _match(raw, pos, pos, n, stack)
        if hit is not None:
            return hit
    first, i = pos, pos
    while True:
        i = raw.find(b"\n--", i, n)
        if i < 0:
            return None
        hit = _match(raw, i + 1, first, n, stack)
        if hit is not None:
            return hit
        i += 1


def find_part(root, nums):
    """The part a section number names (RFC 3501 6.4.5), or None."""
    part, last = root, len(nums) - 1
    for i, num in enumerate(nums):
        if part.kind == MULTIPART:
            part = part.children[num - 1] if 0 < num <= len(part.children) else None
        elif num != 1 or (i < last and part.kind != RFC822):
            part = None    # a single-part body only has part 1
        if part is None:
            return None
        if part.kind == RFC822 and i < last:
            part = part.children[0]    # descend into the encapsulated message
    return part


# ----------------------------------------------------------- content fields

def content(pm, p):
    """Values of the Content-* fields of a MIME part, keyed by suffix, in
    header order (Dovecot does not always keep the first one)."""
    info = {}
    if p.mime:
        for f in p.fields:
            if f[0].startswith("content-"):
                info.setdefault(f[0][8:], []).append(pm.field_value(f))
    return info


def section(pm, nums, text=None, fields=()):
    """Bytes of BODY[section]; nums are part numbers, text one of None,
    HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME.  A part that
    does not exist gives b"" (as Dovecot does)."""
    raw = pm.raw
    if not nums:
        if text is None:
            return raw
        p = pm.top()
    else:
        p = find_part(pm.root, nums)
        if p is None:
            return b""
        if text is None:
            return raw[p.bstart:p.end]
        if text == "MIME":
            return raw[p.hstart:p.bstart]
        if p.kind != RFC822:    # HEADER/TEXT only exist for messages
            return b""
        p = p.children[0]
    if text == "HEADER":
        return raw[p.hstart:p.bstart]
    if text == "TEXT":
        return raw[p.bstart:p.end]
    want = {f.lower() for f in fields}
    keep = text == "HEADER.FIELDS"
    out = []
    for f in p.fields:
        if (f[0] in want) == keep:
            line = raw[f[1]:f[3]]
            out.append(line if line.endswith(b"\n") else line + b"\r\n")
    out.append(b"\r\n")
    return b"".join(out)
