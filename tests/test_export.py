"""`clevermail export` (clevermail/migrate/export.py): folder names, the tree it writes
compared with the tree that was imported, a round trip into another account, the
target directory rules, and real mutt reading the export."""

import mailbox
import os
import shutil

import pytest

from clevermail.migrate import maildir
from clevermail.migrate.export import folder_dirname
from components import component_missing
from fakes import ALICE, BOB
from import_helpers import cfg, store  # noqa: F401 (fixtures)
from migrate_helpers import DIRS, TREE, cli, expected_contents, folder_contents, make_tree
from pty_run import run_in_pty


@pytest.fixture
def exported(tmp_path, cfg):
    """Alice's account after importing TREE, exported to tmp_path/out."""
    assert cli(cfg, "import", "alice", make_tree(tmp_path / "Maildir"))[0] == 0
    out = str(tmp_path / "out")
    code, stdout, err = cli(cfg, "export", "alice", out)
    assert (code, err) == (0, "")
    # INBOX, the imported folders and the special-use ones made with the account
    assert stdout == "exported 7 messages from 9 folders\n"
    return out


@pytest.mark.parametrize("name, dirname", [
    ("INBOX", ""), ("Work", ".Work"), ("Work/2024", ".Work.2024"), ("Café", ".Caf&AOk-"),
    ("v1.2", ".v1%2E2"), ("100%", ".100%25"), ("A&B", ".A&-B"), ("日本/子", ".&ZeVnLA-.&W1A-"),
])
def test_folder_names_and_back(name, dirname):
    assert folder_dirname(name) == dirname
    if dirname:
        assert maildir.folder_name(dirname) == name


def read_back(root):
    """{folder: [(wire, flags, date)]} of a Maildir++ tree, as the importer reads it."""
    folders, problems = maildir.read_tree(root)
    assert problems == []
    return {f.name: [(m.wire, set(m.flags), m.date) for m in (item.load() for item in f.messages)]
            for f in folders}


def test_export_is_the_imported_tree(tmp_path, exported):
    got = read_back(exported)
    for name in TREE:
        assert got[name] == expected_contents(name), name
    assert {n: v for n, v in got.items() if n not in TREE} == {
        "Archive": [], "Drafts": [], "Junk": [], "Trash": []}
    for name, dirname in DIRS.items():
        path = os.path.join(exported, dirname)
        assert os.path.exists(os.path.join(path, "maildirfolder")) == (name != "INBOX")
        files = os.listdir(os.path.join(path, "cur"))
        assert os.listdir(os.path.join(path, "new")) == os.listdir(os.path.join(path, "tmp")) == []
        for file in files:          # the internal date is the mtime, and in the name
            date = int(os.stat(os.path.join(path, "cur", file)).st_mtime)
            assert file.startswith(f"{date}.") and ":2," in file
    # keywords: letters a.. in the order first used, named in dovecot-keywords
    with open(os.path.join(exported, "dovecot-keywords")) as f:
        assert f.read() == "0 work\n1 $Label2\n"
    flagged = sorted(f.split(":2,")[1] for f in os.listdir(os.path.join(exported, "cur")))
    assert flagged == ["", "DRTab", "FSa"]
    assert [f.split(":2,")[1] for f in os.listdir(os.path.join(exported, ".Work", "cur"))] == ["P"]
    assert not os.path.exists(os.path.join(exported, ".Work", "dovecot-keywords"))


def test_round_trip_into_another_account(tmp_path, cfg, store, exported):
    code, out, _ = cli(cfg, "import", "bob", exported)
    assert (code, out) == (0, "imported 7 messages into 5 folders, 0 skipped as duplicates\n")
    for name in [*TREE, "Drafts", "Trash"]:
        assert folder_contents(store, BOB, name) == folder_contents(store, ALICE, name), name


@pytest.mark.parametrize("make, message", [
    (lambda p: (p.mkdir(), (p / "x").write_text("x")), "exists and is not empty"),
    (lambda p: p.write_text("x"), "exists and is not a directory"),
])
def test_target_must_be_new_or_empty(tmp_path, cfg, make, message):
    target = tmp_path / "target"
    make(target)
    code, out, err = cli(cfg, "export", "alice", str(target))
    assert code != 0 and out == ""
    assert len(err.splitlines()) == 1 and message in err


def test_export_into_an_empty_directory_and_unknown_account(tmp_path, cfg):
    (tmp_path / "empty").mkdir()
    code, out, _ = cli(cfg, "export", "alice", str(tmp_path / "empty"))
    assert (code, out) == (0, "exported 0 messages from 6 folders\n")
    code, out, err = cli(cfg, "export", "carol", str(tmp_path / "other"))
    assert (code, out) == (1, "")
    assert err.startswith("error: no such account: carol@example.test")
    assert not (tmp_path / "other").exists()


# -- mutt reads it ------------------------------------------------------------------------
def mutt_copy(folder, mbox_path, home):
    """mutt opens `folder` read-only and copies every message into `mbox_path` (an mbox,
    with the Status/X-Status headers mutt writes for the flags it read)."""
    mutt = shutil.which("mutt")
    if mutt is None:
        component_missing("mutt is not installed (apt-get install mutt)")
    # without ~/Mail, mutt 2 first asks whether to create it, and would take the
    # pushed keys as the answer
    os.makedirs(os.path.join(home, "Mail"), exist_ok=True)
    env = {"HOME": str(home), "TERM": "vt100", "LANG": "C.UTF-8", "PATH": os.environ.get("PATH", "")}
    code, screen = run_in_pty(
        [mutt, "-n", "-F", "/dev/null", "-R", "-f", folder,
         "-e", "set confirmcreate=no confirmappend=no quit=yes auto_tag=yes mbox_type=mbox",
         "-e", f'push "<tag-pattern>~A<enter><copy-message>{mbox_path}<enter><quit>"'], env=env)
    assert code == 0, screen.decode("utf-8", "replace")
    box = mailbox.mbox(mbox_path, create=False)
    try:
        return {msg["Subject"]: (msg.get("Status", ""), msg.get("X-Status", ""), msg.get_payload())
                for msg in box}
    finally:
        box.close()


def test_mutt_reads_the_export(tmp_path, cfg, store, exported):
    inbox = mutt_copy(exported, str(tmp_path / "inbox.mbox"), tmp_path / "home")
    assert inbox == {
        "seen and flagged": ("RO", "F", "first body\n"),
        "brand new": ("O", "", "second body\n"),
        "draft answered deleted": ("O", "A", "CRLF body\n"),
    }
    nested = mutt_copy(os.path.join(exported, ".Work.2024"), str(tmp_path / "nested.mbox"), tmp_path / "home")
    assert nested == {"nested": ("RO", "", "in a sub-folder\n")}
    # and what mutt wrote comes back in with the flags mutt knew
    code, out, _ = cli(cfg, "import", "--folder", "From mutt", "bob", str(tmp_path / "inbox.mbox"))
    assert (code, out) == (0, "imported 3 messages into 1 folder, 0 skipped as duplicates\n")
    flags = {raw.split(b"Subject: ")[1].split(b"\r\n")[0]: f
             for raw, f, _ in folder_contents(store, BOB, "From mutt")}
    assert flags == {b"seen and flagged": {"\\Seen", "\\Flagged"}, b"brand new": set(),
                     b"draft answered deleted": {"\\Answered"}}
