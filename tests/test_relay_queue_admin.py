"""relay.queue and relay.select: the operator's side of the queue: one id for an entry
(its queue id), resolve, selectors, the summary, hold and release (durable), and
bounce/flush meeting a hold."""
import json

import pytest

from clevermail.relay.entry import STATES, Entry, Recipient
from clevermail.relay.queue import NoSuchEntry, RelayQueue
from clevermail.relay.select import Selector, summarize

MSG = b"Subject: hi\r\n\r\nbody\r\n"


class Clock:
    def __init__(self):
        self.t = 1_800_000_000.0

    def __call__(self):
        return self.t


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def q(tmp_path, clock):
    queue = RelayQueue(tmp_path / "queue")
    queue.clock = clock
    return queue


def defer(q, eid, until):
    def change(e):
        for r in e.active():
            r.state, r.next_attempt, r.attempts = "deferred", until, 1
    q.update(eid, change)


def old_style(q, queue_id, sender="a@here.test", rcpts=("b@there.test",)):
    """An entry as written before entries were named by their queue id: time-stamped
    name, the queue id only in the envelope."""
    eid = q.new_id()
    (q.path / f"{eid}.eml").write_bytes(MSG)
    e = Entry(id=eid, queue_id=queue_id, sender=sender, arrival=q.clock(), size=len(MSG),
              recipients=[Recipient(a, next_attempt=q.clock()) for a in rcpts])
    d = e.to_json()
    for key in ("held", "held_since", "held_total"):       # the old format had none
        del d[key]
    (q.path / f"{eid}.json").write_text(json.dumps(d))
    return eid


# -- one id ------------------------------------------------------------------------
def test_a_new_entry_is_named_by_its_queue_id(q):
    eid = q.enqueue("a@here.test", ["b@there.test"], MSG, "F96A5CBBFEF4")
    assert eid == "F96A5CBBFEF4"
    assert (q.path / "F96A5CBBFEF4.eml").read_bytes() == MSG
    assert q.get(eid).queue_id == "F96A5CBBFEF4"
    assert q.resolve("F96A5CBBFEF4") == q.resolve("f96a5cbbfef4") == ["F96A5CBBFEF4"]
    assert q.get(eid).describe(now=q.clock()).startswith("F96A5CBBFEF4  age 0m00s  size ")


def test_the_entries_of_one_message_are_qid_qid_2_and_answer_to_the_queue_id(q):
    # remote recipients and an alias's forwards: two prepares, one queue id, one commit
    first = q.prepare("a@here.test", ["b@there.test"], MSG, "AAAAAAAAAAAA")
    second = q.prepare("srs@here.test", ["c@else.test"], MSG, "AAAAAAAAAAAA")
    first.commit()
    second.commit()
    assert (first.id, second.id) == ("AAAAAAAAAAAA", "AAAAAAAAAAAA_2")
    assert q.get("AAAAAAAAAAAA_2").queue_id == "AAAAAAAAAAAA"
    assert q.resolve("AAAAAAAAAAAA") == q.resolve("aaaaaaaaaaaa") == ["AAAAAAAAAAAA", "AAAAAAAAAAAA_2"]
    assert q.resolve("AAAAAAAAAAAA_2") == ["AAAAAAAAAAAA_2"]
    # a report's queue id (QID-dsn) is its own: not one of the message's entries
    assert q.enqueue("", ["a@here.test"], MSG, "AAAAAAAAAAAA-dsn") == "AAAAAAAAAAAA-dsn"
    assert q.resolve("AAAAAAAAAAAA") == ["AAAAAAAAAAAA", "AAAAAAAAAAAA_2"]


def test_a_taken_or_unusable_queue_id_gets_a_fresh_name(q):
    # a body without an envelope (a prepare in another process, or debris) holds the name
    (q.path / "BBBBBBBBBBBB.eml").write_bytes(b"x")
    assert q.enqueue("a@here.test", ["b@there.test"], MSG, "BBBBBBBBBBBB") == "BBBBBBBBBBBB_2"
    assert (q.path / "BBBBBBBBBBBB.eml").read_bytes() == b"x"
    odd = q.enqueue("a@here.test", ["b@there.test"], MSG, "not/a name")
    assert odd != "not/a name" and q.get(odd).queue_id == "not/a name"
    assert q.resolve(odd) == [odd]
    # no room for a suffix: the second gets new_id() and answers to that name (the
    # queue id finds the entry named by it; smtp/message.py's ids are 12 characters)
    long_id = "L" * 64
    assert q.enqueue("a@here.test", ["b@there.test"], MSG, long_id) == long_id
    other = q.enqueue("a@here.test", ["b@there.test"], MSG, long_id)
    assert other != long_id and q.get(other).queue_id == long_id
    assert q.resolve(other) == [other] and q.resolve(long_id) == [long_id]


def test_an_old_entry_answers_to_its_name_and_to_its_queue_id(q):
    eid = old_style(q, "0123456789AB")
    assert q.resolve(eid) == [eid]
    assert q.resolve("0123456789ab") == [eid]
    e = q.get(eid)
    assert (e.held, e.held_since, e.held_total) == (False, None, 0.0)     # defaults
    assert e.describe(now=q.clock()).startswith(f"{eid}  queue-id 0123456789AB  age ")
    for bad in ("nothing-here", "../../etc/passwd", ""):
        with pytest.raises(NoSuchEntry):
            q.resolve(bad)


def test_a_damaged_envelope_answers_to_its_name_only(q):
    (q.path / "0000000000003cc.json").write_text("{not json")
    assert q.resolve("0000000000003CC") == ["0000000000003cc"]
    with pytest.raises(ValueError):
        q.get("0000000000003cc")


# -- selectors ------------------------------------------------------------------------
def test_selector_conditions(q, clock):
    a = q.enqueue("alice@here.test", ["x@there.test", "y@bücher.test"], MSG, "AAAA")
    clock.t += 7200
    b = q.enqueue("", ["bob@here.test"], MSG, "BBBB")                 # a report
    c = q.enqueue("carol@other.test", ["z@else.test"], MSG, "CCCC")
    defer(q, c, clock.t + 600)
    q.hold(b)

    def ids(**kw):
        return [e.id for e in q.select(Selector(**kw))]

    assert ids() == [a, b, c] and Selector().empty() and not Selector(state="held").empty()
    assert ids(state="held") == [b]
    assert ids(state="deferred") == [c]
    assert ids(state="active") == [a]
    assert ids(to_domain="THERE.test.") == [a]
    assert ids(to_domain="xn--bcher-kva.test") == ids(to_domain="BÜCHER.test") == [a]
    assert ids(sender="alice@HERE.test") == [a]
    assert ids(sender="<alice@here.test>") == [a]
    assert ids(sender="other.test") == ids(sender="@other.test") == [c]
    assert ids(sender="<>") == [b]
    assert ids(older_than=3600) == [a]
    assert ids(older_than=3600, state="deferred") == []
    assert ids(to_domain="nowhere.test") == []


# -- summary ------------------------------------------------------------------------
def test_summary_counts_states_recipients_oldest_and_damaged(q, clock):
    assert q.summary().line() == "queue is empty"
    empty = q.summary()
    assert (empty.entries, empty.recipients, empty.oldest_age, empty.size) == (0, 0, None, 0)
    assert empty.by_state == dict.fromkeys(STATES, 0)
    a = q.enqueue("a@here.test", ["b@there.test", "c@there.test"], MSG, "AAAA")
    clock.t += 3 * 3600 + 12 * 60
    b = q.enqueue("a@here.test", ["d@there.test"], MSG, "BBBB")
    c = q.enqueue("a@here.test", ["e@there.test"], MSG, "CCCC")
    d = q.enqueue("a@here.test", ["f@there.test"], MSG, "DDDD")
    defer(q, b, clock.t + 600)
    q.hold(c)
    q.mark_bounce(d)
    (q.path / "0000000000003cc.json").write_text("{not json")
    s = q.summary()
    assert (s.entries, s.recipients, s.damaged, s.size) == (4, 5, 1, 4 * len(MSG))
    assert s.by_state == {"active": 1, "deferred": 1, "held": 1, "bounce": 1}
    assert s.recipients_by_state == {"pending": 3, "deferred": 1, "failed": 1}
    assert s.oldest_age == 3 * 3600 + 12 * 60
    assert s.line() == ("4 entries, 5 recipients: 1 active, 1 deferred, 1 held, 1 bounce; "
                        "oldest 3h12m; 1 damaged")
    assert q.get(a).state(clock.t) == "active"
    one = summarize([q.get(a)], clock.t)
    assert one.line() == "1 entry, 2 recipients: 1 active, 0 deferred, 0 held, 0 bounce; oldest 3h12m"


# -- hold and release -----------------------------------------------------------------
def test_hold_is_durable_and_release_makes_it_due_with_the_held_time_not_counted(q, clock, tmp_path):
    eid = q.enqueue("a@here.test", ["b@there.test"], MSG, "HHHH")
    defer(q, eid, clock.t + 3600)
    assert q.hold(eid) is True and q.hold(eid) is False
    reopened = RelayQueue(tmp_path / "queue")              # a restart: read from disk
    e = reopened.get(eid)
    assert e.held and e.held_since == clock.t and e.state(clock.t) == "held"
    assert e.next_due() == float("inf")
    assert [h["event"] for h in e.history][-1] == "held"
    text = e.describe(now=clock.t)
    assert text.splitlines()[0].endswith("  HELD") and " next " not in text     # no attempt is due
    clock.t += 500
    assert q.flush(eid) == 0 and q.flush() == 0              # a flush never releases a hold
    assert q.get(eid).held and q.get(eid).recipients[0].next_attempt == clock.t - 500 + 3600
    clock.t += 1000
    assert q.release(eid) is True and q.release(eid) is False
    e = q.get(eid)
    assert not e.held and e.held_since is None and e.held_total == 1500
    assert e.recipients[0].next_attempt == clock.t and e.state(clock.t) == "active"
    assert e.expires(100) == e.arrival + 1500 + 100
    assert [h["event"] for h in e.history][-1] == "released"
    with pytest.raises(NoSuchEntry):
        q.hold("nope")
    with pytest.raises(NoSuchEntry):
        q.release("nope")


def test_bounce_of_a_held_entry_releases_it_and_can_pick_recipients(q, clock):
    eid = q.enqueue("a@here.test", ["x@there.test", "y@else.test"], MSG, "BBBB")
    q.hold(eid)
    clock.t += 10
    only = Selector(to_domain="there.test").wants_recipient
    assert q.mark_bounce(eid, only=only) == 1
    e = q.get(eid)
    assert [r.state for r in e.recipients] == ["failed", "pending"]
    assert not e.held and e.held_total == 10 and e.state(clock.t) == "bounce"
    assert q.mark_bounce(eid) == 1
    assert [r.state for r in q.get(eid).recipients] == ["failed", "failed"]


def test_summary_reads_only_changed_envelopes_again(q, monkeypatch, clock):
    a = q.enqueue("a@here.test", ["b@there.test"], MSG, "AAAA")
    b = q.enqueue("a@here.test", ["c@there.test"], MSG, "BBBB")
    assert q.summary().by_state["active"] == 2
    reads = []
    real_get = RelayQueue.get
    monkeypatch.setattr(RelayQueue, "get", lambda self, eid: reads.append(eid) or real_get(self, eid))
    assert q.summary().by_state["active"] == 2 and reads == []
    q.hold(b)                                     # read (by hold) and rewritten: a new change key
    reads.clear()
    s = q.summary()
    assert reads == [b] and (s.by_state["active"], s.by_state["held"]) == (1, 1)
    q.delete(a)
    assert q.summary().entries == 1
