"""IMAP4rev2 (RFC 9051) beside IMAP4rev1 over socket.socketpair(): an IMAP4rev1 session and
one that sent ENABLE IMAP4rev2 side by side, each with its own behaviours: SELECT (LIST
line, no RECENT, no UNSEEN), new mail (no RECENT, no \\Recent, which the rev1 session
keeps), SEARCH answered with ESEARCH, STATUS RECENT refused, RENAME's LIST with OLDNAME,
\\NonExistent for a missing parent, names in UTF-8, CLOSED."""

import re

from imap_helpers import (  # noqa: F401 (client, handler, open_session, store: fixtures)
    ALICE, append, check, client, deliver, handler, message, open_session, start_idle, store)


def rev2_session(open_session):
    c = open_session()
    c.login()
    assert c.expect("ENABLE IMAP4rev2").untagged == ["* ENABLED IMAP4rev2"]
    return c


def rev1_session(open_session):
    c = open_session()
    c.login()
    return c


def test_capabilities_advertise_both_revisions(open_session):
    c = open_session()
    caps = c.greeting.split("[CAPABILITY ", 1)[1].split("]")[0].split()
    assert {"IMAP4rev1", "IMAP4rev2", "AUTH=PLAIN", "UTF8=ACCEPT", "ENABLE", "IDLE", "NAMESPACE",
            "UNSELECT", "UIDPLUS", "ESEARCH", "SEARCHRES", "SASL-IR", "LIST-EXTENDED",
            "LIST-STATUS", "MOVE", "LITERAL+", "BINARY", "SPECIAL-USE", "STATUS=SIZE"} <= set(caps)
    c.login()
    before = c.expect("CAPABILITY").untagged
    c.expect("ENABLE IMAP4rev2")
    assert c.expect("CAPABILITY").untagged == before         # RFC 9051 6.3.1


def test_select_side_by_side(open_session, store):
    deliver(store, 3)
    old, new = rev1_session(open_session), rev2_session(open_session)
    r1 = old.expect("SELECT INBOX", code="READ-WRITE")
    r2 = new.expect("SELECT INBOX", code="READ-WRITE")
    assert "* 3 RECENT" in r1.untagged and "* OK [UNSEEN 1] First unseen" in r1.untagged
    assert not r1.lines("* LIST")
    assert not [u for u in r2.untagged if "RECENT" in u or "UNSEEN" in u]
    assert r2.lines("* LIST") == ['* LIST (\\HasNoChildren) "/" "INBOX"']
    assert "* 3 EXISTS" in r2.untagged
    # EXAMINE too, and the previous mailbox is closed with CLOSED
    r = new.expect("EXAMINE INBOX", code="READ-ONLY")
    assert r.untagged[0] == "* OK [CLOSED] Previous mailbox closed"
    assert r.lines("* LIST") == ['* LIST (\\HasNoChildren) "/" "INBOX"']


def test_new_mail_and_recent(open_session, store):
    old, new = rev1_session(open_session), rev2_session(open_session)
    new.select()
    deliver(store, 2)
    r = new.expect("NOOP")
    assert r.untagged == ["* 2 EXISTS"]
    assert new.expect("FETCH 1:2 (FLAGS)").untagged == ["* 1 FETCH (FLAGS ())", "* 2 FETCH (FLAGS ())"]
    # no \Recent anywhere in the rev2 session: RECENT and NEW match nothing, OLD all
    r = new.command("SEARCH RECENT")
    assert r.untagged == [f'* ESEARCH (TAG "{r.tagged.split()[0]}")']
    r = new.command("SEARCH OLD")
    assert r.untagged == [f'* ESEARCH (TAG "{r.tagged.split()[0]}") ALL 1:2']
    # the rev2 session took no \Recent: the rev1 session gets it
    r = old.expect("SELECT INBOX")
    assert "* 2 RECENT" in r.untagged
    assert old.expect("FETCH 1 (FLAGS)").untagged == ["* 1 FETCH (FLAGS (\\Recent))"]
    deliver(store, 1, start=3)
    assert old.expect("NOOP").untagged == ["* 3 EXISTS", "* 3 RECENT"]
    assert new.expect("NOOP").untagged == ["* 3 EXISTS"]


def test_search_answers_esearch(open_session, store):
    deliver(store, 3)
    old, new = rev1_session(open_session), rev2_session(open_session)
    old.select()
    new.select()
    assert old.expect("SEARCH ALL").untagged == ["* SEARCH 1 2 3"]
    r = new.command("SEARCH ALL")
    assert r.untagged == [f'* ESEARCH (TAG "{r.tagged.split()[0]}") ALL 1:3']
    r = new.command("UID SEARCH 2:3")
    assert r.untagged == [f'* ESEARCH (TAG "{r.tagged.split()[0]}") UID ALL 2:3']
    r = new.command("SEARCH DELETED")
    assert r.untagged == [f'* ESEARCH (TAG "{r.tagged.split()[0]}")']
    r = new.command("SEARCH RETURN (COUNT) ALL")
    assert r.untagged == [f'* ESEARCH (TAG "{r.tagged.split()[0]}") COUNT 3']
    # SAVE alone answers nothing (RFC 9051 6.4.4)
    assert new.expect("SEARCH RETURN (SAVE) 2").untagged == []
    # CHARSET stays allowed in IMAP4rev2 (unlike after ENABLE UTF8=ACCEPT)
    r = new.command("SEARCH CHARSET UTF-8 ALL")
    assert r.untagged == [f'* ESEARCH (TAG "{r.tagged.split()[0]}") ALL 1:3']


def test_status_recent_refused_in_rev2(open_session, store):
    deliver(store, 2)
    old, new = rev1_session(open_session), rev2_session(open_session)
    assert old.expect("STATUS INBOX (MESSAGES RECENT)").untagged == ['* STATUS "INBOX" (MESSAGES 2 RECENT 2)']
    check(new.command("STATUS INBOX (MESSAGES RECENT)"), "BAD")
    check(new.command('LIST "" INBOX RETURN (STATUS (RECENT))'), "BAD")
    (line,) = new.expect("STATUS INBOX (MESSAGES DELETED SIZE)").untagged
    assert re.fullmatch(r'\* STATUS "INBOX" \(MESSAGES 2 DELETED 0 SIZE \d+\)', line)
    assert int(line.split()[-1][:-1]) > len(message(1)) + len(message(2))


def test_rename_sends_oldname(open_session):
    old, new = rev1_session(open_session), rev2_session(open_session)
    old.expect("CREATE Projekte")
    assert old.expect("RENAME Projekte Projekte2").untagged == []
    r = new.expect('RENAME Projekte2 "Projekte/Alt"')
    assert r.untagged == ['* LIST (\\HasNoChildren) "/" "Projekte/Alt" ("OLDNAME" ("Projekte2"))']
    r = new.expect('RENAME "Projekte/Alt" "Büro"')
    assert r.untagged == ['* LIST (\\HasNoChildren) "/" "Büro" ("OLDNAME" ("Projekte/Alt"))']
    # INBOX keeps its name: its mail moved, no LIST (RFC 9051 6.3.6)
    assert new.expect("RENAME INBOX Saved").untagged == []


def test_missing_parent_is_nonexistent_in_rev2(open_session):
    old, new = rev1_session(open_session), rev2_session(open_session)
    old.expect("CREATE P/child")
    old.expect("DELETE P")
    assert old.expect('LIST "" P').untagged == ['* LIST (\\HasChildren \\Noselect) "/" "P"']
    assert new.expect('LIST "" P').untagged == ['* LIST (\\HasChildren \\NonExistent) "/" "P"']
    check(new.command("SELECT P"), "NO")


def test_names_are_utf8_in_rev2(open_session):
    old, new = rev1_session(open_session), rev2_session(open_session)
    new.expect('CREATE "Entwürfe"')
    assert new.expect('LIST "" "Entw*"').untagged == ['* LIST (\\HasNoChildren) "/" "Entwürfe"']
    r = new.expect('SELECT "Entwürfe"')
    assert r.lines("* LIST") == ['* LIST (\\HasNoChildren) "/" "Entwürfe"']
    assert old.expect('LIST "" "Entw*"').untagged == ['* LIST (\\HasNoChildren) "/" "Entw&APw-rfe"']
    # 8-bit header fields are fine after ENABLE IMAP4rev2 (RFC 9051 Appendix E 16)
    data = "Subject: Grüße\r\n\r\nx\r\n".encode()
    check(append(new, '"Entwürfe"', data), "OK")
    check(append(old, '"Entw&APw-rfe"', data), "NO", "CANNOT")


def test_number64_sizes_and_partials(open_session, store):
    deliver(store, 2)
    for c in (rev1_session(open_session), rev2_session(open_session)):
        c.select()
        r = c.command("SEARCH RETURN (COUNT) LARGER 5000000000")
        assert r.untagged == [f'* ESEARCH (TAG "{r.tagged.split()[0]}") COUNT 0']
        r = c.command("SEARCH RETURN (COUNT) SMALLER 9223372036854775807")
        assert r.untagged == [f'* ESEARCH (TAG "{r.tagged.split()[0]}") COUNT 2']
        check(c.command("SEARCH LARGER 9223372036854775808"), "BAD")
        check(c.command("SEARCH LARGER 99999999999999999999999"), "BAD")
        assert c.expect("FETCH 1 (BODY.PEEK[]<5000000000.10>)").untagged == [
            '* 1 FETCH (BODY[]<5000000000> "")']
        assert c.expect("FETCH 1 (BINARY.PEEK[1]<0.9223372036854775807>)").untagged[0].startswith(
            "* 1 FETCH (BINARY[1]<0> {")
        check(c.command("FETCH 1 (BODY.PEEK[]<9223372036854775808.1>)"), "BAD")
        check(c.command("FETCH 1 (BODY.PEEK[4294967296])"), "BAD")     # part numbers stay 32-bit


def test_idle_in_rev2_reports_exists_and_flags_without_recent(open_session, store):
    deliver(store, 1)
    old, new = rev1_session(open_session), rev2_session(open_session)
    new.select()
    old.select()
    start_idle(new)
    store.deliver_local("", [ALICE], message(2))
    assert new.line() == "* 2 EXISTS"
    old.expect("STORE 1 +FLAGS.SILENT (\\Flagged)")
    # the next line is the flag change: no RECENT came between
    assert new.line() == "* 1 FETCH (UID 1 FLAGS (\\Flagged))"
    new.send("DONE\r\n")
    check(new.read_reply("i1"), "OK", "", "IDLE terminated")
