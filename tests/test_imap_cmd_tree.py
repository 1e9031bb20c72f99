"""Tests for clevermail.imap.cmd_mailboxes' commands on the folder tree (RFC 3501 6.3:
CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB) and the mailbox names they
accept, run over socket.socketpair() with raw command lines and exact tagged replies."""

import os

import pytest

from imap_helpers import (  # noqa: F401 (fixtures)
    ALICE, BOB, append, check, client, deliver, handler, message, open_session, store, two_logged_in)
from imap_mailboxes_helpers import tree


NEW_ACCOUNT_LIST = [
    '* LIST (\\HasNoChildren) "/" "INBOX"',
    '* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
    '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
    '* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
    '* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
    '* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
]


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
