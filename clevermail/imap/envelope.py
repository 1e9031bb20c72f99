"""ENVELOPE of a message (RFC 3501 section 7.4.2) and the IMAP nstring
quoting that every FETCH structure uses.

Owns:
- RFC 5322 address-list syntax (section 3.4, with the obsolete routes and
  the group syntax): parse_addresses() gives RFC 3501 address tuples;
- RFC 5322 comments (section 3.2.2) and quoted-pairs, which Content-* header
  parsing in params.py shares: comment() and UNESCAPE;
- envelope(): the ENVELOPE list of a message or of an encapsulated message;
- nstring(): header text as an IMAP nstring, also used for BODY and
  BODYSTRUCTURE by mime.py.

Where RFC 3501 is silent the results follow Dovecot: missing address pieces
become MISSING_MAILBOX / MISSING_DOMAIN, RFC 2047 words stay encoded.
Nothing here raises on malformed mail.  Header text is handled as latin-1
`str` so every 8-bit byte round-trips.
"""

import re

_WSP_RUN = re.compile(r"[ \t]+")
# One RFC 5322 token per match; a "word" is anything else up to the next
# delimiter, stray ")" and "]" included, so every position makes progress.
_ADDR_TOKEN = re.compile(r'[ \t\r\n]+|"(?P<q>(?:[^"\\]|\\.)*)"?|(?P<d>\[[^\]]*\]?)'
                         r'|(?P<s>[<>@,;:])|(?P<w>[^ \t\r\n("\[<>@,;:]+)|(?P<c>\()', re.S)
# A quoted-pair (RFC 5322 3.2.1): the backslash goes, the character stays.
UNESCAPE = re.compile(r"\\(.)", re.S)
_ENVELOPE_FIELDS = frozenset(("date", "subject", "from", "sender", "reply-to", "to",
                              "cc", "bcc", "in-reply-to", "message-id"))
# The common address lists, read without tokens (parse_addresses): each address
# `phrase <local@domain>` or `local@domain`, the phrase atoms and quoted strings without
# quoted-pairs or line ends, the address parts one atom each; comma separated.  _ATOM is
# a subset of _ADDR_TOKEN's words that str.split() cannot cut (no \x0b, \x85, \xa0 or
# wider white space), so anything else goes to the tokenizer, which reads it the same.
_ATOM = r"[!#-'*+\-./0-9=?A-Z^-~\x80-\x84\x86-\x9f\xa1-\xff]+"
_PWORD = rf'(?:{_ATOM}|"[^"\\\r\n]*")'
_SIMPLE_ADDR = re.compile(
    rf"[ \t\r\n,]*(?:((?:{_PWORD}(?:[ \t\r\n]+{_PWORD})*)?)[ \t\r\n]*<({_ATOM})@({_ATOM})>"
    rf"|({_ATOM})@({_ATOM}))[ \t\r\n]*(?:,|\Z)")
_PHRASE_WORD = re.compile(r'"([^"]*)"|([^ \t\r\n"]+)')


def comment(s, i):
    """(text, index after) for the comment opening at s[i] == "("."""
    depth, j, n, buf = 1, i + 1, len(s), []
    while j < n:
        c = s[j]
        if c == "\\" and j + 1 < n:
            buf.append(s[j + 1])
            j += 2
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return "".join(buf), j + 1
        buf.append(c)
        j += 1
    return "".join(buf), n


# ---------------------------------------------------------------- addresses

def _addr_tokens(s):
    """RFC 5322 tokens: (kind, text); kinds w(ord) q(uoted) d(omain-literal)
    c(omment) or the special character itself."""
    toks, i, n, match = [], 0, len(s), _ADDR_TOKEN.match
    while i < n:
        m = match(s, i)
        kind = m.lastgroup
        if kind == "c":
            text, i = comment(s, i)
            toks.append(("c", text))
            continue
        i = m.end()
        if kind is None:        # white space
            continue
        v = m.group(kind)
        if kind == "q":
            toks.append(("q", UNESCAPE.sub(r"\1", v) if "\\" in v else v))
        else:
            toks.append((v if kind == "s" else kind, v))
    return toks


def parse_addresses(s):
    """RFC 5322 address-list -> [(name, adl, mailbox, host)], groups marked
    as RFC 3501 wants: (NIL NIL group NIL) ... (NIL NIL NIL NIL)."""
    plain = _plain_addresses(s)
    if plain is None:
        return _parse_tokens(s)
    return [(name, None, local, domain) for name, local, domain, _ in plain]


def _plain_addresses(s):
    """Most lists are plain addresses (_SIMPLE_ADDR), read whole with one match each:
    [(name, local, domain, quoted)], quoted when the name came from quoted strings (it
    may need nstring's folding); None for a list with anything else, which
    _parse_tokens reads from its start."""
    out, i, n, match = [], 0, len(s), _SIMPLE_ADDR.match
    while i < n:
        m = match(s, i)
        if m is None:
            if s[i:].strip(" \t\r\n,"):
                return None
            break
        i = m.end()
        name, local, domain = m.group(1, 2, 3)
        if local is None:
            out.append((None, m.group(4), m.group(5), False))
        elif '"' in name:
            out.append((" ".join(q or w for q, w in _PHRASE_WORD.findall(name)) or None,
                        local, domain, True))
        else:
            out.append((" ".join(name.split()) or None, local, domain, False))
    return out


def _parse_tokens(s):
    """parse_addresses of any list, through RFC 5322 tokens."""
    toks, out, i = _addr_tokens(s), [], 0
    n = len(toks)
    while i < n:
        if toks[i][0] in ",;>c":
            i += 1
            continue
        j = i
        while j < n and toks[j][0] in "wqc":
            j += 1
        if j < n and toks[j][0] == ":":
            out.append((None, None, _phrase(toks[i:j]) or "", None))
            i = j + 1
            while i < n and toks[i][0] != ";":
                if toks[i][0] in ",>c":
                    i += 1
                else:
                    i = _mailbox(toks, i, out, True)
            out.append((None, None, None, None))
            i += 1
        else:
            i = _mailbox(toks, i, out, False)
    return out


def _phrase(toks):
    return " ".join(t for k, t in toks if k in "wq") or None


def _mailbox(toks, i, out, in_group):
    """Parse one mailbox from toks[i]; append it; return the index after."""
    n, e, angle, lt, gt = len(toks), i, False, -1, -1
    while e < n:
        k = toks[e][0]
        if k == "<":
            angle = True
            lt = e if lt < 0 else lt
        elif k == ">":
            angle = False
            gt = e if lt >= 0 and gt < 0 else gt
        elif not angle and (k == "," or (k == ";" and in_group)):
            break
        e += 1
    route = None
    if lt >= 0:     # name-addr: [phrase] "<" [route ":"] addr-spec ">"
        name = _phrase(toks[i:lt])
        spec = toks[lt + 1:gt if gt >= 0 else e]
        if spec and spec[0][0] == "@":
            colon = next((j for j, t in enumerate(spec) if t[0] == ":"), -1)
            if colon >= 0:
                route = ",".join("@" + t for k, t in spec[:colon] if k in "wd") or None
                spec = spec[colon + 1:]
    else:           # addr-spec, maybe with a comment naming it
        spec = toks[i:e]
        name = next((t for k, t in reversed(spec) if k == "c"), None)
    at = next((j for j, t in enumerate(spec) if t[0] == "@"), -1)
    if at >= 0:
        mailbox = "".join(t for k, t in spec[:at] if k in "wq")
        host = "".join(t for k, t in spec[at + 1:] if k in "wqd")
    else:
        mailbox = next((t for k, t in spec if k in "wqd"), "")
        host = ""
    if mailbox or host or name or route:
        out.append((name or None, route, mailbox or "MISSING_MAILBOX",
                    host or "MISSING_DOMAIN"))
    return e


# ------------------------------------------------------------------ output

def nstring(s):
    """An IMAP nstring for header-derived text (Dovecot's "fix text" rules):
    NIL for None, CR/LF dropped, white space runs folded to one space,
    quoted when 7-bit, a literal when 8-bit (NUL becomes 0x80)."""
    if s is None:
        return b"NIL"
    if s.isascii() and s.isprintable() and "  " not in s and s[:1] != " " and s[-1:] != " ":
        # the common case, checked in C: nothing to unfold, fold or strip, 7-bit
        b = s.encode()
        if '"' in s or "\\" in s:
            b = b.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        return b'"' + b + b'"'
    if "\r" in s or "\n" in s:
        s = s.replace("\r", "").replace("\n", "")
    if "\t" in s or "  " in s:
        s = _WSP_RUN.sub(" ", s)
    s = s.strip(" ")
    if "\0" in s:
        s = s.replace("\0", "\x80")
    b = s.encode("latin-1", "replace")
    if not b.isascii():
        return b"{%d}\r\n%s" % (len(b), b)
    if 34 in b or 92 in b:      # '"', '\\' (see fetch._literal: a byte's value)
        b = b.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return b'"' + b + b'"'


def _addresses(value):
    """Address list of a field value, or None for an absent or empty field so
    the caller can fall back: Sender and Reply-To default to From (RFC 3501)."""
    if value is None:
        return None
    plain = _plain_addresses(value)
    if plain is None:
        addrs = _parse_tokens(value)
        if not addrs:
            return None
        return b"(" + b"".join(b"(%s %s %s %s)" % tuple(map(nstring, a)) for a in addrs) + b")"
    if not plain:
        return None
    return b"(" + b"".join(b"(%s NIL %s %s)" % (
        nstring(name) if quoted else _atoms(name), _atoms(local), _atoms(domain))
        for name, local, domain, quoted in plain) + b")"


def _atoms(s):
    """nstring of _ATOMs joined by single spaces (the plain reading's names and address
    parts): nothing to fold or escape, so quoted as it is when 7-bit."""
    if s is None:
        return b"NIL"
    if s.isascii():
        return b'"' + s.encode() + b'"'
    return nstring(s)


def envelope(pm, part=None):
    """ENVELOPE of the message (or of an encapsulated message part).

    pm is a mime.ParsedMessage and part one of its parts; only their header
    fields are read (first occurrence of each field wins).
    """
    p = pm.top() if part is None else part
    v = {}
    for f in p.fields:
        if f[0] in _ENVELOPE_FIELDS and f[0] not in v:
            v[f[0]] = pm.field_value(f)
    from_ = _addresses(v.get("from"))
    fields = [nstring(v.get("date")), nstring(v.get("subject")), from_ or b"NIL",
              _addresses(v.get("sender")) or from_ or b"NIL",
              _addresses(v.get("reply-to")) or from_ or b"NIL"]
    fields += [_addresses(v.get(k)) or b"NIL" for k in ("to", "cc", "bcc")]
    fields += [nstring(v.get("in-reply-to")), nstring(v.get("message-id"))]
    return b"(" + b" ".join(fields) + b")"
