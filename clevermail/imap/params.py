"""Content-* header field values of MIME parts, read as Dovecot reads them.

Owns the header-field parsing that BODY and BODYSTRUCTURE need:
- RFC 2045 section 5.1 tokens, quoted strings and "; name=value" parameters;
- RFC 2231 parameter continuations ("name*0", "name*1*", ...) merged into
  one parameter, extended values left charset'lang'%-encoded;
- Content-Type (type, subtype, parameters), Content-Disposition (RFC 2183:
  type and parameters), Content-Language (a list of atoms) and
  Content-Transfer-Encoding (one token);
- ASCII-only case folding (C strcasecmp()) and parameter lookup by name.
Comments and quoted-pairs come from envelope.py (comment(), UNESCAPE).
mime.py builds the part tree and writes the structures from these values.

Where the RFCs leave room the behaviour follows Dovecot's lib-mail
rfc822-parser.c and rfc2231-parser.c (as used by message-part-data.c):
empty MIME tokens are accepted, 8-bit bytes count as token characters,
names and values keep the case the message wrote, and a broken parameter
or field is skipped rather than fatal.  Nothing here raises on malformed
mail.  Values are latin-1 `str`, so every 8-bit byte round-trips.
"""

import re

from clevermail.imap.envelope import UNESCAPE, comment

# RFC 2045 token; 8-bit bytes are accepted as Dovecot does (unencoded names).
_TOKEN = re.compile(r'[^\x00-\x20\x7f()<>@,;:\\"/\[\]?=]+')
# Dovecot's rfc822_parse_mime_token() also accepts an empty token.
_MIME_TOKEN = re.compile(r'[^\x00-\x20\x7f()<>@,;:\\"/\[\]?=]*')
_ATEXT = re.compile(r'[^\x00-\x20\x7f()<>@,;:\\".\[\]]+')
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"?', re.S)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(s):
    """Case folding as C strcasecmp() does it: ASCII letters only."""
    return s.translate(_ASCII_LOWER)


def _skip(s, i):
    """Skip folding white space and (nested) comments from i."""
    n = len(s)
    while i < n:
        c = s[i]
        if c in " \t\r\n":
            i += 1
        elif c == "(":
            i = comment(s, i)[1]
        else:
            break
    return i


def _value(s, i):
    """A parameter value at i: quoted string or token; (value, next index)."""
    if i < len(s) and s[i] == '"':
        m = _QUOTED.match(s, i)
        return UNESCAPE.sub(r"\1", m.group(1)), m.end()
    if i < len(s) and s[i] == "=":
        # Broken senders write name==?utf-8?b?...?= unquoted; keep it whole.
        j = i
        while j < len(s) and s[j] not in "; \t":
            j += 1
        return s[i:j], j
    m = _TOKEN.match(s, i)
    return (m.group(), m.end()) if m else ("", i)


def parse_params(s, i):
    """RFC 2045 parameters from s[i:], RFC 2231 continuations merged.

    As Dovecot's rfc2231_parse(): names keep their case, "name*" values stay
    charset'lang'%-encoded under "name*", a broken parameter is skipped, not
    fatal, and continuations are sorted by (name, section) then merged when
    their names match ignoring ASCII case (the first one's spelling is kept).
    """
    plain, ext, n = [], [], len(s)
    while True:
        i = _skip(s, i)
        if i >= n:
            break
        if s[i] != ";":
            i = s.find(";", i)
            if i < 0:
                break
        i = _skip(s, i + 1)
        m = _TOKEN.match(s, i)
        if m is None:
            continue
        name = m.group()
        i = _skip(s, m.end())
        if i >= n or s[i] != "=":
            continue
        value, i = _value(s, _skip(s, i + 1))
        head, star, rest = name.partition("*")
        extended = rest.endswith("*")
        digits = rest[:-1] if extended else rest
        # Section numbers are small; a huge one is just a strange name (and
        # int() refuses strings over 4300 digits).
        if star and (digits == "" and extended
                     or digits.isdigit() and digits.isascii() and len(digits) < 10):
            ext.append((head, int(digits or 0), extended, value))
        else:
            plain.append((name, value))
    ext.sort(key=lambda x: (x[0], x[1]))
    i = 0
    while i < len(ext):
        fold = ascii_lower(ext[i][0])
        j = i + 1
        while j < len(ext) and ascii_lower(ext[j][0]) == fold:
            j += 1
        segs, i = ext[i:j], j
        if [x[1] for x in segs] != list(range(len(segs))):
            # Gaps in the numbering: not really RFC 2231, keep them apart.
            plain.extend(("%s*%d%s" % (x[0], x[1], "*" if x[2] else ""), x[3]) for x in segs)
            continue
        has_ext = any(x[2] for x in segs)
        val = "''" if has_ext and not segs[0][2] else ""
        for _, _, is_ext, v in segs:
            val += v.replace("%", "%25") if has_ext and not is_ext else v
        plain.append((segs[0][0] + ("*" if has_ext else ""), val))
    return plain


def parse_content_type(s):
    """(type, subtype, params) of a Content-Type value, as Dovecot reads it.

    rfc822parse_content_type(): the type is a possibly empty token; without
    a "/" followed by something, subtype is None and no parameters are read
    (Dovecot then writes "type" "").  The subtype is a possibly empty token.
    """
    i = _skip(s, 0)
    m = _MIME_TOKEN.match(s, i)
    ctype = m.group()
    i = _skip(s, m.end())
    if i >= len(s) or s[i] != "/":
        return ctype, None, []
    i = _skip(s, i + 1)
    if i >= len(s):
        return ctype, None, []
    sub = _MIME_TOKEN.match(s, i)
    return ctype, sub.group(), parse_params(s, sub.end())


def param(params, name):
    """First parameter called name, ASCII case ignored (strcasecmp)."""
    for k, v in params:
        if ascii_lower(k) == name:
            return v
    return None


def parse_content_disposition(values):
    """(type, params) from the Content-Disposition values (RFC 2183), in
    header order; type is None without any such field.

    parse_content_disposition() runs again for every Content-Disposition
    while no parameters were found: the first one with parameters wins,
    else the last.  Its type is a (possibly empty) token as written.
    """
    dsp, params = None, []
    for value in values:
        if params:
            break
        m = _MIME_TOKEN.match(value, _skip(value, 0))
        dsp, params = m.group(), parse_params(value, m.end())
    return dsp, params


def parse_content_language(values):
    """Language tags from the Content-Language values, in header order.

    parse_content_language(): a comma-separated list of atoms; a field
    without any leaves the next Content-Language a try.
    """
    langs = []
    for lang in values:
        i = 0
        while True:
            i = _skip(lang, i)
            m = _ATEXT.match(lang, i)
            if m is None:
                break
            langs.append(m.group())
            i = _skip(lang, m.end())
            if i >= len(lang) or lang[i] != ",":
                break
            i += 1
        if langs:
            break
    return langs


def parse_content_transfer_encoding(values):
    """Content-Transfer-Encoding as written, else "7bit".

    message-part-data.c parse_content_transfer_encoding(): the value must be
    one token and nothing else; an unusable field leaves the next one a try.
    """
    for enc in values:
        m = _TOKEN.match(enc, _skip(enc, 0))
        if m is not None and _skip(enc, m.end()) >= len(enc):
            return m.group()
    return "7bit"
