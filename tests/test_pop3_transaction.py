"""Tests for the TRANSACTION state of clevermail.pop3.session (RFC 1939 5) over
socket.socketpair(): STAT, LIST, UIDL, RETR (sizes exact, \\Seen set) and TOP, DELE,
RSET and QUIT's UPDATE state (nothing deleted by a dropped connection or a timeout),
the maildrop lock (in use), a stable snapshot and UIDL while mail arrives or IMAP
expunges, and pipelined commands."""

import fcntl
import os

from clevermail.pop3 import handler as pop3_handler

from fakes import RETURN_PATH
from pop3_helpers import ALICE, BOB, PASSWORD, message
from pop3_session_helpers import b64, deliver, handler, inbox, open_session, store  # noqa: F401 (fixtures)


# -- TRANSACTION ---------------------------------------------------------------------
def test_stat_list_uidl(open_session, store):
    deliver(store, 3)
    folder = inbox(store)
    entries = [folder.by_uid[u] for u in folder.uids]
    c = open_session()
    c.login()
    total = sum(e.wsize for e in entries)
    c.expect("STAT", f"+OK 3 {total}")
    assert c.cmd("LIST") == f"+OK 3 messages ({total} octets)".encode()
    assert c.block() == [f"{i} {e.wsize}".encode() for i, e in enumerate(entries, 1)]
    c.expect("LIST 2", f"+OK 2 {entries[1].wsize}")
    c.expect("LIST 4", "-ERR no such message 4, only 3 in maildrop")
    c.expect("LIST 0", "-ERR no such message 0, only 3 in maildrop")
    assert c.cmd("UIDL") == b"+OK unique-id listing follows"
    uidls = [f"{folder.uidvalidity}.{e.uid}" for e in entries]
    assert c.block() == [f"{i} {u}".encode() for i, u in enumerate(uidls, 1)]
    c.expect("UIDL 3", f"+OK 3 {uidls[2]}")
    c.expect("NOOP", "+OK")


def test_list_and_uidl_leave_out_marked_messages(open_session, store):
    deliver(store, 4)
    folder = inbox(store)
    entries = [folder.by_uid[u] for u in folder.uids]
    c = open_session()
    c.login()
    c.expect("DELE 1", "+OK*")
    c.expect("DELE 3", "+OK*")
    c.cmd("LIST")
    assert c.block() == [f"{i} {entries[i - 1].wsize}".encode() for i in (2, 4)]
    assert c.cmd("UIDL") == b"+OK unique-id listing follows"
    assert c.block() == [f"{i} {folder.uidvalidity}.{entries[i - 1].uid}".encode() for i in (2, 4)]


def test_sizes_are_exactly_what_retr_sends(open_session, store):
    body = "line\r\n.dot line\r\n..two dots\r\n\r\n.\r\nend\r\n"
    store.deliver_local("", [ALICE], message(1, body))
    c = open_session()
    c.login()
    size = int(c.cmd("LIST 1").split()[2])
    assert c.cmd("RETR 1") == f"+OK {size} octets".encode()
    raw = c.raw_block()
    wire = RETURN_PATH + message(1, body)
    assert raw == wire.replace(b"\r\n.", b"\r\n..") + b".\r\n"
    assert len(wire) == size


def test_retr_marks_seen_top_does_not(open_session, store):
    deliver(store, 2)
    c = open_session()
    c.login()
    assert c.cmd("TOP 1 0") == b"+OK top of message follows"
    assert c.raw_block() == RETURN_PATH + message(1).split(b"\r\n\r\n")[0] + b"\r\n\r\n.\r\n"
    assert c.cmd("TOP 2 5") == b"+OK top of message follows"
    assert c.raw_block() == RETURN_PATH + message(2) + b".\r\n"
    c.cmd("RETR 2")
    assert c.raw_block() == RETURN_PATH + message(2) + b".\r\n"
    c.expect("NOOP", "+OK")      # the flag is stored after the message was sent
    folder = inbox(store)
    first, second = (folder.by_uid[u] for u in folder.uids)
    assert "S" not in first.flags and "S" in second.flags


def test_dele_rset_quit(open_session, store):
    deliver(store, 3)
    folder = store.open_folder(ALICE, "INBOX")   # an IMAP-like session holding the INBOX
    try:
        uids, modseq = list(folder.uids), folder.modseq
        c = open_session()
        c.login()
        size = [folder.by_uid[u].wsize for u in uids]
        c.expect("DELE 1", "+OK message 1 deleted")
        c.expect("DELE 1", "-ERR message 1 already deleted")
        c.expect("RETR 1", "-ERR message 1 already deleted")
        c.expect("TOP 1 0", "-ERR message 1 already deleted")
        c.expect("LIST 1", "-ERR message 1 already deleted")
        c.expect("STAT", f"+OK 2 {size[1] + size[2]}")
        assert c.cmd("LIST") == f"+OK 2 messages ({size[1] + size[2]} octets)".encode()
        assert c.block() == [f"2 {size[1]}".encode(), f"3 {size[2]}".encode()]
        c.expect("RSET", f"+OK maildrop has 3 messages ({sum(size)} octets)")
        c.expect("DELE 2", "+OK message 2 deleted")
        c.expect("DELE 3", "+OK message 3 deleted")
        assert folder.uids == uids           # marks only, until QUIT
        c.expect("QUIT", "+OK CleverMail POP3 server signing off (1 messages left)")
        assert c.line() == b""
        assert folder.uids == uids[:1]
        assert folder.changes_since(modseq) == (uids[1:], [])
        assert len(os.listdir(os.path.join(folder.path, "new"))) + len(os.listdir(os.path.join(folder.path, "cur"))) == 1
    finally:
        store.release_folder(folder)


def test_dropped_connection_deletes_nothing(open_session, store):
    deliver(store, 2)
    c = open_session()
    c.login()
    c.expect("DELE 1", "+OK*")
    c.expect("DELE 2", "+OK*")
    c.close()
    c.wait_closed()
    assert len(inbox(store)) == 2
    c2 = open_session()
    c2.expect(f"USER {ALICE}", "+OK*")
    c2.expect(f"PASS {PASSWORD}", f"+OK {ALICE} has 2 messages*")   # the lock was released


def test_idle_timeout_deletes_nothing(open_session, store):
    deliver(store, 1)
    c = open_session(timeout=0.3)
    c.login()
    c.expect("DELE 1", "+OK*")
    assert c.line() == b"-ERR autologout: idle for too long, no messages deleted"
    assert c.line() == b""
    c.wait_closed()
    assert len(inbox(store)) == 1


def test_second_session_gets_in_use(open_session, store):
    deliver(store, 1)
    first = open_session()
    first.login()
    second = open_session()
    second.expect(f"USER {ALICE}", "+OK*")
    second.expect(f"PASS {PASSWORD}", "-ERR [IN-USE] maildrop already locked by another POP3 session")
    second.expect("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORD}"), "-ERR [IN-USE]*")
    third = open_session()
    third.login(BOB)                       # other accounts are not affected
    first.expect("QUIT", "+OK*")
    first.wait_closed()
    second.login()


def test_lock_held_by_another_process_gives_in_use(open_session, handler):
    root = handler.store.ensure_user(ALICE)
    # another process's lock: an flock on a separate open file description
    fd = os.open(os.path.join(root, pop3_handler.LOCK_NAME), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        c = open_session()
        c.expect(f"USER {ALICE}", "+OK*")
        c.expect(f"PASS {PASSWORD}", "-ERR [IN-USE]*")
        assert ALICE not in handler._held
    finally:
        os.close(fd)
    c.login()


def test_snapshot_is_stable_while_mail_arrives(open_session, store):
    deliver(store, 2)
    c = open_session()
    c.login()
    stat = c.cmd("STAT")
    c.cmd("UIDL")
    uidl = c.block()
    deliver(store, 3)
    inbox(store)                           # someone syncs the shared folder meanwhile
    assert c.cmd("STAT") == stat
    c.cmd("UIDL")
    assert c.block() == uidl
    c.expect("RETR 3", "-ERR no such message 3, only 2 in maildrop")
    c.expect("QUIT", "+OK*")
    c.wait_closed()
    c2 = open_session()
    c2.expect(f"USER {ALICE}", "+OK*")
    c2.expect(f"PASS {PASSWORD}", f"+OK {ALICE} has 5 messages*")


def test_uidl_stable_across_sessions(open_session, store):
    deliver(store, 3)
    c = open_session()
    c.login()
    c.cmd("UIDL")
    before = [line.split()[1] for line in c.block()]
    c.expect("DELE 1", "+OK*")
    c.expect("QUIT", "+OK*")
    c.wait_closed()
    deliver(store, 1)
    c2 = open_session()
    c2.login()
    c2.cmd("UIDL")
    after = [line.split()[1] for line in c2.block()]
    assert after[:2] == before[1:]
    assert after[2] not in before           # a new message never reuses a value
    folder = inbox(store)
    assert after == [f"{folder.uidvalidity}.{u}".encode() for u in folder.uids]


def test_message_expunged_by_imap_during_session(open_session, store):
    deliver(store, 3)
    c = open_session()
    c.login()
    folder = store.open_folder(ALICE, "INBOX")
    try:
        folder.expunge([folder.uids[0]])      # an IMAP session expunges message 1
        c.expect("RETR 1", "-ERR message 1 was deleted by another session")
        c.expect("TOP 1 0", "-ERR message 1 was deleted by another session")
        c.expect("DELE 1", "+OK message 1 deleted")
        c.expect("DELE 2", "+OK message 2 deleted")
        c.cmd("RETR 3")
        assert c.raw_block() == RETURN_PATH + message(3) + b".\r\n"
        c.expect("QUIT", "+OK CleverMail POP3 server signing off (1 messages left)")
        assert len(folder) == 1
    finally:
        store.release_folder(folder)


def test_pipelined_commands(open_session, store):
    deliver(store, 2)
    c = open_session()
    c.send(f"USER {ALICE}\r\nPASS {PASSWORD}\r\nSTAT\r\nDELE 1\r\nLIST 1\r\nQUIT\r\n")
    replies = [c.line() for _ in range(6)]
    assert [r.split()[0] for r in replies] == [b"+OK", b"+OK", b"+OK", b"+OK", b"-ERR", b"+OK"]
    assert c.line() == b""
    assert len(inbox(store)) == 1
