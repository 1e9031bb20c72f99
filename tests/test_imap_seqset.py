"""Tests for clevermail.imap.seqset (RFC 3501 section 9 sequence-set)."""


import pytest

from clevermail.imap.replies import IMAPBad
from clevermail.imap.seqset import SequenceSet, parse_sequence_set


@pytest.mark.parametrize("text, largest, expected", [
    ("1", 10, [1]),
    ("1:5", 10, [1, 2, 3, 4, 5]),
    ("5:1", 10, [1, 2, 3, 4, 5]),
    ("*", 10, [10]),
    ("1:*", 4, [1, 2, 3, 4]),
    ("*:4", 6, [4, 5, 6]),
    ("2,4:7,9,12:*", 13, [2, 4, 5, 6, 7, 9, 12, 13]),
    ("3,1,2,2,1:3", 10, [1, 2, 3]),          # duplicates and order collapse
    ("4:6,5:9", 10, [4, 5, 6, 7, 8, 9]),      # overlapping ranges merge
    ("8:20", 10, [8, 9, 10]),                 # clipped to 1..largest
    ("11:20", 10, []),
    ("5:*", 3, [3]),                          # "*" is 3, so 5:* is 3:5
    ("*", 0, []),
    ("1:*", 0, []),
    ("1:3", 0, []),
])
def test_iter(text, largest, expected):
    assert list(parse_sequence_set(text).iter(largest)) == expected


@pytest.mark.parametrize("text, n, largest, expected", [
    ("1:5", 5, 10, True),
    ("1:5", 6, 10, False),
    ("5:2", 3, 10, True),
    ("*", 10, 10, True),
    ("*", 9, 10, False),
    ("2,4:7,9,12:*", 8, 20, False),
    ("2,4:7,9,12:*", 9, 20, True),
    ("2,4:7,9,12:*", 20, 20, True),
    ("2,4:7,9,12:*", 1, 20, False),
    ("*", 0, 0, False),
    ("1:*", 1, 0, False),                     # "*" with nothing in use matches nothing
    ("7", 7, 0, True),                        # explicit numbers do not depend on largest
    ("50000:*", 120, 120, True),              # RFC 3501 6.4.8: 50000:* is 120:50000
    ("50000:*", 119, 120, False),
])
def test_contains(text, n, largest, expected):
    assert parse_sequence_set(text).contains(n, largest) is expected


def test_contains_cache_follows_largest():
    s = parse_sequence_set("*")
    assert s.contains(5, 5) is True
    assert s.contains(5, 6) is False
    assert s.contains(6, 6) is True


@pytest.mark.parametrize("text, values, largest, expected", [
    ("1:*", [3, 7, 9], 9, [3, 7, 9]),
    ("4:8", [3, 7, 9], 9, [7]),
    ("*", [3, 7, 9], 9, [9]),
    ("50000:*", [3, 7, 9], 9, [9]),           # RFC 3501 6.4.8
    ("10:20", [3, 7, 9], 9, []),
    ("9,3,7,3:3", [3, 7, 9], 9, [3, 7, 9]),
    ("*:1", [1, 2], 2, [1, 2]),
    ("1:*", [], 0, []),
    ("5", [], 0, []),
])
def test_resolve(text, values, largest, expected):
    assert parse_sequence_set(text).resolve(values, largest) == expected


class CountingList(list):
    """A list that counts the items read from it one at a time (bisect does that)."""

    reads = 0

    def __getitem__(self, index):
        if not isinstance(index, slice):
            self.reads += 1
        return super().__getitem__(index)


def test_resolve_is_bisect_not_scan():
    uids = CountingList(range(1, 400001, 2))  # 200,000 odd UIDs
    s = parse_sequence_set("1:5,100001:100005,*")
    assert s.resolve(uids, uids[-1]) == [1, 3, 5, 100001, 100003, 100005, 399999]
    # Two bisections per span (3 spans, about 18 steps each), not a scan of 200,000.
    assert uids.reads <= 3 * 2 * 20


@pytest.mark.parametrize("text", [
    "", "0", "1:", ":1", "a", "1,", ",1", "1,,2", "1:2:3", "0:5", "01", "-1", "1 2",
    "**", "1:**", "4294967296", "²", "$",
])
def test_invalid(text):
    with pytest.raises(IMAPBad) as info:
        parse_sequence_set(text)
    assert info.value.text == "Invalid sequence set"


@pytest.mark.parametrize("value", [None, b"1:2", ["1"], 5])
def test_invalid_types(value):
    with pytest.raises(IMAPBad):
        parse_sequence_set(value)


def test_largest_32bit_number():
    assert parse_sequence_set("4294967295").contains(4294967295, 1) is True


def test_helpers():
    s = parse_sequence_set("2,4:7,12:*")
    assert s.max_number() == 12
    assert parse_sequence_set("*").max_number() == 0
    assert s == parse_sequence_set("2,4:7,12:*")
    assert repr(s) == "SequenceSet('2,4:7,12:*')"
    assert isinstance(s, SequenceSet)


def test_accepts_str_subclass():
    class Atom(str):
        pass
    assert list(parse_sequence_set(Atom("2:3")).iter(5)) == [2, 3]
