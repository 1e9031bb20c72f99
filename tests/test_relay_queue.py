"""relay.queue: the on-disk format, commit by rename, claims, operator actions, debris."""
import json
import os
import threading
import time

import pytest

from clevermail.relay.queue import ORPHAN_AGE, Entry, NoSuchEntry, RelayQueue, header_block

MSG = b"Subject: hi\r\nMessage-ID: <x@y>\r\n\r\nbody\r\n.starts with a dot\r\n"


@pytest.fixture
def q(tmp_path):
    return RelayQueue(tmp_path / "queue")


def test_enqueue_writes_body_and_envelope(q):
    eid = q.enqueue("a@here.test", ["b@there.test", "c@there.test", "B@there.test"], MSG, "QID1")
    assert (q.path / f"{eid}.eml").read_bytes() == MSG
    assert q.read_body(eid) == MSG
    e = q.get(eid)
    assert (e.id, e.queue_id, e.sender, e.size) == (eid, "QID1", "a@here.test", len(MSG))
    assert [r.address for r in e.recipients] == ["b@there.test", "c@there.test"]  # deduplicated
    assert all(r.state == "pending" and r.attempts == 0 for r in e.recipients)
    assert e.recipients[0].next_attempt <= time.time()
    assert [x.id for x in q.list()] == [eid]
    assert e.history[0]["event"] == "queued"


def test_to_json_round_trip_and_describe(q):
    eid = q.enqueue("a@here.test", ["b@there.test"], MSG, "QID1")
    e = q.get(eid)
    d = e.to_json()
    json.dumps(d)                                            # plain JSON for --json
    assert d["recipients"][0]["state"] == "pending" and d["version"] == 1
    assert Entry.from_json(d) == e
    text = e.describe()
    assert eid in text and "<b@there.test>  pending" in text and "QID1" in text
    assert "queued" not in text and "queued  from <a@here.test>" in e.describe(history=True)


def test_prepare_is_invisible_until_commit(q):
    called = []
    q.on_commit = lambda: called.append(1)
    p = q.prepare("a@here.test", ["b@there.test"], MSG, "Q")
    assert q.list() == [] and called == []
    with pytest.raises(NoSuchEntry):
        q.get(p.id)
    p.commit()
    assert [e.id for e in q.list()] == [p.id] and called == [1]


def test_abort_before_and_after_commit_is_idempotent(q):
    p = q.prepare("a@here.test", ["b@there.test"], MSG, "Q")
    p.abort()
    p.abort()
    assert list(q.path.glob("*.eml")) == [] and list(q.tmp.iterdir()) == []
    p = q.prepare("a@here.test", ["b@there.test"], MSG, "Q")
    p.commit()
    p.abort()
    p.abort()
    assert q.list() == [] and list(q.path.glob("*.eml")) == []


def test_on_commit_failure_does_not_lose_the_entry(q):
    def boom():
        raise RuntimeError("x")
    q.on_commit = boom
    eid = q.enqueue("a@here.test", ["b@there.test"], MSG, "Q")
    assert q.get(eid)


def test_empty_recipients_rejected(q):
    with pytest.raises(ValueError):
        q.prepare("a@here.test", [], MSG, "Q")


def test_no_such_entry_is_not_a_keyerror():
    # so that `except NoSuchEntry` never swallows a KeyError from a bug, and back
    assert issubclass(NoSuchEntry, LookupError) and not issubclass(NoSuchEntry, KeyError)


def test_ids_from_outside_never_become_paths(q, tmp_path):
    (tmp_path / "secret.json").write_text("{}")
    for bad in ["../secret", "a/b", "", ".", "x" * 100, "..\\x"]:
        with pytest.raises(NoSuchEntry):
            q.get(bad)
        with pytest.raises(NoSuchEntry):
            q.delete(bad)
        with pytest.raises(NoSuchEntry):
            q.read_body(bad)


def test_delete(q):
    eid = q.enqueue("a@here.test", ["b@there.test"], MSG, "Q")
    assert q.delete(eid) == "Q"                  # the queue id, for the caller's log line
    assert q.list() == [] and not (q.path / f"{eid}.eml").exists()
    with pytest.raises(NoSuchEntry):
        q.delete(eid)


def test_flush_makes_deferred_due(q):
    a = q.enqueue("a@here.test", ["b@there.test"], MSG, "Q")
    b = q.enqueue("a@here.test", ["c@there.test"], MSG, "Q2")
    later = time.time() + 3600

    def defer(e):
        for r in e.recipients:
            r.state, r.next_attempt = "deferred", later
    q.update(a, defer)
    q.update(b, defer)
    assert q.flush(a) == 1
    assert q.get(a).recipients[0].next_attempt <= time.time()
    assert q.get(b).recipients[0].next_attempt == later
    assert q.flush() == 2
    assert q.get(b).recipients[0].next_attempt <= time.time()
    with pytest.raises(NoSuchEntry):
        q.flush("nope")


def test_mark_bounce_fails_undelivered_only(q):
    eid = q.enqueue("a@here.test", ["b@there.test", "c@there.test"], MSG, "Q")

    def deliver_first(e):
        e.recipients[0].state = "delivered"
        e.recipients[1].state, e.recipients[1].last_reply = "deferred", "451 4.0.0 later"
    q.update(eid, deliver_first)
    q.mark_bounce(eid)
    e = q.get(eid)
    assert [r.state for r in e.recipients] == ["delivered", "failed"]
    assert "administrator" in e.recipients[1].last_reply and "451 4.0.0 later" in e.recipients[1].last_reply
    assert e.needs_bounce() and not e.finished() and e.next_due() == 0
    with pytest.raises(NoSuchEntry):
        q.mark_bounce("nope")


def test_update_serialises_read_modify_write(q):
    eid = q.enqueue("a@here.test", ["b@there.test"], MSG, "Q")

    def bump(e):
        e.recipients[0].attempts += 1

    threads = [threading.Thread(target=lambda: [q.update(eid, bump) for _ in range(20)])
               for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert q.get(eid).recipients[0].attempts == 100
    assert q.update("0000", bump) is None


def test_claim_is_exclusive_until_released(q):
    eid = q.enqueue("a@here.test", ["b@there.test"], MSG, "Q")
    c1 = q.claim(eid)
    assert c1 is not None
    assert q.claim(eid) is None                  # flock is per open file: threads too
    c1.release()
    with q.claim(eid) as c2:
        assert c2 is not None
    q.delete(eid)
    assert q.claim(eid) is None


def test_claim_on_damaged_entry_without_body(q):
    eid = q.enqueue("a@here.test", ["b@there.test"], MSG, "Q")
    (q.path / f"{eid}.eml").unlink()
    with q.claim(eid) as c:
        assert c is not None
    with pytest.raises(NoSuchEntry):
        q.read_body(eid)


def test_read_headers(q):
    eid = q.enqueue("a@here.test", ["b@there.test"], MSG, "Q")
    assert q.read_headers(eid) == b"Subject: hi\r\nMessage-ID: <x@y>\r\n"
    assert header_block(b"no body at all\r\n") == b"no body at all\r\n"


def test_orphans_dropped_only_when_old(tmp_path):
    qdir = tmp_path / "queue"
    q = RelayQueue(qdir)
    keep = q.enqueue("a@here.test", ["b@there.test"], MSG, "Q")
    old = time.time() - ORPHAN_AGE - 10
    (qdir / "0000000000001aa.eml").write_bytes(MSG)            # crash before commit
    os.utime(qdir / "0000000000001aa.eml", (old, old))
    (qdir / "0000000000002bb.eml").write_bytes(MSG)            # a prepare in progress
    (q.tmp / "0000000000001aa.json").write_text("{}")
    os.utime(q.tmp / "0000000000001aa.json", (old, old))
    os.utime(qdir / f"{keep}.eml", (old, old))                 # committed: never touched
    RelayQueue(qdir)
    assert sorted(p.name for p in qdir.glob("*.eml")) == sorted(["0000000000002bb.eml", f"{keep}.eml"])
    assert list(q.tmp.iterdir()) == []
    assert [e.id for e in q.list()] == [keep]


def test_unreadable_envelope_is_skipped_in_list(q):
    eid = q.enqueue("a@here.test", ["b@there.test"], MSG, "Q")
    (q.path / "0000000000003cc.json").write_text("{not json")
    (q.path / "0000000000004dd.json").write_text('{"id": "0000000000004dd"}')
    assert [e.id for e in q.list()] == [eid]
    for bad in ("0000000000003cc", "0000000000004dd"):
        with pytest.raises(ValueError):
            q.get(bad)
        assert q.delete(bad) == "-"              # the operator can still remove it
    assert [p.name for p in q.path.glob("*.json")] == [f"{eid}.json"]


def test_flush_all_skips_a_damaged_envelope(q, caplog):
    eid = q.enqueue("a@here.test", ["b@there.test"], MSG, "Q")
    q.update(eid, lambda e: setattr(e.recipients[0], "next_attempt", time.time() + 3600))
    (q.path / "0000000000003cc.json").write_text("{not json")
    assert q.flush() == 1                        # the good entry is still flushed
    assert q.get(eid).recipients[0].next_attempt <= time.time()
    assert "0000000000003cc" in caplog.text
    with pytest.raises(ValueError):              # named explicitly: the caller says so
        q.flush("0000000000003cc")


def test_envelope_rewrite_is_durable_and_its_debris_dropped(tmp_path, monkeypatch):
    """update() replaces the envelope with durable.atomic_write (file and directory
    fsync); a temp file left by a crash in the middle is dropped once it is old."""
    from clevermail import durable
    qdir = tmp_path / "queue"
    q = RelayQueue(qdir)
    eid = q.enqueue("a@here.test", ["b@there.test"], MSG, "Q")
    synced = []
    real = durable.fsync_dir
    monkeypatch.setattr(durable, "fsync_dir", lambda p: synced.append(str(p)) or real(p))
    q.flush(eid)
    assert synced == [str(qdir)]
    debris = qdir / f"{eid}.json.1.2.abcdef.tmp"
    debris.write_text("{")
    RelayQueue(qdir)
    assert debris.exists()                                     # may be a rewrite in progress
    old = time.time() - ORPHAN_AGE - 10
    os.utime(debris, (old, old))
    RelayQueue(qdir)
    assert not debris.exists()
    assert [e.id for e in q.list()] == [eid]
