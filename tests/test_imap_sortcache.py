"""The SORT/THREAD key cache (clevermail/imap/sortcache.py) across restarts and
changes: saved and loaded keys answer as the message files do, a damaged file or
entry is ignored (the keys are read again), expunged messages leave the cache, a file
renamed while it is read is found, and a folder replaced by another process or a
restarted service never gets keys of another message."""

import marshal
import os
import shutil

import pytest

from clevermail.imap import sortcache
from clevermail.imap.sort import keys_of_header
from clevermail.imap.sortcache import SortCache
from imap_helpers import (  # noqa: F401 (client, handler, open_session, store: fixtures)
    ALICE, append, check, client, handler, open_session, store)

FOLDER = ("alice@example.test", "INBOX", 7)
HEADERS = [
    b"Subject: Re: one\r\nFrom: Ann <ann@x.org>\r\nDate: Mon, 7 Feb 2022 10:00:00 +0100\r\n"
    b"Message-ID: <1@x>\r\n",
    b"subject: two\nfrom: bob@x.org\nto: c@x.org\nReferences: <1@x>\n <0@x>\nDate: garbage\n",
    b"X-Other: no fields\n",
]


def _fields(keys):
    return (keys.date, keys.subject, keys.reply, keys.from_, keys.to, keys.cc, keys.display_from,
            keys.display_to, keys.message_id, keys.references)


def _filled(subject_of=(0, 1, 2)):
    """A cache holding the keys of HEADERS as UIDs 1..3; the subject group made for
    `subject_of` only (the others keep their field lines)."""
    cache = SortCache()
    keys = cache.keys(FOLDER, [1, 2, 3], lambda uid: HEADERS[uid - 1])
    for i in subject_of:
        keys[i].subject
    keys[0].from_, keys[0].message_id        # message 1: every group made, no lines left
    return cache


# -- pure: save and load -------------------------------------------------------------------------
def test_saved_keys_load_as_the_headers_give_them(tmp_path):
    path = tmp_path / "sc"
    _filled(subject_of=(0,)).save(path)
    again = SortCache()
    assert again.load(path) == 3
    loaded = again.keys(FOLDER, [1, 2, 3], lambda uid: pytest.fail("a message read"))
    assert [_fields(k) for k in loaded] == [_fields(keys_of_header(h)) for h in HEADERS]
    assert again.load(path) == 0            # the folder is there already: not twice


def test_loaded_within_the_bound_oldest_folder_first(tmp_path):
    cache = SortCache()
    for name in ("Old", "New"):
        cache.keys((ALICE, name, 1), [1, 2], lambda uid: HEADERS[uid - 1])
    cache.save(tmp_path / "sc")
    small = SortCache(max_messages=3)
    small.load(tmp_path / "sc")
    assert list(small._folders) == [(ALICE, "New", 1)]


def _entry(**change):
    """One folder entry as save() writes it, with columns replaced."""
    path_entry = {"folder": FOLDER, "uids": [1], "dates": [5], "raws": [b"Subject: s"],
                  "subjects": [None], "addresses": [None], "ids": [None]}
    path_entry.update(change)
    return tuple(path_entry.values())


@pytest.mark.parametrize("data", [
    b"", b"garbage", marshal.dumps((("other", 1), [])), marshal.dumps((sortcache._FILE_TAG, "not a list")),
    marshal.dumps(sortcache._FILE_TAG)[:-3],
])
def test_a_damaged_or_foreign_file_is_ignored(tmp_path, data):
    path = tmp_path / "sc"
    path.write_bytes(data)
    cache = SortCache()
    assert cache.load(path) == 0 and cache.held(FOLDER) == 0
    assert cache.load(tmp_path / "missing") == 0


@pytest.mark.parametrize("bad", [
    {"dates": ["Mon, 7 Feb"]}, {"uids": ["1"]}, {"raws": ["text"]}, {"dates": [5, 6]},
    {"raws": [None]},                                           # no lines and no groups
    {"subjects": [("S",)]}, {"subjects": [("S", "yes")]}, {"addresses": [("a", "b")]},
    {"ids": [(None, ["a@b"])]}, {"ids": [(5, ())]}, {"folder": ("a", "INBOX")},
    {"folder": ("a", "INBOX", "7")},
])
def test_a_damaged_folder_entry_is_skipped_whole(tmp_path, bad):
    good = _entry(folder=(ALICE, "Good", 1))
    path = tmp_path / "sc"
    path.write_bytes(marshal.dumps((sortcache._FILE_TAG, [_entry(**bad), good, ("short",)])))
    cache = SortCache()
    assert cache.load(path) == 1
    assert cache.held(FOLDER) == 0 and cache.held((ALICE, "Good", 1)) == 1
    # the damaged folder is read from the messages again, never from the file
    assert cache.keys(FOLDER, [1], lambda uid: b"Subject: read again\n")[0].subject == "READ AGAIN"


# -- sessions over the real store ----------------------------------------------------------------
def _mail(n):
    return (f"From: user{n}@x.org\r\nSubject: message {n}\r\nDate: Mon, {n} Feb 2022 10:00:00 +0000\r\n"
            f"Message-ID: <{n}@x>\r\n\r\nbody {n}\r\n").encode()


@pytest.fixture(name="box")
def _box(client):
    for n in (3, 1, 2):
        check(append(client, "INBOX", _mail(n)), "OK")
    client.select()
    return client


def test_expunged_messages_leave_the_cache(box, handler):
    assert box.expect("SORT (DATE) UTF-8 ALL").untagged == ["* SORT 2 3 1"]
    folder = next(iter(handler.sort_cache._folders))
    assert handler.sort_cache.held(folder) == 3
    box.expect("STORE 2 +FLAGS.SILENT (\\Deleted)")
    box.expect("EXPUNGE")
    assert box.expect("SORT (DATE) UTF-8 ALL").untagged == ["* SORT 2 1"]
    assert handler.sort_cache.held(folder) == 2


def test_a_file_renamed_while_it_is_read_is_found(box, store, monkeypatch):
    from clevermail.store import view_index
    real = view_index.message_paths

    def stale(view, uids):
        # another process changed the flags of every message just after the listing
        paths = real(view, uids)
        for path in paths:
            os.rename(path, path.partition(":2,")[0] + ":2,F")
        return paths
    monkeypatch.setattr(view_index, "message_paths", stale)
    lines = box.expect("SORT (DATE) UTF-8 ALL").untagged
    assert "* SORT 2 3 1" in lines          # with the FETCH of the flags seen changed
    assert box.expect("SORT (REVERSE SUBJECT) UTF-8 ALL").untagged == ["* SORT 1 3 2"]


def test_a_folder_replaced_by_another_process_gets_no_old_keys(box, store):
    assert box.expect("SORT (SUBJECT) UTF-8 ALL").untagged == ["* SORT 2 3 1"]
    box.expect("UNSELECT")
    # another process removes the folder and delivers other mail into a new one
    path = os.path.join(store.user_root(ALICE), ".Box")
    box.expect("CREATE Box")
    check(append(box, "Box", _mail(1)), "OK")
    box.select("Box")
    assert box.expect("UID SORT (SUBJECT) UTF-8 ALL").untagged == ["* SORT 1"]
    box.expect("UNSELECT")
    shutil.rmtree(path)
    box.expect("CREATE Box")
    check(append(box, "Box", b"Subject: zz another one\r\n\r\nx\r\n"), "OK")
    check(append(box, "Box", _mail(2)), "OK")
    box.select("Box")
    # UID 1 again, under a new UIDVALIDITY: its own subject, not the old message's
    # (the old UID 1 would sort first by subject and by its date)
    assert box.expect("UID SORT (SUBJECT) UTF-8 ALL").untagged == ["* SORT 2 1"]
    assert box.expect("UID THREAD ORDEREDSUBJECT UTF-8 ALL").untagged == ["* THREAD (2)(1)"]


# -- a restarted service -------------------------------------------------------------------------
def _sort(service, command):
    """The untagged data of a SORT or THREAD command of a new imaplib session."""
    import imaplib

    from fakes import PASSWORD
    name, args = command.split(" ", 1)
    with imaplib.IMAP4("127.0.0.1", service.port("imap")) as c:
        c.login(ALICE, PASSWORD)
        c.select("INBOX")
        typ, _ = c._simple_command(name, args)
        assert typ == "OK"
        return c.untagged_responses.pop(name)


@pytest.mark.parametrize("damage", [False, True])
def test_a_restarted_service_sorts_from_the_saved_keys(tmp_path, monkeypatch, damage):
    from clevermail.service import MailService
    from conftest import make_config
    from fakes import make_accounts

    conf = make_config(tmp_path)
    make_accounts(conf.server.users_file)
    with MailService(conf) as service:
        for n in (3, 1, 2):
            service.store.deliver_local("", [ALICE], _mail(n))
        first = _sort(service, "SORT (DATE) UTF-8 ALL")
        threads = _sort(service, "THREAD REFERENCES UTF-8 ALL")
    assert first == [b"2 3 1"]
    path = os.path.join(conf.server.data_dir, sortcache.FILE_NAME)
    if damage:
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
    reads = []
    real = sortcache.read_head
    monkeypatch.setattr(sortcache, "read_head", lambda p: reads.append(p) or real(p))
    with MailService(conf) as service:
        assert _sort(service, "SORT (DATE) UTF-8 ALL") == first
        assert _sort(service, "THREAD REFERENCES UTF-8 ALL") == threads
    # the saved keys answered; a damaged file was ignored and the messages read again
    assert len(reads) == (3 if damage else 0)
