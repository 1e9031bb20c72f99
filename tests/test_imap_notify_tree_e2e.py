"""End-to-end NOTIFY (RFC 5465), tree events and the limits: MailboxName and
SubscriptionChange as LIST responses, changes by another process, NOTIFICATIONOVERFLOW
and the drain, over raw sockets against a real MailService (notify_helpers.py)."""

import threading

import pytest

from imap_helpers import ALICE, message
from notify_helpers import connect, deliver, svc  # noqa: F401

pytestmark = pytest.mark.e2e


# -- mailbox names and subscriptions: LIST ---------------------------------------------------
def test_mailbox_name_events(connect):
    a, b = connect(), connect()
    a.cmd("NOTIFY SET (personal (MailboxName))")
    b.cmd("CREATE Box")
    a.expect('* LIST (\\HasNoChildren) "/" "Box"')
    b.cmd("CREATE Box/Child")
    a.expect('* LIST (\\HasNoChildren) "/" "Box/Child"', '* LIST (\\HasChildren) "/" "Box"')
    b.cmd("RENAME Box Crate")
    a.expect('* LIST (\\HasChildren) "/" "Crate" ("OLDNAME" ("Box"))')
    b.cmd("DELETE Crate/Child")
    a.expect('* LIST (\\NonExistent) "/" "Crate/Child"', '* LIST (\\HasNoChildren) "/" "Crate"')
    # the session's own changes are not told back (RFC 5465 5)
    assert a.cmd("CREATE Mine") == []
    assert a.cmd("NOOP") == []


def test_subscription_change_events(connect):
    a, b = connect(), connect()
    a.cmd("CREATE Box")
    a.cmd("NOTIFY SET (personal (SubscriptionChange))")
    b.cmd("SUBSCRIBE Box")
    a.expect('* LIST (\\HasNoChildren \\Subscribed) "/" "Box"')
    b.cmd("UNSUBSCRIBE Box")
    a.expect('* LIST (\\HasNoChildren) "/" "Box"')
    b.cmd("CREATE Quiet")           # MailboxName not asked
    assert a.cmd("NOOP") == []


def test_changes_by_another_process_are_found(connect, svc, tmp_path):
    """Another MailStore over the same data directory stands for another process (a
    worker, the CLI): its delivery reaches the session through the folder watcher, its
    tree changes through the watch of the user's root; a rename there is a deletion
    and a creation (its details are this process's events only)."""
    from clevermail.store import MailStore
    a = connect()
    a.cmd("NOTIFY SET (personal (MessageNew MessageExpunge MailboxName SubscriptionChange))")
    other = MailStore(tmp_path / "data")
    other.deliver_local("", [ALICE], message(1))
    a.expect('* STATUS "INBOX" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)')
    other.create_folder(ALICE, "Elsewhere")
    seen = a.expect('* LIST (\\HasNoChildren) "/" "Elsewhere"')
    other.subscribe(ALICE, "Elsewhere")
    seen += a.expect('* LIST (\\HasNoChildren \\Subscribed) "/" "Elsewhere"')
    other.rename_folder(ALICE, "Elsewhere", "Away")
    seen += a.expect('* LIST (\\NonExistent) "/" "Elsewhere"',
                     '* LIST (\\HasNoChildren \\Subscribed) "/" "Away"')
    seen += a.cmd("NOOP")
    assert seen.count('* LIST (\\HasNoChildren) "/" "Elsewhere"') == 1      # said once


# -- NOTIFICATIONOVERFLOW ------------------------------------------------------------------
def test_too_many_mailboxes_and_overflow(connect, svc, monkeypatch):
    from clevermail.imap import notify
    monkeypatch.setattr(notify, "MAX_WATCHED", 3)
    a, b = connect(), connect()
    for name in ("One", "Two", "Three"):
        a.cmd(f"CREATE {name}")
    a.cmd("NOTIFY SET (personal (MessageNew MessageExpunge))", "NO")
    assert "[NOTIFICATIONOVERFLOW]" in a.tagged
    a.cmd("NOTIFY SET (subtree (One Two Three) (MessageNew MessageExpunge)) (personal (MailboxName))")
    b.cmd("CREATE Four")
    b.cmd("CREATE One/More")
    line = a.expect('* LIST (\\HasNoChildren) "/" "One/More"')[-1]
    line = a.line()
    while not line.startswith("* OK [NOTIFICATIONOVERFLOW]"):
        line = a.line()
    # as after NOTIFY NONE: nothing more
    deliver(svc, 1)
    b.cmd("CREATE Five")
    assert a.cmd("NOOP") == []


def test_a_stopping_server_says_bye_to_a_notify_session(connect, svc):
    """Waiting with NOTIFY set is waiting for a command: the drain reaches it at once."""
    a = connect()
    a.cmd("SELECT INBOX")
    a.cmd("NOTIFY SET (selected (MessageNew MessageExpunge)) (personal (MailboxName))")
    stopper = threading.Thread(target=svc.stop, kwargs={"drain": 30})
    stopper.start()
    assert a.line() == "* BYE Server shutting down"
    stopper.join(30)
    assert not stopper.is_alive()
