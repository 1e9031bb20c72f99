"""Tests for clevermail.store.mailstore under concurrency and across processes: delivery
from many threads and from a second process syncing at once, a folder being deleted
never listed, the closed folders kept in memory bounded, stale tmp/ debris removed on
open, and a clean delivery's name, sizes and content."""

import json
import os
import subprocess
import sys
import threading

from clevermail.store import MailStore, maildir

from fakes import RETURN_PATH
from mailstore_helpers import ROOT, data  # noqa: F401 (fixtures)
from store_helpers import USER, store  # noqa: F401 (fixtures)


# -- concurrency ---------------------------------------------------------------------------------------
def test_concurrent_delivery_from_many_threads(store, data, thread_guard):
    threads_n, per_thread = 16, 50
    errors = []
    done = threading.Event()
    reader = store.open_folder(USER, "INBOX")

    def deliver(t):
        try:
            for i in range(per_thread):
                store.deliver_local("", [USER], b"Subject: t%d m%d\r\n\r\nx\r\n" % (t, i))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def syncer():
        try:
            while not done.is_set():
                reader.sync()
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    s = threading.Thread(target=syncer)
    s.start()
    workers = [threading.Thread(target=deliver, args=(t,)) for t in range(threads_n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    done.set()
    s.join(30)
    assert errors == []
    reader.sync()
    total = threads_n * per_thread
    assert len(reader) == total
    assert reader.uids == list(range(1, total + 1))
    subjects = sorted(reader.read_message(u).split(b"\r\n", 2)[1] for u in reader.uids)
    assert subjects == sorted(b"Subject: t%d m%d" % (t, i) for t in range(threads_n) for i in range(per_thread))
    store.release_folder(reader)
    fresh = MailStore(data).open_folder(USER, "INBOX")
    assert fresh.uids == list(range(1, total + 1))
    assert {fresh.entry(u).base: u for u in fresh.uids} == {reader.entry(u).base: u for u in reader.uids}


CHILD = r"""
import json, sys
from clevermail.store import MailStore
data, n = sys.argv[1], int(sys.argv[2])
s = MailStore(data)
f = s.open_folder('alice@example.test', 'INBOX')
print('ready', flush=True)
sys.stdin.readline()                  # start together with the parent
seen = {}
for i in range(n):
    s.deliver_local("", ['alice@example.test'], b'Subject: child %d\r\n\r\nc\r\n' % i)
    f.sync()
    if i % 10 == 0:
        f.store_flags(f.uids[-1:], {'S'}, '+')
    seen.update({f.entry(u).base: u for u in f.uids})
print(json.dumps(seen))
"""


def test_second_process_delivers_and_syncs_concurrently(store, data):
    n = 200
    store.ensure_user(USER)
    child = subprocess.Popen([sys.executable, "-c", CHILD, data, str(n)], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        f = store.open_folder(USER, "INBOX")
        assert child.stdout.readline() == "ready\n"
        child.stdin.write("go\n")
        child.stdin.flush()
        seen = {}
        for i in range(n):
            store.deliver_local("", [USER], b"Subject: parent %d\r\n\r\np\r\n" % i)
            f.sync()
            seen.update({f.entry(u).base: u for u in f.uids})
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    child_seen = json.loads(out)
    f.sync(force=True)
    final = {f.entry(u).base: u for u in f.uids}
    assert len(final) == 2 * n                                 # no lost message
    assert len(set(final.values())) == 2 * n                   # no duplicate UID
    assert sorted(final.values()) == f.uids
    subjects = sorted(f.read_message(u).split(b"\r\n", 2)[1] for u in f.uids)
    assert subjects == sorted([b"Subject: parent %d" % i for i in range(n)] +
                              [b"Subject: child %d" % i for i in range(n)])
    # both processes always agreed on every base -> UID
    for base, uid in list(seen.items()) + list(child_seen.items()):
        assert final[base] == uid
    store.release_folder(f)
    fresh = MailStore(data).open_folder(USER, "INBOX")
    assert {fresh.entry(u).base: u for u in fresh.uids} == final


def test_folder_being_deleted_is_never_listed(store, monkeypatch):
    from clevermail.store import tree
    store.create_folder(USER, "Doomed")
    seen = []
    real = tree.shutil.rmtree
    monkeypatch.setattr(tree.shutil, "rmtree",
                        lambda path, **kw: (seen.append(store.list_folders(USER)), real(path, **kw))[1])
    store.delete_folder(USER, "Doomed")
    assert seen == [["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"]]


def test_closed_folders_kept_in_memory_are_bounded_by_messages(tmp_path, monkeypatch):
    from clevermail.store import folders

    monkeypatch.setattr(folders, "KEEP_UNUSED_MESSAGES", 5)
    store = MailStore(str(tmp_path / "data"))
    for user in ("a@example.test", "b@example.test", "c@example.test"):
        for i in range(3):
            store.deliver_local("", [user], b"Subject: %d\r\n\r\nx\r\n" % i)
        store.release_folder(store.open_folder(user, "INBOX"))
    kept = [path.rsplit("/", 1)[-1] for path in store.folders.kept()]
    assert kept == ["c"]          # 3 + 3 > 5: only the most recently closed one stays


def test_opening_a_folder_removes_stale_tmp_debris(tmp_path):
    import time

    from clevermail.store import MailStore, maildir

    store = MailStore(str(tmp_path / "data"))
    root = store.ensure_user("alice@example.test")
    stale = os.path.join(root, "tmp", "crashed-delivery")
    fresh = os.path.join(root, "tmp", "delivery-in-progress")
    for path in (stale, fresh):
        with open(path, "wb") as f:
            f.write(b"half a message")
    old = time.time() - maildir.STALE_TMP_SECONDS - 60
    os.utime(stale, (old, old))
    folder = store.open_folder("alice@example.test", "INBOX")
    store.release_folder(folder)
    assert not os.path.exists(stale)
    assert os.path.exists(fresh)          # a delivery still being written is left alone
    assert len(folder) == 0


def test_clean_delivery_records_the_same_name_sizes_and_content(store):
    """prepare_local(clean=True) takes shortcuts (CRs deleted, W= from the wire
    length): the file, S= and W= must be what the general path gives."""
    wire = b"Return-Path: <a@b>\r\nSubject: x\r\n\r\n" + b"line\r\n" * 50 + b".dot\r\n"
    store.deliver_local("", [USER], wire)
    store.prepare_local("", [USER], wire, clean=True).commit()
    new = os.path.join(store.user_root(USER), "new")
    names = sorted(os.listdir(new))
    assert len(names) == 2
    sizes = {tuple(maildir.parse_name(n)[2:4]) for n in names}
    contents = set()
    for n in names:
        with open(os.path.join(new, n), "rb") as f:
            contents.add(f.read())
    assert len(sizes) == 1 and len(contents) == 1
    wire = RETURN_PATH + wire                  # what both stored
    assert sizes == {(len(wire) - wire.count(b"\r"), len(wire))}
