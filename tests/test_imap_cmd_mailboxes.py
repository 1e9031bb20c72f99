"""Tests for clevermail.imap.cmd_mailboxes, the commands of the authenticated state that
open or fill a mailbox (RFC 3501 6.3: SELECT, EXAMINE, STATUS, APPEND; MULTIAPPEND, RFC
3502; NAMESPACE, ENABLE), run over socket.socketpair() with raw command lines and exact
tagged replies.  The folder tree's commands are in test_imap_cmd_tree.py."""

import re

import pytest

from imap_helpers import (  # noqa: F401 (fixtures)
    ALICE, SYSTEM_FLAGS, append, check, client, deliver, handler, message, open_session, selected, store,
    two_logged_in, uidvalidity)
from imap_mailboxes_helpers import tree


# -- SELECT / EXAMINE ----------------------------------------------------------------------
def test_select_responses(client, store):
    deliver(store, 2)
    r = client.expect("SELECT INBOX", "OK", "READ-WRITE", "SELECT completed")
    assert r.untagged == [
        f"* FLAGS ({SYSTEM_FLAGS})",
        f"* OK [PERMANENTFLAGS ({SYSTEM_FLAGS} \\*)] Flags permitted",
        "* 2 EXISTS",
        "* 2 RECENT",
        "* OK [UNSEEN 1] First unseen",
        f"* OK [UIDVALIDITY {uidvalidity(store)}] UIDs valid",
        "* OK [UIDNEXT 3] Predicted next UID",
        f"* OK [MAILBOXID ({folder_id(store)})] Ok",
        f"* OK [HIGHESTMODSEQ {store.open_folder(ALICE, 'INBOX').modseq}] Highest",
    ]


def folder_id(store, name="INBOX"):
    folder = store.open_folder(ALICE, name)
    try:
        return folder.mailbox_id()
    finally:
        store.release_folder(folder)


def test_select_empty_and_case_insensitive_inbox(client, store):
    r = client.expect("SELECT inBox", "OK", "READ-WRITE")
    assert "* 0 EXISTS" in r.untagged and "* 0 RECENT" in r.untagged
    assert not any("UNSEEN" in u for u in r.untagged)


def test_select_missing_mailbox_leaves_selected_state(selected):
    selected.expect("SELECT Nope", "NO", "NONEXISTENT", "Mailbox does not exist")
    selected.expect("FETCH 1 FLAGS", "BAD")


def test_examine_is_read_only(client, store):
    deliver(store, 2)
    r = client.expect("EXAMINE INBOX", "OK", "READ-ONLY", "EXAMINE completed")
    assert "* OK [PERMANENTFLAGS ()] Flags permitted" in r.untagged
    client.expect("STORE 1 +FLAGS (\\Seen)", "NO", "READ-ONLY")
    client.expect("EXPUNGE", "NO", "READ-ONLY")
    client.expect("MOVE 1 Trash", "NO", "READ-ONLY")
    client.expect("UID EXPUNGE 1", "NO", "READ-ONLY")
    r = client.expect("FETCH 1 BODY[]")
    assert r.untagged[0].startswith("* 1 FETCH (BODY[] {") and "FLAGS" not in r.untagged[0]
    r = client.expect("FETCH 1 FLAGS")
    assert r.untagged == ["* 1 FETCH (FLAGS (\\Recent))"]    # EXAMINE sees \Recent ...
    client.expect("COPY 1 Trash", "OK")                     # copying out is reading
    client.expect("CLOSE")
    r = client.select()
    assert "* 2 RECENT" in r.untagged                       # ... but does not take it


def test_recent_goes_to_first_session_only(open_session, store):
    deliver(store, 2)
    a, b = two_logged_in(open_session)
    assert "* 2 RECENT" in a.select().untagged
    assert "* 0 RECENT" in b.select().untagged
    assert a.expect("FETCH 1:2 FLAGS").untagged == ["* 1 FETCH (FLAGS (\\Recent))",
                                                    "* 2 FETCH (FLAGS (\\Recent))"]
    assert b.expect("FETCH 1:2 FLAGS").untagged == ["* 1 FETCH (FLAGS ())", "* 2 FETCH (FLAGS ())"]
    store.deliver_local("", [ALICE], message(3))
    first = b.expect("NOOP").untagged
    second = a.expect("NOOP").untagged
    assert first == ["* 3 EXISTS", "* 1 RECENT"]
    assert second == ["* 3 EXISTS", "* 2 RECENT"]


def test_reselect_keeps_this_sessions_recent(selected):
    r = selected.expect("SELECT INBOX")
    recent = [ln for ln in r.untagged if ln.endswith(" RECENT")]
    r = selected.expect("EXAMINE INBOX")
    assert [ln for ln in r.untagged if ln.endswith(" RECENT")] == recent
    r = selected.expect("SELECT INBOX")
    assert [ln for ln in r.untagged if ln.endswith(" RECENT")] == recent
    assert recent != ["* 0 RECENT"]


@pytest.mark.parametrize("command", ["SELECT", "EXAMINE", "STATUS"])
def test_select_racing_a_delete_is_nonexistent(client, store, monkeypatch, command):
    # the DELETE (another session's) lands between the check that the folder exists
    # and the building of its Folder: RFC 5530 NONEXISTENT, never NO [SERVERBUG]
    from clevermail.store import folders
    client.expect("CREATE Foo")
    real = folders.Folder

    def deleted_first(*args, **kw):
        store.delete_folder(ALICE, "Foo")
        return real(*args, **kw)

    monkeypatch.setattr(folders, "Folder", deleted_first)
    args = " (MESSAGES)" if command == "STATUS" else ""
    client.expect(f"{command} Foo{args}", "NO", "NONEXISTENT", "Mailbox does not exist")
    monkeypatch.setattr(folders, "Folder", real)
    client.expect("SELECT INBOX", "OK")          # the session goes on


def test_select_of_a_folder_renamed_away_meanwhile_takes_no_recent(client, store, monkeypatch):
    # the SELECT got the Folder just before another session's RENAME detached it; the
    # name was created again with a message: the SELECT opens the new folder, and the
    # detached Folder claims no \Recent there
    from clevermail.store import view as store_view
    from clevermail.store.folder_ops import append_message
    client.expect("CREATE Foo")
    real = store_view.FolderView
    renamed = []

    def renamed_first(folder, *args, **kw):
        if not renamed:
            renamed.append(folder)
            store.rename_folder(ALICE, "Foo", "Bar")
            store.create_folder(ALICE, "Foo")
            append_message(store, ALICE, "Foo", message(1), [], None)
        return real(folder, *args, **kw)

    monkeypatch.setattr(store_view, "FolderView", renamed_first)
    r = client.expect("SELECT Foo", "OK")
    assert renamed[0].gone
    assert "* 1 EXISTS" in r.untagged and "* 1 RECENT" in r.untagged


# -- STATUS ---------------------------------------------------------------------------------------
def test_status(client, store):
    deliver(store, 3)
    r = client.expect("STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)", "OK", "",
                      "STATUS completed")
    assert r.untagged == [f'* STATUS "INBOX" (MESSAGES 3 RECENT 3 UIDNEXT 4 '
                          f'UIDVALIDITY {uidvalidity(store)} UNSEEN 3)']
    client.select()
    client.expect("STORE 1 +FLAGS.SILENT (\\Seen)")
    r = client.expect("STATUS inbox (unseen recent)")
    assert r.untagged == ['* STATUS "INBOX" (UNSEEN 2 RECENT 0)']
    client.expect("STATUS INBOX (MESSAGES BOGUS)", "BAD")
    client.expect("STATUS INBOX ()", "BAD")
    client.expect("STATUS INBOX MESSAGES", "BAD")
    client.expect("STATUS Missing (MESSAGES)", "NO", "NONEXISTENT")


# -- APPEND -----------------------------------------------------------------------------------------
def test_append_with_flags_and_date(client, store):
    r = append(client, "Drafts", message(1), ' (\\Draft \\Seen $Todo) "17-Jul-1996 02:44:25 -0700"')
    check(r, "OK", f"APPENDUID {uidvalidity(store, 'Drafts')} 1", "APPEND completed")
    client.select("Drafts")
    r = client.expect("FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)")
    assert r.untagged == ['* 1 FETCH (FLAGS (\\Draft \\Seen $Todo \\Recent) '
                          f'INTERNALDATE "17-Jul-1996 09:44:25 +0000" RFC822.SIZE {len(message(1))})']
    r = client.expect("FETCH 1 BODY.PEEK[]")
    assert r.untagged == ["* 1 FETCH (BODY[] {%d}\r\n%s)" % (len(message(1)), message(1).decode())]


def test_append_recent_flag_ignored_and_uids_ascend(client, store):
    validity = uidvalidity(store)
    check(append(client, "INBOX", message(1), " (\\Recent)"), "OK", f"APPENDUID {validity} 1")
    check(append(client, "INBOX", message(2), " ()"), "OK", f"APPENDUID {validity} 2")
    check(append(client, "inbox", message(3)), "OK", f"APPENDUID {validity} 3")


def test_append_to_missing_mailbox_says_trycreate(client, store):
    before = tree(store.mail_root)
    check(append(client, "Nowhere", message(1)), "NO", "TRYCREATE", "Mailbox does not exist")
    assert tree(store.mail_root) == before
    client.expect("CREATE Nowhere", "OK")
    check(append(client, "Nowhere", message(1)), "OK")


def test_append_to_selected_mailbox_reports_exists(selected):
    r = append(selected, "INBOX", message(9))
    assert r.untagged == ["* 4 EXISTS", "* 4 RECENT"]


def test_append_bad_arguments(client):
    check(append(client, "INBOX", b""), "NO")
    check(append(client, "INBOX", message(1), ' "not a date"'), "BAD")
    check(append(client, "INBOX", message(1), ' (\\Seen) "17-Jul-1996 02:44:25 -0700" extra'), "BAD")
    check(append(client, "INBOX", message(1), " (bad(flag)"), "BAD")
    client.expect("APPEND INBOX", "BAD")


# -- MULTIAPPEND (RFC 3502) -----------------------------------------------------------------------------
def multiappend(client, mailbox, parts):
    """APPEND of several messages; `parts`: (options text, data) each, literals non-
    synchronizing; the Reply."""
    tag = next(client.tags)
    line = f"{tag} APPEND {mailbox}".encode()
    for extra, data in parts:
        line += f"{extra} {{{len(data)}+}}\r\n".encode() + data
    client.send(line + b"\r\n")
    return client.read_reply(tag)


def test_multiappend_stores_all_with_their_flags_and_dates(client, store):
    validity = uidvalidity(store)
    r = multiappend(client, "INBOX", [(" (\\Seen)", message(1)), ("", message(2)),
                                      (' (\\Flagged $Todo) "17-Jul-1996 02:44:25 -0700"', message(3)),
                                      (' "18-Jul-1996 02:44:25 +0000"', message(4))])
    check(r, "OK", f"APPENDUID {validity} 1:4", "APPEND completed")
    client.select()
    r = client.expect("FETCH 1:4 (FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert [line.split(" INTERNALDATE")[0] for line in r.untagged] == [
        "* 1 FETCH (FLAGS (\\Seen \\Recent)", "* 2 FETCH (FLAGS (\\Recent)",
        "* 3 FETCH (FLAGS (\\Flagged $Todo \\Recent)", "* 4 FETCH (FLAGS (\\Recent)"]
    assert 'INTERNALDATE "17-Jul-1996 09:44:25 +0000"' in r.untagged[2]
    assert 'INTERNALDATE "18-Jul-1996 02:44:25 +0000"' in r.untagged[3]
    assert [re.search(r"message \d", line).group() for line in r.untagged] == [
        "message 1", "message 2", "message 3", "message 4"]


@pytest.mark.parametrize("parts, status", [
    ([("", message(1)), ("", b"")], "NO"),                                   # an empty message
    ([("", message(1)), (' "not a date"', message(2))], "BAD"),
    ([("", message(1)), (" (\\Seen) (\\Seen)", message(2))], "BAD"),
    ([("", message(1)), (' "17-Jul-1996 02:44:25 -0700" (\\Seen)', message(2))], "BAD"),
    ([("", message(1)), (' ("quoted")', message(2))], "BAD"),                # not a flag
])
def test_multiappend_is_all_or_nothing(client, store, parts, status):
    before = tree(store.mail_root)
    check(multiappend(client, "INBOX", parts), status)
    assert tree(store.mail_root) == before
    r = client.expect("STATUS INBOX (MESSAGES)")
    assert r.untagged == ['* STATUS "INBOX" (MESSAGES 0)']


def test_multiappend_to_missing_mailbox_and_trailing_options(client, store):
    check(multiappend(client, "Nowhere", [("", message(1)), ("", message(2))]), "NO", "TRYCREATE")
    tag = next(client.tags)
    data = message(1)
    client.send(f"{tag} APPEND INBOX {{{len(data)}+}}\r\n".encode() + data + b" (\\Seen)\r\n")
    check(client.read_reply(tag), "BAD")        # flags with no message after them


# -- NAMESPACE / ENABLE ---------------------------------------------------------------------------
def test_namespace(client):
    r = client.expect("NAMESPACE", "OK", "", "NAMESPACE completed")
    assert r.untagged == ['* NAMESPACE (("" "/")) NIL NIL']


def test_enable(client):
    r = client.expect("ENABLE X-UNKNOWN", "OK", "", "ENABLE completed")
    assert r.untagged == ["* ENABLED"]
    r = client.expect("ENABLE CONDSTORE X-UNKNOWN", "OK", "", "ENABLE completed")
    assert r.untagged == ["* ENABLED CONDSTORE"]
    assert client.expect("ENABLE CONDSTORE").untagged == ["* ENABLED"]      # once
    assert client.expect("ENABLE QRESYNC").untagged == ["* ENABLED QRESYNC"]
    client.expect("ENABLE", "BAD")
