"""IMAP dates: the one month table, parsing and formatting of RFC 3501 section 9
`date` (SEARCH BEFORE/ON/SINCE and SENT*) and `date-time` (APPEND, INTERNALDATE).

Pure text in, values out: parse_* raise ValueError on anything malformed and the
callers turn that into their own IMAPBad text.  Month names are English whatever
the locale (strftime("%b") and strptime follow the locale, IMAP does not), and
INTERNALDATE is always written in UTC.
"""

import datetime
import re
import time

__all__ = ["MONTHS", "parse_date", "parse_datetime", "internaldate", "format_datetime"]

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUM = {m.lower(): i for i, m in enumerate(MONTHS, 1)}
_MONTH_BYTES = tuple(m.encode("ascii") for m in MONTHS)

# date-text = date-day "-" date-month "-" date-year; date-day is 1*2DIGIT.
_DATE_RE = re.compile(r"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})", re.ASCII)
# date-time (RFC 3501): DQUOTE date-day-fixed "-" date-month "-" date-year SP
# time SP zone DQUOTE; date-day-fixed is (SP DIGIT) / 2DIGIT.  A bare single
# digit is accepted too because some clients send it.
_DATETIME_RE = re.compile(
    r"( ?[0-9]|[0-9]{2})-([A-Za-z]{3})-([0-9]{4}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})", re.ASCII)
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def parse_date(text: str) -> datetime.date:
    """A SEARCH date such as "1-Feb-1994" (month case-insensitive)."""
    m = _DATE_RE.fullmatch(text)
    month = _MONTH_NUM.get(m.group(2).lower()) if m else None
    if month is None:
        raise ValueError(f"invalid date {text!r}")
    # datetime.date raises ValueError for 31-Feb-2020 and friends
    return datetime.date(int(m.group(3)), month, int(m.group(1)))


def parse_datetime(text: str) -> float:
    """An APPEND date-time such as "17-Jul-1996 02:44:25 -0700", as a UTC epoch."""
    m = _DATETIME_RE.fullmatch(text)
    if m is None:
        raise ValueError(f"invalid date-time {text!r}")
    day, mon, year, hh, mm, ss, sign, zh, zm = m.groups()
    month = _MONTH_NUM.get(mon.lower())
    if month is None or int(zm) > 59:
        raise ValueError(f"invalid date-time {text!r}")
    offset = datetime.timedelta(hours=int(zh), minutes=int(zm))
    try:
        tz = datetime.timezone(-offset if sign == "-" else offset)
        when = datetime.datetime(int(year), month, int(day), int(hh), int(mm),
                                 int(ss), tzinfo=tz)
        return (when - _EPOCH).total_seconds()
    except OverflowError:
        raise ValueError(f"invalid date-time {text!r}") from None


def internaldate(epoch: float) -> bytes:
    """INTERNALDATE without its quotes, in UTC: b"17-Jul-1996 09:44:25 +0000".

    The day is zero-padded: "2DIGIT" is a valid date-day-fixed, and clients that
    split on spaces cope better with it than with the SP-DIGIT form.  gmtime
    rounds down, so a fractional second never shows the next second.
    """
    t = time.gmtime(epoch)
    return b"%02d-%s-%04d %02d:%02d:%02d +0000" % (
        t.tm_mday, _MONTH_BYTES[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec)


def format_datetime(epoch: float) -> str:
    """INTERNALDATE value as text, quotes included: '"17-Jul-1996 09:44:25 +0000"'."""
    return '"' + internaldate(epoch).decode("ascii") + '"'
