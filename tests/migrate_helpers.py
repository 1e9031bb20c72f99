"""Shared by test_import.py and test_export.py: a Maildir++ tree as Dovecot writes it
(flags, keywords, mtimes, nested and non-ASCII folders), the clevermail command through
CliRunner, and reading a folder back through the store."""

import os

from click.testing import CliRunner

from clevermail.cli import main
from clevermail.store.maildir import to_wire
from clevermail.store.view import FolderView, ViewMode

# folder -> [(sub, file name, mtime, message bytes, expected IMAP flags)]
TREE = {
    "INBOX": [
        ("cur", "1500000000.M1P1.host,S=60:2,FSa", 1_500_000_000,
         b"From: ann@example.org\nSubject: seen and flagged\n\nfirst body\n",
         {"\\Flagged", "\\Seen", "work"}),
        ("new", "1500000100.M2P1.host", 1_500_000_100,
         b"From: ann@example.org\nSubject: brand new\n\nsecond body\n", set()),
        ("cur", "1500000200.M3P1.host:2,DRTab", 1_500_000_200,
         b"From: bob@example.org\r\nSubject: draft answered deleted\r\n\r\nCRLF body\r\n",
         {"\\Draft", "\\Answered", "\\Deleted", "work", "$Label2"}),
    ],
    "Work": [
        ("cur", "1400000000.M4P1.host:2,P", 1_400_000_000,
         b"Subject: passed on\n\nforwarded once\n", {"$Forwarded"}),
    ],
    "Work/2024": [
        ("cur", "1400000100.M5P1.host:2,Sa", 1_400_000_100,
         b"Subject: nested\n\nin a sub-folder\n", {"\\Seen", "project-x"}),
    ],
    "Café": [
        ("cur", "1300000000.M6P1.host:2,S", 1_300_000_000,
         b"Subject: =?utf-8?q?caf=C3=A9?=\n\nnon-ASCII folder name\n", {"\\Seen"}),
    ],
    "Sent": [
        ("cur", "1300000100.M7P1.host:2,S", 1_300_000_100,
         b"Subject: sent one\n\nwent out\n", {"\\Seen"}),
    ],
}
DIRS = {"INBOX": "", "Work": ".Work", "Work/2024": ".Work.2024", "Café": ".Caf&AOk-", "Sent": ".Sent"}
KEYWORDS = {"INBOX": "0 work\n1 $Label2\n", "Work/2024": "0 project-x\n"}


def make_tree(root):
    """Write TREE under `root` as Dovecot's Maildir++ does (with a dovecot-uidlist and
    maildirfolder files, which the import ignores); returns the root as a str."""
    for name, messages in TREE.items():
        path = os.path.join(root, DIRS[name])
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(path, sub), exist_ok=True)
        if name != "INBOX":
            open(os.path.join(path, "maildirfolder"), "w").close()
        with open(os.path.join(path, "dovecot-uidlist"), "w") as f:
            f.write("3 V1500000000 N1000\n")
        if name in KEYWORDS:
            with open(os.path.join(path, "dovecot-keywords"), "w") as f:
                f.write(KEYWORDS[name])
        for sub, filename, mtime, data, _ in messages:
            file = os.path.join(path, sub, filename)
            with open(file, "wb") as f:
                f.write(data)
            os.utime(file, (mtime, mtime))
    return str(root)


def wire(data):
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def cli(cfg, *args):
    """The clevermail command in-process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(main, ["--config", cfg, *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def folder_contents(store, address, name):
    """[(wire bytes, flag names, internal date)] of a folder, in UID order."""
    folder = store.open_folder(address, name)
    try:
        view = FolderView(folder, name, ViewMode.MAILDROP)
        out = []
        for m in view.messages(range(1, len(view) + 1)):
            with view.open_message(m.uid) as f:
                out.append((to_wire(f.read()), set(m.flags), int(m.internaldate)))
        return out
    finally:
        store.release_folder(folder)


def expected_contents(name):
    return [(wire(data), flags, mtime) for _, _, mtime, data, flags in TREE[name]]
