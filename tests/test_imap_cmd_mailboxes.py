"""Tests for clevermail.imap.cmd_mailboxes, the commands of the authenticated state
(RFC 3501 6.3: SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST,
LSUB, STATUS, APPEND; NAMESPACE, ENABLE), run over socket.socketpair() with raw command
lines and exact tagged replies."""

import os
import re

import pytest

from imap_helpers import (  # noqa: F401 (client, handler, open_session, selected, store: fixtures)
    ALICE, BOB, SYSTEM_FLAGS, append, check, client, deliver, handler, message, open_session,
    selected, store, two_logged_in, uidvalidity)

NEW_ACCOUNT_LIST = [
    '* LIST (\\HasNoChildren) "/" "INBOX"',
    '* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
    '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
    '* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
    '* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
    '* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
]


def tree(root):
    """Every path under root (to prove that nothing was created)."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        out.update(os.path.join(dirpath, n) for n in dirnames + filenames)
    return out


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


# -- CREATE / DELETE / RENAME ------------------------------------------------------------------
def test_new_account_list_has_special_use(client):
    r = client.expect('LIST "" *', "OK", "", "LIST completed")
    assert r.untagged == NEW_ACCOUNT_LIST


def test_create_with_superiors(client):
    r = client.expect("CREATE Work/Projects/2024", "OK", None, "CREATE completed")
    assert r.tagged.startswith("a2 OK [MAILBOXID (")      # RFC 8474 4.1
    r = client.expect('LIST "" Work*')
    assert r.untagged == ['* LIST (\\HasChildren) "/" "Work"',
                          '* LIST (\\HasChildren) "/" "Work/Projects"',
                          '* LIST (\\HasNoChildren) "/" "Work/Projects/2024"']
    client.expect("SELECT Work", "OK")          # superiors are real, selectable mailboxes
    client.expect("CREATE Work/Projects/2024", "NO", "ALREADYEXISTS")
    client.expect("CREATE INBOX", "NO", "ALREADYEXISTS")
    client.expect("CREATE inbox", "NO", "ALREADYEXISTS")


def test_create_trailing_separator_and_inbox_children(client):
    client.expect('CREATE "Lists/"', "OK")
    client.expect("CREATE inbox/Sub", "OK")
    r = client.expect('LIST "" *')
    assert '* LIST (\\HasNoChildren) "/" "Lists"' in r.untagged
    assert '* LIST (\\HasChildren) "/" "INBOX"' in r.untagged
    assert '* LIST (\\HasNoChildren) "/" "INBOX/Sub"' in r.untagged


def test_delete(client, store):
    client.expect("CREATE Old", "OK")
    client.expect("SUBSCRIBE Old", "OK")
    client.expect("DELETE Old", "OK", "", "DELETE completed")
    assert client.expect('LIST "" Old').untagged == []
    # the subscription stays (RFC 3501 6.3.6), the name no mailbox now
    assert client.expect('LSUB "" Old').untagged == ['* LSUB (\\Noselect) "/" "Old"']
    assert client.expect('LIST (SUBSCRIBED) "" Old').untagged == [
        '* LIST (\\NonExistent \\Subscribed) "/" "Old"']
    client.expect("DELETE Old", "NO", "NONEXISTENT")
    client.expect("DELETE INBOX", "NO", "CANNOT", "INBOX cannot be deleted")
    client.expect("DELETE inbox", "NO", "CANNOT")


def test_delete_parent_keeps_children_as_noselect(client):
    client.expect("CREATE A/B", "OK")
    client.expect("DELETE A", "OK")
    r = client.expect('LIST "" A/*')
    assert r.untagged == ['* LIST (\\HasNoChildren) "/" "A/B"']
    r = client.expect('LIST "" A')
    assert r.untagged == ['* LIST (\\HasChildren \\Noselect) "/" "A"']
    client.expect("SELECT A", "NO", "NONEXISTENT")


def test_delete_selected_mailbox_in_other_session_ends_it(open_session):
    a, b = two_logged_in(open_session)
    a.expect("CREATE Doomed", "OK")
    b.select("Doomed")
    a.expect("DELETE Doomed", "OK")
    b.send("b1 NOOP\r\n")
    assert b.line() == "* BYE Selected mailbox was deleted"
    assert b.at_eof()


def test_mailbox_created_again_ends_the_session_holding_the_old_one(open_session, store):
    # RFC 3501 2.3.1.1: the old UIDs mean nothing in the new folder; A gets BYE (not
    # EXPUNGEs and a silent UIDVALIDITY switch) and B's SELECT gets a Folder of its own
    a, b = two_logged_in(open_session)
    b.expect("CREATE Foo", "OK")
    check(append(b, "Foo", message(1)), "OK")
    a.select("Foo")
    old = store._open[store.folder_path(ALICE, "Foo")]
    old_validity = old.uidvalidity
    b.expect("DELETE Foo", "OK")
    b.expect("CREATE Foo", "OK")
    check(append(b, "Foo", message(2)), "OK")
    r = b.select("Foo")
    new = store._open[store.folder_path(ALICE, "Foo")]
    assert new is not old
    assert f"* OK [UIDVALIDITY {new.uidvalidity}] UIDs valid" in r.untagged
    assert new.uidvalidity != old_validity
    a.send("a9 NOOP\r\n")
    assert a.line() == "* BYE Selected mailbox was deleted"
    assert a.at_eof()


def test_mailbox_renamed_and_created_again_ends_the_session_holding_the_old_one(open_session):
    a, b = two_logged_in(open_session)
    b.expect("CREATE Foo", "OK")
    a.select("Foo")
    b.expect("RENAME Foo Bar", "OK")
    b.expect("CREATE Foo", "OK")
    check(append(b, "Foo", message(1)), "OK")
    a.send("a9 NOOP\r\n")
    assert a.line() == "* BYE Selected mailbox was deleted"
    assert a.at_eof()


def test_rename_with_children(client, store):
    client.expect("CREATE Work/Projects", "OK")
    client.expect("SUBSCRIBE Work/Projects", "OK")
    data = message(1)
    client.send(f"a9 APPEND Work/Projects {{{len(data)}+}}\r\n".encode() + data + b"\r\n")
    check(client.read_reply("a9"), "OK")
    client.expect("RENAME Work Job", "OK", "", "RENAME completed")
    r = client.expect('LIST "" *')
    assert '* LIST (\\HasChildren) "/" "Job"' in r.untagged
    assert '* LIST (\\HasNoChildren) "/" "Job/Projects"' in r.untagged
    assert not any('"Work' in u for u in r.untagged)
    r = client.expect("STATUS Job/Projects (MESSAGES)")
    assert r.untagged == ['* STATUS "Job/Projects" (MESSAGES 1)']
    assert client.expect('LSUB "" Job/*').untagged == ['* LSUB () "/" "Job/Projects"']
    client.expect("RENAME Work Other", "NO", "NONEXISTENT")
    client.expect("RENAME Job Trash", "NO", "ALREADYEXISTS")
    client.expect("RENAME Job INBOX", "NO", "ALREADYEXISTS")


def test_rename_creates_missing_superiors(client):
    client.expect("CREATE Flat", "OK")
    client.expect("RENAME Flat Deep/Er/Flat", "OK")
    r = client.expect('LIST "" Deep*')
    assert r.untagged == ['* LIST (\\HasChildren) "/" "Deep"',
                          '* LIST (\\HasChildren) "/" "Deep/Er"',
                          '* LIST (\\HasNoChildren) "/" "Deep/Er/Flat"']


def test_rename_selected_mailbox_unselects_it(client):
    client.expect("CREATE Work/Sub", "OK")
    client.select("Work/Sub")
    client.expect("RENAME Work Job", "OK")
    client.expect("NOOP", "OK")                  # the session lives on, unselected
    client.expect("FETCH 1 FLAGS", "BAD")
    client.select("Job/Sub")
    client.expect("RENAME Job/Sub Job/Sub2", "OK")
    client.expect("CREATE Job/Sub", "OK")
    assert "* 0 EXISTS" in client.select("Job/Sub").untagged


def test_rename_inbox_moves_mail_and_leaves_inbox_empty(client, store):
    deliver(store, 2)
    client.expect("RENAME INBOX Old-Inbox", "OK")
    r = client.expect("STATUS INBOX (MESSAGES)")
    assert r.untagged == ['* STATUS "INBOX" (MESSAGES 0)']
    r = client.expect("STATUS Old-Inbox (MESSAGES)")
    assert r.untagged == ['* STATUS "Old-Inbox" (MESSAGES 2)']
    store.deliver_local("", [ALICE], message(3))
    r = client.expect("STATUS INBOX (MESSAGES)")
    assert r.untagged == ['* STATUS "INBOX" (MESSAGES 1)']


def test_rename_selected_inbox_reports_expunges(open_session, store):
    deliver(store, 2)
    a, b = two_logged_in(open_session)
    b.select()
    a.expect("RENAME INBOX Saved", "OK")
    assert b.expect("NOOP").untagged == ["* 2 EXPUNGE", "* 1 EXPUNGE"]


# -- mailbox names ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ['".."', '"../other"', '"../../example.test/bob"', '"/etc"',
                                  '"/etc/passwd"', '"~bob"', '"a/~b"', '"a/../b"', '"a//b"',
                                  '"."', '"&AAA-"', '"x&AAo-y"', '"&Jjo"', '"&AGEAYgBj-"'])
def test_escaping_names_are_refused(client, store, name):
    store.deliver_local("", [ALICE], message(1))
    client.select()
    root = store.mail_root
    before = tree(root)
    client.expect(f"COPY 1 {name}", "NO", "CANNOT")
    client.expect(f"MOVE 1 {name}", "NO", "CANNOT")
    client.expect(f"APPEND {name} {{1+}}\r\nx", "NO", "CANNOT")    # not TRYCREATE: CREATE would fail
    for command in (f"CREATE {name}", f"SELECT {name}", f"EXAMINE {name}", f"DELETE {name}",
                    f"RENAME Trash {name}", f"RENAME {name} Other", f"STATUS {name} (MESSAGES)",
                    f"SUBSCRIBE {name}", f"UNSUBSCRIBE {name}"):
        client.expect(command, "NO", "CANNOT")
    assert tree(root) == before


def test_raw_nul_in_name_is_bad(client, store):
    before = tree(store.mail_root)
    client.send(b'a1 CREATE {3}\r\n')
    assert client.line() == "+ Ready for literal data"
    client.send(b"a\x00b\r\n")
    check(client.read_reply("a1"), "BAD", None, "NUL character in command")
    assert tree(store.mail_root) == before


def test_other_users_mail_is_out_of_reach(client, store):
    store.deliver_local("", [BOB], message(1, to=BOB))
    bob_before = tree(store.user_root(BOB))
    client.expect('SELECT "../bob"', "NO", "CANNOT")
    client.expect('CREATE "bob@example.test"', "OK")       # just a name in alice's tree
    assert os.path.isdir(os.path.join(store.user_root(ALICE), ".bob@example%2Etest"))
    assert tree(store.user_root(BOB)) == bob_before
    r = client.select()
    assert "* 0 EXISTS" in r.untagged


def test_modified_utf7_names_round_trip(client, store):
    client.expect('CREATE "Entw&APw-rfe"', "OK")
    client.expect('CREATE "&ZeVnLIqe-/&U,BTFw-"', "OK")
    r = client.expect('LIST "" *')
    assert '* LIST (\\HasNoChildren) "/" "Entw&APw-rfe"' in r.untagged
    assert '* LIST (\\HasChildren) "/" "&ZeVnLIqe-"' in r.untagged
    assert '* LIST (\\HasNoChildren) "/" "&ZeVnLIqe-/&U,BTFw-"' in r.untagged
    root = store.user_root(ALICE)
    assert os.path.isdir(os.path.join(root, ".Entwürfe"))
    assert os.path.isdir(os.path.join(root, ".日本語.台北"))
    r = client.expect('SELECT "Entw&APw-rfe"', "OK")
    r = client.expect('STATUS "Entw&APw-rfe" (MESSAGES)')
    assert r.untagged == ['* STATUS "Entw&APw-rfe" (MESSAGES 0)']
    client.expect('CREATE "a&-b"', "OK")
    assert '* LIST (\\HasNoChildren) "/" "a&-b"' in client.expect('LIST "" a*').untagged


def test_dots_and_percent_in_names(client, store):
    client.expect('CREATE "v1.2 100%"', "OK")
    r = client.expect('LIST "" v*')
    assert r.untagged == ['* LIST (\\HasNoChildren) "/" "v1.2 100%"']


# -- SUBSCRIBE / LIST / LSUB ----------------------------------------------------------------------
def test_subscribe_unsubscribe_lsub(client):
    r = client.expect('LSUB "" *', "OK", "", "LSUB completed")
    assert r.untagged == ['* LSUB () "/" "Archive"', '* LSUB () "/" "Drafts"', '* LSUB () "/" "Junk"',
                          '* LSUB () "/" "Sent"', '* LSUB () "/" "Trash"']
    client.expect("SUBSCRIBE INBOX", "OK", "", "SUBSCRIBE completed")
    client.expect("SUBSCRIBE Future", "OK")               # need not exist (RFC 3501 6.3.6)
    client.expect("UNSUBSCRIBE Junk", "OK", "", "UNSUBSCRIBE completed")
    r = client.expect('LSUB "" *')
    assert r.untagged == ['* LSUB () "/" "Archive"', '* LSUB () "/" "Drafts"', '* LSUB () "/" "Sent"',
                          '* LSUB () "/" "Trash"', '* LSUB () "/" "INBOX"',
                          '* LSUB (\\Noselect) "/" "Future"']
    assert client.expect('LSUB "" inbox').untagged == ['* LSUB () "/" "INBOX"']
    assert client.expect('LSUB "" %u%').untagged == ['* LSUB (\\Noselect) "/" "Future"']
    client.expect("SUBSCRIBE", "BAD")


def test_lsub_percent_returns_unsubscribed_parent_as_noselect(client):
    client.expect("CREATE Work/Projects/2024", "OK")
    client.expect("SUBSCRIBE Work/Projects/2024", "OK")
    # RFC 3501 6.3.9: "%" stops at the first level; the parent comes back \Noselect
    assert client.expect('LSUB "" W%').untagged == ['* LSUB (\\Noselect) "/" "Work"']
    assert client.expect('LSUB "" Work/%').untagged == ['* LSUB (\\Noselect) "/" "Work/Projects"']
    assert client.expect('LSUB "" Work/*').untagged == ['* LSUB () "/" "Work/Projects/2024"']
    client.expect("SUBSCRIBE Work", "OK")
    assert client.expect('LSUB "" W%').untagged == ['* LSUB () "/" "Work"']


def test_list_wildcards(client):
    client.expect("CREATE Work/Projects/2024", "OK")
    r = client.expect('LIST "" %')
    assert r.untagged == NEW_ACCOUNT_LIST + ['* LIST (\\HasChildren) "/" "Work"']
    r = client.expect('LIST "" Work/%')
    assert r.untagged == ['* LIST (\\HasChildren) "/" "Work/Projects"']
    r = client.expect('LIST Work/ %')
    assert r.untagged == ['* LIST (\\HasChildren) "/" "Work/Projects"']
    r = client.expect('LIST "" W*4')
    assert r.untagged == ['* LIST (\\HasNoChildren) "/" "Work/Projects/2024"']
    r = client.expect('LIST "" %/%/%')
    assert r.untagged == ['* LIST (\\HasNoChildren) "/" "Work/Projects/2024"']
    assert client.expect('LIST "" work').untagged == []       # only INBOX ignores case


def test_list_inbox_case_insensitive(client):
    client.expect("CREATE INBOX/Sub", "OK")
    client.expect("CREATE Inbound", "OK")
    for pattern in ("INBOX", "inbox", "InBoX", "inb%", "inbox%"):
        r = client.expect(f'LIST "" "{pattern}"')
        assert r.untagged == ['* LIST (\\HasChildren) "/" "INBOX"'], pattern
    assert client.expect('LIST "" inbox/%').untagged == ['* LIST (\\HasNoChildren) "/" "INBOX/Sub"']
    assert client.expect('LIST "" inbox/sub').untagged == []       # below INBOX case counts
    assert client.expect('LIST "" "inb*"').untagged == ['* LIST (\\HasChildren) "/" "INBOX"',
                                                        '* LIST (\\HasNoChildren) "/" "INBOX/Sub"']
    assert client.expect('LIST "" "Inb*"').untagged == ['* LIST (\\HasChildren) "/" "INBOX"',
                                                        '* LIST (\\HasNoChildren) "/" "INBOX/Sub"',
                                                        '* LIST (\\HasNoChildren) "/" "Inbound"']


def test_list_empty_pattern_gives_delimiter(client):
    r = client.expect('LIST "" ""', "OK")
    assert r.untagged == ['* LIST (\\Noselect) "/" ""']
    client.expect("LIST onearg", "BAD")


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
