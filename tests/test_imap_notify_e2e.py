"""End-to-end NOTIFY (RFC 5465), the command and the message events: raw sockets
(exact untagged responses) against a real MailService, two sessions of one user and
SMTP delivery (notify_helpers.py says how the waits are read)."""

import pytest

from imap_helpers import message
from notify_helpers import connect, deliver, smtp_deliver, svc, uidvalidity  # noqa: F401

pytestmark = pytest.mark.e2e


# -- the command --------------------------------------------------------------------------
def test_capability_and_bad_arguments(connect):
    a = connect()
    assert "NOTIFY" in a.cmd("CAPABILITY")[0].split()
    a.cmd("NOTIFY", "BAD")
    a.cmd("NOTIFY SET", "BAD")
    a.cmd("NOTIFY SET (personal)", "BAD")
    a.cmd("NOTIFY SET (selected MailboxName)", "BAD")
    a.cmd("NOTIFY SET (selected (MessageNew))", "BAD")
    a.cmd("NOTIFY SET (selected (FlagChange))", "BAD")
    a.cmd("NOTIFY SET (selected (MessageNew MessageExpunge)) (selected-delayed NONE)", "BAD")
    a.cmd("NOTIFY SET (personal (MessageNew (UID) MessageExpunge))", "BAD")
    a.cmd("NOTIFY SET (subtree () (MessageNew MessageExpunge))", "BAD")
    a.cmd("NOTIFY SET (personal (AnnotationChange))", "NO")
    assert a.tagged.split(" ", 2)[2].startswith(
        "[BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)]")
    a.cmd("NOTIFY SET (personal (MessageNew MessageExpunge ServerMetadataChange))", "NO")
    a.cmd("NOTIFY NONE")
    a.cmd("NOTIFY NONE extra", "BAD")


def test_set_status_sends_the_first_status(connect, svc):
    a = connect()
    a.cmd("CREATE Lists")
    a.cmd("CREATE Lists/Lemonade")
    deliver(svc, 1)
    v_inbox, v_lists = uidvalidity(a, "INBOX"), uidvalidity(a, "Lists/Lemonade")
    lines = a.cmd("NOTIFY SET STATUS (subtree Lists (MessageNew MessageExpunge)) "
                  "(mailboxes INBOX (MessageNew MessageExpunge FlagChange))")
    assert lines == [
        f"* STATUS \"INBOX\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY {v_inbox} HIGHESTMODSEQ 2 UNSEEN 1)",
        f"* STATUS \"Lists\" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY {uidvalidity(a, 'Lists')} UNSEEN 0)",
        f"* STATUS \"Lists/Lemonade\" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY {v_lists} UNSEEN 0)"]
    # without STATUS, none; the selected mailbox is never among them
    assert a.cmd("NOTIFY SET (subtree Lists (MessageNew MessageExpunge))") == []
    a.cmd("SELECT Lists")
    lines = a.cmd("NOTIFY SET STATUS (subtree Lists (MessageNew MessageExpunge))")
    assert lines == [f"* STATUS \"Lists/Lemonade\" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY {v_lists} UNSEEN 0)"]


# -- message events of other mailboxes: STATUS ---------------------------------------------
def test_status_for_smtp_delivery_expunge_and_flags(connect, svc):
    a, b = connect(), connect()
    v = uidvalidity(a, "INBOX")
    a.cmd("NOTIFY SET (personal (MessageNew MessageExpunge FlagChange))")
    smtp_deliver(svc, 1)
    a.expect('* STATUS "INBOX" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)')
    b.cmd("SELECT INBOX")
    b.cmd("STORE 1 +FLAGS (\\Seen)")
    a.expect(f'* STATUS "INBOX" (UIDVALIDITY {v} UNSEEN 0)')
    # a flag change that leaves UNSEEN as it was says nothing without CONDSTORE (5.1)
    b.cmd("STORE 1 +FLAGS (\\Flagged)")
    assert a.cmd("NOOP") == []
    b.cmd("STORE 1 +FLAGS (\\Deleted)")
    b.cmd("EXPUNGE")
    a.expect('* STATUS "INBOX" (MESSAGES 0 UIDNEXT 2 UNSEEN 0)')


def test_status_with_condstore_carries_highestmodseq(connect, svc):
    a, b = connect(), connect()
    v = uidvalidity(a, "INBOX")
    a.cmd("ENABLE CONDSTORE")
    a.cmd("NOTIFY SET (personal (MessageNew MessageExpunge FlagChange))")
    deliver(svc, 1)
    a.expect('* STATUS "INBOX" (MESSAGES 1 UIDNEXT 2 UNSEEN 1 HIGHESTMODSEQ 2)')
    b.cmd("SELECT INBOX")
    b.cmd("STORE 1 +FLAGS (\\Flagged)")
    a.expect(f'* STATUS "INBOX" (UIDVALIDITY {v} UNSEEN 1 HIGHESTMODSEQ 3)')


def test_only_the_events_asked(connect, svc):
    """MessageNew alone for INBOX: a flag change or an expunge there says nothing."""
    a, b = connect(), connect()
    deliver(svc, 1)
    a.cmd("NOTIFY SET (mailboxes INBOX (MessageNew))")
    b.cmd("SELECT INBOX")
    b.cmd("STORE 1 +FLAGS (\\Seen \\Deleted)")
    b.cmd("EXPUNGE")
    assert a.cmd("NOOP") == []
    deliver(svc, 2)
    a.expect('* STATUS "INBOX" (MESSAGES 1 UIDNEXT 3 UNSEEN 1)')


def test_a_flag_change_that_leaves_unseen_says_nothing_from_the_start(connect, svc):
    """Without CONDSTORE a FlagChange STATUS is said only when UNSEEN moved: also for
    the first flag change after NOTIFY SET without STATUS (no count said yet; a
    \\Flagged was said as `STATUS "INBOX" (UIDVALIDITY v UNSEEN 1)`)."""
    a, b = connect(), connect()
    deliver(svc, 1)
    v = uidvalidity(a, "INBOX")
    a.cmd("NOTIFY SET (personal (MessageNew MessageExpunge FlagChange))")
    b.cmd("SELECT INBOX")
    b.cmd("STORE 1 +FLAGS (\\Flagged)")
    assert a.cmd("NOOP") == []
    b.cmd("STORE 1 +FLAGS (\\Seen)")
    a.expect(f'* STATUS "INBOX" (UIDVALIDITY {v} UNSEEN 0)')


def test_changes_made_while_selected_are_no_status_afterwards(connect, svc):
    """The session's own flag changes in its selected INBOX (told as FETCH) come as no
    STATUS once it selects another mailbox; another session's change after that does."""
    a, b = connect(), connect()
    deliver(svc, 1)
    deliver(svc, 2)
    v = uidvalidity(a, "INBOX")
    a.cmd("CREATE Other")
    a.cmd("NOTIFY SET (selected (MessageNew MessageExpunge FlagChange)) "
          "(personal (MessageNew MessageExpunge FlagChange))")
    a.cmd("SELECT INBOX")
    # pipelined: the session does not wait (nor look at INBOX's watch) between them
    a.send("p1 STORE 1 +FLAGS (\\Seen)\r\np2 STORE 2 +FLAGS (\\Flagged)\r\np3 SELECT Other")
    lines = [a.line()]
    while not lines[-1].startswith("p3 "):
        lines.append(a.line())
    assert lines[:4] == ["* 1 FETCH (FLAGS (\\Seen \\Recent))", "p1 OK STORE completed",
                         "* 2 FETCH (FLAGS (\\Flagged \\Recent))", "p2 OK STORE completed"]
    assert lines[-1].startswith("p3 OK") and not [line for line in lines if "STATUS" in line]
    assert a.cmd("NOOP") == []
    b.cmd("SELECT INBOX")
    b.cmd("STORE 2 +FLAGS (\\Seen)")
    a.expect(f'* STATUS "INBOX" (UIDVALIDITY {v} UNSEEN 0)')


def test_status_during_idle(connect, svc):
    a = connect()
    a.cmd("CREATE Lists")
    a.cmd("NOTIFY SET (subtree Lists (MessageNew MessageExpunge))")
    a.send("i1 IDLE")
    assert a.line() == "+ idling"
    b = connect()
    b.cmd("APPEND Lists {%d+}\r\n%s" % (len(message(1)), message(1).decode()))
    a.expect('* STATUS "Lists" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)')
    a.send("DONE")
    assert a.line() == "i1 OK IDLE terminated"


def test_subscribed_and_mailboxes_specifiers(connect, svc):
    a, b = connect(), connect()
    for name in ("Sub", "Other"):
        a.cmd(f"CREATE {name}")
    a.cmd("SUBSCRIBE Sub")
    a.cmd("NOTIFY SET (subscribed (MessageNew MessageExpunge)) (mailboxes Other (MessageNew MessageExpunge))")
    for name in ("Sub", "Other", "INBOX"):
        b.cmd("APPEND %s {%d+}\r\n%s" % (name, len(message(1)), message(1).decode()))
    seen = a.expect('* STATUS "Sub" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)',
                    '* STATUS "Other" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)')
    assert a.cmd("NOOP") == [] and not any('"INBOX"' in line for line in seen)
    # subscribing a mailbox puts it under the subscribed group
    b.cmd("SUBSCRIBE INBOX")
    v = uidvalidity(b, "INBOX")
    a.expect(f'* STATUS "INBOX" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY {v} UNSEEN 1)')
    deliver(svc, 2)
    a.expect('* STATUS "INBOX" (MESSAGES 2 UIDNEXT 3 UNSEEN 2)')


def test_subtree_takes_in_a_mailbox_created_later(connect, svc):
    a, b = connect(), connect()
    a.cmd("CREATE Lists")
    a.cmd("NOTIFY SET (subtree Lists (MessageNew MessageExpunge))")
    b.cmd("CREATE Lists/New")
    v = uidvalidity(b, "Lists/New")
    # a mailbox come into scope: its counters first (its UIDVALIDITY is new to the client)
    a.expect(f'* STATUS "Lists/New" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY {v} UNSEEN 0)')
    b.cmd("APPEND Lists/New {%d+}\r\n%s" % (len(message(1)), message(1).decode()))
    a.expect('* STATUS "Lists/New" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)')


def test_a_mailbox_created_again_says_its_new_uidvalidity(connect, svc):
    a, b = connect(), connect()
    a.cmd("CREATE Box")
    a.cmd("NOTIFY SET (mailboxes Box (MessageNew MessageExpunge FlagChange))")
    b.cmd("DELETE Box")
    b.cmd("CREATE Box")
    v = uidvalidity(b, "Box")
    a.expect(f'* STATUS "Box" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY {v} UNSEEN 0)')


# -- the selected mailbox --------------------------------------------------------------------
def test_selected_new_flags_expunge_with_fetch_attributes(connect, svc):
    a, b = connect(), connect()
    a.cmd("SELECT INBOX")
    a.cmd("NOTIFY SET (selected (MessageNew (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)]) "
          "MessageExpunge FlagChange))")
    smtp_deliver(svc, 1)
    seen = a.expect("* 1 EXISTS", "* 1 RECENT",
                    "* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] {22}\r\n"
                    "Subject: message 1\r\n\r\n)")
    assert seen[0] == "* 1 EXISTS"
    b.cmd("SELECT INBOX")
    b.cmd("STORE 1 +FLAGS (\\Seen)")
    a.expect("* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent))")
    b.cmd("STORE 1 +FLAGS (\\Deleted)")
    a.expect("* 1 FETCH (UID 1 FLAGS (\\Seen \\Deleted \\Recent))")
    b.cmd("EXPUNGE")
    a.expect("* 1 EXPUNGE")
    assert a.cmd("NOOP") == []


def test_selected_with_qresync_says_vanished(connect, svc):
    a, b = connect(), connect()
    deliver(svc, 1)
    deliver(svc, 2)
    a.cmd("ENABLE QRESYNC")
    a.cmd("SELECT INBOX")
    a.cmd("NOTIFY SET (selected (MessageNew MessageExpunge))")
    b.cmd("SELECT INBOX")
    b.cmd("STORE 1 +FLAGS (\\Deleted)")
    b.cmd("EXPUNGE")
    a.expect("* VANISHED 1")
    # no FlagChange asked: another session's flags are not said
    b.cmd("STORE 1 +FLAGS (\\Seen)")
    assert a.cmd("NOOP") == []


def test_selected_delayed_holds_expunges_for_a_command(connect, svc):
    a, b = connect(), connect()
    deliver(svc, 1)
    a.cmd("SELECT INBOX")
    a.cmd("NOTIFY SET (selected-delayed (MessageNew MessageExpunge))")
    b.cmd("SELECT INBOX")
    b.cmd("STORE 1 +FLAGS (\\Deleted)")
    b.cmd("EXPUNGE")
    deliver(svc, 2)
    a.expect("* 2 EXISTS", "* 2 RECENT")    # the EXPUNGE waits: the numbers held stay
    assert a.cmd("FETCH 1 (UID)") == ["* 1 FETCH (UID 1)"]
    assert a.cmd("NOOP") == ["* 1 EXPUNGE"]


def test_without_a_selected_group_the_selected_mailbox_says_nothing(connect, svc):
    a = connect()
    a.cmd("SELECT INBOX")
    a.cmd("NOTIFY SET (personal (MessageNew MessageExpunge))")
    deliver(svc, 1)
    assert a.cmd("NOOP") == []          # neither STATUS (it is selected) nor EXISTS
    a.cmd("NOTIFY NONE")
    deliver(svc, 2)
    assert a.cmd("NOOP") == []


def test_notify_set_returns_what_had_accumulated(connect, svc):
    a = connect()
    a.cmd("SELECT INBOX")
    deliver(svc, 1)
    assert a.cmd("NOTIFY SET (personal (MailboxName))") == ["* 1 EXISTS", "* 1 RECENT"]


def test_no_fetch_attributes_for_the_sessions_own_append(connect, svc):
    a = connect()
    a.cmd("SELECT INBOX")
    a.cmd("NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge))")
    lines = a.cmd("APPEND INBOX {%d+}\r\n%s" % (len(message(1)), message(1).decode()))
    assert lines == ["* 1 EXISTS", "* 1 RECENT"]     # no FETCH: the client made it (5.2)
    deliver(svc, 2)
    a.expect("* 2 EXISTS", "* 2 RECENT", "* 2 FETCH (UID 2 FLAGS (\\Recent))")


def test_the_selected_group_follows_select(connect, svc):
    """SELECTED means whichever mailbox is selected; the others get STATUS."""
    a = connect()
    a.cmd("CREATE Other")
    a.cmd("NOTIFY SET (selected (MessageNew MessageExpunge)) (personal (MessageNew MessageExpunge))")
    a.cmd("SELECT INBOX")
    deliver(svc, 1)
    seen = a.expect("* 1 EXISTS", "* 1 RECENT")
    assert not any(line.startswith("* STATUS") for line in seen)
    a.cmd("SELECT Other")
    deliver(svc, 2)
    a.expect('* STATUS "INBOX" (MESSAGES 2 UIDNEXT 3 UNSEEN 2)')
    a.cmd("UNSELECT")
    deliver(svc, 3)
    a.expect('* STATUS "INBOX" (MESSAGES 3 UIDNEXT 4 UNSEEN 3)')


# -- contexts with NOTIFY (RFC 5465 7) --------------------------------------------------------
def test_context_fetch_atts_for_mail_arriving_over_smtp(connect, svc):
    """SEARCH RETURN (COUNT UPDATE (fetch-att ...)) as in RFC 5465 7: a message that
    arrives between commands and matches is said as EXISTS, then its FETCH, then the
    ADDTO; one that does not match gets only EXISTS (no FETCH: NOTIFY asks none)."""
    a = connect()
    a.cmd("SELECT INBOX")
    a.cmd("NOTIFY SET (selected (MessageNew MessageExpunge))")
    assert a.cmd('SEARCH RETURN (COUNT UPDATE (UID BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)])) '
                 'SUBJECT "message 2"') == [f'* ESEARCH (TAG "t{a.n}") COUNT 0']
    tag = f"t{a.n}"
    smtp_deliver(svc, 1)
    assert [a.line() for _ in range(2)] == ["* 1 EXISTS", "* 1 RECENT"]
    smtp_deliver(svc, 2)
    assert [a.line() for _ in range(4)] == [
        "* 2 EXISTS", "* 2 RECENT",
        "* 2 FETCH (UID 2 BODY[HEADER.FIELDS (FROM SUBJECT)] {47}\r\n"
        "From: carol@remote.test\r\nSubject: message 2\r\n\r\n)",
        f'* ESEARCH (TAG "{tag}") ADDTO (0 2)']
    a.cmd(f'CANCELUPDATE "{tag}"')
    smtp_deliver(svc, 2)
    assert [a.line() for _ in range(2)] == ["* 3 EXISTS", "* 3 RECENT"]
    assert a.cmd("NOOP") == []
