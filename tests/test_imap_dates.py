"""Tests for clevermail.imap.dates: RFC 3501 date and date-time text, INTERNALDATE."""

import datetime

import pytest

from clevermail.imap.dates import MONTHS, format_datetime, internaldate, parse_date, parse_datetime


def test_parse_date():
    assert parse_date("1-Feb-1994") == datetime.date(1994, 2, 1)
    assert parse_date("01-feb-1994") == datetime.date(1994, 2, 1)
    assert parse_date("29-Feb-2000") == datetime.date(2000, 2, 29)


@pytest.mark.parametrize("bad", ["29-Feb-1999", "1-Feb-94", "Feb-1-1994", "1 Feb 1994",
                                 "123-Feb-1994", "1-Foo-1994", "", "١-Feb-1994"])
def test_parse_date_rejects(bad):
    with pytest.raises(ValueError):
        parse_date(bad)


@pytest.mark.parametrize("text, expected", [
    ("17-Jul-1996 02:44:25 -0700", 837596665.0),
    (" 7-Jul-1996 02:44:25 -0700", 836732665.0),
    ("7-JUL-1996 11:14:25 +0130", 836732665.0),
])
def test_parse_datetime(text, expected):
    assert parse_datetime(text) == expected


@pytest.mark.parametrize("bad", ["17-Jul-1996 02:44:25", "29-Feb-1997 02:44:25 -0700",
                                 "17-Jul-1996 02:44:25 -0760", "17-Jul-0000 02:44:25 +0000"])
def test_parse_datetime_rejects(bad):
    with pytest.raises(ValueError):
        parse_datetime(bad)


def test_internaldate_is_utc_english_and_zero_padded():
    assert internaldate(837596665.0) == b"17-Jul-1996 09:44:25 +0000"
    assert internaldate(836732665.9) == b"07-Jul-1996 09:44:25 +0000"   # rounds down
    assert internaldate(-0.5) == b"31-Dec-1969 23:59:59 +0000"
    assert format_datetime(837596665.0) == '"17-Jul-1996 09:44:25 +0000"'


def test_every_month_round_trips():
    for month, name in enumerate(MONTHS, 1):
        epoch = datetime.datetime(2001, month, 3, 4, 5, 6, tzinfo=datetime.timezone.utc).timestamp()
        text = internaldate(epoch).decode()
        assert text == f"03-{name}-2001 04:05:06 +0000"
        assert parse_datetime(text) == epoch
        assert parse_date(text.split()[0]) == datetime.date(2001, month, 3)
