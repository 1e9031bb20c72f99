"""Messages kept for FETCH's content items (clevermail/imap/fetch_content.py): the pure
bounds, a parse shared by threads, and sessions over socketpairs whose FETCH of a
message's text or parts again reads no file and answers byte for byte as the first,
while an expunge, a flag change and a message file replaced underneath show as they did
before there was a cache.  The output of a large literal in pieces (fetch_response)
equals the one line render_fetch gives."""

import os
import threading

import pytest

from clevermail.imap import mime
from clevermail.imap.fetch import FetchSource, fetch_response, render_fetch
from clevermail.imap.fetch_content import ContentCache, parse_cost
from clevermail.imap.fetch_items import parse_fetch_items
from fetch_helpers import DATA, Msg, folders_closed, load, read, record_reads  # noqa: F401 (folders_closed: autouse)
from imap_helpers import (  # noqa: F401 (client, handler, open_session, selected, store: fixtures)
    ALICE, append, client, deliver, handler, open_session, selected, store, two_logged_in)

MULTIPART = (b"From: a@x.test\r\nSubject: parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
             b"--b\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n--b\r\n\r\nsecond\r\n--b--\r\n")


# -- pure ------------------------------------------------------------------------------------
def test_kept_by_key_and_only_at_the_size_the_index_gives():
    cache = ContentCache()
    pm = mime.parse(MULTIPART, repair=False)
    cache.keep(("f", 1), pm)
    assert cache.get(("f", 1), len(MULTIPART)) is pm
    assert cache.get(("f", 1), len(MULTIPART) + 1) is None      # another size: not this message
    assert cache.get(("f", 2), len(MULTIPART)) is None
    assert cache.get(("g", 1), len(MULTIPART)) is None


def test_bounded_by_bytes_least_recently_used_first():
    raw = b"Subject: x\r\n\r\n" + b"y" * 5000
    one = parse_cost(mime.parse(raw, repair=False))
    cache = ContentCache(max_bytes=20 * one + 10)
    for uid in range(1, 21):
        cache.keep(("f", uid), mime.parse(raw, repair=False))
    assert len(cache) == 20 and cache.size == 20 * one
    cache.get(("f", 1), len(raw))                   # used: 2 is now the oldest
    cache.keep(("f", 21), mime.parse(raw, repair=False))
    assert cache.size <= cache.max_bytes and len(cache) == 20
    assert cache.get(("f", 2), len(raw)) is None
    assert cache.get(("f", 1), len(raw)) is not None


def test_a_message_too_large_is_never_kept():
    cache = ContentCache(max_bytes=16 * 1000)
    cache.keep(("f", 1), mime.parse(b"x" * 1001, repair=False))
    assert len(cache) == 0 and cache.size == 0
    cache.keep(("f", 1), mime.parse(b"x" * 900, repair=False))
    assert len(cache) == 1


def test_a_parse_made_later_is_counted():
    cache = ContentCache()
    pm = mime.parse(MULTIPART, repair=False)
    cache.keep(("f", 1), pm)
    before = cache.size
    assert before == parse_cost(pm) and before > len(MULTIPART)
    pm.root                                          # a BODY[1] parsed it on a later FETCH
    cache.keep(("f", 1), pm)
    assert cache.size == parse_cost(pm) > before     # three parts and their fields counted
    cache.keep(("f", 1), pm)
    assert cache.size == parse_cost(pm) and len(cache) == 1


def test_each_parse_counts_its_own_parts():
    """The part count that stops a parse at mime.MAX_PARTS belongs to one parse: two
    threads parsing one kept message at once make the same tree (it was a count on the
    ParsedMessage, which a second parse went on from)."""
    raw = (b"Content-Type: multipart/mixed; boundary=q\r\n\r\n"
           + b"".join(b"--q\r\n\r\npart %d\r\n" % i for i in range(mime.MAX_PARTS - 5)) + b"--q--\r\n")
    pm = mime.parse(raw, repair=False)
    first = pm._part(0, (), 0, False, False, [0])[0]
    second = pm._part(0, (), 0, False, False, [0])[0]
    assert len(first.children) == len(second.children) == mime.MAX_PARTS - 5
    trees = []
    threads = [threading.Thread(target=lambda: trees.append(mime.parse(raw, repair=False).root))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [len(t.children) for t in trees] == [mime.MAX_PARTS - 5] * 2


@pytest.mark.parametrize("items", [
    ["UID", "BODY[]"], ["BODY.PEEK[TEXT]", "FLAGS"], ["BODY[1]<0.5000>", "RFC822.SIZE", "BODY[2]"],
    ["RFC822", "ENVELOPE", "BODYSTRUCTURE"], ["BINARY.PEEK[1]", "BODY.PEEK[HEADER]"],
])
@pytest.mark.parametrize("size", [10, 4095, 4096, 70000])
def test_the_pieces_of_a_response_are_the_one_line(items, size):
    """fetch_response writes a large literal apart; joined, its pieces are the line
    render_fetch makes, whatever the literal's size around the threshold."""
    raw = (b"From: a@x.test\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n"
           + b"a\0" * (size // 2) + b"\r\n--b\r\n\r\n" + b"z" * size + b"\r\n--b--\r\n")
    req = parse_fetch_items(items)
    msg = Msg(raw, seq=5)
    pieces = fetch_response(req, msg, FetchSource(read), None, extra_flags=True)
    assert b"".join(pieces) == b"* 5 FETCH " + render_fetch(req, msg, read, extra_flags=True) + b"\r\n"
    assert all(isinstance(p, bytes) for p in pieces)


def test_a_kept_message_answers_as_the_file_for_the_corpus():
    """A second render from the kept parse (the tree made by the first, or grown later)
    is byte for byte the first, for every message of the corpus and every content item."""
    items = parse_fetch_items(["BODY.PEEK[]", "BODY.PEEK[TEXT]", "BODY.PEEK[1]", "BODY.PEEK[2.MIME]",
                               "BODY.PEEK[1.1]", "BINARY.PEEK[1]", "BODYSTRUCTURE"])
    cache = ContentCache()
    for n, path in enumerate(sorted(DATA.glob("*.eml"))):
        raw = load(path.name)
        plain = render_fetch(items, Msg(raw), read)
        msg = Msg(raw, uid=n)
        source = FetchSource(read, kept=cache, folder="f", live=lambda uid: True)
        text = fetch_response(parse_fetch_items("BODY.PEEK[TEXT]"), msg, source)  # header parse only
        assert b"".join(text).endswith(render_fetch(parse_fetch_items("BODY.PEEK[TEXT]"), Msg(raw), read) + b"\r\n")
        assert b"".join(fetch_response(items, msg, source)) == b"* 1 FETCH " + plain + b"\r\n"
        assert b"".join(fetch_response(items, msg, source)) == b"* 1 FETCH " + plain + b"\r\n"
        assert msg.raw_calls == 1, path.name


# -- sessions --------------------------------------------------------------------------------
@pytest.fixture(name="reads")
def _reads(handler, monkeypatch):
    """The UIDs whose file the handler read, in order."""
    return record_reads(handler, monkeypatch)


CONTENT = ["(BODY.PEEK[])", "(UID BODY.PEEK[TEXT])", "(BODY.PEEK[1])", "(RFC822.SIZE BODY.PEEK[2])",
           "(BODY.PEEK[]<3.20>)", "(BINARY.PEEK[1])", "(BODY.PEEK[1.MIME])", "(BODY.PEEK[TEXT]<0.5>)"]


def test_content_fetched_again_reads_no_file_and_answers_the_same(open_session, store, reads):
    a, b = two_logged_in(open_session, select=True)
    append(a, "INBOX", MULTIPART)
    a.expect("NOOP")
    b.expect("NOOP")
    first = [a.expect(f"FETCH 1 {items}").untagged for items in CONTENT]
    assert reads == [1]
    assert [b.expect(f"FETCH 1 {items}").untagged for items in CONTENT] == first
    assert reads == [1]                     # the other session too: no file opened
    assert "first part" in first[2][0] and "second" in first[3][0]


def test_an_expunged_message_answers_as_before(open_session, store, reads):
    """A message kept for its content that another session expunged, which this session
    was not told of yet, answers NO [EXPUNGEISSUED] as without the cache (RFC 2180 4.1:
    its content is gone), the others of the set as usual."""
    deliver(store, 3)
    a, b = two_logged_in(open_session, select=True)
    kept = a.expect("FETCH 1:3 (BODY.PEEK[])").untagged
    b.expect("STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.expect("EXPUNGE")
    r = a.expect("FETCH 1:3 (BODY.PEEK[])", "NO", "EXPUNGEISSUED")
    assert r.untagged == [kept[0], kept[2]]
    assert a.expect("NOOP").untagged == ["* 2 EXPUNGE"]
    assert a.expect("FETCH 1:2 (BODY.PEEK[])").untagged == [kept[0], kept[2].replace("* 3", "* 2", 1)]
    assert sorted(reads) == [1, 2, 2, 3]        # the expunged one looked for in its file


def test_flag_changes_show_beside_kept_content(open_session, store, reads):
    deliver(store, 1)
    a, b = two_logged_in(open_session, select=True)
    first = a.expect("FETCH 1 (FLAGS BODY.PEEK[TEXT])").untagged
    b.expect("STORE 1 +FLAGS.SILENT (\\Flagged $Work)")
    r = a.expect("FETCH 1 (FLAGS BODY.PEEK[TEXT])")
    fetched = [line for line in r.untagged if "BODY[TEXT]" in line]
    assert fetched == [first[0].replace("FLAGS (\\Recent)", "FLAGS (\\Flagged $Work \\Recent)")]
    # BODY[] (not PEEK) sets \Seen (RFC 3501 6.4.5), and the response shows it
    r = a.expect("FETCH 1 (BODY[TEXT])")
    assert r.untagged[-1].endswith("FLAGS (\\Flagged \\Seen $Work \\Recent))")
    assert reads == [1]


def test_a_message_file_replaced_underneath(open_session, store, reads):
    """Maildir never rewrites a message file: another program that replaces one puts a
    new file, which the store sees as a new message (a new UID) and the old one as
    expunged.  The kept content of the old UID is never answered for the new one."""
    deliver(store, 2)
    a = open_session()
    a.login()
    a.select()
    old = a.expect("FETCH 1:2 (BODY.PEEK[])").untagged
    folder = store.folder_path(ALICE, "INBOX")
    sub = next(d for d in ("new", "cur") if os.listdir(os.path.join(folder, d)))
    name = sorted(os.listdir(os.path.join(folder, sub)))[0]
    os.unlink(os.path.join(folder, sub, name))
    new_text = b"From: other@x.test\nSubject: replaced\n\nanother text\n"
    with open(os.path.join(folder, "new", "9999.replaced.test"), "wb") as f:
        f.write(new_text)
    r = a.expect("NOOP")
    assert "* 1 EXPUNGE" in r.untagged and "* 2 EXISTS" in r.untagged
    now = a.expect("FETCH 1:2 (BODY.PEEK[])").untagged
    assert now[0] == old[1].replace("* 2", "* 1", 1)
    assert now[1] == "* 2 FETCH (BODY[] {%d}\r\n%s)" % (
        len(new_text) + 4, new_text.replace(b"\n", b"\r\n").decode())
    assert sorted(reads) == [1, 2, 3]


def test_a_renamed_file_still_answers_from_the_kept_content(open_session, store, reads):
    """A flag change renames the message's file (Maildir keeps flags in the name): the
    kept content stays right, no file is read."""
    deliver(store, 1)
    a, b = two_logged_in(open_session, select=True)
    first = a.expect("FETCH 1 (BODY.PEEK[])").untagged
    folder = store.folder_path(ALICE, "INBOX")
    before = os.listdir(os.path.join(folder, "cur")) + os.listdir(os.path.join(folder, "new"))
    b.expect("STORE 1 +FLAGS.SILENT (\\Answered \\Seen)")
    after = os.listdir(os.path.join(folder, "cur")) + os.listdir(os.path.join(folder, "new"))
    assert [n for n in after if n.startswith("1") or ":2," in n] != [n for n in before if n.startswith("1") or ":2," in n]
    assert a.expect("FETCH 1 (BODY.PEEK[])").untagged[0] == first[0]
    assert reads == [1]


def test_a_small_bound_reads_again_what_it_could_not_keep(selected, handler, reads):
    handler.fetch_cache.content = ContentCache(max_bytes=600)     # about one message
    for seq in (1, 2, 1, 2):
        selected.expect(f"FETCH {seq} (BODY.PEEK[])")
    assert reads == [1, 2, 1, 2]
    assert handler.fetch_cache.content.size <= 600
