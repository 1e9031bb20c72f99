"""`clevermail import` (clevermail/migrate/: maildir.py, mbox.py, message.py,
importer.py): the readers on their own, then the command into a real store, checked
through the store and through imaplib against a MailService on port 0, while the
server runs, twice (nothing doubled), with damaged input, and on a terminal."""

import calendar
import imaplib
import mailbox
import os
import re
import sys
import time

import pytest

from clevermail.migrate import maildir, mbox
from clevermail.migrate.message import Damaged, checked, is_keyword
from clevermail.service import MailService
from clevermail.store import InvalidName, MailStore
from conftest import make_config
from fakes import ALICE, BOB, PASSWORD, make_accounts
from migrate_helpers import TREE, cli, expected_contents, folder_contents, make_tree, wire
from pty_run import run_in_pty
from waiting import wait_for


@pytest.fixture
def cfg(tmp_path, write_config):
    make_accounts(tmp_path / "users.ini")
    return write_config(tmp_path)


@pytest.fixture
def store(tmp_path):
    return MailStore(tmp_path / "data")


# -- the readers -------------------------------------------------------------------------
@pytest.mark.parametrize("dirname, name", [
    (".Work", "Work"), (".Work.2024", "Work/2024"), (".Caf&AOk-", "Café"),
    (".A&-B", "A&B"), (".Tom & Jerry", "Tom & Jerry"), (".v1%2E2", "v1.2"), (".inbox", "INBOX"),
])
def test_maildirplusplus_names(dirname, name):
    assert maildir.folder_name(dirname) == name


@pytest.mark.parametrize("dirname", [".", "..", "Work", ".a..b", ".~secret"])
def test_names_that_are_not_folders(dirname):
    with pytest.raises((ValueError, InvalidName)):
        maildir.folder_name(dirname)


def test_info_letters():
    keywords = {"a": "work", "c": "later"}
    assert set(maildir.info_flags("1.x:2,DFPRST", keywords)) == {
        "\\Draft", "\\Flagged", "$Forwarded", "\\Answered", "\\Seen", "\\Deleted"}
    assert maildir.info_flags("1.x:2,Sab c", keywords) == ("\\Seen", "work", "later")
    assert maildir.info_flags("1.x", keywords) == ()
    assert maildir.info_flags("1.x:1,S", keywords) == ()


def test_maildir_file_with_a_from_line_on_top(tmp_path):
    path = tmp_path / "1.x:2,S"
    path.write_bytes(b"From someone@example.org Mon Jan  1 10:00:00 2024\nSubject: procmail\n\nx\n")
    os.utime(path, (1_000_000, 1_000_000))
    loaded = maildir.MaildirMessage(str(path), {}).load()
    assert (loaded.wire, loaded.flags, loaded.date) == (b"Subject: procmail\r\n\r\nx\r\n", ("\\Seen",), 1_000_000)


def test_damaged_checks():
    assert checked(b"Subject: x\n\nbody\n") == b"Subject: x\r\n\r\nbody\r\n"
    assert checked(b"X-Odd-Header : y\r\n\r\n") == b"X-Odd-Header : y\r\n\r\n"
    for raw, reason in [(b"", "empty"), (b"\n\n", "empty"), (b"\x00\x01garbage", "header field"),
                        (b"just some text\n", "header field"), (b"\nSubject: late\n", "header field")]:
        with pytest.raises(Damaged, match=reason):
            checked(raw)
    assert is_keyword("$Label1") and is_keyword("project-x")
    assert not is_keyword("two words") and not is_keyword("a]b") and not is_keyword("\\Seen")


@pytest.mark.parametrize("line, stamp", [
    (b"From MAILER-DAEMON Wed Dec  2 20:37:04 2026\n", calendar.timegm((2026, 12, 2, 20, 37, 4))),
    (b"From a@b Thu Jan  1 00:00:00 1970\r\n", 0),
    (b"From \"odd sender\"@x Tue Mar 5 10:00:00 2024 +0100\n", calendar.timegm((2024, 3, 5, 9, 0, 0))),
    (b"From a@b Tue Mar 5 10:00:00 -0500 2024\n", calendar.timegm((2024, 3, 5, 15, 0, 0))),
    (b"From a@b Sat Jan  3 01:05 1998\n", calendar.timegm((1998, 1, 3, 1, 5, 0))),
    (b"From here we go to the body\n", None),
])
def test_from_line_dates(line, stamp):
    assert mbox.from_line_date(line) == stamp


def test_mboxrd_reading(tmp_path):
    path = tmp_path / "rd.mbox"
    path.write_bytes(
        b"From alice@example.org Mon Jan  1 10:00:00 2024\n"
        b"Subject: quoting\nStatus: RO\nX-Status: AF\nX-Keywords: $Label1, todo\n"
        b"X-UID: 7\nContent-Length: 999\n\n"
        b">From the start\n>>From twice quoted\nFrom unquoted, but no date follows\n"
        b"text\n\n"
        b"From bob@example.org Tue Jan  2 10:00:00 2024\n"
        b"Subject: second\nX-Status: TD\n  folded-into-x-status\n\nlast line without newline")
    first, second = mbox.read_mbox(str(path))
    one = first.load()
    assert one.wire == wire(b"Subject: quoting\n\nFrom the start\n>From twice quoted\n"
                            b"From unquoted, but no date follows\ntext\n")
    assert set(one.flags) == {"\\Seen", "\\Answered", "\\Flagged", "$Label1", "todo"}
    assert one.date == calendar.timegm((2024, 1, 1, 10, 0, 0))
    two = second.load()
    assert two.wire == b"Subject: second\r\n\r\nlast line without newline"
    assert set(two.flags) == {"\\Draft", "\\Deleted"}


def test_mbox_pseudo_message_and_date_fallbacks(tmp_path):
    uw = tmp_path / "uw.mbox"
    uw.write_bytes(
        b"From MAILER-DAEMON Mon Jan  1 10:00:00 2024\n"
        b"Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\nX-IMAP: 1704103200 0000000002\n\nx\n\n"
        b"From a@b Mon Jan  1 10:00:01 2024\nSubject: real\nX-IMAPbase: 1704103200 2\n\nbody\n\n"
        b"From a@b Mon Jan  1 10:00:02 2024\nSubject: not first\nX-IMAP: 1 2\n\nmail\n")
    pseudo, real, later = mbox.read_mbox(str(uw))
    with pytest.raises(mbox.PseudoMessage):
        pseudo.load()
    assert real.load().wire == b"Subject: real\r\n\r\nbody\r\n"
    assert later.load().wire == b"Subject: not first\r\n\r\nmail\r\n"
    # a From_ line without a date: the Date: header, else the file's mtime
    header = tmp_path / "header.mbox"
    header.write_bytes(b"From nobody\nSubject: dated by header\nDate: Tue, 02 Jan 2024 12:00:00 +0000\n\nbody\n")
    assert [m.load().date for m in mbox.read_mbox(str(header))] == [calendar.timegm((2024, 1, 2, 12, 0, 0))]
    bare = tmp_path / "bare.mbox"
    bare.write_bytes(b"From nobody\nSubject: no date at all\n\nbody\n"
                     b"\nFrom here on the body goes on (no date: not a From_ line)\n")
    os.utime(bare, (1_234_567_890, 1_234_567_890))
    (only,) = mbox.read_mbox(str(bare))
    loaded = only.load()
    assert loaded.date == 1_234_567_890
    assert loaded.wire.endswith(b"body\r\n\r\nFrom here on the body goes on (no date: not a From_ line)\r\n")


def test_not_an_mbox(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"Dear diary\nFrom today on\n")
    with pytest.raises(mbox.NotMbox):
        mbox.read_mbox(str(path))


def test_append_many_in_the_store(tmp_path, store):
    store.ensure_user(ALICE)
    folder = store.open_folder(ALICE, "INBOX")
    try:
        assert folder.append_many([]) == []
        uids = folder.append_many([(b"Subject: a\r\n\r\n1\r\n", "S", 1000), (b"Subject: b\r\n\r\n2\r\n", "", 2000),
                                   (b"Subject: c\r\n\r\n3\r\n", set("FR"), 3000)])
        assert uids == [1, 2, 3]
        with pytest.raises(AttributeError):     # the second item is no message: none of them is kept
            folder.append_many([(b"Subject: d\r\n\r\n", "", 4000), (None, "", 5000)])
    finally:
        store.release_folder(folder)
    inbox = os.path.join(store.user_root(ALICE))
    assert os.listdir(os.path.join(inbox, "tmp")) == []
    assert sorted(n.split(":2,")[1] for n in os.listdir(os.path.join(inbox, "cur"))) == ["", "FR", "S"]
    other = MailStore(tmp_path / "data")            # another process's view of the same files
    assert folder_contents(other, ALICE, "INBOX") == [
        (b"Subject: a\r\n\r\n1\r\n", {"\\Seen"}, 1000), (b"Subject: b\r\n\r\n2\r\n", set(), 2000),
        (b"Subject: c\r\n\r\n3\r\n", {"\\Flagged", "\\Answered"}, 3000)]


def test_import_in_small_batches(tmp_path, cfg, store, monkeypatch):
    from clevermail.migrate import importer
    monkeypatch.setattr(importer, "BATCH_MESSAGES", 2)
    source = make_tree(tmp_path / "Maildir")
    assert cli(cfg, "import", "alice", source)[:2] == (0, "imported 7 messages into 5 folders, 0 skipped as duplicates\n")
    for name in TREE:
        assert folder_contents(store, ALICE, name) == expected_contents(name), name


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
