"""When the store's changes are durable, and what the folder's other sessions wait
for meanwhile: the folder lock and the file lock, the fsyncs a change waits for
after them (directories, the uidlist: clevermail/fsync_group.py), the order other
sessions see new UIDs in, and what a killed process leaves (store/changes.py,
store/uidlist.py)."""

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading

import pytest

from clevermail import durable, fsync_group
from clevermail.store import locks, maildir, uidlist
from clevermail.store.mailstore import MailStore
from store_helpers import USER, inbox, msg, names, store  # noqa: F401 (fixtures)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_file_lock_is_reentrant_and_released_at_depth_zero(inbox):
    """FileLock counts its own depth: the flock is taken once and let go only when
    the outermost holder leaves (another open file description sees it)."""
    other = os.open(os.path.join(inbox.path, locks.LOCK_NAME), os.O_RDWR)
    try:
        with inbox.lock:
            with inbox.file_lock():
                with inbox.file_lock():
                    with pytest.raises(BlockingIOError):
                        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                with pytest.raises(BlockingIOError):      # still held at depth 1
                    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(other, fcntl.LOCK_UN)
    finally:
        os.close(other)


def lock_is_free(folder):
    """Whether another thread can take the folder's lock now (False when the calling
    thread holds it: the other waits out its 30 s)."""
    got = []

    def take_the_lock():
        got.append(folder.lock.acquire(timeout=30))
        if got[0]:
            folder.lock.release()
    t = threading.Thread(target=take_the_lock)
    t.start()
    t.join()
    return got[0]


def test_append_fsyncs_the_directory_outside_the_folder_lock_and_expunge_not_at_all(inbox, monkeypatch):
    """APPEND's directory fsync runs after the folder lock is released (other sessions
    of the folder do not wait for the disk) but before the call returns (OK =
    durable); an expunge is not fsynced (a crash may bring the message back, never
    lose one: store/changes.py)."""
    from clevermail import durable
    seen = []
    real = durable.fsync_dir

    def fsync_dir(path):
        seen.append((os.path.basename(path), lock_is_free(inbox)))
        return real(path)

    monkeypatch.setattr(durable, "fsync_dir", fsync_dir)
    uid = inbox.append(msg(1))
    assert seen == [("cur", True)]
    inbox.store_flags([uid], "T", "+")
    assert inbox.expunge([uid]) == [uid]
    assert seen == [("cur", True)]
    assert names(inbox, "cur") == []


def test_expunge_unlinks_after_the_locks_and_a_crash_leaves_no_deleted_mail(inbox, monkeypatch):
    """EXPUNGE renames the file into tmp/ under the folder lock and unlinks it after,
    on the background thread;
    an `.expunged` file a crash left behind is removed by clean_tmp whatever its age."""
    uid = inbox.append(msg(1))
    base = inbox.entry(uid).base
    unlinked = []
    real_unlink = os.unlink

    def unlink(path, *a, **kw):
        unlinked.append((os.path.basename(path), lock_is_free(inbox)))
        return real_unlink(path, *a, **kw)

    monkeypatch.setattr(os, "unlink", unlink)
    assert inbox.expunge([uid]) == [uid]
    assert fsync_group.settle(timeout=10)       # the unlink runs after the reply
    monkeypatch.setattr(os, "unlink", real_unlink)
    assert unlinked == [(base + maildir.EXPUNGED_SUFFIX, True)]
    assert names(inbox, "cur") == [] and os.listdir(os.path.join(inbox.path, "tmp")) == []
    # a crash between the rename and the unlink
    uid = inbox.append(msg(2))
    leftover = maildir.expunged_name(inbox.path, inbox.entry(uid).base)
    os.rename(inbox.file_path(inbox.entry(uid)), leftover)
    assert maildir.clean_tmp(inbox.path) == 1
    assert not os.path.exists(leftover)


def test_one_expunge_unlinks_all_its_files_in_one_background_job(inbox, monkeypatch, caplog):
    """The files of one EXPUNGE go to the background thread as one job (a hand-off
    each cost more than the unlink); one that cannot be unlinked is logged and the
    others still go."""
    uids = [inbox.append(msg(n)) for n in (1, 2, 3)]
    bases = [inbox.entry(uid).base for uid in uids]
    jobs = []
    real_later = fsync_group.later
    monkeypatch.setattr(fsync_group, "later", lambda call, *a: jobs.append(a) or real_later(call, *a))
    real_unlink = os.unlink

    def unlink(path, *a, **kw):
        if os.path.basename(path).startswith(bases[0]):
            raise PermissionError(1, "refused", path)
        return real_unlink(path, *a, **kw)

    monkeypatch.setattr(os, "unlink", unlink)
    assert inbox.expunge(uids) == uids
    assert fsync_group.settle(timeout=10)
    monkeypatch.setattr(os, "unlink", real_unlink)
    assert len(jobs) == 1
    assert os.listdir(os.path.join(inbox.path, "tmp")) == [bases[0] + maildir.EXPUNGED_SUFFIX]
    assert "background disk work failed" in caplog.text


def test_expunge_without_a_tmp_directory_still_removes_the_file(inbox):
    uid = inbox.append(msg(1))
    os.rmdir(os.path.join(inbox.path, "tmp"))
    assert inbox.expunge([uid]) == [uid]
    assert names(inbox, "cur") == []
    inbox.sync(force=True)
    assert inbox.uids == []


def uidlist_fsyncs(folder, monkeypatch):
    """[(whether the folder lock was free, the UIDs the file held)] at each fsync of
    the uidlist through its group (durable.fsync_file)."""
    seen = []
    real = durable.fsync_file

    def fsync_file(path):
        if path == os.path.join(folder.path, uidlist.FILENAME):
            with open(path, encoding="utf-8") as f:
                uids = [int(line.split()[0]) for line in f if line[:1].isdigit()]
            seen.append((lock_is_free(folder), uids))
        return real(path)
    monkeypatch.setattr(durable, "fsync_file", fsync_file)
    return seen


def test_append_copy_and_batches_fsync_the_uidlist_outside_the_folder_lock(store, inbox, monkeypatch):
    """The UID lines are written under the locks and fsynced after them, before the
    call returns (OK = the message and its UID on disk); the first UID past the
    reservation is fsynced with it under the lock (uidlist.py)."""
    store.create_folder(USER, "Projects")
    target = store.open_folder(USER, "Projects")
    try:
        inbox.append(msg(0))
        target.append(msg(0))
        seen = uidlist_fsyncs(inbox, monkeypatch)
        uid = inbox.append(msg(1))
        assert seen == [(True, [1, uid])]
        uids = inbox.append_many([(msg(2), "", None), (msg(3), "S", None)])
        assert seen[-1] == (True, [1, uid] + uids)
        seen = uidlist_fsyncs(target, monkeypatch)
        pairs = inbox.copy_to(uids, target)
        assert [new for _, new in pairs] == [2, 3]
        assert seen == [(True, [1, 2, 3])]
    finally:
        store.release_folder(target)


def test_concurrent_appends_are_seen_in_uid_order(store, inbox, thread_guard):
    """Sessions appending at once: every other session sees each new UID above all it
    saw before (RFC 3501 2.3.1.1), none twice, and every acknowledged UID."""
    writers_n, each = 4, 40
    view_uids, errors = [], []
    acknowledged = []
    done = threading.Event()

    def append(w):
        try:
            for i in range(each):
                acknowledged.append(inbox.append(msg(1000 * w + i)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def look():
        seen = []
        try:
            while True:
                last = done.is_set()
                inbox.sync()
                with inbox.lock:
                    new = [u for u in inbox.uids if not seen or u > seen[-1]]
                seen += new
                if last:
                    break
        except Exception as exc:  # pragma: no cover
            errors.append(exc)
        view_uids.append(seen)

    lookers = [threading.Thread(target=look) for _ in range(2)]
    writers = [threading.Thread(target=append, args=(w,)) for w in range(writers_n)]
    for t in lookers + writers:
        t.start()
    for t in writers:
        t.join(120)
    done.set()
    for t in lookers:
        t.join(120)
    assert errors == []
    assert sorted(acknowledged) == list(range(1, writers_n * each + 1))
    for seen in view_uids:
        assert seen == sorted(set(seen)) == sorted(acknowledged)


KILLED_CHILD = r"""
import sys
from clevermail.store import MailStore
folder = MailStore(sys.argv[1]).open_folder('alice@example.test', 'INBOX')
for i in range(100000):
    uid = folder.append(b'Subject: child %d\r\n\r\nbody\r\n' % i)
    print(uid, folder.entry(uid).base, flush=True)      # acknowledged
"""


@pytest.mark.parametrize("after", [1, 7, 40])
def test_kill_9_during_appends_loses_no_acknowledged_message_and_reuses_no_uid(tmp_path, after):
    """A process killed (SIGKILL) at any point of its appends: every UID it
    acknowledged is there with its message, and the next UID is above every UID it
    wrote (those it had not acknowledged yet included)."""
    data = str(tmp_path / "data")
    MailStore(data).ensure_user(USER)
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, data], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acked = {}
    try:
        for _ in range(after):
            uid, base = child.stdout.readline().split()
            acked[base] = int(uid)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    store = MailStore(data)
    folder = store.open_folder(USER, "INBOX")
    for base, uid in acked.items():
        assert folder.entry(uid).base == base
        assert folder.read_message(uid).startswith(b"Subject: child ")
    with open(os.path.join(folder.path, uidlist.FILENAME), encoding="utf-8") as f:
        written = [int(line.split()[0]) for line in f if line[:1].isdigit()]
    assert folder.uids == sorted(folder.uids) and len(set(written)) == len(written)
    assert folder.append(msg(1)) > max(written + list(acked.values()))
    store.release_folder(folder)


OTHER_PROCESS = r"""
import json, sys
from clevermail.store import MailStore
folder = MailStore(sys.argv[1]).open_folder('alice@example.test', 'INBOX')
print('ready', flush=True)
sys.stdin.readline()
mine = {}
for i in range(int(sys.argv[2])):
    uid = folder.append(b'Subject: other %d\r\n\r\nbody\r\n' % i)
    mine[folder.entry(uid).base] = uid
print(json.dumps(mine))
"""


def test_two_processes_appending_agree_on_every_uid(store, tmp_path):
    """[server] workers: two processes append to one folder at once, each writing its
    UID lines unsynced under the shared reservation; no UID is given twice."""
    n = 60
    data = str(tmp_path / "data")
    store.ensure_user(USER)
    child = subprocess.Popen([sys.executable, "-c", OTHER_PROCESS, data, str(n)], cwd=ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        folder = store.open_folder(USER, "INBOX")
        assert child.stdout.readline() == "ready\n"
        child.stdin.write("go\n")
        child.stdin.flush()
        mine = {}
        for i in range(n):
            uid = folder.append(msg(i))
            mine[folder.entry(uid).base] = uid
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    theirs = json.loads(out)
    both = {**mine, **theirs}
    assert len(both) == 2 * n and sorted(both.values()) == list(range(1, 2 * n + 1))
    folder.sync(force=True)
    assert {folder.entry(u).base: u for u in folder.uids} == both
    store.release_folder(folder)
    fresh = MailStore(data).open_folder(USER, "INBOX")
    assert {fresh.entry(u).base: u for u in fresh.uids} == both
