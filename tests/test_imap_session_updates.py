"""Tests for the pending updates clevermail.imap.session sends after each command (EXISTS,
RECENT, EXPUNGE, FETCH FLAGS of other sessions' changes) and the EXPUNGE rule of RFC
3501 7.4.1 (no EXPUNGE during FETCH, STORE, SEARCH; UID commands may), and the one
catch point: internal and storage errors answered with the session alive, dropped
connections releasing their folders, the timeout outside IDLE.  Over
socket.socketpair(), with two sessions of one user."""

import pytest

from imap_helpers import (  # noqa: F401 (fixtures)
    ALICE, append, check, client, deliver, handler, message, open_session, selected, start_idle, store,
    two_logged_in, wait_idling)


# -- updates and the EXPUNGE rule (RFC 3501 7.4.1) ----------------------------------------------
@pytest.fixture
def two_views(open_session, store):
    deliver(store, 3)
    return two_logged_in(open_session, select=True)


def test_expunge_not_sent_during_fetch_store_search(two_views):
    a, b = two_views
    b.expect("STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.expect("EXPUNGE")
    r = a.expect("FETCH 3 UID")
    assert r.untagged == ["* 3 FETCH (UID 3)"]
    r = a.expect("STORE 3 +FLAGS (\\Seen)")
    assert r.untagged == ["* 3 FETCH (FLAGS (\\Seen \\Recent))"]
    r = a.expect("SEARCH ALL")
    assert r.untagged == ["* SEARCH 1 3"]              # numbers still as the client knows them
    r = a.expect("NOOP")
    assert r.untagged == ["* 2 EXPUNGE"]
    assert a.expect("FETCH 1:* UID").untagged == ["* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)"]


def test_expunged_but_not_reported_message_still_answers(two_views):
    """RFC 2180 4.1 and 4.2.1, as Dovecot: until the session is told of an expunge,
    FETCH of the message answers what the index still has (flags, date, size) and
    OK; its content is gone, so a FETCH of it is NO [EXPUNGEISSUED] with what could
    be sent; STORE on it is taken, changes nothing and answers OK."""
    a, b = two_views
    b.expect("STORE 2 +FLAGS.SILENT (\\Deleted \\Flagged)")
    before = a.expect("NOOP")
    assert before.untagged == ["* 2 FETCH (UID 2 FLAGS (\\Flagged \\Deleted \\Recent))"]
    before = a.expect("FETCH 2 (UID FLAGS RFC822.SIZE INTERNALDATE)").untagged
    b.expect("EXPUNGE")
    r = a.expect("FETCH 2 (UID FLAGS RFC822.SIZE INTERNALDATE)")
    assert r.untagged == before
    r = a.expect("STORE 2 +FLAGS (\\Seen)")
    assert r.untagged == []
    r = a.expect("STORE 1:3 -FLAGS (\\Recent)")
    assert [line.split(" (")[0] for line in r.untagged] == ["* 1 FETCH", "* 3 FETCH"]
    r = a.expect("FETCH 1:3 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])", "NO", "EXPUNGEISSUED",
                 "Some of the requested messages no longer exist")
    assert [line.split(" (")[0] for line in r.untagged] == ["* 1 FETCH", "* 3 FETCH"]
    r = a.expect("NOOP")
    assert r.untagged == ["* 2 EXPUNGE"]


def test_expunge_sent_after_uid_commands(two_views):
    a, b = two_views
    b.expect("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.expect("EXPUNGE")
    r = a.expect("UID FETCH 3 UID")
    assert r.untagged == ["* 3 FETCH (UID 3)", "* 1 EXPUNGE"]
    assert a.expect("FETCH 1:* UID").untagged == ["* 1 FETCH (UID 2)", "* 2 FETCH (UID 3)"]


def test_flag_change_by_other_session_is_reported(two_views):
    a, b = two_views
    b.expect("STORE 1 +FLAGS.SILENT (\\Flagged)")
    assert a.expect("NOOP").untagged == ["* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))"]
    assert a.expect("NOOP").untagged == []
    b.expect("STORE 2 +FLAGS (\\Seen)")
    assert a.expect("CHECK").untagged == ["* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent))"]
    a.expect("STORE 3 +FLAGS.SILENT (\\Answered)")
    assert b.expect("NOOP").untagged == ["* 3 FETCH (UID 3 FLAGS (\\Answered))"]


def test_new_mail_reported_after_any_command(two_views, store):
    a, b = two_views
    store.deliver_local("", [ALICE], message(4))
    r = a.expect("FETCH 1 UID")
    assert r.untagged == ["* 1 FETCH (UID 1)", "* 4 EXISTS", "* 4 RECENT"]
    r = b.expect("SEARCH ALL")
    assert r.untagged == ["* SEARCH 1 2 3", "* 4 EXISTS", "* 0 RECENT"]


def test_internal_error_answers_tagged_serverbug(selected, monkeypatch):
    from clevermail.imap import cmd_search

    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(cmd_search, "parse_search", boom)
    selected.expect("SEARCH ALL", "NO", "SERVERBUG")
    selected.expect("NOOP", "OK")


def test_storage_error_under_selected_mailbox_is_answered(open_session, store):
    a, b = two_logged_in(open_session)
    b.expect("CREATE Work", "OK")
    check(append(b, "Work", message(1)), "OK")
    a.select("Work")
    b.expect("DELETE Work", "OK")
    a.send("a1 STORE 1 +FLAGS (\\Seen)\r\n")
    assert a.line() == "* BYE Selected mailbox was deleted"
    assert a.at_eof()


def test_disk_error_is_answered_and_session_lives(selected, monkeypatch):
    from clevermail.store.folder import Folder

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Folder, "append", full)
    check(append(selected, "INBOX", message(9)), "NO", "SERVERBUG")
    selected.expect("NOOP", "OK")


def test_dropped_connections_release_their_folders(open_session, store):
    deliver(store, 1)
    idle, plain = two_logged_in(open_session, select=True)
    folder = store._open[store.folder_path(ALICE, "INBOX")]
    assert folder.users == 2
    start_idle(idle)
    wait_idling(store)
    assert len(folder.waiters) == 1
    for c in (idle, plain):
        c.close()
        c.wait_closed()
    assert store._open == {}
    assert folder.users == 0 and len(folder.waiters) == 0


def test_idle_timeout_without_idle(open_session):
    c = open_session(timeout=0.3)
    assert c.line() == "* BYE Autologout; idle for too long"
    assert c.at_eof()
