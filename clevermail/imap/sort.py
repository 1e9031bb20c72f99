"""SORT (RFC 5256 section 3, RFC 5957 SORT=DISPLAY): sort criteria, the sort keys of
one message, base-subject extraction (RFC 5256 2.1) and the sent date (2.2).  Pure.

`SortKeys` is what SORT and THREAD need of one message (`sort_keys()` gives a
LazyKeys with the same fields, made from the header fields as they are first asked
for, and cached by the caller, imap/sortcache.py): the sent date,
the base subject and whether the subject marks a reply or forward, the addr-mailbox of
the first From/To/Cc address, the RFC 5957 display names, the Message-ID and the
references THREAD=REFERENCES follows (RFC 5256 section 4, step 1).

Strings compare as Dovecot does it and RFC 5256 asks (i;ascii-casemap, widened to
i;unicode-casemap for decoded text): upper-cased, then by code point.  Ties are broken
by the order in the mailbox (RFC 5256 3: "the order in which they appear").
"""

import calendar
import email.utils
import re
from typing import NamedTuple

from .decode import decode_encoded_words, header_text
from .envelope import parse_addresses

# sort-key (RFC 5256 section 4 with RFC 5957's two): upper-case name -> the SortKeys
# field it compares; REVERSE is a modifier, SIZE and ARRIVAL come from the index.
CRITERIA = {"ARRIVAL": "arrival", "CC": "cc", "DATE": "date", "FROM": "from_",
            "REVERSE": None, "SIZE": "size", "SUBJECT": "subject", "TO": "to",
            "DISPLAYFROM": "display_from", "DISPLAYTO": "display_to"}
DISPLAY_CRITERIA = frozenset({"DISPLAYFROM", "DISPLAYTO"})


class SortKeys(NamedTuple):
    """What SORT and THREAD read of one message's header (see the module docstring).
    date: the sent date in epoch seconds, None when the Date: field is missing or
    unusable (the caller then uses INTERNALDATE, RFC 5256 2.2)."""
    date: object
    subject: str
    reply: bool
    from_: str
    to: str
    cc: str
    display_from: str
    display_to: str
    message_id: object       # str, or None without a valid one
    references: tuple        # msg-ids, oldest first (References, else In-Reply-To)


class SortError(ValueError):
    """A sort criteria list that is not RFC 5256 syntax; the text says why."""


def parse_criteria(token, display=True):
    """The parenthesized sort-criteria of SORT -> [(field name, reverse)], in order.
    `token` is the parser's list of atoms; `display` allows RFC 5957's keys."""
    if not isinstance(token, list) or not token:
        raise SortError("SORT needs a parenthesized list of sort criteria")
    out, reverse = [], False
    for tok in token:
        word = tok.upper() if isinstance(tok, str) else None
        if word not in CRITERIA or (word in DISPLAY_CRITERIA and not display):
            raise SortError("Unknown sort criterion")
        if word == "REVERSE":
            if reverse:
                raise SortError("REVERSE twice")
            reverse = True
            continue
        out.append((CRITERIA[word], reverse))
        reverse = False
    if reverse:
        raise SortError("REVERSE needs a sort key after it")
    return out


def sort_order(items, criteria):
    """`items`: (id, arrival, size, SortKeys) in mailbox order -> the same items in
    the order the criteria ask (the id, a number or UID, is not looked at).  Stable sorts from the last key to the first, each
    reversed as asked, keep the mailbox order for exact ties (RFC 5256 3)."""
    items = list(items)
    for field, reverse in reversed(criteria):
        items.sort(key=_KEY_OF[field], reverse=reverse)
    return items


def _keys_field(name):
    return lambda item: getattr(item[3], name)


_KEY_OF = {
    "arrival": lambda item: item[1],
    "size": lambda item: item[2],
    # DATE: the sent date, else INTERNALDATE (RFC 5256 2.2)
    "date": lambda item: item[1] if item[3].date is None else item[3].date,
}
for _name in ("subject", "from_", "to", "cc", "display_from", "display_to"):
    _KEY_OF[_name] = _keys_field(_name)
del _name


# -- base subject (RFC 5256 2.1) --------------------------------------------------
_WSP_RUN = re.compile(r"[ \t\r\n]+")
_TRAILER = re.compile(r"(?:\(FWD\)| )+\Z")                      # subj-trailer, repeated
_BLOB = r"\[[^\[\]]*\] ?"                                       # subj-blob (WSP packed)
_BLOB_AT = re.compile(_BLOB)
_REFWD = re.compile(r"(?:%s)*(?:RE|FWD?) ?(?:%s)?:" % (_BLOB, _BLOB))   # *subj-blob subj-refwd


def base_subject(text):
    """The base subject of a decoded Subject: value (RFC 5256 2.1, steps 1 to 7) and
    whether it marks a reply or forward (a subj-refwd, "(fwd)" trailer or "[fwd: ...]"
    was removed; RFC 5256 section 4, step 5).  Upper-cased for comparison."""
    # (1) encoded words are decoded by the caller; white space runs become one space
    s = _WSP_RUN.sub(" ", text).upper()
    reply = False
    while True:
        # (2) trailing "(fwd)" and white space, repeatedly
        m = _TRAILER.search(s)
        if m:
            reply = reply or "(FWD)" in m.group()
            s = s[:m.start()]
        # (3) a subj-leader, (4) a subj-blob that leaves something; (5) repeat both
        while True:
            found = False
            if s.startswith(" "):
                s, found = s[1:], True
            m = _REFWD.match(s)
            if m:
                s, found, reply = s[m.end():], True, True
            m = _BLOB_AT.match(s)
            if m and m.end() < len(s):
                s, found = s[m.end():], True
            if not found:
                break
        # (6) "[fwd:" ... "]" around it all: remove both and start again at (2)
        if s.startswith("[FWD:") and s.endswith("]"):
            s, reply = s[5:-1], True
            continue
        return s, reply          # (7)


# -- sent date (RFC 5256 2.2) ----------------------------------------------------
# The shape nearly every Date: field has ("Wed, 4 Nov 2020 19:23:40 +0100", the day
# name optional): read at once, with the result email.utils.parsedate_tz gives it
# (tests/test_imap_sort.py compares them); anything else goes to parsedate_tz.
_COMMON_DATE = re.compile(r"(?:[A-Za-z]{3}, ?)?(\d{1,2}) ([A-Za-z]{3}) ([1-9]\d{3}) "
                          r"(\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\Z")
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug",
                                       "sep", "oct", "nov", "dec"), 1)}


def sent_date(value):
    """A Date: field value -> epoch seconds (UTC), or None when it cannot be parsed
    (the caller uses INTERNALDATE then).  A date without a zone counts as UTC."""
    m = _COMMON_DATE.match(value)
    if m is not None:
        day, month, year, hh, mm, ss, sign, zh, zm = m.groups()
        month = _MONTHS.get(month.lower())
        if month is not None:
            offset = int(zh) * 3600 + int(zm) * 60
            return (calendar.timegm((int(year), month, int(day), int(hh), int(mm), int(ss)))
                    - (-offset if sign == "-" else offset))
    try:
        t = email.utils.parsedate_tz(value)
        if t is None:
            return None
        return calendar.timegm(t[:6]) - (t[9] or 0)
    except (ValueError, TypeError, IndexError, OverflowError):
        return None


# -- addresses ---------------------------------------------------------------------
# The common shapes of a first address, `Name <local@host>`, `"Name" <local@host>` and
# `local@host`, each followed by "," or the end: read at once.  Anything else
# (comments, groups, routes, quoted local parts) goes to envelope.parse_addresses;
# both give the same (name, mailbox, host) for these shapes (tests/test_imap_sort.py).
_ATOMS = r'[^<>@\s",;:()\\\[\]]+'
_SIMPLE_ADDRESS = re.compile(
    r'[ \t]*(?:"([^"\\\r\n]*)"|([^"<>,;:()\[\]@\\\r\n]*?))[ \t]*<(%s)@(%s)>[ \t]*(?:,|\Z)'
    r'|[ \t]*(%s)@(%s)[ \t]*(?:,|\Z)' % (_ATOMS, _ATOMS, _ATOMS, _ATOMS))
_SPACES = re.compile(r"[ \t]+")


def first_address(value):
    """(name or None, mailbox, host) of the first address of an address field, parsed
    as ENVELOPE parses it (a group start is (None, group name, None)); None when the
    field has no address."""
    if not value:
        return None
    m = _SIMPLE_ADDRESS.match(value)
    if m:
        quoted, phrase, mailbox, host, bare, bare_host = m.groups()
        if bare is not None:
            return None, bare, bare_host
        name = quoted if quoted is not None else _SPACES.sub(" ", phrase).strip()
        return name or None, mailbox, host
    addrs = parse_addresses(value)
    if not addrs:
        return None
    name, _route, mailbox, host = addrs[0]
    return name, mailbox, host


def first_mailbox(address):
    """The addr-mailbox of a first_address() (RFC 5256 3: FROM, TO, CC), upper-cased;
    "" when there is none."""
    if address is None or address[1] is None or address[1] == "MISSING_MAILBOX":
        return ""
    return address[1].upper()


def display_name(address):
    """RFC 5957 section 3 of a first_address(): the decoded display-name when it is not
    empty, else the addr-spec (mailbox@host); "" when there is no address."""
    if address is None:
        return ""
    name, mailbox, host = address
    if name:
        name = _WSP_RUN.sub(" ", decode_encoded_words(name)).strip()
        if name:
            return name.upper()
    if mailbox is None or mailbox == "MISSING_MAILBOX":
        return ""
    if host is None or host == "MISSING_DOMAIN":       # a group: its name
        return mailbox.upper()
    return f"{mailbox}@{host}".upper()


# -- message ids (RFC 5256 section 4, step 1) --------------------------------------
_MSG_ID = re.compile(r"<([^<>]*)>")


def msg_ids(value):
    """The msg-ids of a field value in order: each "<" ... ">" holding an "@", white
    space removed (Dovecot's reading); anything else is skipped."""
    if not value or "<" not in value:
        return []
    return ["".join(m.split()) for m in _MSG_ID.findall(value) if "@" in m]


# -- the keys of one message ---------------------------------------------------------
# The header fields sort_keys() reads (lower-case names).
FIELDS = ("subject", "date", "from", "to", "cc", "message-id", "references", "in-reply-to")
_WANTED = frozenset(f.encode() for f in FIELDS)
# Every line of one of FIELDS with its continuation lines, in header order: one C-speed
# pass over a header keeps what the keys need (a few hundred bytes) of a header of any
# size.  A continuation line starts with white space, so it never matches `^name:`.
_FIELD_LINES = re.compile(rb"^(?:%s)[ \t]*:.*(?:\n[ \t].*)*" % b"|".join(sorted(_WANTED)),
                          re.I | re.M)
# name -> the first line of that field, with its continuation lines
_FIELD_LINE = {name: re.compile(rb"^%s[ \t]*:(.*(?:\n[ \t].*)*)" % name.encode(), re.I | re.M)
               for name in FIELDS}


def field_lines(header):
    """The lines of a header (bytes up to its blank line, LF or CRLF) that hold one of
    FIELDS, joined by LF: what LazyKeys keeps of a message."""
    return b"\n".join(_FIELD_LINES.findall(header))


def header_fields(header):
    """{lower-case name: unfolded value bytes} of the first occurrence of each of
    FIELDS in a header (or in its field_lines())."""
    out = {}
    name = None         # the field whose continuation lines follow, if it is wanted
    for line in header.split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if name is not None:
                out[name] += line.rstrip(b"\r")
            continue
        name = None
        colon = line.find(b":")
        if colon > 0:
            key = line[:colon].rstrip(b" \t").lower()
            if key in _WANTED:
                key = key.decode("ascii")
                if key not in out:
                    name = key
                    out[key] = line[colon + 1:].rstrip(b"\r")
    for key, value in out.items():
        out[key] = value.strip()
    return out


def field_value(lines, name):
    """The unfolded value of the first `name` field (one of FIELDS) of field_lines()
    or a header, as header_fields() gives it; None when there is none."""
    m = _FIELD_LINE[name].search(lines)
    if m is None:
        return None
    value = m.group(1)
    if b"\n" in value:
        value = b"".join(line.rstrip(b"\r") for line in value.split(b"\n"))
    return value.rstrip(b"\r").strip()


def sort_keys(fields):
    """The keys of one message from {lower-case field name: raw value bytes, unfolded}
    holding the first occurrence of each of FIELDS that the message has (a LazyKeys)."""
    return LazyKeys(b"\n".join(name.encode("ascii") + b": " + value for name, value in fields.items()))


def keys_of_header(header):
    """The LazyKeys of a message's header (bytes up to its blank line)."""
    return LazyKeys(field_lines(header))


class LazyKeys:
    """SortKeys' fields of one message, each group (subject; addresses; message ids)
    made from the message's field_lines() the first time a SORT or THREAD asks for it:
    the first SORT (DATE) of a large folder reads the Date: field and nothing else.
    The lines go once every group is made.  Sessions share these objects: a group
    may be made twice at once, with the same result, never half.  `state()` and
    `restore()` are what imap/sortcache.py keeps on disk."""

    __slots__ = ("date", "_raw", "_subject", "_addresses", "_ids")

    def __init__(self, lines):
        date = field_value(lines, "date")
        self.date = sent_date(header_text(date)) if date else None
        self._raw = lines
        self._subject = self._addresses = self._ids = None

    def state(self):
        """(date, lines or None, subject group, address group, id group), the groups
        None until made: plain values marshal writes."""
        return self.date, self._raw, self._subject, self._addresses, self._ids

    @classmethod
    def restore(cls, date, raw, subject, addresses, ids):
        keys = cls.__new__(cls)
        keys.date, keys._raw = date, raw
        keys._subject, keys._addresses, keys._ids = subject, addresses, ids
        return keys

    def _text(self, raw, name):
        value = field_value(raw, name)
        return None if value is None else header_text(value)

    def _done(self):
        if self._subject is not None and self._addresses is not None and self._ids is not None:
            self._raw = None

    def _subject_group(self):
        group = self._subject
        if group is None:
            raw = self._raw
            if raw is None:             # made meanwhile by another session
                return self._subject
            subject = self._text(raw, "subject")
            group = self._subject = base_subject(decode_encoded_words(subject)) if subject else ("", False)
            self._done()
        return group

    def _address_group(self):
        group = self._addresses
        if group is None:
            raw = self._raw
            if raw is None:
                return self._addresses
            from_, to = first_address(self._text(raw, "from")), first_address(self._text(raw, "to"))
            group = self._addresses = (first_mailbox(from_), first_mailbox(to),
                                       first_mailbox(first_address(self._text(raw, "cc"))),
                                       display_name(from_), display_name(to))
            self._done()
        return group

    def _id_group(self):
        group = self._ids
        if group is None:
            raw = self._raw
            if raw is None:
                return self._ids
            mid = msg_ids(self._text(raw, "message-id"))
            refs = msg_ids(self._text(raw, "references"))
            if not refs:
                refs = msg_ids(self._text(raw, "in-reply-to"))[:1]
            group = self._ids = (mid[0] if mid else None, tuple(refs))
            self._done()
        return group

    subject = property(lambda self: self._subject_group()[0])
    reply = property(lambda self: self._subject_group()[1])
    from_ = property(lambda self: self._address_group()[0])
    to = property(lambda self: self._address_group()[1])
    cc = property(lambda self: self._address_group()[2])
    display_from = property(lambda self: self._address_group()[3])
    display_to = property(lambda self: self._address_group()[4])
    message_id = property(lambda self: self._id_group()[0])
    references = property(lambda self: self._id_group()[1])
