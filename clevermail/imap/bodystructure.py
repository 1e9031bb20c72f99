"""BODY and BODYSTRUCTURE (RFC 3501 7.4.2, body-type-* and body-ext-*), written from
mime.py's part tree, and one part's structure for URLAUTH=BINARY's BODYPARTSTRUCTURE
(RFC 5524).  As mime.py says, the output follows Dovecot's (lib-imap/
imap-bodystructure.c) where RFC 3501 is silent: values as the message spells them,
Dovecot's lower-case defaults, one empty text/plain part for a multipart without parts.
"""

import functools

from clevermail.imap.envelope import envelope, nstring
from clevermail.imap.mime import MULTIPART, RFC822, content, find_part
from clevermail.imap.params import (ascii_lower, param, parse_content_disposition,
                                    parse_content_language, parse_content_transfer_encoding)

_EMPTY_BODY = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0'
_MESSAGE_RFC822 = b'"message" "rfc822"'
_TEXT_PLAIN = b'"text" "plain"'


# Types, subtypes, parameter names, charsets, encodings and dispositions repeat from
# part to part and message to message: their nstrings are kept, the short ones only
# (at most _KEPT_TOKENS of them, least recently used out), so a sender's long values
# cannot make the table big.
_KEPT_LENGTH = 80
_KEPT_TOKENS = 1024


@functools.lru_cache(maxsize=_KEPT_TOKENS)
def _kept_token(s):
    return nstring(s)


def _token(s):
    """nstring(s) for a value that tends to repeat."""
    if s is None:
        return b"NIL"
    return nstring(s) if len(s) > _KEPT_LENGTH else _kept_token(s)


def _first(info, name):
    values = info.get(name)
    return values[0] if values else None


def _plist(params):
    if not params:
        return b"NIL"
    return b"(" + b" ".join(_token(k) + b" " + _token(v) for k, v in params) + b")"


def bodystructure(pm, extended=True):
    """BODYSTRUCTURE (extended) or BODY (not extended) of the message.  Both are made
    in one walk of the tree and kept on the ParsedMessage: a FETCH that asks for one
    asks for the other soon (fetch.py keeps both once a message is parsed), and the
    work they share (Content-* values, line counts, an encapsulated ENVELOPE) is most
    of either."""
    both = pm.structures
    if both is None:
        ext, body = [], []
        _write(pm, pm.root, ext, body)
        # one assignment: two threads rendering the same kept message make the same pair
        both = pm.structures = (b"".join(ext), b"".join(body))
    return both[0] if extended else both[1]


def part_structure(pm, nums):
    """BODYSTRUCTURE (extended) of one part, the whole message for no numbers
    (URLAUTH=BINARY's BODYPARTSTRUCTURE, RFC 5524); None when there is no such part."""
    p = find_part(pm.root, nums) if nums else pm.root
    if p is None:
        return None
    out = []
    _write(pm, p, out, [])
    return b"".join(out)


def _extension(info):
    """body-fld-dsp SP body-fld-lang SP body-fld-loc."""
    dsp, params = parse_content_disposition(info.get("disposition", ()))
    dsp = b"NIL" if dsp is None else b"(" + _token(dsp) + b" " + _plist(params) + b")"
    langs = [_token(x) for x in parse_content_language(info.get("language", ()))]
    lang = b"(" + b" ".join(langs) + b")" if langs else b"NIL"
    return b" ".join((dsp, lang, nstring(_first(info, "location"))))


def _write(pm, p, ext, body):
    """Append part p's BODYSTRUCTURE to ext and its BODY to body."""
    if p.kind == MULTIPART:
        ext.append(b"(")
        body.append(b"(")
        for c in p.children:
            _write(pm, c, ext, body)
        if not p.children:    # RFC 3501 needs 1*body: show one empty part
            ext.append(_EMPTY_BODY + b" NIL NIL NIL NIL)")
            body.append(_EMPTY_BODY + b")")
        sub = b" " + _token(p.csub)
        body.append(sub + b")")
        ext.append(sub + b" " + _plist(p.params) + b" " + _extension(content(pm, p)) + b")")
        return
    info = content(pm, p)
    params = p.params
    if p.kind == RFC822:
        # imap-bodystructure.c part_write_body(): a literal "message" "rfc822",
        # also for digest parts without Content-Type.
        head, text = _MESSAGE_RFC822, False
    elif p.ctype is None:
        head, text = _TEXT_PLAIN, True
    else:
        head = _token(p.ctype) + b" " + _token(p.csub or "")
        text = ascii_lower(p.ctype) == "text"
    if text and param(params, "charset") is None:
        # params_write(): the default charset goes after the other parameters
        params = params + [("charset", "us-ascii")]
    enc = parse_content_transfer_encoding(info.get("transfer-encoding", ()))
    fields = b"(%s %s %s %s %s %d" % (
        head, _plist(params), nstring(_first(info, "id")),
        nstring(_first(info, "description")), _token(enc), p.end - p.bstart)
    ext.append(fields)
    body.append(fields)
    if p.kind == RFC822:
        env = b" " + envelope(pm, p.children[0]) + b" "
        ext.append(env)
        body.append(env)
        _write(pm, p.children[0], ext, body)
        lines = b" %d" % pm.raw.count(b"\n", p.bstart, p.end)
        ext.append(lines)
        body.append(lines)
    elif text:
        lines = b" %d" % pm.raw.count(b"\n", p.bstart, p.end)
        ext.append(lines)
        body.append(lines)
    body.append(b")")
    ext.append(b" " + nstring(_first(info, "md5")) + b" " + _extension(info) + b")")
