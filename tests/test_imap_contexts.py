"""Tests for CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 section 4) over
socket.socketpair(): RETURN (PARTIAL n:m) of SEARCH and SORT and their UID forms,
RETURN (UPDATE) with the ADDTO/REMOVEFROM updates as the selected mailbox changes (this
session's STORE, EXPUNGE and APPEND, another session's changes and new mail, IDLE),
CANCELUPDATE, NOUPDATE, the contexts ended with the selected mailbox, RETURN (UPDATE
(fetch-att ...)) of NOTIFY (RFC 5465 7) alone and with NOTIFY's own; the pure parts
(esearch.parse_return's PARTIAL, contexts._runs); end to end, imaplib told of mail
that arrives over SMTP."""

import imaplib
import re
import smtplib

import pytest

from clevermail.imap import contexts, esearch
from clevermail.service import MailService
from conftest import make_config
from clevermail.imap.parser import Atom
from clevermail.imap.replies import IMAPBad
from imap_helpers import (  # noqa: F401 (client, handler, open_session, selected, store: fixtures)
    ALICE, PASSWORD, append, make_accounts, client, deliver, handler, message, open_session, selected, start_idle,
    store, two_logged_in, wait_idling)


def _lines(reply):
    """The untagged lines of a reply, the tags of ESEARCH responses written as "t"."""
    return [re.sub(r'^\* ESEARCH \(TAG "a\d+"\)', '* ESEARCH (TAG "t")', line)
            for line in reply.untagged]


def _tag_of(client, text):
    """Send a command and return (its tag, its Reply)."""
    tag = next(client.tags)
    client.send(f"{tag} {text}\r\n")
    return tag, client.read_reply(tag)


# -- the pure parts -----------------------------------------------------------------------
def test_parse_partial():
    ret, rest = esearch.parse_return(["RETURN", [Atom("PARTIAL"), Atom("4:2"), Atom("COUNT")], "ALL"])
    assert ret.partial == (2, 4) and ret.options == {"PARTIAL", "COUNT"} and rest == ["ALL"]
    for bad in ("1", "1:*", "*:1", "0:3", "-1:-3", "1:2:3", "a:b", "1:99999999999"):
        with pytest.raises(IMAPBad):
            esearch.parse_return(["RETURN", [Atom("PARTIAL"), Atom(bad)], "ALL"])
    for options in ([Atom("PARTIAL")], [Atom("PARTIAL"), Atom("1:2"), Atom("ALL")],
                    [Atom("PARTIAL"), Atom("1:2"), Atom("PARTIAL"), Atom("3:4")],
                    [Atom("UPDATE"), Atom("UPDATE")]):
        with pytest.raises(IMAPBad):
            esearch.parse_return(["RETURN", options, "ALL"])
    # UPDATE alone asks no ALL; CONTEXT alone is a hint: ALL as with ()
    assert esearch.parse_return(["RETURN", [Atom("UPDATE")]])[0].options == {"UPDATE"}
    assert esearch.parse_return(["RETURN", [Atom("CONTEXT")]])[0].options == {"ALL"}


def test_runs_positions():
    # removals: positions as they are once the runs before are gone
    assert contexts._runs([5, 3, 4, 2, 1], {3, 4, 1}, shift=True) == [(2, [3, 4]), (3, [1])]
    # additions: positions in the new order
    assert contexts._runs([7, 5, 6, 2, 1], {7, 6, 1}, shift=False) == [(1, [7]), (3, [6]), (5, [1])]
    assert contexts._runs([1, 2], set(), shift=False) == []


def test_update_line():
    assert esearch.update_line("B1", True, [(0, [3, 4, 5])], [(0, [7])]) == (
        b'* ESEARCH (TAG "B1") UID REMOVEFROM (0 3:5) ADDTO (0 7)\r\n')
    assert esearch.update_line("C", False, [], [(1, [5]), (3, [3, 4])]) == (
        b'* ESEARCH (TAG "C") ADDTO (1 5 3 3:4)\r\n')


# -- PARTIAL (RFC 5267 4.4) -------------------------------------------------------------------
def test_search_partial(selected, store):
    s = selected
    deliver(store, 2, start=4)
    s.expect("NOOP")
    assert _lines(s.expect("SEARCH RETURN (PARTIAL 2:4) ALL")) == ['* ESEARCH (TAG "t") PARTIAL (2:4 2:4)']
    assert _lines(s.expect("SEARCH RETURN (PARTIAL 4:2) ALL")) == ['* ESEARCH (TAG "t") PARTIAL (2:4 2:4)']
    assert _lines(s.expect("SEARCH RETURN (PARTIAL 1:6) ALL")) == ['* ESEARCH (TAG "t") PARTIAL (1:6 1:5)']
    assert _lines(s.expect("SEARCH RETURN (PARTIAL 6:6) ALL")) == ['* ESEARCH (TAG "t") PARTIAL (6:6 NIL)']
    assert _lines(s.expect("SEARCH RETURN (PARTIAL 2:3) 1:2,4:5")) == [
        '* ESEARCH (TAG "t") PARTIAL (2:3 2,4)']
    assert _lines(s.expect("SEARCH RETURN (COUNT PARTIAL 1:2 MIN) 2:5")) == [
        '* ESEARCH (TAG "t") MIN 2 PARTIAL (1:2 2:3) COUNT 4']
    s.expect("STORE 2 +FLAGS.SILENT (\\Deleted)")
    s.expect("EXPUNGE")
    # the UID form: positions in the result, UIDs in the answer
    assert _lines(s.expect("UID SEARCH RETURN (PARTIAL 2:2) ALL")) == [
        '* ESEARCH (TAG "t") UID PARTIAL (2:2 3)']
    assert _lines(s.expect("UID SEARCH RETURN (PARTIAL 5:10) ALL")) == [
        '* ESEARCH (TAG "t") UID PARTIAL (5:10 NIL)']
    for bad in ("(PARTIAL 1)", "(PARTIAL 1:*)", "(PARTIAL *:1)", "(PARTIAL 1:2 ALL)", "(PARTIAL)"):
        s.expect(f"SEARCH RETURN {bad} ALL", "BAD")


def test_partial_with_save_and_modseq(selected):
    s = selected
    s.expect("SEARCH RETURN (SAVE PARTIAL 2:3) ALL")
    assert s.expect("SEARCH $").untagged == ["* SEARCH 2 3"]
    s.expect("SEARCH RETURN (SAVE COUNT PARTIAL 1:1) ALL")     # with COUNT: every match saved
    assert s.expect("SEARCH $").untagged == ["* SEARCH 1 2 3"]
    s.expect("STORE 2 +FLAGS.SILENT (\\Flagged)")
    mods = {}
    for line in s.expect("FETCH 1:3 (MODSEQ)").lines("* "):
        if " FETCH " not in line:
            continue        # the HIGHESTMODSEQ of CONDSTORE enabled
        seq, modseq = re.match(r"\* (\d+) FETCH \(MODSEQ \((\d+)\)\)", line).groups()
        mods[int(seq)] = int(modseq)
    # MODSEQ says the highest of the messages PARTIAL returns, not of every match
    assert _lines(s.expect("SEARCH RETURN (PARTIAL 3:3) MODSEQ 1")) == [
        f'* ESEARCH (TAG "t") PARTIAL (3:3 3) MODSEQ {mods[3]}']
    assert mods[2] > mods[3]


def _deliver_subjects(store, subjects):
    for n, subject in enumerate(subjects, 1):
        store.deliver_local("", [ALICE], message(n, subject=subject))


def test_sort_partial(client, store):
    _deliver_subjects(store, "dbeac")     # by subject: 4 2 5 1 3
    client.select()
    assert _lines(client.expect("SORT RETURN (PARTIAL 2:4) (SUBJECT) US-ASCII ALL")) == [
        '* ESEARCH (TAG "t") PARTIAL (2:4 2,5,1)']
    assert _lines(client.expect("SORT RETURN (PARTIAL 4:2) (REVERSE SUBJECT) US-ASCII ALL")) == [
        '* ESEARCH (TAG "t") PARTIAL (2:4 1,5,2)']
    assert _lines(client.expect("UID SORT RETURN (PARTIAL 4:10 COUNT) (SUBJECT) US-ASCII ALL")) == [
        '* ESEARCH (TAG "t") UID PARTIAL (4:10 1,3) COUNT 5']
    client.expect("SORT RETURN (PARTIAL 1) (SUBJECT) US-ASCII ALL", "BAD")
    client.expect("SORT RETURN (PARTIAL 1:2 ALL) (SUBJECT) US-ASCII ALL", "BAD")


# -- UPDATE: contexts kept up to date (RFC 5267 4.3) ------------------------------------------
def test_search_context_follows_this_sessions_changes(selected):
    s = selected
    tag, r = _tag_of(s, "SEARCH RETURN (UPDATE) SEEN")
    assert r.untagged == [f'* ESEARCH (TAG "{tag}")']      # UPDATE alone: no ALL
    head = f'* ESEARCH (TAG "{tag}")'
    assert s.expect("STORE 1,3 +FLAGS.SILENT (\\Seen)").untagged == [head + " ADDTO (0 1,3)"]
    assert s.expect("STORE 1 -FLAGS (\\Seen)").untagged == [
        "* 1 FETCH (FLAGS (\\Recent))", head + " REMOVEFROM (0 1)"]
    s.expect("STORE 2,3 +FLAGS.SILENT (\\Deleted)")
    assert s.expect("STORE 2 +FLAGS.SILENT (\\Seen)").untagged == [head + " ADDTO (0 2)"]
    # removed with the numbers the client still has, before the EXPUNGEs
    assert s.expect("EXPUNGE").untagged == [head + " REMOVEFROM (0 2:3)", "* 3 EXPUNGE", "* 2 EXPUNGE"]
    # a new message is added after EXISTS
    assert append(s, "INBOX", message(9), " (\\Seen)").untagged == [
        "* 2 EXISTS", "* 2 RECENT", head + " ADDTO (0 2)"]
    s.expect(f'CANCELUPDATE "{tag}"')
    assert s.expect("STORE 1 +FLAGS.SILENT (\\Seen)").untagged == []


def test_uid_search_context_follows_other_sessions_and_idle(open_session, store):
    deliver(store, 3)
    a, b = two_logged_in(open_session, select=True)
    tag, r = _tag_of(a, "UID SEARCH RETURN (UPDATE ALL) FLAGGED")
    head = f'* ESEARCH (TAG "{tag}") UID'
    assert r.untagged == [head]
    b.expect("STORE 1,2 +FLAGS.SILENT (\\Flagged)")
    assert a.expect("NOOP").untagged == [
        "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))", "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))",
        head + " ADDTO (0 1:2)"]
    # expunge and new mail at once: REMOVEFROM before EXPUNGE, ADDTO after EXISTS
    b.expect("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.expect("EXPUNGE")
    append(b, "INBOX", message(4), " (\\Flagged)")
    assert a.expect("NOOP").untagged == [
        head + " REMOVEFROM (0 1)", "* 1 EXPUNGE", "* 3 EXISTS", "* 2 RECENT", head + " ADDTO (0 4)"]
    # in IDLE, as they happen
    start_idle(a)
    wait_idling(store)
    b.expect("STORE 1 -FLAGS.SILENT (\\Flagged)")         # UID 2
    assert a.line() == "* 1 FETCH (UID 2 FLAGS (\\Recent))"
    assert a.line() == head + " REMOVEFROM (0 2)"
    a.send("DONE\r\n")
    assert a.line() == "i1 OK IDLE terminated"


def test_search_context_numbers_after_an_expunge(open_session, store):
    deliver(store, 3)
    a, b = two_logged_in(open_session, select=True)
    tag, r = _tag_of(a, "SEARCH RETURN (UPDATE ALL) FLAGGED")
    head = f'* ESEARCH (TAG "{tag}")'
    b.expect("STORE 1,3 +FLAGS.SILENT (\\Flagged)")
    a.expect("NOOP")
    b.expect("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.expect("EXPUNGE")
    append(b, "INBOX", message(4), " (\\Flagged)")
    # message 1 leaves as number 1; the new one enters as number 3 (after the expunge)
    assert a.expect("NOOP").untagged == [
        head + " REMOVEFROM (0 1)", "* 1 EXPUNGE", "* 3 EXISTS", "* 2 RECENT", head + " ADDTO (0 3)"]
    # during FETCH the expunge waits, and so do its numbers: REMOVEFROM says 1 still
    b.expect("STORE 2 +FLAGS.SILENT (\\Deleted)")         # UID 3, number 2 in both
    b.expect("EXPUNGE")
    assert a.expect("FETCH 1 (UID)").untagged == ["* 1 FETCH (UID 2)", head + " REMOVEFROM (0 2)"]
    assert a.expect("NOOP").untagged == ["* 2 EXPUNGE"]


def test_search_context_with_sequence_numbers_is_tested_again(open_session, store):
    deliver(store, 3)
    a, b = two_logged_in(open_session, select=True)
    tag, r = _tag_of(a, "SEARCH RETURN (UPDATE ALL) 2:3")
    head = f'* ESEARCH (TAG "{tag}")'
    assert r.untagged == [head + " ALL 2:3"]
    b.expect("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.expect("EXPUNGE")
    append(b, "INBOX", message(4))
    # after the EXPUNGE 2:3 names UIDs 3 and 4: UID 2 (number 1 by then) leaves and UID 4
    # (number 3) enters, said after the expunge with the numbers it left
    assert a.expect("NOOP").untagged == [
        "* 1 EXPUNGE", "* 3 EXISTS", "* 2 RECENT", head + " REMOVEFROM (0 1) ADDTO (0 3)"]


def test_sort_context_positions(client, store):
    _deliver_subjects(store, "dbeac")     # by subject: 4 2 5 1 3
    client.select()
    s = client
    tag, r = _tag_of(s, "SORT RETURN (UPDATE ALL) (SUBJECT) US-ASCII UNSEEN")
    head = f'* ESEARCH (TAG "{tag}")'
    assert r.untagged == [head + " ALL 4,2,5,1,3"]
    # one run leaving at position 2, positions then as after the runs before
    assert s.expect("STORE 2,5 +FLAGS.SILENT (\\Seen)").untagged == [head + " REMOVEFROM (2 2,5)"]
    assert s.expect("STORE 4,3 +FLAGS.SILENT (\\Seen)").untagged == [head + " REMOVEFROM (1 4 2 3)"]
    assert s.expect("STORE 2:5 -FLAGS.SILENT (\\Seen)").untagged == [head + " ADDTO (1 4,2,5 5 3)"]
    append(s, "INBOX", message(6, subject="aa"))
    assert s.expect("NOOP").untagged == []          # APPEND said it already
    assert s.expect("SORT RETURN (ALL) (SUBJECT) US-ASCII UNSEEN").untagged[0].endswith(" ALL 4,6,2,5,1,3")
    s.expect("STORE 4 +FLAGS.SILENT (\\Deleted)")
    assert s.expect("EXPUNGE").untagged == [head + " REMOVEFROM (1 4)", "* 4 EXPUNGE"]


def test_sort_context_new_mail_position(client, store):
    _deliver_subjects(store, "dbeac")
    client.select()
    tag, r = _tag_of(client, "UID SORT RETURN (UPDATE) (SUBJECT) US-ASCII ALL")
    assert r.untagged == [f'* ESEARCH (TAG "{tag}") UID']
    assert append(client, "INBOX", message(6, subject="bb")).untagged == [
        "* 6 EXISTS", "* 6 RECENT", f'* ESEARCH (TAG "{tag}") UID ADDTO (3 6)']


def test_contexts_cancel_limit_and_end_with_the_mailbox(selected):
    s = selected
    s.send('ctx1 SEARCH RETURN (UPDATE) SEEN\r\n')
    assert s.read_reply("ctx1").tagged.startswith("ctx1 OK")
    s.send('ctx1 SEARCH RETURN (UPDATE COUNT) SEEN\r\n')     # the tag names a live context
    assert s.read_reply("ctx1").tagged.startswith("ctx1 BAD")
    s.expect('CANCELUPDATE "nosuch"', "NO", "", "No context with tag nosuch")
    tag = next(s.tags)
    s.send(f"{tag} CANCELUPDATE {{10+}}\r\nx\r\n* BYE y\r\n")       # a literal with CR LF in it
    assert s.read_reply(tag).tagged == f"{tag} NO No context with tag x??* BYE y"
    s.expect("CANCELUPDATE", "BAD")
    s.expect("CANCELUPDATE (ctx1)", "BAD")
    tags = [_tag_of(s, "SEARCH RETURN (UPDATE) FLAGGED")[0] for _ in range(15)]
    tag, r = _tag_of(s, "SEARCH RETURN (UPDATE MIN) ALL")
    assert r.untagged == [f'* NO [NOUPDATE "{tag}"] Too many contexts: not updated',
                          f'* ESEARCH (TAG "{tag}") MIN 1']
    s.expect(f'CANCELUPDATE "{tags[0]}" "{tags[1]}"')
    s.expect(f'CANCELUPDATE "{tags[0]}"', "NO")             # gone already
    assert s.expect("STORE 1 +FLAGS.SILENT (\\Seen)").untagged == ['* ESEARCH (TAG "ctx1") ADDTO (0 1)']
    s.select()                                                # a new SELECT ends every context
    assert s.expect("STORE 2 +FLAGS.SILENT (\\Seen \\Flagged)").untagged == []
    s.expect('CANCELUPDATE "ctx1"', "NO")
    s.expect("UNSELECT")
    s.expect('CANCELUPDATE "ctx1"', "BAD")                    # not in the selected state


# -- RETURN (UPDATE (fetch-att ...)): NOTIFY's extension of contexts (RFC 5465 7) ------------
def test_parse_update_fetch_atts():
    ret, rest = esearch.parse_return(["RETURN", [Atom("COUNT"), Atom("UPDATE"), [Atom("UID"), Atom("FLAGS")]],
                                      "ALL"])
    assert ret.options == {"COUNT", "UPDATE"} and ret.fetch == ["UID", "FLAGS"] and rest == ["ALL"]
    assert esearch.parse_return(["RETURN", [Atom("UPDATE")]])[0].fetch is None
    # what FETCH refuses: an empty list, a macro inside the list, an unknown item
    for bad in ([], [Atom("ALL")], [Atom("NOSUCH")], [Atom("BODY[1")]):
        with pytest.raises(IMAPBad):
            esearch.parse_return(["RETURN", [Atom("UPDATE"), bad], "ALL"])
    with pytest.raises(IMAPBad):        # a list after another option is no option
        esearch.parse_return(["RETURN", [Atom("COUNT"), [Atom("UID")]], "ALL"])


def test_context_fetch_atts_for_new_mail_only(open_session, store):
    deliver(store, 2)
    a, b = two_logged_in(open_session, select=True)
    tag, r = _tag_of(a, "UID SEARCH RETURN (UPDATE (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])) "
                        "SUBJECT invoice")
    head = f'* ESEARCH (TAG "{tag}") UID'
    # new mail that enters the result: EXISTS, its FETCH (UID added, as UID FETCH
    # would), then the ADDTO; the new message that does not match gets no FETCH
    append(b, "INBOX", message(3, subject="lunch"))
    append(b, "INBOX", message(4, subject="invoice 42"), " (\\Flagged)")
    assert a.expect("NOOP").untagged == [
        "* 4 EXISTS", "* 2 RECENT",
        "* 4 FETCH (UID 4 FLAGS (\\Flagged) BODY[HEADER.FIELDS (SUBJECT)] {23}\r\n"
        "Subject: invoice 42\r\n\r\n)",
        head + " ADDTO (0 4)"]
    # a message a flag change brings in gets no FETCH (7: SHOULD NOT)
    tag2, _ = _tag_of(a, "SEARCH RETURN (UPDATE (UID)) FLAGGED")
    b.expect("STORE 1 +FLAGS.SILENT (\\Flagged)")
    assert a.expect("NOOP").untagged == [
        "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))", f'* ESEARCH (TAG "{tag2}") ADDTO (0 1)']
    # nor one the session added itself (5.2)
    assert append(a, "INBOX", message(5, subject="invoice 43")).untagged == [
        "* 5 EXISTS", "* 3 RECENT", head + " ADDTO (0 5)"]


def test_sort_context_and_notify_fetch_combined(open_session, store):
    deliver(store, 1)
    a, b = two_logged_in(open_session, select=True)
    a.expect("NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge))")
    tag, r = _tag_of(a, "SORT RETURN (UPDATE (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)]) ALL) "
                        "(SUBJECT) US-ASCII SUBJECT invoice")
    assert r.untagged == [f'* ESEARCH (TAG "{tag}")']
    # with NOTIFY the updates come as each message arrives: one at a time; \\Recent
    # is a's (delivered, not appended by b)
    store.deliver_local("", [ALICE], message(2, subject="invoice b"))
    # the fetch-atts of NOTIFY and of the context in one FETCH, each item once; the
    # FETCH after EXISTS and before the ESEARCH (RFC 5465 7)
    assert [a.line() for _ in range(4)] == [
        "* 2 EXISTS", "* 2 RECENT",
        "* 2 FETCH (UID 2 FLAGS (\\Recent) BODY[HEADER.FIELDS (SUBJECT)] {22}\r\nSubject: invoice b\r\n\r\n)",
        f'* ESEARCH (TAG "{tag}") ADDTO (1 2)']
    store.deliver_local("", [ALICE], message(3, subject="lunch"))       # only NOTIFY's
    assert [a.line() for _ in range(3)] == ["* 3 EXISTS", "* 3 RECENT", "* 3 FETCH (UID 3 FLAGS (\\Recent))"]
    store.deliver_local("", [ALICE], message(4, subject="invoice a"))
    assert [a.line() for _ in range(4)] == [
        "* 4 EXISTS", "* 4 RECENT",
        "* 4 FETCH (UID 4 FLAGS (\\Recent) BODY[HEADER.FIELDS (SUBJECT)] {22}\r\nSubject: invoice a\r\n\r\n)",
        f'* ESEARCH (TAG "{tag}") ADDTO (1 4)']
    assert a.expect("NOOP").untagged == []
    # FlagChange not asked: another session's flags are not said, but a context they
    # change is (its result was asked to be kept)
    tag2, _ = _tag_of(a, "SEARCH RETURN (UPDATE (UID)) FLAGGED")
    b.expect("NOOP")
    b.expect("STORE 3 +FLAGS.SILENT (\\Flagged)")
    assert a.line() == f'* ESEARCH (TAG "{tag2}") ADDTO (0 3)'
    assert a.expect("NOOP").untagged == []


def test_context_fetch_atts_in_idle(open_session, store):
    deliver(store, 1)
    a, b = two_logged_in(open_session, select=True)
    tag, _ = _tag_of(a, "SEARCH RETURN (UPDATE (UID)) SUBJECT invoice")
    start_idle(a)
    wait_idling(store)
    store.deliver_local("", [ALICE], message(2, subject="invoice"))
    assert [a.line() for _ in range(4)] == [
        "* 2 EXISTS", "* 2 RECENT", "* 2 FETCH (UID 2)", f'* ESEARCH (TAG "{tag}") ADDTO (0 2)']
    a.send("DONE\r\n")
    assert a.line() == "i1 OK IDLE terminated"


# -- end to end -----------------------------------------------------------------------------
@pytest.mark.e2e
def test_imaplib_context_sees_mail_arriving_over_smtp(thread_guard, tmp_path, monkeypatch):
    monkeypatch.setitem(imaplib.Commands, "CANCELUPDATE", ("SELECTED",))
    conf = make_config(tmp_path, limits={"auth_failure_delay": 0, "imap_timeout": 30})
    make_accounts(conf.server.users_file)
    service = MailService(conf).start()
    try:
        m = imaplib.IMAP4("127.0.0.1", service.port("imap"), timeout=10)
        try:
            m.login(ALICE, PASSWORD)
            assert "CONTEXT=SEARCH" in m.capabilities and "CONTEXT=SORT" in m.capabilities
            m.select("INBOX")
            typ, _ = m._simple_command("UID", "SEARCH", "RETURN", "(UPDATE COUNT)", "SUBJECT", "invoice")
            assert typ == "OK"
            tag = re.match(rb'\(TAG "([^"]+)"\)', m.untagged_responses.pop("ESEARCH")[0]).group(1)
            with smtplib.SMTP("127.0.0.1", service.port("smtp"), timeout=10) as smtp:
                for subject in ("lunch", "invoice 42"):
                    smtp.sendmail("bob@remote.example", [ALICE],
                                  f"From: bob@remote.example\r\nSubject: {subject}\r\n\r\nHi\r\n")
            # both are in INBOX when SMTP says 250: the NOOP reports them, and the
            # second one, UID 2, to the context
            assert m.noop()[0] == "OK"
            assert m.untagged_responses.pop("EXISTS")[-1] == b"2"      # 0 at SELECT
            assert m.untagged_responses.pop("ESEARCH") == [b'(TAG "' + tag + b'") UID ADDTO (0 2)']
            assert m._simple_command("CANCELUPDATE", '"%s"' % tag.decode())[0] == "OK"
        finally:
            m.logout()
    finally:
        service.stop()
