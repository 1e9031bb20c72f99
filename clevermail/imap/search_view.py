"""One message as SEARCH's keys look at it (search.py): flags, content, header fields,
addresses, body text and sent date, each computed lazily and at most once per
matches() call, from mime.py's part tree (the one FETCH uses) and decode.py's text.
"""

import datetime
import email.utils
import functools

from clevermail.imap import decode, mime

__all__ = ["MessageView", "utc_date"]


class MessageView:
    """What one matches() call has learned about one message, computed lazily:
    the content is read at most once and the headers parsed at most once, however
    many keys look at them."""

    def __init__(self, msg, read):
        self.msg, self._read = msg, read

    @functools.cached_property
    def flags(self):
        return frozenset(f.casefold() for f in self.msg.flags)

    @functools.cached_property
    def raw(self):
        return bytes(self._read(self.msg))

    @functools.cached_property
    def parsed(self):
        # mime.py's part tree, the one FETCH uses: SEARCH sees the same parts.
        # No bare-LF repair: it would scan every message twice for offsets
        # that matching text never uses.
        return mime.parse(self.raw, repair=False)

    @functools.cached_property
    def headers(self):
        """[(lower-case name, casefolded decoded value)] in message order."""
        return [(name, value.casefold()) for name, value in decode.header_fields(self.parsed)]

    def addresses(self, field):
        """Every `field` of the top-level header (from, to, cc, bcc) as
        casefolded decode.address_text, in message order."""
        cache = self.__dict__.setdefault("_addresses", {})
        if field not in cache:
            pm = self.parsed
            cache[field] = [decode.address_text(decode.header_text(pm.field_bytes(f))).casefold()
                            for f in pm.top().fields if f[0] == field]
        return cache[field]

    @functools.cached_property
    def body(self):
        return decode.body_text(self.parsed).casefold()

    @functools.cached_property
    def text(self):
        head = "\n".join(f"{name}: {value}" for name, value in self.headers)
        return head + "\n\n" + self.body

    def sent_date(self):
        for name, value in self.headers:
            if name == "date":
                return _header_date(value)  # the first Date: field counts
        return None


def utc_date(epoch):
    """The UTC calendar date of an epoch time (INTERNALDATE), or None."""
    try:
        return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).date()
    except (OverflowError, OSError, ValueError, TypeError):
        return None


def _header_date(value):
    """The calendar date written in a Date: value, in its own zone; else None."""
    try:
        t = email.utils.parsedate_tz(value)
        return None if t is None else datetime.date(t[0], t[1], t[2])
    except (ValueError, TypeError, IndexError, OverflowError):
        # parsedate_tz has raised on odd input in past releases; bad day/month here.
        return None
