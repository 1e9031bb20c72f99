"""The section-spec and partial syntax of FETCH items (RFC 3501 9 section-spec,
RFC 3516 section-binary, RFC 9051 partial with number64), shared by fetch.py and the
IMAP URLs of cmd_urlauth.py; pure.  Errors are IMAPBad naming the item.
"""

from clevermail.imap.parser import is_atom, quote_astring
from clevermail.imap.replies import IMAPBad

__all__ = ["bad", "parse_partial", "parse_section", "parse_section_spec", "shown"]

_MAX_NUMBER = 0xFFFFFFFF          # RFC 3501 number: unsigned 32-bit (part numbers)
_MAX_NUMBER64 = (1 << 63) - 1     # RFC 9051 number64 (partial offsets and counts)


def shown(atom):
    return atom if len(atom) <= 60 else atom[:57] + "..."


def bad(what, atom):
    return IMAPBad("%s in fetch item %s" % (what, shown(atom)))


def parse_section(spec):
    """A section-spec (RFC 3501 9, as in BODY[spec]) -> (part numbers, text, header
    names) for mime.section; IMAPBad when malformed (URLs carry one too)."""
    nums, text, fields, _ = parse_section_spec(spec, spec)
    return nums, text, fields


def parse_section_spec(spec, atom):
    """section-spec (RFC 3501 9) -> (nums, text, fields, echo label)."""
    n, i, nums = len(spec), 0, []
    while i < n and "0" <= spec[i] <= "9":
        j = i
        while j < n and "0" <= spec[j] <= "9":
            j += 1
        digits = spec[i:j]
        if digits[0] == "0" or len(digits) > 10 or int(digits) > _MAX_NUMBER:
            raise bad("Invalid part number", atom)
        nums.append(int(digits))
        i = j
        if i == n:
            break
        if spec[i] != "." or i + 1 == n:
            raise bad("Invalid section", atom)
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
        raise bad("Invalid section", atom)
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
        raise bad("Invalid header list", atom)
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
                raise bad("Unterminated header name", atom)
            name = "".join(buf)
            # The command parser lets only printable ASCII into a section; the
            # same rule here keeps the echo a quoted string, never a literal.
            if any(not " " <= ch <= "~" for ch in name):
                raise bad("Invalid header name", atom)
            names.append(name)
            i = j + 1
        else:
            j = inner.find(" ", i)
            j = n if j < 0 else j
            word = inner[i:j]
            if not is_atom(word):
                raise bad("Invalid header name", atom)
            names.append(word)
            i = j
    if not names:
        raise bad("Empty header list", atom)
    return tuple(names)


def parse_partial(tail, atom):
    """"<" number "." nz-number ">" -> (offset, count)."""
    offset, dot, count = tail[1:-1].partition(".")
    if (tail[0] != "<" or tail[-1] != ">" or not dot or not _digits(offset, 19)
            or not _digits(count, 19) or count[0] == "0"):
        raise bad("Invalid partial", atom)
    offset, count = int(offset), int(count)
    # number64 and nz-number64 (RFC 9051 9, Appendix E 1; RFC 3501's 32 bits below)
    if offset > _MAX_NUMBER64 or count > _MAX_NUMBER64:
        raise bad("Invalid partial", atom)
    return offset, count


def _digits(s, most=10):
    return 0 < len(s) <= most and all("0" <= c <= "9" for c in s)
