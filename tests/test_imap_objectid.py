"""Tests for OBJECTID (RFC 8474): MAILBOXID (made once, kept by RENAME, new for a
folder created again, in SELECT, CREATE and STATUS; store/object_ids.py) and EMAILID
(the same for a message's copies and moves, different for different messages, FETCH
and SEARCH), THREADID NIL; sessions over socketpair."""

import re

from clevermail.store import object_ids
from imap_helpers import ALICE, client, deliver, handler, open_session, selected, store  # noqa: F401

ID = r"[A-Za-z0-9_-]{1,255}"


def mailboxid(reply_text):
    m = re.search(rf"\[MAILBOXID \(({ID})\)\]", reply_text)
    assert m, reply_text
    return m.group(1)


def status_id(c, name):
    (line,) = c.expect(f"STATUS {name} (MAILBOXID MESSAGES)").untagged
    m = re.fullmatch(rf'\* STATUS "?{name}"? \(MAILBOXID \(({ID})\) MESSAGES \d+\)', line)
    assert m, line
    return m.group(1)


def email_ids(c, seqs="1:*"):
    r = c.expect(f"FETCH {seqs} (EMAILID THREADID)")
    out = []
    for line in r.untagged:
        m = re.fullmatch(rf"\* \d+ FETCH \(EMAILID \(({ID})\) THREADID NIL\)", line)
        assert m, line
        out.append(m.group(1))
    return out


def test_folder_ids_survive_rename_and_are_new_for_a_new_folder(client):
    created = mailboxid(client.expect("CREATE Projects").tagged)
    assert status_id(client, "Projects") == created
    client.expect("RENAME Projects Archive2")
    assert status_id(client, "Archive2") == created
    client.expect("CREATE Projects")
    again = status_id(client, "Projects")
    assert again != created
    inbox = status_id(client, "INBOX")
    r = client.expect("SELECT INBOX")
    assert f"* OK [MAILBOXID ({inbox})] Ok" in r.untagged
    client.expect("DELETE Archive2")
    client.expect("CREATE Archive2")
    assert status_id(client, "Archive2") not in (created, again, inbox)


def test_two_processes_agree_on_a_folder_id(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    first = object_ids.mailbox_id(str(folder))
    assert object_ids.mailbox_id(str(folder)) == first
    assert (folder / object_ids.FILENAME).read_text().strip() == first


def test_email_ids_follow_copies_and_moves(selected, store):
    ids = email_ids(selected)
    assert len(set(ids)) == 3
    selected.expect("CREATE Other")
    selected.expect("COPY 1 Other")
    selected.expect("MOVE 2 Other")
    selected.expect("SELECT Other")
    assert email_ids(selected) == [ids[0], ids[1]]
    selected.expect("COPY 1 Other")                  # a second copy in the same folder
    assert email_ids(selected)[2] == ids[0]
    r = selected.expect(f"UID SEARCH EMAILID {ids[1]}")
    assert r.untagged == ["* SEARCH 2"]
    assert selected.expect("SEARCH EMAILID Mnothing").untagged == ["* SEARCH"]
    assert selected.expect("SEARCH THREADID T1").untagged == ["* SEARCH"]
    selected.expect("SEARCH EMAILID", "BAD")


def test_same_bytes_delivered_twice_are_two_messages(client, store):
    deliver(store, 1)
    deliver(store, 1)
    client.select()
    a, b = email_ids(client)
    assert a != b


def test_a_folder_id_asked_for_while_another_is_written_is_that_one(tmp_path, monkeypatch):
    """The id is never read half-written: a second asker arriving while the first
    writes (here: from inside the first's write) makes or reads a whole one, and both
    end with the same id (10,000 SELECTs of a new folder at once failed some)."""
    folder = tmp_path / "f"
    folder.mkdir()
    inner, raced = [], []
    real_write = object_ids.os.write

    def write_and_race(fd, data):
        if not raced:
            raced.append(True)
            inner.append(object_ids.mailbox_id(str(folder)))    # another thread's turn
        return real_write(fd, data)

    monkeypatch.setattr(object_ids.os, "write", write_and_race)
    outer = object_ids.mailbox_id(str(folder))
    assert inner == [outer]
    assert (folder / object_ids.FILENAME).read_text().strip() == outer
    assert [p.name for p in folder.iterdir()] == [object_ids.FILENAME]     # no temporary left
