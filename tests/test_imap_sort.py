"""Pure tests of imap/sort.py (base subject, sent date, address keys, criteria, order)
and imap/sortcache.py (reading the header fields, the shared cache)."""

import io

import pytest

from clevermail.imap import sort
from clevermail.imap.sort import SortError, base_subject, parse_criteria, sort_keys, sort_order
from clevermail.imap.sortcache import SortCache, header_fields, keys_of_header, read_header


# -- base subject (RFC 5256 2.1) -------------------------------------------------------
@pytest.mark.parametrize("subject, base, reply", [
    ("hello", "HELLO", False),
    ("Re: hello", "HELLO", True),
    ("RE:hello", "HELLO", True),
    ("re : hello", "HELLO", True),             # subj-refwd allows WSP before the ":"
    ("Fwd: hello", "HELLO", True),
    ("Fw: hello", "HELLO", True),
    ("fwd:fw:re: hello", "HELLO", True),
    ("Re: Re: Re: hello", "HELLO", True),
    ("Re[2]: hello", "HELLO", True),            # subj-refwd with a blob before ":"
    ("Re [2]: hello", "HELLO", True),
    ("[list] Re: hello", "HELLO", True),        # blobs before the refwd
    ("[list] hello", "HELLO", False),           # (4) a blob that leaves a base goes
    ("[list]", "[LIST]", False),                # ... one that would leave nothing stays
    ("[a][b] hello", "HELLO", False),
    ("hello (fwd)", "HELLO", True),             # (2) trailer
    ("hello (fwd) (FWD)  ", "HELLO", True),
    ("hello(fwd)", "HELLO", True),
    ("[fwd: hello]", "HELLO", True),            # (6)
    ("Re: [Fwd: Re: hello (fwd)]", "HELLO", True),
    ("re: [fwd: [fwd: re: [fwd: babylon]]]", "BABYLON", True),
    ("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)", "B", True),
    ("Re: [FWD: c]", "C", True),
    ("b (a)", "B (A)", False),
    ("Ad: Re: Ad: Re: Ad: x", "AD: RE: AD: RE: AD: X", False),
    ("  hello \t  world  ", "HELLO WORLD", False),
    ("", "", False),
    ("Re:", "", True),
    ("[fwd:]", "", True),
])
def test_base_subject_rfc5256_steps(subject, base, reply):
    assert base_subject(subject) == (base, reply)


def test_base_subject_of_encoded_words_is_decoded_first():
    keys = sort_keys({"subject": b"=?us-ascii?b?UmU6IGM=?="})
    assert (keys.subject, keys.reply) == ("C", True)
    keys = sort_keys({"subject": b"=?iso-8859-1?q?RE:_C?="})
    assert (keys.subject, keys.reply) == ("C", True)
    keys = sort_keys({"subject": b"=?iso-8859-1?q?_?="})      # a lone space: empty base
    assert keys.subject == ""
    keys = sort_keys({"subject": "Re: Grüße".encode()})       # raw UTF-8 (RFC 6532)
    assert keys.subject == "GRÜSSE"


# -- sent date (RFC 5256 2.2) -------------------------------------------------------------
def test_sent_date_in_utc_and_unusable_dates():
    assert sort.sent_date("Mon, 7 Feb 1994 21:52:25 -0800") == 760686745
    assert sort.sent_date("Tue, 8 Feb 1994 05:52:25 +0000") == 760686745
    assert sort.sent_date("7 Feb 1994 21:52:25") == 760657945          # no zone: UTC
    assert sort.sent_date("yesterday") is None
    assert sort.sent_date("") is None
    assert sort_keys({}).date is None                                     # -> INTERNALDATE


# -- address keys ---------------------------------------------------------------------------
def test_address_keys_use_the_parsed_first_address():
    keys = sort_keys({
        "from": b'"Zed, Z" <alice@example.org>, bob@example.org',
        "to": b"<user-to (comment)@ (comment) domain.org>",
        "cc": b"undisclosed-recipients:;",
    })
    assert keys.from_ == "ALICE"        # addr-mailbox of the first address, not the name
    assert keys.to == "USER-TO"
    assert keys.cc == "UNDISCLOSED-RECIPIENTS"    # a group: its name, as ENVELOPE shows it
    assert keys.display_from == "ZED, Z"
    assert keys.display_to == "USER-TO@DOMAIN.ORG"   # no display-name: the addr-spec
    assert sort_keys({}).from_ == "" and sort_keys({}).display_from == ""


def test_display_name_is_decoded():
    keys = sort_keys({"from": b"=?utf-8?q?=C3=89mile?= <e@example.org>"})
    assert keys.display_from == "ÉMILE"
    keys = sort_keys({"from": b'"" <e@example.org>'})
    assert keys.display_from == "E@EXAMPLE.ORG"


# -- message ids -----------------------------------------------------------------------------
def test_message_ids_and_references():
    keys = sort_keys({"message-id": b"<a@b>", "references": b"<x@y> junk <nohost> < p @ q >",
                      "in-reply-to": b"<z@y>"})
    assert keys.message_id == "a@b"
    assert keys.references == ("x@y", "p@q")
    keys = sort_keys({"in-reply-to": b"<z@y> <w@y>"})
    assert keys.references == ("z@y",)          # In-Reply-To: its first msg-id only
    assert sort_keys({"message-id": b"no brackets"}).message_id is None


# -- criteria and order ------------------------------------------------------------------------
def test_parse_criteria():
    assert parse_criteria(["REVERSE", "date", "subject"]) == [("date", True), ("subject", False)]
    assert parse_criteria(["DisplayFrom"]) == [("display_from", False)]
    for bad in ([], ["REVERSE"], ["REVERSE", "REVERSE", "DATE"], ["BOGUS"], [["DATE"]], "DATE"):
        with pytest.raises(SortError):
            parse_criteria(bad)
    with pytest.raises(SortError):
        parse_criteria(["DISPLAYTO"], display=False)


def _item(seq, arrival, size, subject="", date=None, from_=""):
    return (seq, arrival, size, sort.SortKeys(date, subject, False, from_, "", "", "", "", None, ()))


def test_sort_order_ties_keep_mailbox_order_and_reverse_is_per_key():
    items = [_item(1, 30, 100, "b"), _item(2, 10, 100, "a"), _item(3, 20, 50, "b"),
             _item(4, 10, 70, "a")]
    seqs = lambda crit: [i[0] for i in sort_order(items, crit)]     # noqa: E731
    assert seqs([("arrival", False)]) == [2, 4, 3, 1]
    assert seqs([("arrival", True)]) == [1, 3, 2, 4]          # ties still ascending
    assert seqs([("subject", False)]) == [2, 4, 1, 3]
    assert seqs([("subject", False), ("size", True)]) == [2, 4, 1, 3]
    assert seqs([("subject", True), ("size", False)]) == [3, 1, 4, 2]
    assert seqs([("size", False), ("arrival", True)]) == [3, 4, 1, 2]


def test_date_key_falls_back_to_arrival():
    items = [_item(1, 500, 1, date=100), _item(2, 200, 1), _item(3, 50, 1, date=300)]
    assert [i[0] for i in sort_order(items, [("date", False)])] == [1, 2, 3]


@pytest.mark.parametrize("value", [
    "Wed, 04 Nov 2020 19:23:40 -0000", "4 Nov 2020 19:23:40 +0130", "Thu, 31 Feb 2021 25:61:61 -0830",
    "wed, 04 NOV 2020 19:23:40 -1200", "Xyz,04 Nov 2020 19:23:40 +9999", "Wed, 04 Foo 2020 19:23:40 +0100",
    "Wed, 04 Nov 0099 19:23:40 +0100", "Wed, 04 Nov 2020 19:23 +0100", "Wed, 04 Nov 2020 19:23:40 EST",
    "Wed, 04 Nov 2020 19:23:40", "04 Nov 20 19:23:40 +0100", "garbage", "",
])
def test_sent_date_fast_path_agrees_with_parsedate_tz(value):
    import calendar
    import email.utils
    t = email.utils.parsedate_tz(value)
    assert sort.sent_date(value) == (None if t is None else calendar.timegm(t[:6]) - (t[9] or 0))


def test_field_lines_keep_what_header_fields_reads():
    header = (b"Received: x\r\nSUBJECT : first\r\n part\r\nX-Date: no\r\nDate: Mon, 7 Feb 2022 10:00:00 +0000"
              b"\r\n\tmore\r\nfromage: no\r\nFrom: a@b\r\nSubject: second\r\n")
    lines = sort.field_lines(header)
    assert b"Received" not in lines and b"X-Date" not in lines and b"fromage" not in lines
    assert header_fields(lines) == header_fields(header)
    assert all(sort.field_value(lines, name) == header_fields(header).get(name) for name in sort.FIELDS)


# -- the header of a file, the cache ------------------------------------------------------------
def test_read_header_stops_at_the_blank_line():
    body = b"x" * 100_000
    f = io.BytesIO(b"Subject: hi\nFrom: a@b\n\n" + body)
    assert read_header(f) == b"Subject: hi\nFrom: a@b\n"
    f = io.BytesIO(b"Subject: hi\r\n\r\nbody")
    assert read_header(f) == b"Subject: hi\r\n"
    long = b"X-Long: " + b"y" * 20_000 + b"\nSubject: late\n\nbody"
    assert header_fields(read_header(io.BytesIO(long)))["subject"] == b"late"
    assert read_header(io.BytesIO(b"Subject: no body")) == b"Subject: no body"


def test_header_fields_first_occurrence_unfolded():
    header = (b"Received: x\nSUBJECT: first\n part\nSubject: second\nX-Subject: no\n"
              b"References: <a@b>\n\t<c@d>\nfrom :  a@b\n")
    fields = header_fields(header)
    assert fields["subject"] == b"first part"
    assert fields["references"] == b"<a@b>\t<c@d>"
    assert fields["from"] == b"a@b"
    assert keys_of_header(header).references == ("a@b", "c@d")


def test_cache_reads_each_message_once_and_skips_gone_ones():
    reads = []

    def read(uid):
        reads.append(uid)
        if uid == 3:
            raise FileNotFoundError(uid)
        return b"Subject: message %d\n" % uid

    cache = SortCache()
    folder = ("alice@example.test", "INBOX", 1)
    keys = cache.keys(folder, [1, 2, 3], read)
    assert [k.subject if k else None for k in keys] == ["MESSAGE 1", "MESSAGE 2", None]
    assert cache.keys(folder, [2, 1], read)[0].subject == "MESSAGE 2"
    assert reads == [1, 2, 3]                   # the second call read nothing
    cache.keys(("alice@example.test", "INBOX", 2), [1], read)     # a new UIDVALIDITY
    assert reads == [1, 2, 3, 1]
    cache.forget(folder, {2})
    cache.keys(folder, [1, 2], read)
    assert reads == [1, 2, 3, 1, 1]


def test_cache_is_bounded_by_messages_held():
    cache = SortCache(max_messages=3)
    read = lambda uid: b"Subject: s\n"          # noqa: E731
    cache.keys(("a", "A", 1), [1, 2], read)
    cache.keys(("a", "B", 1), [1, 2], read)      # over the bound: folder A goes
    assert list(cache._folders) == [("a", "B", 1)]
    cache.keys(("a", "C", 1), [1, 2, 3, 4], read)  # alone over the bound: it stays
    assert list(cache._folders) == [("a", "C", 1)]


@pytest.mark.parametrize("value", [
    "a@b.org", " a@b.org , c@d.org", "Name <a@b.org>", '"Name, Q." <a@b.org>', '"" <a@b.org>',
    "J.  R. Smith\t<j@x.org>, other@x.org", "<a@b.org>", "=?utf-8?q?Yann?= <bob@x.org>",
    'John "Q" Public <a@b.org>', "a@b.org (Comment)", "(c) a@b.org", "group: a@b.org;",
    "<@route:a@b.org>", '"quoted local"@b.org', "no-at-sign", "a@[1.2.3.4]", "Name <a@b.org",
    "", "  ", '"Esc\\"aped" <a@b.org>', "user-from (comment)@ (comment) domain.org",
])
def test_first_address_fast_path_agrees_with_the_envelope_parser(value):
    from clevermail.imap.envelope import parse_addresses
    addrs = parse_addresses(value)
    slow = (addrs[0][0], addrs[0][2], addrs[0][3]) if addrs else None
    assert sort.first_address(value) == slow


def test_memo_computes_once_per_key_and_keeps_a_few():
    cache = SortCache(max_results=2)
    calls = []

    def compute(value):
        def run():
            calls.append(value)
            return value
        return run
    folder = ("a", "INBOX", 1)
    assert cache.memo(folder, ("SORT", 1), compute("x")) == "x"
    assert cache.memo(folder, ("SORT", 1), compute("y")) == "x"      # the same request: kept
    assert cache.memo(("a", "INBOX", 2), ("SORT", 1), compute("z")) == "z"  # new UIDVALIDITY
    cache.memo(folder, ("SORT", 2), compute("p"))
    cache.memo(folder, ("SORT", 3), compute("q"))                      # ("SORT", 1) falls out
    assert cache.memo(folder, ("SORT", 1), compute("r")) == "r"
    assert calls == ["x", "z", "p", "q", "r"]
