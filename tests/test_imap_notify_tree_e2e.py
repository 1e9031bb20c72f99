"""End-to-end NOTIFY (RFC 5465), tree events and the limits: MailboxName and
SubscriptionChange as LIST responses, changes by another process, NOTIFICATIONOVERFLOW
and the drain, over raw sockets against a real MailService (notify_helpers.py)."""

import threading

import pytest

from clevermail.service import MailService
from conftest import make_config
from imap_helpers import ALICE, message
from notify_helpers import Raw, connect, deliver, svc  # noqa: F401

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
    tree changes through the watch of the user's root, a rename as a rename (OLDNAME),
    its subscription moved with it."""
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
    seen += a.expect('* LIST (\\HasNoChildren \\Subscribed) "/" "Away" ("OLDNAME" ("Elsewhere"))')
    other.delete_folder(ALICE, "Away")
    seen += a.expect('* LIST (\\NonExistent \\Subscribed) "/" "Away"')
    seen += a.cmd("NOOP")
    assert seen.count('* LIST (\\HasNoChildren) "/" "Elsewhere"') == 1      # said once
    # neither the rename nor the deletion is a creation or deletion of other names
    assert [line for line in seen if line.startswith("* LIST")] == [  # noqa
        '* LIST (\\HasNoChildren) "/" "Elsewhere"',
        '* LIST (\\HasNoChildren \\Subscribed) "/" "Elsewhere"',
        '* LIST (\\HasNoChildren \\Subscribed) "/" "Away" ("OLDNAME" ("Elsewhere"))',
        '* LIST (\\NonExistent \\Subscribed) "/" "Away"'], "\n".join(seen)


def test_a_second_service_renames_with_oldname(svc, tmp_path, thread_guard):
    """Two MailService instances on one data directory (as `[server] workers` runs
    them): a rename in one reaches a NOTIFY session of the other as a rename, its
    children with it (one LIST, as for a rename in the same process), a rename of a
    rename as one, and a creation and a deletion as themselves."""
    conf = make_config(tmp_path, imap={"listen": ["127.0.0.1:0"]},
                       limits={"auth_failure_delay": 0, "imap_timeout": 60})
    second = MailService(conf).start()
    try:
        a, b = Raw(svc.port("imap")), Raw(second.port("imap"))
        try:
            a.cmd("NOTIFY SET (personal (MailboxName))")
            b.cmd("CREATE Box/Child")
            a.expect('* LIST (\\HasNoChildren) "/" "Box/Child"', '* LIST (\\HasChildren) "/" "Box"')
            assert not [line for line in a.cmd("NOOP") if "OLDNAME" in line]
            b.cmd("RENAME Box Crate")
            assert a.line() == '* LIST (\\HasChildren) "/" "Crate" ("OLDNAME" ("Box"))'
            b.cmd("RENAME Crate/Child Crate/Kid")
            assert a.line() == '* LIST (\\HasNoChildren) "/" "Crate/Kid" ("OLDNAME" ("Crate/Child"))'
            # while `a` is busy with a command: two renames, one after the other
            a.send("t100 IDLE")
            assert a.line().startswith("+ ")
            b.cmd("CREATE Gone")
            a.expect('* LIST (\\HasNoChildren) "/" "Gone"')
            b.cmd("DELETE Gone")
            a.expect('* LIST (\\NonExistent) "/" "Gone"')
            a.send("DONE")
            assert a.line().startswith("t100 OK")
            second.store.rename_folder(ALICE, "Crate", "Chest")
            second.store.rename_folder(ALICE, "Chest", "Trunk")
            seen = a.cmd("NOOP") + a.cmd("NOOP")
            seen = [line for line in seen if line.startswith("* LIST")]
            # one look (the usual) or one for each
            assert seen in (['* LIST (\\HasChildren) "/" "Trunk" ("OLDNAME" ("Crate"))'],
                            ['* LIST (\\HasChildren) "/" "Chest" ("OLDNAME" ("Crate"))',
                             '* LIST (\\HasChildren) "/" "Trunk" ("OLDNAME" ("Chest"))']), seen
            assert [line for line in a.cmd('LIST "" "*"') if "Trunk" in line or "Crate" in line] == [
                '* LIST (\\HasChildren) "/" "Trunk"', '* LIST (\\HasNoChildren) "/" "Trunk/Kid"']
        finally:
            a.close()
            b.close()
    finally:
        second.stop()


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
