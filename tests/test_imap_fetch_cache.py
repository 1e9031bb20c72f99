"""The shared FETCH metadata cache (clevermail/imap/fetch_cache.py): pure bounds, and
sessions over socketpairs whose second FETCH of ENVELOPE, BODYSTRUCTURE or header
fields reads no message file and answers exactly as the first, in the same process or
in another one (a second file handler and store on the same data dir, as a worker has)
through the folder's journal (the journal file itself: test_imap_fetch_journal.py)."""

import pathlib

import pytest

from clevermail.imap.fetch_cache import FetchCache
from fetch_helpers import folders_closed, record_reads  # noqa: F401 (autouse: descriptors closed)
from imap_helpers import (  # noqa: F401 (client, handler, open_session, selected, store: fixtures)
    ALICE, FakeServer, append, client, deliver, handler, open_session, selected, store, two_logged_in,
    uidvalidity)


# -- pure ----------------------------------------------------------------------------------------
def test_memo_keeps_items_per_message_and_folder():
    cache = FetchCache()
    memo = cache.memo(("a", "INBOX", 7), 1)
    assert memo.get("ENVELOPE") is None
    memo.put("ENVELOPE", b"(env)")
    assert cache.memo(("a", "INBOX", 7), 1).get("ENVELOPE") == b"(env)"
    assert cache.memo(("a", "INBOX", 8), 1).get("ENVELOPE") is None     # new UIDVALIDITY
    assert cache.memo(("b", "INBOX", 7), 1).get("ENVELOPE") is None     # another user
    memo.put("ENVELOPE", b"(other)")                                    # first one stays
    assert cache.memo(("a", "INBOX", 7), 1).get("ENVELOPE") == b"(env)"


def test_bounded_by_bytes_least_recently_used_first():
    cache = FetchCache(max_bytes=3 * (1000 + 100))
    for uid in (1, 2, 3):
        cache.memo("f", uid).put("BODY", b"x" * 1000)
    assert len(cache) == 3 and cache.size == 3300
    cache.memo("f", 1)                      # used: 2 is now the oldest
    cache.memo("f", 4).put("BODY", b"y" * 1000)
    assert cache.size <= cache.max_bytes
    assert cache.memo("f", 2).get("BODY") is None
    assert cache.memo("f", 1).get("BODY") == b"x" * 1000


def test_a_memo_evicted_while_rendering_comes_back_with_its_size():
    cache = FetchCache(max_bytes=2500)
    memo = cache.memo("f", 1)
    memo.put("ENVELOPE", b"e" * 500)
    for uid in (2, 3, 4):
        cache.memo("f", uid).put("BODY", b"b" * 900)      # pushes message 1 out
    memo.put("BODY", b"b" * 300)                           # its FETCH goes on
    assert cache.size == sum(len(v) + 100 for key in list(cache._messages)
                             for v in cache._messages[key].values())
    assert cache.size <= cache.max_bytes


# -- sessions ----------------------------------------------------------------------------------
@pytest.fixture(name="reads")
def _reads(handler, monkeypatch):
    """The UIDs whose file the handler read, in order.  Messages read are not kept
    (the content cache, fetch_content.py, is test_imap_fetch_content.py's): a read here
    is a miss of the metadata cache."""
    from clevermail.imap.fetch_content import ContentCache
    handler.fetch_cache.content = ContentCache(0)
    return record_reads(handler, monkeypatch)


@pytest.mark.parametrize("items", [
    "(ENVELOPE)", "(BODYSTRUCTURE)", "(BODY)", "(UID RFC822.SIZE ENVELOPE BODYSTRUCTURE)",
    "(BODY.PEEK[HEADER.FIELDS (From Subject)])", "(BODY.PEEK[HEADER])", "(RFC822.HEADER)",
    "(BODY.PEEK[HEADER.FIELDS.NOT (Date)]<0.20>)",
])
def test_a_second_session_reads_no_file_for_metadata(open_session, store, reads, items):
    deliver(store, 3)
    a, b = two_logged_in(open_session, select=True)
    first = a.expect(f"FETCH 1:3 {items}").untagged
    assert sorted(reads) == [1, 2, 3]
    second = b.expect(f"FETCH 1:3 {items}").untagged
    assert second == first
    assert sorted(reads) == [1, 2, 3]           # no file opened the second time


def test_header_fields_share_an_entry_whatever_the_case_and_order(selected, reads):
    first = selected.expect("FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT from)])").untagged
    second = selected.expect("FETCH 2 (BODY.PEEK[HEADER.FIELDS (From Subject)])").untagged
    assert reads == [2]
    assert first[0].replace("SUBJECT from", "From Subject") == second[0]
    assert "Subject: message 2" in "\n".join(second)


def test_the_message_text_is_never_kept_with_the_metadata(selected, reads):
    selected.expect("FETCH 1 (BODY.PEEK[])")
    selected.expect("FETCH 1 (BODY.PEEK[TEXT])")
    selected.expect("FETCH 1 (ENVELOPE BODY.PEEK[])")
    assert reads == [1, 1, 1]


def test_a_recreated_folder_never_shows_the_old_entries(client, store, reads):
    client.expect("CREATE Box")
    append(client, "Box", b"From: a@x.test\r\nSubject: old one\r\n\r\nbody\r\n")
    client.select("Box")
    assert "old one" in client.expect("FETCH 1 (ENVELOPE)").untagged[0]
    client.expect("UNSELECT")
    client.expect("DELETE Box")
    client.expect("CREATE Box")
    append(client, "Box", b"From: a@x.test\r\nSubject: new one\r\n\r\nbody\r\n")
    client.select("Box")
    answer = client.expect("UID FETCH 1 (ENVELOPE)").untagged[0]     # UID 1 again
    assert "new one" in answer and "old one" not in answer


# -- across restarts and processes: the folder's journal (fetch_journal.py) -------------------
def test_a_restarted_service_answers_from_the_folder_journal(tmp_path, monkeypatch):
    import imaplib

    from clevermail.imap.handler import IMAPFileHandler
    from clevermail.service import MailService
    from conftest import make_config
    from fakes import PASSWORD, make_accounts

    conf = make_config(tmp_path)
    make_accounts(conf.server.users_file)
    with MailService(conf) as service:
        service.store.deliver_local("", [ALICE], b"From: a@x.test\r\nSubject: kept\r\n\r\nbody\r\n")
        with imaplib.IMAP4("127.0.0.1", service.port("imap")) as c:
            c.login(ALICE, PASSWORD)
            c.select("INBOX")
            first = c.fetch("1", "(ENVELOPE BODYSTRUCTURE)")
    reads = []
    monkeypatch.setattr(IMAPFileHandler, "read_message",
                        lambda self, view, msg: reads.append(msg.uid) or view.read_message(msg.uid))
    with MailService(conf) as service:
        with imaplib.IMAP4("127.0.0.1", service.port("imap")) as c:
            c.login(ALICE, PASSWORD)
            c.select("INBOX")
            again = c.fetch("1", "(ENVELOPE BODYSTRUCTURE)")
    assert again == first and b"kept" in again[1][0]
    assert reads == []                  # answered from the journal the first run wrote


def test_other_header_fields_and_the_envelope_come_from_the_kept_header(selected, reads):
    """Once a message's header is kept, a FETCH of another list of header fields
    (webmails and imaptest vary it) or of the ENVELOPE reads no file (that they
    answer as from the file is test_imap_fetch's test of the same name)."""
    asked = ["(BODY.PEEK[HEADER.FIELDS (To)])", "(BODY.PEEK[HEADER.FIELDS.NOT (Subject)])",
             "(ENVELOPE)", "(BODY.PEEK[HEADER.FIELDS (Subject Message-ID)]<2.9>)"]
    answers = [selected.expect(f"FETCH 3 {items}").untagged for items in asked]
    assert reads == [3]                 # the first kept the header, the others used it
    assert "Subject: message 3" not in answers[1][0] and "Subject" in answers[3][0]
    selected.expect("FETCH 2 (BODY.PEEK[HEADER])")
    assert reads == [3, 2]
    for items in asked:
        selected.expect(f"FETCH 2 {items}")
    assert reads == [3, 2]


# -- another process: a second handler and store on the same data dir -----------------------------
@pytest.fixture(name="worker_b")
def _worker_b(tmp_path, handler):
    """The IMAP file handler of a second worker process: its own MailStore and caches on
    the data dir of `handler`; .reads lists the UIDs whose file it read."""
    from clevermail.imap.handler import IMAPFileHandler
    from clevermail.store import MailStore
    from clevermail.imap.fetch_content import ContentCache
    other = IMAPFileHandler(MailStore(tmp_path / "data"), handler.accounts)
    other.fetch_cache.content = ContentCache(0)         # as `reads` does
    other.reads = []
    original = other.read_message
    other.read_message = lambda view, msg: other.reads.append(msg.uid) or original(view, msg)
    yield other
    other.fetch_cache.close()


ITEMS = "(UID ENVELOPE BODYSTRUCTURE BODY BODY.PEEK[HEADER.FIELDS (From Subject)] RFC822.HEADER)"


def test_appended_through_one_worker_fetched_through_the_other_reads_no_file(
        open_session, handler, worker_b, reads):
    a = open_session()
    a.login()
    for n in (1, 2, 3):
        append(a, "INBOX", b"From: a@x.test\r\nSubject: n%d\r\nContent-Type: multipart/mixed; "
               b"boundary=b\r\n\r\n--b\r\n\r\npart %d\r\n--b--\r\n" % (n, n))
    a.select()
    first = a.expect(f"FETCH 1:3 {ITEMS}").untagged
    assert sorted(reads) == [1, 2, 3]
    b = open_session(server=FakeServer(worker_b))
    b.login()
    b.select()
    assert b.expect(f"FETCH 1:3 {ITEMS}").untagged == first
    assert worker_b.reads == []                 # rendered by worker A, read from the journal
    # and the other way round: what B renders first, A takes from the journal
    b.expect("FETCH 2 (BODY.PEEK[HEADER.FIELDS (To)])")
    assert worker_b.reads == []                 # from the kept header
    append(b, "INBOX", b"From: b@x.test\r\nSubject: from B\r\n\r\nbody\r\n")
    b.expect("NOOP")
    mine = b.expect(f"FETCH 4 {ITEMS}").untagged
    assert worker_b.reads == [4]
    a.expect("NOOP")
    assert a.expect(f"FETCH 4 {ITEMS}").untagged == mine
    assert sorted(reads) == [1, 2, 3]


def test_a_damaged_journal_is_ignored_and_rewritten(open_session, handler, worker_b, reads):
    import os
    from clevermail.imap.fetch_journal import FILE_NAME, decode
    a = open_session()
    a.login()
    for n in (1, 2):
        append(a, "INBOX", b"From: a@x.test\r\nSubject: n%d\r\n\r\nbody\r\n" % n)
    a.select()
    first = a.expect("FETCH 1:2 (ENVELOPE)").untagged
    path = os.path.join(handler.store.folder_path(ALICE, "INBOX"), FILE_NAME)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 4] ^= 0xFF                # a flipped byte in the first record
    open(path, "wb").write(bytes(data) + b"CMF1\xff\xff")     # and a torn tail
    b = open_session(server=FakeServer(worker_b))
    b.login()
    b.select()
    assert b.expect("FETCH 1:2 (ENVELOPE)").untagged == first
    assert worker_b.reads == [1]                # the damaged record's message was read again
    records, _, damaged = decode(open(path, "rb").read())
    assert not damaged and sorted(r[1] for r in records) == [1, 2]     # rewritten clean
    a.expect("NOOP")
    assert a.expect("FETCH 1:2 (ENVELOPE)").untagged == first



# -- what one parse gives -------------------------------------------------------------------------
def test_what_a_parse_gives_is_kept_beside_the_item_asked(selected, reads):
    selected.expect("FETCH 1 (BODY)")
    for items in ("(BODYSTRUCTURE)", "(ENVELOPE)", "(BODY.PEEK[HEADER.FIELDS (Subject)])", "(RFC822.HEADER)"):
        selected.expect(f"FETCH 1 {items}")
    assert reads == [1]
    selected.expect("FETCH 2 (ENVELOPE)")           # the header alone: no parse of the body
    selected.expect("FETCH 2 (BODYSTRUCTURE)")
    assert reads == [1, 2, 2]


@pytest.mark.parametrize("first", ["BODY", "BODYSTRUCTURE", "BODY.PEEK[1.HEADER]"])
def test_items_kept_beside_a_parse_equal_those_from_the_file(first):
    """BODY, BODYSTRUCTURE and the header kept when another item parsed the message answer
    byte for byte as rendered alone, for the corpus, the nasty messages and mutations."""
    import random

    from fetch_helpers import DATA, Msg, fetch, load
    from test_imap_fetch_strict import NASTY, mutate
    rng = random.Random(18)
    corpus = [load(p.name) for p in sorted(DATA.glob("*.eml"))] + NASTY
    for n, raw in enumerate(corpus + [mutate(rng, rng.choice(corpus)) for _ in range(100)]):
        cache, msg = FetchCache(), Msg(raw)
        fetch(first, msg, memo=cache.memo("f", n))
        for items in ("BODY", "BODYSTRUCTURE", "ENVELOPE", "BODY.PEEK[HEADER.FIELDS (From Subject)]"):
            assert fetch(items, msg, memo=cache.memo("f", n)) == fetch(items, Msg(raw)), (n, items)
        assert msg.raw_calls == 1


def test_the_old_data_dir_file_is_removed_by_the_first_fetch_that_caches(selected, handler):
    """<data_dir>/imap-fetch.cache, where the cache was saved before the folders'
    journals, is read by nothing: the first caching FETCH of the process removes it."""
    old = pathlib.Path(handler.store.mail_root).parent / "imap-fetch.cache"
    old.write_bytes(b"what an earlier version saved")
    selected.expect("FETCH 1 (UID FLAGS)")          # caches nothing: not yet
    selected.expect("FETCH 1 (BODY.PEEK[TEXT])")
    assert old.exists()
    selected.expect("FETCH 1 (ENVELOPE)")
    assert not old.exists()
    assert (pathlib.Path(handler.store.folder_path(ALICE, "INBOX")) / "clevermail-fetch-cache").exists()
    old.write_bytes(b"made again")                  # looked for once per process
    selected.expect("FETCH 2 (ENVELOPE)")
    assert old.exists()


def test_the_header_is_kept_and_not_each_list_of_its_fields(selected, handler, reads):
    """Top-level header fields are made from the kept header by any process: the memo and
    the journal get the header (and the ENVELOPE made from it), never a field list's
    answer, one list or another (imaptest varies them: 9 in 10 journal items were those),
    and a part's header fields are kept as before."""
    import os

    from clevermail.imap.fetch_journal import FILE_NAME, decode

    selected.expect("FETCH 2 (BODY.PEEK[HEADER.FIELDS (Subject)])")
    selected.expect("FETCH 2 (BODY.PEEK[HEADER.FIELDS.NOT (To)] ENVELOPE)")
    path = os.path.join(handler.store.folder_path(ALICE, "INBOX"), FILE_NAME)
    with open(path, "rb") as f:
        records, _, damaged = decode(f.read())
    items = [item for _, uid, kept in records for item in kept]
    assert not damaged and {uid for _, uid, _ in records} == {2}
    assert ((), "HEADER", frozenset()) in items and "ENVELOPE" in items
    assert not [item for item in items if item[1:2] in (("HEADER.FIELDS",), ("HEADER.FIELDS.NOT",))]
    assert reads == [2]
    kept = handler.fetch_cache.memo((ALICE, "INBOX", uidvalidity(handler.store)), 2).items
    assert ((), "HEADER", frozenset()) in kept and "ENVELOPE" in kept
    assert not [item for item in kept if item[1:2] in (("HEADER.FIELDS",), ("HEADER.FIELDS.NOT",))]
    selected.expect("FETCH 2 (BODY.PEEK[1.HEADER.FIELDS (Subject)])")
    assert ((1,), "HEADER.FIELDS", frozenset({"subject"})) in kept
