"""Tests for CONDSTORE and QRESYNC (RFC 7162): the pure parsers of
clevermail.imap.condstore, then sessions over socketpairs: HIGHESTMODSEQ, MODSEQ,
CHANGEDSINCE, UNCHANGEDSINCE and MODIFIED, SEARCH MODSEQ, ENABLE, VANISHED, CLOSED,
and a resynchronisation by one session of what another changed."""

import re

import pytest

from clevermail.imap import condstore
from clevermail.imap.parser import Atom
from clevermail.imap.replies import IMAPBad
from imap_helpers import (  # noqa: F401 (client, handler, open_session, selected, store: fixtures)
    ALICE, client, deliver, handler, open_session, selected, store, two_logged_in, uidvalidity)


def A(text):
    return Atom(text)


# -- pure: the parameters and modifiers ----------------------------------------------------
def test_select_params():
    assert condstore.select_params([], False) == (False, None)
    assert condstore.select_params([[A("condstore")]], False) == (True, None)
    p = condstore.select_params([[A("QRESYNC"), [A("67890007"), A("90060115194045000"), A("41:211,214:541")]]], True)
    assert p.condstore and p.resync.uidvalidity == 67890007 and p.resync.modseq == 90060115194045000
    assert p.resync.known.contains(100, 600) and not p.resync.known.contains(212, 600)
    p = condstore.select_params([[A("QRESYNC"), [A("1"), A("5"), A("1:10"), [A("1:3"), A("2,4,6")]]]], True)
    assert p.resync.known is not None
    p = condstore.select_params([[A("QRESYNC"), [A("1"), A("5"), [A("1:3"), A("2,4,6")]]]], True)
    assert p.resync.known is None
    for bad in ([[A("QRESYNC"), [A("1"), A("5")]]],           # not enabled: see below
                ):
        with pytest.raises(IMAPBad):
            condstore.select_params(bad, False)
    for bad in ([[A("FOO")]], [A("CONDSTORE")], [[]],
                [[A("QRESYNC")]], [[A("QRESYNC"), [A("0"), A("5")]]], [[A("QRESYNC"), [A("1"), A("0")]]],
                [[A("QRESYNC"), [A("1")]]], [[A("QRESYNC"), [A("1"), A("x")]]],
                [[A("QRESYNC"), [A("1"), A("5"), A("1:10"), [A("1:3"), A("2,4")]]]],     # 3 vs 2
                [[A("QRESYNC"), [A("1"), A("5"), A("1:10"), [A("1:*"), A("2,4,6")]]]],
                [[A("QRESYNC"), [A("1"), A("99999999999999999999")]]]):
        with pytest.raises(IMAPBad):
            condstore.select_params(bad, True)


def test_fetch_and_store_modifiers():
    assert condstore.fetch_modifiers([A("CHANGEDSINCE"), A("12")], False, False) == (12, False)
    assert condstore.fetch_modifiers([A("changedsince"), A("0"), A("VANISHED")], True, True) == (0, True)
    for tok, uid, qr in (([A("CHANGEDSINCE"), A("1"), A("VANISHED")], False, True),   # not UID FETCH
                         ([A("CHANGEDSINCE"), A("1"), A("VANISHED")], True, False),   # not enabled
                         ([A("VANISHED")], True, True), ([A("CHANGEDSINCE")], False, False),
                         ([A("CHANGEDSINCE"), A("-1")], False, False), ([A("FOO")], False, False),
                         ([], False, False), (A("CHANGEDSINCE"), False, False)):
        with pytest.raises(IMAPBad):
            condstore.fetch_modifiers(tok, uid, qr)
    assert condstore.store_unchangedsince([A("UNCHANGEDSINCE"), A("0")]) == 0
    for tok in ([A("UNCHANGEDSINCE")], [A("X"), A("1")], [A("UNCHANGEDSINCE"), A("1"), A("2")]):
        with pytest.raises(IMAPBad):
            condstore.store_unchangedsince(tok)


def test_vanished_lines():
    assert condstore.vanished_line([1, 2, 3, 7], earlier=True) == [b"* VANISHED (EARLIER) 1:3,7\r\n"]
    assert condstore.vanished_line([9], earlier=False) == [b"* VANISHED 9\r\n"]
    assert condstore.vanished_line([], earlier=False) == []


# -- sessions -----------------------------------------------------------------------------
def highest(reply):
    for line in reply.untagged + [reply.tagged]:
        m = re.search(r"\[HIGHESTMODSEQ (\d+)\]", line)
        if m:
            return int(m.group(1))
    raise AssertionError(f"no HIGHESTMODSEQ in {reply!r}")


def modseq_of(line):
    return int(re.search(r"MODSEQ \((\d+)\)", line).group(1))


def test_select_says_highestmodseq_and_fetch_modseq_enables_condstore(selected, store):
    r = selected.expect("NOOP")
    r = selected.expect("FETCH 1:3 (UID MODSEQ)")
    top = highest(r)                               # said once, when CONDSTORE came on
    lines = [u for u in r.untagged if "FETCH" in u]
    assert [u.split(" MODSEQ")[0] for u in lines] == ["* 1 FETCH (UID 1", "* 2 FETCH (UID 2", "* 3 FETCH (UID 3"]
    assert all(0 < modseq_of(u) <= top for u in lines)
    assert not any("HIGHESTMODSEQ" in u for u in selected.expect("FETCH 1 MODSEQ").untagged)


def test_changedsince_fetch_and_unsolicited_modseq(open_session, store):
    deliver(store, 4)
    a, b = two_logged_in(open_session, select=True)
    top = highest(a.expect("SELECT INBOX (CONDSTORE)"))
    assert a.expect("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % top).untagged == []
    b.expect("STORE 2 +FLAGS.SILENT (\\Flagged)")
    b.expect("STORE 4 +FLAGS.SILENT (\\Seen)")
    r = a.expect("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % top)
    fetches = [u for u in r.untagged if u.startswith("* 2 FETCH (FLAGS") or u.startswith("* 4 FETCH (FLAGS")]
    assert len(fetches) == 2 and all(modseq_of(u) > top for u in fetches)
    # the unsolicited updates of the same changes carry UID and MODSEQ
    unsolicited = [u for u in r.untagged if "UID" in u]
    assert [u.split(" MODSEQ")[0] for u in unsolicited] == [
        "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent)", "* 4 FETCH (UID 4 FLAGS (\\Seen \\Recent)"]
    r = a.expect("UID FETCH 3:4 (FLAGS) (CHANGEDSINCE %d)" % top)
    assert [u.split(" MODSEQ")[0] for u in r.untagged] == ["* 4 FETCH (UID 4 FLAGS (\\Seen \\Recent)"]
    a.expect("FETCH 1:9 (FLAGS) (CHANGEDSINCE 1)", "BAD")
    a.expect("FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)", "BAD")       # QRESYNC not enabled


def test_store_unchangedsince_and_modified(selected):
    r = selected.expect("FETCH 1:3 (MODSEQ)")
    mods = {int(u.split()[1]): modseq_of(u) for u in r.untagged if "FETCH" in u}
    selected.expect("STORE 2 +FLAGS.SILENT (\\Answered)")
    r = selected.expect("STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Deleted)" % max(mods.values()),
                        "OK", "MODIFIED 2", "Conditional STORE failed")
    assert [u.split(" (MODSEQ")[0] for u in r.untagged] == ["* 1 FETCH", "* 3 FETCH"]
    r = selected.expect("FETCH 1:3 FLAGS")
    assert r.untagged == ["* 1 FETCH (FLAGS (\\Deleted \\Recent))", "* 2 FETCH (FLAGS (\\Answered \\Recent))",
                          "* 3 FETCH (FLAGS (\\Deleted \\Recent))"]
    r = selected.expect("UID STORE 1:3 (UNCHANGEDSINCE 0) -FLAGS (\\Deleted)", "OK", "MODIFIED 1:3")
    assert r.untagged == []
    r = selected.expect("UID STORE 1 -FLAGS (\\Deleted)")
    assert r.untagged[0].startswith("* 1 FETCH (UID 1 FLAGS (\\Recent) MODSEQ (")
    selected.expect("STORE 1 (UNCHANGEDSINCE x) +FLAGS (\\Seen)", "BAD")


def test_search_modseq(selected):
    selected.expect("STORE 2 +FLAGS.SILENT (\\Seen)")
    r = selected.expect("FETCH 2 MODSEQ")
    m2 = modseq_of(r.untagged[-1])
    r = selected.expect('SEARCH MODSEQ "/flags/\\\\seen" all %d' % m2)
    assert r.untagged == ["* SEARCH 2 (MODSEQ %d)" % m2]
    assert selected.expect("UID SEARCH MODSEQ %d" % (m2 + 1)).untagged == ["* SEARCH"]
    r = selected.expect("SEARCH MODSEQ 1")
    assert r.untagged == ["* SEARCH 1 2 3 (MODSEQ %d)" % m2]
    selected.expect('SEARCH MODSEQ "/nonsense" all 1', "BAD")
    selected.expect('SEARCH MODSEQ "/flags/\\\\seen" mine 1', "BAD")


def test_status_highestmodseq(client, store):
    deliver(store, 2)
    r = client.expect("STATUS INBOX (MESSAGES HIGHESTMODSEQ)")
    top = int(re.search(r"HIGHESTMODSEQ (\d+)", r.untagged[0]).group(1))
    assert r.untagged == ['* STATUS "INBOX" (MESSAGES 2 HIGHESTMODSEQ %d)' % top]
    assert top == highest(client.expect("SELECT INBOX"))


def test_enable_qresync_turns_expunges_into_vanished(open_session, store):
    deliver(store, 4)
    a, b = two_logged_in(open_session, select=True)
    assert a.expect("ENABLE QRESYNC").untagged == ["* ENABLED QRESYNC", "* OK [HIGHESTMODSEQ %d] Highest"
                                                   % store.open_folder(ALICE, "INBOX").modseq]
    b.expect("STORE 2:3 +FLAGS.SILENT (\\Deleted)")
    b.expect("EXPUNGE")
    r = a.expect("FETCH 1 UID")                    # not during FETCH (RFC 3501 7.4.1)
    assert not any("VANISHED" in u for u in r.untagged)
    r = a.expect("NOOP")
    assert "* VANISHED 2:3" in r.untagged and not any("EXPUNGE" in u for u in r.untagged)
    a.expect("STORE 2 +FLAGS.SILENT (\\Deleted)")
    r = a.expect("EXPUNGE", "OK", None)
    assert r.untagged == ["* VANISHED 4"]
    assert highest(r) == store.open_folder(ALICE, "INBOX").modseq
    # the other session, CONDSTORE only: EXPUNGE as always
    assert b.expect("NOOP").untagged[0] == "* 2 EXPUNGE"


def test_qresync_select_after_another_session_changed_things(open_session, store):
    """Session a knows the folder at some modseq and goes away; b changes flags and
    expunges; a comes back with SELECT (QRESYNC ...) and gets exactly what vanished
    and what changed, then CLOSED when it selects again."""
    deliver(store, 6)
    a, b = two_logged_in(open_session, select=True)
    validity = uidvalidity(store)
    a.expect("ENABLE QRESYNC")
    top = highest(a.expect("SELECT INBOX"))
    a.expect("UNSELECT")
    b.expect("STORE 2 +FLAGS.SILENT (\\Flagged)")
    b.expect("STORE 3,5 +FLAGS.SILENT (\\Deleted)")
    b.expect("EXPUNGE")
    b.expect("UID STORE 6 +FLAGS.SILENT (\\Seen)")
    r = a.expect("SELECT INBOX (QRESYNC (%d %d))" % (validity, top))
    after = r.untagged[r.untagged.index([u for u in r.untagged if "HIGHESTMODSEQ" in u][0]) + 1:]
    assert [re.sub(r" MODSEQ \(\d+\)", "", u) for u in after] == [
        "* VANISHED (EARLIER) 3,5",
        "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))",
        "* 4 FETCH (UID 6 FLAGS (\\Seen \\Recent))"]
    assert all(modseq_of(u) > top for u in after[1:])
    # known-uids narrow it; CLOSED ends the previous mailbox's responses
    r = a.expect("EXAMINE INBOX (QRESYNC (%d %d 1:4))" % (validity, top))
    assert r.untagged[0] == "* OK [CLOSED] Previous mailbox closed"
    assert [re.sub(r" MODSEQ \(\d+\)", "", u) for u in r.untagged if "VANISHED" in u or "FETCH" in u] == [
        "* VANISHED (EARLIER) 3", "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))"]
    # another UIDVALIDITY: no resync, just the SELECT
    r = a.expect("SELECT INBOX (QRESYNC (%d %d))" % (validity + 1, top))
    assert not any("VANISHED" in u or "FETCH" in u for u in r.untagged)
    # UID FETCH ... (CHANGEDSINCE m VANISHED)
    r = a.expect("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % top)
    assert [re.sub(r" MODSEQ \(\d+\)", "", u) for u in r.untagged] == [
        "* VANISHED (EARLIER) 3,5",
        "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))",
        "* 4 FETCH (UID 6 FLAGS (\\Seen \\Recent))"]
    b.expect("LOGOUT")


def test_qresync_needs_enable_first(selected):
    selected.expect("SELECT INBOX (QRESYNC (1 1))", "BAD")
    selected.expect("SELECT INBOX (FOO)", "BAD")


def test_implicit_seen_says_the_new_modseq(selected):
    before = modseq_of(selected.expect("FETCH 1 MODSEQ").untagged[-1])
    r = selected.expect("FETCH 1 BODY[TEXT]")
    line = r.untagged[-1]
    assert "FLAGS (\\Seen \\Recent)" in line and modseq_of(line) > before
