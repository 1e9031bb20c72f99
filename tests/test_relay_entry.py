"""relay.entry: the JSON envelope, per-recipient state rules, the operator's text."""
import json

from clevermail.relay.entry import FORMAT_VERSION, HISTORY_LIMIT, Entry, Recipient
from clevermail.relay import queue


def test_reexported_from_queue():
    assert queue.Entry is Entry and queue.Recipient is Recipient


def test_json_round_trip_tolerates_unknown_and_missing_keys():
    e = Entry(id="e1", queue_id="Q1", sender="a@here.test", arrival=100.0, size=5,
              recipients=[Recipient("b@there.test", state="deferred", attempts=2,
                                    last_reply="451 4.7.1 later", next_attempt=400.0)])
    d = json.loads(json.dumps(e.to_json()))
    assert d["version"] == FORMAT_VERSION
    assert Entry.from_json(d) == e
    d["recipients"][0]["future_field"] = 1
    d.pop("warned"), d.pop("history"), d.pop("size")
    back = Entry.from_json(d)
    assert back.recipients == e.recipients and back.size == 0 and not back.warned


def test_history_is_bounded():
    e = Entry(id="e1", queue_id="Q1", sender="", arrival=0.0)
    for i in range(HISTORY_LIMIT + 5):
        e.add_history(float(i), "deferred")
    assert len(e.history) == HISTORY_LIMIT and e.history[-1]["time"] == HISTORY_LIMIT + 4


def test_entry_due_rules():
    e = Entry.from_json({"id": "x", "queue_id": "q", "sender": "", "arrival": 100.0, "recipients": [
        {"address": "a@b", "state": "deferred", "next_attempt": 500.0},
        {"address": "c@b", "state": "failed"}]})
    assert not e.needs_bounce()                 # empty sender: never bounced
    assert e.next_due() == 500.0 and e.next_due(delay_warning=10) == 500.0
    e.sender = "s@x"
    assert e.needs_bounce() and e.next_due() == 0
    e.recipients[1].state = "bounced"
    assert e.next_due(delay_warning=10) == 110.0
    e.warned = True
    assert e.next_due(delay_warning=10) == 500.0
    e.recipients[0].state = "delivered"
    assert e.finished() and e.next_due() == 0


def test_describe_shows_state_attempts_next_and_last_reply():
    e = Entry(id="e1", queue_id="Q1", sender="a@here.test", arrival=1000.0, size=42,
              recipients=[Recipient("b@there.test", state="deferred", attempts=3,
                                    last_reply="451 4.7.1 greylisted", next_attempt=1000.0 + 125),
                          Recipient("c@there.test", state="delivered", attempts=1)])
    e.add_history(1000.0, "queued", "from <a@here.test>")
    text = e.describe(now=1000.0)
    assert text.splitlines()[0].startswith("e1  queue-id Q1  age 0m00s  size 42  from <a@here.test>")
    assert "<b@there.test>  deferred  attempts 3  next in 2m05s  last: 451 4.7.1 greylisted" in text
    assert "<c@there.test>  delivered  attempts 1" in text and "next" not in text.splitlines()[2]
    assert "queued" not in text and "queued  from <a@here.test>" in e.describe(1000.0, history=True)
