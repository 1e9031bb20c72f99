"""Tests for clevermail.imap.cmd_selected, the commands of the selected state (RFC 3501
6.4: CHECK, CLOSE, EXPUNGE, SEARCH, FETCH, STORE, COPY and the UID forms; UNSELECT,
MOVE, UID EXPUNGE), run over socket.socketpair() with raw command lines and exact
tagged replies."""

import pytest

from imap_helpers import (  # noqa: F401 (client, handler, open_session, selected, store: fixtures)
    ALICE, SYSTEM_FLAGS, client, handler, message, open_session, selected, store, uidvalidity)
from fakes import RETURN_PATH


# -- CHECK / CLOSE / UNSELECT / EXPUNGE -------------------------------------------------------------
def test_check(selected):
    assert selected.expect("CHECK", "OK", "", "CHECK completed").untagged == []


def test_close_expunges_silently(selected, store):
    selected.expect("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    r = selected.expect("CLOSE", "OK", "", "CLOSE completed")
    assert r.untagged == []
    selected.expect("FETCH 1 FLAGS", "BAD")
    r = selected.expect("STATUS INBOX (MESSAGES)")
    assert r.untagged == ['* STATUS "INBOX" (MESSAGES 1)']
    r = selected.select()
    assert "* 1 EXISTS" in r.untagged
    assert selected.expect("FETCH 1 UID").untagged == ["* 1 FETCH (UID 3)"]


def test_close_after_examine_does_not_expunge(selected):
    selected.expect("STORE 1 +FLAGS.SILENT (\\Deleted)")
    selected.expect("EXAMINE INBOX", "OK", "READ-ONLY")
    selected.expect("CLOSE")
    r = selected.expect("STATUS INBOX (MESSAGES)")
    assert r.untagged == ['* STATUS "INBOX" (MESSAGES 3)']


def test_unselect_does_not_expunge(selected):
    selected.expect("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert selected.expect("UNSELECT", "OK", "", "UNSELECT completed").untagged == []
    selected.expect("FETCH 1 FLAGS", "BAD")
    r = selected.expect("STATUS INBOX (MESSAGES)")
    assert r.untagged == ['* STATUS "INBOX" (MESSAGES 3)']


def test_expunge(selected, store):
    store.deliver_local("", [ALICE], message(4))
    selected.expect("NOOP")
    selected.expect("STORE 1,3 +FLAGS.SILENT (\\Deleted)")
    r = selected.expect("EXPUNGE", "OK", "", "EXPUNGE completed")
    assert r.untagged == ["* 3 EXPUNGE", "* 1 EXPUNGE"]
    assert selected.expect("FETCH 1:* UID").untagged == ["* 1 FETCH (UID 2)", "* 2 FETCH (UID 4)"]
    assert selected.expect("EXPUNGE").untagged == []


# -- SEARCH -----------------------------------------------------------------------------------
def test_search(selected):
    assert selected.expect("SEARCH ALL", "OK", "", "SEARCH completed").untagged == ["* SEARCH 1 2 3"]
    assert selected.expect('SEARCH SUBJECT "message 2"').untagged == ["* SEARCH 2"]
    assert selected.expect("SEARCH CHARSET UTF-8 BODY {7+}\r\nmessage").untagged == ["* SEARCH 1 2 3"]
    selected.expect("STORE 2 +FLAGS.SILENT (\\Seen)")
    assert selected.expect("SEARCH SEEN").untagged == ["* SEARCH 2"]
    assert selected.expect("SEARCH UNSEEN NOT 1").untagged == ["* SEARCH 3"]
    assert selected.expect("SEARCH RECENT").untagged == ["* SEARCH 1 2 3"]
    assert selected.expect("SEARCH 2:*").untagged == ["* SEARCH 2 3"]
    assert selected.expect("UID SEARCH UID 2:3", "OK", "", "UID SEARCH completed").untagged == \
        ["* SEARCH 2 3"]
    assert selected.expect("SEARCH FROM nobody").untagged == ["* SEARCH"]


def test_search_errors(selected):
    selected.expect("SEARCH BOGUSKEY", "BAD")
    selected.expect("SEARCH CHARSET KOI8-R ALL", "NO", "BADCHARSET (US-ASCII UTF-8)")
    selected.expect("SEARCH SUBJECT", "BAD")


# -- FETCH ------------------------------------------------------------------------------------
def test_fetch_body_sets_seen_and_reports_flags(selected):
    data = (RETURN_PATH + message(1)).decode()       # as local delivery stored it
    r = selected.expect("FETCH 1 BODY[]", "OK", "", "FETCH completed")
    assert r.untagged == [f"* 1 FETCH (BODY[] {{{len(data)}}}\r\n{data} FLAGS (\\Seen \\Recent))"]
    r = selected.expect("FETCH 1 BODY[]")          # already seen: no FLAGS this time
    assert r.untagged == [f"* 1 FETCH (BODY[] {{{len(data)}}}\r\n{data})"]
    assert selected.expect("NOOP").untagged == []  # our own change is not echoed


def test_fetch_body_peek_leaves_seen_alone(selected):
    r = selected.expect("FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)] FLAGS)")
    assert r.untagged == ["* 2 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {22}\r\n"
                          "Subject: message 2\r\n\r\n FLAGS (\\Recent))"]
    r = selected.expect("FETCH 2 (FLAGS RFC822.HEADER)")
    assert r.untagged[0].startswith("* 2 FETCH (FLAGS (\\Recent) RFC822.HEADER {")
    assert selected.expect("FETCH 2 FLAGS").untagged == ["* 2 FETCH (FLAGS (\\Recent))"]


def test_fetch_rfc822_and_text_set_seen(selected):
    r = selected.expect("FETCH 1 RFC822.TEXT")
    assert r.untagged == ["* 1 FETCH (RFC822.TEXT {20}\r\nBody of message 1.\r\n FLAGS (\\Seen \\Recent))"]
    r = selected.expect("FETCH 2 (FLAGS RFC822)")
    assert r.untagged[0].startswith("* 2 FETCH (FLAGS (\\Seen \\Recent) RFC822 {")


def test_fetch_items(selected, store):
    r = selected.expect("FETCH 1:2 (UID RFC822.SIZE)")
    size = len(RETURN_PATH + message(1))
    assert r.untagged == [f"* 1 FETCH (UID 1 RFC822.SIZE {size})", f"* 2 FETCH (UID 2 RFC822.SIZE {size})"]
    r = selected.expect("FETCH 3 ENVELOPE")
    assert r.untagged == ['* 3 FETCH (ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "message 3" '
                          '((NIL NIL "sender" "example.test")) ((NIL NIL "sender" "example.test")) '
                          '((NIL NIL "sender" "example.test")) ((NIL NIL "alice" "example.test")) '
                          'NIL NIL NIL NIL))']
    r = selected.expect("FETCH 3 BODY[TEXT]<5.7>")
    assert r.untagged == ["* 3 FETCH (BODY[TEXT]<5> {7}\r\nof mess FLAGS (\\Seen \\Recent))"]
    r = selected.expect("FETCH * FAST")
    assert r.untagged[0].startswith("* 3 FETCH (FLAGS (\\Seen \\Recent) INTERNALDATE \"")


def test_fetch_errors(selected):
    selected.expect("FETCH 4 FLAGS", "BAD", None, "Invalid message sequence number")
    selected.expect("FETCH 0 FLAGS", "BAD")
    selected.expect("FETCH 1 BOGUS", "BAD")
    selected.expect("FETCH 1", "BAD")
    selected.expect("FETCH x FLAGS", "BAD")
    selected.expect("NOOP", "OK")


def test_uid_fetch(selected):
    r = selected.expect("UID FETCH 2:* FLAGS", "OK", "", "UID FETCH completed")
    assert r.untagged == ["* 2 FETCH (UID 2 FLAGS (\\Recent))", "* 3 FETCH (UID 3 FLAGS (\\Recent))"]
    assert selected.expect("UID FETCH 99 FLAGS").untagged == []
    r = selected.expect("UID FETCH 99:* FLAGS")        # "*" = 3, so 3:99
    assert r.untagged == ["* 3 FETCH (UID 3 FLAGS (\\Recent))"]


# -- STORE ------------------------------------------------------------------------------------
def test_store_variants(selected):
    r = selected.expect("STORE 1 FLAGS (\\Seen \\Flagged)", "OK", "", "STORE completed")
    assert r.untagged == ["* 1 FETCH (FLAGS (\\Flagged \\Seen \\Recent))"]
    r = selected.expect("STORE 1 +FLAGS (\\Answered)")
    assert r.untagged == ["* 1 FETCH (FLAGS (\\Flagged \\Answered \\Seen \\Recent))"]
    r = selected.expect("STORE 1 -FLAGS (\\Seen \\Flagged)")
    assert r.untagged == ["* 1 FETCH (FLAGS (\\Answered \\Recent))"]
    r = selected.expect("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    assert r.untagged == []
    r = selected.expect("STORE 1 FLAGS.SILENT ()")
    assert r.untagged == []
    r = selected.expect("FETCH 1:2 FLAGS")
    assert r.untagged == ["* 1 FETCH (FLAGS (\\Recent))", "* 2 FETCH (FLAGS (\\Deleted \\Recent))"]
    r = selected.expect("STORE 3 +FLAGS \\Seen")                 # a single flag without parens
    assert r.untagged == ["* 3 FETCH (FLAGS (\\Seen \\Recent))"]


def test_store_keywords(selected):
    r = selected.expect("STORE 1 +FLAGS ($Label1 NonJunk)")
    # the new keywords are announced before the FETCH that shows them (RFC 3501 7.2.6)
    assert r.untagged == [f"* FLAGS ({SYSTEM_FLAGS} $Label1 NonJunk)",
                          f"* OK [PERMANENTFLAGS ({SYSTEM_FLAGS} $Label1 NonJunk \\*)] Flags permitted",
                          "* 1 FETCH (FLAGS ($Label1 NonJunk \\Recent))"]
    r = selected.expect("SELECT INBOX")
    assert f"* FLAGS ({SYSTEM_FLAGS} $Label1 NonJunk)" in r.untagged
    r = selected.expect("STORE 1 -FLAGS (nonjunk)")
    assert r.untagged == ["* 1 FETCH (FLAGS ($Label1 \\Recent))"]   # re-selecting keeps \Recent


def test_store_errors(selected):
    selected.expect("STORE 1 FLAGZ (\\Seen)", "BAD")
    selected.expect("STORE 1 +FLAGS", "BAD")
    selected.expect("STORE 1 +FLAGS (\"quoted\")", "BAD")
    selected.expect("STORE 9 +FLAGS (\\Seen)", "BAD")


def test_uid_store(selected):
    r = selected.expect("UID STORE 2:3 +FLAGS (\\Flagged)", "OK", "", "UID STORE completed")
    assert r.untagged == ["* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))",
                          "* 3 FETCH (UID 3 FLAGS (\\Flagged \\Recent))"]
    assert selected.expect("UID STORE 7 +FLAGS (\\Flagged)").untagged == []


# -- COPY / MOVE / UID forms --------------------------------------------------------------------
def test_copy_with_copyuid(selected, store):
    validity = uidvalidity(store, "Archive")
    selected.expect("STORE 2 +FLAGS.SILENT (\\Flagged $Work)")
    selected.expect("COPY 2:3 Archive", "OK", f"COPYUID {validity} 2:3 1:2", "COPY completed")
    selected.expect("COPY 1 Archive", "OK", f"COPYUID {validity} 1 3")
    selected.expect("COPY 1 Missing", "NO", "TRYCREATE")
    selected.expect("COPY 5 Archive", "BAD")
    selected.expect("COPY 1", "BAD")
    r = selected.expect("STATUS Archive (MESSAGES)")
    assert r.untagged == ['* STATUS "Archive" (MESSAGES 3)']
    selected.select("Archive")
    assert selected.expect("FETCH 1 FLAGS").untagged == ["* 1 FETCH (FLAGS (\\Flagged $Work \\Recent))"]


def test_uid_copy(selected, store):
    validity = uidvalidity(store, "Trash")
    selected.expect("UID COPY 1,3 Trash", "OK", f"COPYUID {validity} 1,3 1:2", "COPY completed")
    assert selected.expect("UID COPY 50 Trash").tagged.endswith("OK COPY completed")


def test_move_sends_copyuid_then_expunge(selected, store):
    validity = uidvalidity(store, "Trash")
    r = selected.expect("MOVE 2 Trash", "OK", "", "MOVE completed")
    assert r.untagged == [f"* OK [COPYUID {validity} 2 1] Moved", "* 2 EXPUNGE"]
    assert selected.expect("FETCH 1:* UID").untagged == ["* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)"]
    selected.expect("MOVE 1 Missing", "NO", "TRYCREATE")
    assert selected.expect("FETCH 1:* UID").untagged == ["* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)"]


def test_uid_move(selected, store):
    validity = uidvalidity(store, "Trash")
    r = selected.expect("UID MOVE 1:2 Trash", "OK", "", "MOVE completed")
    assert r.untagged == [f"* OK [COPYUID {validity} 1:2 1:2] Moved", "* 2 EXPUNGE", "* 1 EXPUNGE"]
    r = selected.expect("STATUS Trash (MESSAGES)")
    assert r.untagged == ['* STATUS "Trash" (MESSAGES 2)']


def test_uid_expunge_only_named(selected):
    selected.expect("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
    r = selected.expect("UID EXPUNGE 2:3", "OK", "", "UID EXPUNGE completed")
    assert r.untagged == ["* 3 EXPUNGE", "* 2 EXPUNGE"]
    assert selected.expect("FETCH 1:* UID").untagged == ["* 1 FETCH (UID 1)"]
    selected.expect("UID EXPUNGE", "BAD")


def test_uid_errors(selected):
    selected.expect("UID", "BAD")
    selected.expect("UID FROB 1", "BAD")
    selected.expect('UID "FETCH" 1 FLAGS', "BAD")


def test_copy_into_selected_mailbox_reports_exists(selected, store):
    r = selected.expect("COPY 1:2 INBOX", "OK", f"COPYUID {uidvalidity(store)} 1:2 4:5")
    assert r.untagged == ["* 5 EXISTS", "* 5 RECENT"]


def test_a_keyword_another_session_brings_in_is_announced_before_fetch_shows_it(open_session, store):
    """imaptest's "Keyword used without being in FLAGS": session A gets the new FLAGS
    (and PERMANENTFLAGS) before the first FETCH response of its next command."""
    from imap_helpers import deliver, two_logged_in

    deliver(store, 2)
    a, b = two_logged_in(open_session, select=True)
    b.expect("STORE 2 +FLAGS.SILENT ($Urgent)")
    r = a.expect("FETCH 2 (FLAGS)")
    assert r.untagged[0] == f"* FLAGS ({SYSTEM_FLAGS} $Urgent)"
    assert r.untagged[1].startswith(f"* OK [PERMANENTFLAGS ({SYSTEM_FLAGS} $Urgent \\*)]")
    assert r.untagged[2].startswith("* 2 FETCH (FLAGS ($Urgent")
    assert a.expect("FETCH 2 (FLAGS)").untagged[0].startswith("* 2 FETCH")    # said once


@pytest.mark.parametrize("items", ["(FLAGS)", "(FLAGS BODY.PEEK[HEADER.FIELDS (Subject)])"])
def test_a_keyword_set_just_after_the_command_began_is_announced_before_the_fetch_line(
        open_session, store, monkeypatch, items):
    """FETCH reads flags live: a keyword another session or process brings in once the
    command began (here: the moment the session hands it to FETCH, after whatever the
    session does before a command) still gets its FLAGS line before the FETCH line that
    shows it (RFC 3501 7.2.6; seen with [server] workers = 2 in imaptest)."""
    from imap_helpers import deliver, two_logged_in

    from clevermail.imap.session import IMAPSession

    deliver(store, 2)
    a, b = two_logged_in(open_session, select=True)
    fetch, states = IMAPSession.COMMANDS["FETCH"]
    armed = []

    def racing(session, cmd):
        if armed:
            armed.clear()
            b.expect("STORE 2 +FLAGS.SILENT ($Late)")      # lands as FETCH begins
        return fetch(session, cmd)

    monkeypatch.setitem(IMAPSession.COMMANDS, "FETCH", (racing, states))
    armed.append(True)
    r = a.expect(f"FETCH 2 {items}")
    assert not armed
    assert r.untagged[0] == f"* FLAGS ({SYSTEM_FLAGS} $Late)"
    assert r.untagged[1].startswith(f"* OK [PERMANENTFLAGS ({SYSTEM_FLAGS} $Late \\*)]")
    assert r.untagged[2].startswith("* 2 FETCH (FLAGS ($Late")


def test_a_keyword_set_between_stores_look_and_its_lines_is_announced_before_them(
        open_session, store, monkeypatch):
    """STORE reads the flags it shows live too: a keyword another process brings in after
    STORE looked for new keywords gets its FLAGS line before the FETCH line showing it
    (imaptest "Keyword used without being in FLAGS", workers = 2, login profile)."""
    from imap_helpers import deliver, two_logged_in

    from clevermail.store.view import FolderView

    deliver(store, 2)
    a, b = two_logged_in(open_session, select=True)
    iter_messages = FolderView.iter_messages
    armed = []

    def racing(view, *args, **kwargs):
        if armed:
            armed.clear()
            b.expect("STORE 2 +FLAGS.SILENT ($Late)")      # lands as the lines are made
        return iter_messages(view, *args, **kwargs)

    monkeypatch.setattr(FolderView, "iter_messages", racing)
    armed.append(True)
    r = a.expect("STORE 2 +FLAGS (\\Flagged)")
    assert not armed
    assert r.untagged[0] == f"* FLAGS ({SYSTEM_FLAGS} $Late)"
    assert r.untagged[1].startswith(f"* OK [PERMANENTFLAGS ({SYSTEM_FLAGS} $Late \\*)]")
    assert r.untagged[2] == "* 2 FETCH (FLAGS (\\Flagged $Late \\Recent))"
