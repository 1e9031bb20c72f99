"""NOTIFY's arguments (imap/notify_spec.py, RFC 5465 3.1, 5, 6, 8): pure."""

import pytest

from clevermail.imap.notify_spec import (FLAG_CHANGE, MAILBOX_NAME, MAILBOXES, MESSAGE_EXPUNGE,
                                         MESSAGE_NEW, PERSONAL, SUBSCRIBED, SUBSCRIPTION_CHANGE,
                                         SUBTREE, Group, NotifySpec, parse_notify)
from clevermail.imap.parser import parse_command
from clevermail.imap.replies import IMAPBad, IMAPNo


def parse(text):
    return parse_notify(parse_command(b"a NOTIFY " + text.encode(), None, 0).args)


def test_none_is_the_empty_spec():
    assert parse("NONE") == NotifySpec()
    assert parse("none").wants == set()


def test_the_rfc_example():
    """RFC 5465 3.1's example, with its events as lists (8: events are a list or NONE)."""
    spec = parse("SET STATUS (selected (MessageNew (uid body.peek[header.fields (from to subject)]) "
                 "MessageExpunge)) (subtree Lists (MessageNew MessageExpunge))")
    assert spec.status and not spec.delayed and spec.selected == {MESSAGE_NEW, MESSAGE_EXPUNGE}
    assert spec.fetch == ["uid", "body.peek[header.fields (from to subject)]"]
    with pytest.raises(IMAPBad):        # the example's bare "MessageNew"
        parse("SET (subtree Lists MessageNew)")


def test_set_parses_every_filter():
    spec = parse("SET STATUS (selected-delayed (MessageNew (UID FLAGS) MessageExpunge FlagChange)) "
                 "(subtree Lists (MessageNew MessageExpunge)) (mailboxes (misc inbox) (FlagChange)) "
                 "(inboxes (MailboxName)) (personal NONE) (subscribed (subscriptionchange))")
    assert spec.status and spec.delayed
    assert spec.selected == {MESSAGE_NEW, MESSAGE_EXPUNGE, FLAG_CHANGE}
    assert spec.fetch == ["UID", "FLAGS"]
    assert spec.groups == (
        Group(SUBTREE, ("Lists",), frozenset({MESSAGE_NEW, MESSAGE_EXPUNGE})),
        Group(MAILBOXES, ("misc", "INBOX"), frozenset({FLAG_CHANGE})),
        Group(PERSONAL, (), frozenset({MAILBOX_NAME})),       # INBOXES is PERSONAL here
        Group(PERSONAL, (), frozenset()),
        Group(SUBSCRIBED, (), frozenset({SUBSCRIPTION_CHANGE})))


def test_events_for_a_name_join_every_group_that_covers_it():
    spec = parse("SET (subtree Lists (MessageNew MessageExpunge)) (mailboxes Lists/a (FlagChange)) "
                 "(subscribed (MailboxName))")
    assert spec.events_for("Lists/a", set()) == {MESSAGE_NEW, MESSAGE_EXPUNGE, FLAG_CHANGE}
    assert spec.events_for("Lists", {"Lists"}) == {MESSAGE_NEW, MESSAGE_EXPUNGE, MAILBOX_NAME}
    assert spec.events_for("Listsx", set()) == set()      # a subtree is whole levels
    assert spec.events_for("Other", set()) == set()


def test_mailboxes_takes_no_wildcards():
    spec = parse("SET (mailboxes * (MessageNew MessageExpunge))")
    assert spec.events_for("*", set()) and not spec.events_for("INBOX", set())


def test_lone_events_for_other_mailboxes_are_accepted():
    """imaptest's notify group asks these; they are STATUS responses (module doc)."""
    for events in ("MessageExpunge", "MessageNew", "FlagChange"):
        assert parse(f"SET STATUS (mailboxes box ({events}))").groups[0].events == {events}


@pytest.mark.parametrize("text", [
    "", "SET", "SET STATUS", "FOO", "NONE x", "SET x", "SET (personal)", "SET ()",
    "SET (personal ())", "SET (personal (MessageNew) x)", "SET (subtree (MessageNew))",
    "SET (subtree () (MessageNew))", "SET (mailboxes (a (b)) (MessageNew))",
    "SET (unknown (MessageNew))", "SET (personal (\"MessageNew\"))",
    "SET (selected MailboxName)", "SET (selected (MailboxName))",
    "SET (selected (MessageNew))", "SET (selected (MessageExpunge))",
    "SET (selected (FlagChange))", "SET (selected (MessageNew MessageExpunge) x)",
    "SET (selected NONE) (selected-delayed NONE)",
    "SET (personal (MessageNew (UID) MessageExpunge))",
    "SET (selected (MessageNew (NOSUCHITEM) MessageExpunge))",
])
def test_bad_arguments(text):
    with pytest.raises(IMAPBad):
        parse(text)


@pytest.mark.parametrize("event", ["AnnotationChange", "MailboxMetadataChange",
                                   "ServerMetadataChange", "SomethingNew"])
def test_unsupported_events_are_no_badevent(event):
    with pytest.raises(IMAPNo) as info:
        parse(f"SET (personal (MessageNew MessageExpunge {event}))")
    assert info.value.code == ("BADEVENT (MessageNew MessageExpunge FlagChange MailboxName "
                               "SubscriptionChange)")


def test_too_many_names():
    names = " ".join(f"n{i}" for i in range(1001))
    with pytest.raises(IMAPNo) as info:
        parse(f"SET (mailboxes ({names}) (MessageNew))")
    assert info.value.code == "NOTIFICATIONOVERFLOW"
