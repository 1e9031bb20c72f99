"""Sieve matching (RFC 5228 2.7): comparators, match types and address parts.

Comparators (RFC 4790): i;octet (bytes as they are), i;ascii-casemap (ASCII letters
compared without case; the default), i;ascii-numeric (the leading digits as a
number, a string without them is positive infinity; :is only).
Match types: :is, :contains, :matches (* any run, ? one character, \\ escapes the
next one).  A :matches that succeeds returns the match variables of RFC 5229 3.2:
${0} the whole value, ${1}.. what each wildcard took, "*" as short as possible
from the left (the RFC's "[*] *" example).
Relational (RFC 5231): :value and :count with gt ge lt le eq ne.
Address parts: :all, :localpart, :domain, and RFC 5233's :user and :detail with the
configured separator.
"""

import re

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
MAX_PATTERNS = 512        # compiled :matches patterns kept


def casemap(text):
    return text.translate(_ASCII_LOWER)


def _numeric(text):
    m = re.match(r"[0-9]+", text)
    return int(m.group()) if m else None          # None: positive infinity


_pattern_cache = {}


def _glob(pattern, fold):
    """The regex of a :matches pattern: one group per wildcard."""
    key = (pattern, fold)
    compiled = _pattern_cache.get(key)
    if compiled is None:
        parts, i = [], 0
        while i < len(pattern):
            c = pattern[i]
            if c == "\\" and i + 1 < len(pattern):
                parts.append(re.escape(pattern[i + 1]))
                i += 2
                continue
            if c == "*":
                parts.append("(.*?)")
            elif c == "?":
                parts.append("(.)")
            else:
                parts.append(re.escape(c))
            i += 1
        compiled = re.compile("".join(parts), re.DOTALL)
        if len(_pattern_cache) >= MAX_PATTERNS:
            _pattern_cache.clear()
        _pattern_cache[key] = compiled
    return compiled


def match_one(value, key, match_type="is", comparator="i;ascii-casemap"):
    """False, or True / the match variables ([${0}, ${1}, ...]) for :matches."""
    comparator = comparator.lower()
    if comparator == "i;ascii-numeric":
        return _numeric(value) == _numeric(key)
    fold = comparator == "i;ascii-casemap"
    if match_type == "is":
        return casemap(value) == casemap(key) if fold else value == key
    if match_type == "contains":
        return casemap(key) in casemap(value) if fold else key in value
    # :matches: the regex runs on the folded text, the variables come from the original
    m = _glob(casemap(key) if fold else key, fold).fullmatch(casemap(value) if fold else value)
    if m is None:
        return False
    return [value] + [value[m.start(g):m.end(g)] for g in range(1, (m.lastindex or 0) + 1)]


_RELATIONS = {"gt": lambda c: c > 0, "ge": lambda c: c >= 0, "lt": lambda c: c < 0,
              "le": lambda c: c <= 0, "eq": lambda c: c == 0, "ne": lambda c: c != 0}


def compare(a, b, comparator="i;ascii-casemap"):
    """-1, 0 or 1: the comparator's order of `a` and `b` (RFC 4790; i;ascii-numeric puts
    strings without leading digits last, equal among themselves)."""
    comparator = comparator.lower()
    if comparator == "i;ascii-numeric":
        a, b = _numeric(a), _numeric(b)
        if a is None or b is None:
            return (a is None) - (b is None)
    elif comparator == "i;ascii-casemap":
        a, b = casemap(a).encode("utf-8"), casemap(b).encode("utf-8")
    else:
        a, b = a.encode("utf-8"), b.encode("utf-8")
    return (a > b) - (a < b)


def relational(values, keys, kind, relation, comparator="i;ascii-casemap"):
    """RFC 5231: :value (some value stands in `relation` to some key) or :count (the
    number of values does)."""
    holds = _RELATIONS[relation.lower()]
    if kind == "count":
        values = [str(len(values))]
    return any(holds(compare(v, k, comparator)) for v in values for k in keys)


def match_any(values, keys, match_type="is", comparator="i;ascii-casemap"):
    """The first match of any value against any key (RFC 5228 2.7.1: the test is true
    if any combination matches): False, True or the match variables."""
    for value in values:
        for key in keys:
            found = match_one(value, key, match_type, comparator)
            if found is not False:
                return found
    return False


def address_part(address, part, separator="+"):
    """The part of `address` (a bare addr-spec, "" for the null address) a test
    compares; None when the part does not exist (:detail without a separator)."""
    local, at, domain = address.rpartition("@")
    if not at:
        local, domain = address, ""
    if part == "localpart":
        return local
    if part == "domain":
        return domain
    if part in ("user", "detail"):
        if not separator:
            return local if part == "user" else None
        user, sep, detail = local.partition(separator)
        if part == "user":
            return user
        return detail if sep else None
    return address
