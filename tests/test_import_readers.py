"""The readers of `clevermail import` on their own (clevermail/migrate/: maildir.py,
mbox.py, message.py): Maildir++ folder names and info letters, the damage checks,
mboxrd and From-line dates, pseudo messages and what is no mbox, and the store's
append of many messages (also in small batches)."""

import calendar
import os

import pytest

from clevermail.migrate import maildir, mbox
from clevermail.migrate.message import Damaged, checked, is_keyword
from clevermail.store import InvalidName, MailStore

from fakes import ALICE
from import_helpers import cfg, store  # noqa: F401 (fixtures)
from migrate_helpers import TREE, cli, expected_contents, folder_contents, make_tree, wire


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
        with pytest.raises(TypeError):          # the second item is no message: none of them is kept
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
