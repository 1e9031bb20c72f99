"""`clevermail import` (clevermail/migrate/importer.py): the command into a real store,
checked through the store and through imaplib against a MailService on port 0, while
the server runs, twice (nothing doubled), with damaged input, and on a terminal.  The
readers on their own are in test_import_readers.py."""

import calendar
import imaplib
import mailbox
import os
import re
import sys
import time

import pytest

from clevermail.service import MailService

from conftest import make_config
from fakes import ALICE, PASSWORD, make_accounts
from import_helpers import cfg, store  # noqa: F401 (fixtures)
from migrate_helpers import TREE, cli, expected_contents, folder_contents, make_tree
from pty_run import run_in_pty
from waiting import wait_for


# -- the command into a store -------------------------------------------------------------
def test_import_maildirplusplus_tree(tmp_path, cfg, store):
    source = make_tree(tmp_path / "Maildir")
    code, out, err = cli(cfg, "import", "alice", source)
    assert (code, err) == (0, "")
    assert out == "imported 7 messages into 5 folders, 0 skipped as duplicates\n"
    for name in TREE:
        assert folder_contents(store, ALICE, name) == expected_contents(name), name
    assert {"Work", "Work/2024", "Café"} <= set(store.subscriptions(ALICE))


def test_import_twice_adds_nothing(tmp_path, cfg, store):
    source = make_tree(tmp_path / "Maildir")
    assert cli(cfg, "import", "alice", source)[0] == 0
    code, out, _ = cli(cfg, "import", "alice", source)
    assert code == 0
    assert out == "imported 0 messages into 0 folders, 7 skipped as duplicates\n"
    for name in TREE:
        assert folder_contents(store, ALICE, name) == expected_contents(name), name
    # a message that differs from one already there (same date and size, other
    # bytes) is not a duplicate
    inbox = os.path.join(source, "cur")
    path = os.path.join(inbox, "1500000000.M1P1.host,S=60:2,FSa")
    data = open(path, "rb").read().replace(b"first body", b"FIRST BODY")
    open(path, "wb").write(data)
    os.utime(path, (1_500_000_000, 1_500_000_000))
    code, out, _ = cli(cfg, "import", "alice", source)
    assert out == "imported 1 message into 1 folder, 6 skipped as duplicates\n"
    assert len(folder_contents(store, ALICE, "INBOX")) == 4


def test_import_into_a_folder(tmp_path, cfg, store):
    source = make_tree(tmp_path / "Maildir")
    code, out, _ = cli(cfg, "import", "--folder", "Old/Mail", "alice", source)
    assert code == 0
    assert folder_contents(store, ALICE, "Old/Mail") == expected_contents("INBOX")
    assert folder_contents(store, ALICE, "Old/Mail/Work/2024") == expected_contents("Work/2024")
    assert folder_contents(store, ALICE, "INBOX") == []


def test_import_stdlib_mbox(tmp_path, cfg, store):
    path = str(tmp_path / "python.mbox")
    box = mailbox.mbox(path)
    bodies = []
    for n in range(3):
        msg = mailbox.mboxMessage(f"Subject: python {n}\nFrom: p@example.org\n\n"
                                  f"From the mbox module, message {n}\nbye\n")
        msg.set_from("p@example.org", time.gmtime(1_600_000_000 + n * 60))
        msg.set_flags("RO" if n == 0 else ("FA" if n == 1 else ""))
        box.add(msg)
        bodies.append(n)
    box.flush()
    box.close()
    code, out, err = cli(cfg, "import", "--folder", "Python", "alice", path)
    assert (code, err) == (0, "")
    assert out == "imported 3 messages into 1 folder, 0 skipped as duplicates\n"
    got = folder_contents(store, ALICE, "Python")
    assert [g[2] for g in got] == [1_600_000_000, 1_600_000_060, 1_600_000_120]
    assert [g[1] for g in got] == [{"\\Seen"}, {"\\Flagged", "\\Answered"}, set()]
    for n, (raw, _, _) in enumerate(got):
        assert b"Status:" not in raw and b"X-Status:" not in raw
        assert raw.endswith(f"\r\n\r\nFrom the mbox module, message {n}\r\nbye\r\n".encode())
    assert cli(cfg, "import", "--folder", "Python", "alice", path)[1] == \
        "imported 0 messages into 0 folders, 3 skipped as duplicates\n"


def test_damaged_messages_are_reported_and_skipped(tmp_path, cfg, store):
    source = make_tree(tmp_path / "Maildir")
    with open(os.path.join(source, ".Work", "cur", "1.bad:2,S"), "wb") as f:
        f.write(b"\x00\x00\x00binary junk")
    open(os.path.join(source, "new", "2.empty"), "wb").close()
    unreadable = os.path.join(source, "cur", "3.locked:2,")
    if os.geteuid():                    # root reads anything: no unreadable file there
        with open(unreadable, "wb") as f:
            f.write(b"Subject: locked away\n\nx\n")
        os.chmod(unreadable, 0)
    os.makedirs(os.path.join(source, ".~bad", "cur"))
    code, out, err = cli(cfg, "import", "alice", source)
    assert code == 1
    assert "Traceback" not in out + err
    assert out == "imported 7 messages into 5 folders, 0 skipped as duplicates, " + (
        "3 damaged and skipped\n" if os.geteuid() else "2 damaged and skipped\n")
    lines = err.splitlines()
    assert any(line.startswith("skipped ") and ".~bad" in line and "folder not imported" in line for line in lines)
    assert f"skipped {source}/.Work/cur/1.bad:2,S: does not start with a header field" in lines
    assert f"skipped {source}/new/2.empty: empty message" in lines
    if os.geteuid():
        assert f"skipped {unreadable}: cannot read: Permission denied" in lines
    for name in TREE:
        assert folder_contents(store, ALICE, name) == expected_contents(name), name


def test_keywords_that_cannot_be_kept_are_warned_about(tmp_path, cfg, store):
    path = tmp_path / "many.mbox"
    names = [f"kw{i}" for i in range(27)]
    path.write_bytes(b"From a@b Mon Jan  1 10:00:00 2024\n"
                     b"Subject: many keywords\nX-Keywords: " + " ".join(names).encode() + b"\n\nx\n\n"
                     b"From a@b Mon Jan  1 10:00:01 2024\n"
                     b"Subject: bad keyword\nX-Keywords: ok a]b\n\ny\n")
    code, out, err = cli(cfg, "import", "alice", str(path))
    assert code == 0
    assert out.startswith("imported 2 messages into 1 folder")
    assert "warning: INBOX: keyword 'kw26' not kept" in err
    assert "warning: INBOX: keyword 'a]b' not kept" in err
    first, second = folder_contents(store, ALICE, "INBOX")
    assert first[1] == set(names[:26]) and second[1] == set()   # 26 taken: "ok" has no letter left


def test_import_a_directory_of_mbox_files(tmp_path, cfg, store):
    """Thunderbird's layout (Name.sbd/ holds Name's children, *.msf indexes beside),
    which is also mutt's ~/Mail without the .sbd directories."""
    top = tmp_path / "Mail" / "Local Folders"
    (top / "Archives.sbd").mkdir(parents=True)
    (top / "Inbox").write_bytes(
        b"From - Mon Jan  1 10:00:00 2024\nX-Mozilla-Status: 0001\nX-Mozilla-Status2: 00000000\n"
        b"X-Mozilla-Keys: $label1 later                \nSubject: read in thunderbird\n\nbody\n\n"
        b"From - Mon Jan  1 11:00:00 2024\nX-Mozilla-Status: 1009\nSubject: deleted, not compacted\n\nold\n")
    (top / "Inbox.msf").write_bytes(b"// <!-- <mdb:mork:z v=\"1.4\"/> -->\n")
    (top / "Archives").write_bytes(b"")
    (top / "Archives.sbd" / "2024").write_bytes(
        b"From - Tue Jan  2 10:00:00 2024\nX-Mozilla-Status: 0005\nSubject: archived\n\nkept\n")
    (top / "msgFilterRules.dat").write_bytes(b"version=\"9\"\n")
    (top / "notes.txt").write_bytes(b"not mail\n")
    code, out, err = cli(cfg, "import", "alice", str(top))
    assert code == 0, err
    assert out == "imported 3 messages into 2 folders, 0 skipped as duplicates\n"
    assert sorted(err.splitlines()) == sorted(f"ignored {top / n}: not a mail folder"
                                              for n in ("Inbox.msf", "msgFilterRules.dat", "notes.txt"))
    inbox = folder_contents(store, ALICE, "INBOX")
    assert [(raw.split(b"\r\n")[0], flags) for raw, flags, _ in inbox] == [
        (b"Subject: read in thunderbird", {"\\Seen", "$label1", "later"}),
        (b"Subject: deleted, not compacted", {"\\Seen", "\\Deleted", "$Forwarded"})]
    assert store.folder_exists(ALICE, "Archives") and folder_contents(store, ALICE, "Archives") == []
    (archived,) = folder_contents(store, ALICE, "Archives/2024")
    assert archived == (b"Subject: archived\r\n\r\nkept\r\n", {"\\Seen", "\\Flagged"},
                        calendar.timegm((2024, 1, 2, 10, 0, 0)))


@pytest.mark.parametrize("args, message", [
    (["carol", "."], "error: no such account: carol@example.test"),
    (["alice", "{tmp}/plain.txt"], "not an mbox file"),
    (["alice", "{tmp}/nomaildir"], "neither a Maildir (no cur/ or new/) nor a directory of mbox files"),
    (["--folder", "a//b", "alice", "{tmp}/plain.txt"], "error: empty hierarchy level"),
])
def test_one_line_errors(tmp_path, cfg, args, message):
    (tmp_path / "plain.txt").write_text("hello\n")
    (tmp_path / "nomaildir").mkdir()
    code, out, err = cli(cfg, "import", *[a.format(tmp=tmp_path) for a in args])
    assert code == 1
    assert out == ""
    assert len(err.splitlines()) == 1 and message in err


# -- through IMAP, while the server runs ---------------------------------------------------
@pytest.fixture
def service(thread_guard, tmp_path):
    conf = make_config(tmp_path)
    make_accounts(conf.server.users_file)
    service = MailService(conf).start()
    clients = []
    service.connect = lambda: clients.append(imaplib.IMAP4("127.0.0.1", service.port("imap"), timeout=10)) \
        or clients[-1]
    yield service
    for c in clients:
        try:
            c.logout()
        except (OSError, imaplib.IMAP4.error):
            pass
    service.stop()


def fetch_all(imap, name):
    typ, data = imap.select(f'"{name}"', readonly=True)
    assert typ == "OK", data
    count = int(data[0])
    if not count:
        return []
    typ, data = imap.fetch("1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
    assert typ == "OK"
    got = []
    for item in data:
        if isinstance(item, tuple):
            flags = set(f.decode() for f in imaplib.ParseFlags(item[0])) - {"\\Recent"}
            date = int(time.mktime(imaplib.Internaldate2tuple(item[0])))
            got.append((item[1], flags, date))
    return got


def test_imported_tree_through_imap(tmp_path, service):
    source = make_tree(tmp_path / "Maildir")
    code, out, _ = cli(_cfg_for(tmp_path), "import", "alice", source)
    assert code == 0
    imap = service.connect()
    imap.login(ALICE, PASSWORD)
    typ, listed = imap.list()
    names = {re.search(rb'"/" (.*)$', line).group(1).strip(b'"').decode() for line in listed}
    assert {"INBOX", "Work", "Work/2024", "Caf&AOk-", "Sent"} <= names
    wire_names = {"Café": "Caf&AOk-"}
    for name in TREE:
        assert fetch_all(imap, wire_names.get(name, name)) == expected_contents(name), name
    imap.select("INBOX")
    typ, flags = imap.response("FLAGS")
    assert b"work" in flags[0] and b"$Label2" in flags[0]


def _cfg_for(tmp_path):
    from conftest import write_config
    return write_config(tmp_path)


def test_a_running_session_sees_imported_mail(tmp_path, service):
    imap = service.connect()
    imap.login(ALICE, PASSWORD)
    assert imap.select("INBOX") == ("OK", [b"0"])
    path = tmp_path / "new.mbox"
    path.write_bytes(b"From a@b Mon Jan  1 10:00:00 2024\nSubject: live one\nX-Keywords: imported\n\nx\n\n"
                     b"From a@b Mon Jan  1 10:00:05 2024\nSubject: live two\nStatus: RO\n\ny\n")
    code, out, _ = cli(_cfg_for(tmp_path), "import", "bob", str(path))   # someone else's: unseen here
    assert code == 0
    code, out, _ = cli(_cfg_for(tmp_path), "import", "alice", str(path))
    assert (code, out) == (0, "imported 2 messages into 1 folder, 0 skipped as duplicates\n")

    def exists():
        imap.noop()
        return imap.untagged_responses.get("EXISTS", [b"0"])[-1] == b"2"
    assert wait_for(exists)
    typ, data = imap.fetch("1:2", "(FLAGS)")
    assert typ == "OK"
    assert set(imaplib.ParseFlags(data[0])) - {b"\\Recent"} == {b"imported"}
    assert set(imaplib.ParseFlags(data[1])) - {b"\\Recent"} == {b"\\Seen"}


# -- on a terminal ----------------------------------------------------------------------
def test_progress_bar_on_a_terminal(tmp_path, cfg):
    source = make_tree(tmp_path / "Maildir")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), TERM="dumb", COLUMNS="80")
    code, out = run_in_pty([sys.executable, "-m", "clevermail", "--config", cfg, "import", "alice", source],
                           env=env)
    text = out.decode("utf-8", "replace")
    assert code == 0, text
    assert "importing into alice@example.test" in text and "100%" in text
    assert "imported 7 messages into 5 folders, 0 skipped as duplicates" in text
    assert "Traceback" not in text
