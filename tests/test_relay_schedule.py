"""relay.schedule: retry, expiry and report decisions (pure: no queue, no network)."""
import logging
import random

from clevermail.relay.smtp_client import Result
from clevermail.relay.entry import Entry, Recipient
from clevermail.relay.schedule import (JITTER, backoff, mark_reported, record_results,
                                       report_recipients, warning_due)

LOG = logging.getLogger("test")


def entry(*states, sender="a@here.test"):
    return Entry(id="e", queue_id="Q", sender=sender, arrival=0.0,
                 recipients=[Recipient(f"r{i}@there.test", state=s) for i, s in enumerate(states)])


def test_backoff_follows_schedule_with_jitter_and_repeats_the_last():
    rng = random.Random(1)
    for attempts, base in ((0, 10), (1, 10), (2, 20), (3, 40), (9, 40)):
        d = backoff((10, 20, 40), attempts, rng)
        assert base * (1 - JITTER) <= d <= base * (1 + JITTER)


def test_record_results_classifies_and_expires():
    e = entry("pending", "pending", "pending", "failed")
    results = {"r0@there.test": Result(250, "2.0.0 ok", "mx"),
               "r1@there.test": Result(451, "4.7.1 later", "mx"),
               "r2@there.test": Result(550, "5.1.1 no such user", "mx"),
               "r3@there.test": Result(250, "2.0.0 ok", "mx")}      # operator failed it; delivery wins
    assert record_results(e, results, 10.0, queue_lifetime=100, backoff=lambda n: 30, log=LOG)
    assert [r.state for r in e.recipients] == ["delivered", "deferred", "failed", "delivered"]
    assert e.recipients[1].next_attempt == 40.0 and e.recipients[1].attempts == 1
    assert e.recipients[3].attempts == 0
    # the retry is capped at the expiry, and a 4xx after it fails the recipient
    record_results(e, {"r1@there.test": Result(451, "4.7.1 later")}, 90.0,
                   queue_lifetime=100, backoff=lambda n: 30, log=LOG)
    assert e.recipients[1].next_attempt == 100.0
    record_results(e, {"r1@there.test": Result(451, "4.7.1 later")}, 100.0,
                   queue_lifetime=100, backoff=lambda n: 30, log=LOG)
    assert e.recipients[1].state == "failed" and "expired" in e.history[-1]["detail"]


def test_finished_entry_is_not_written():
    e = entry("pending", sender="")
    assert not record_results(e, {"r0@there.test": Result(550, "5.1.1 no")}, 1.0,
                              queue_lifetime=100, backoff=lambda n: 30, log=LOG)
    assert "no bounce: empty sender" in e.history[-1]["detail"]


def test_reports():
    e = entry("failed", "deferred", "delivered")
    assert [r.address for r in report_recipients(e, "failed")] == ["r0@there.test"]
    assert [r.address for r in report_recipients(e, "delayed")] == ["r1@there.test"]
    assert warning_due(e, 50.0, 50.0) and not warning_due(e, 49.0, 50.0)
    assert not warning_due(e, 50.0, None) and not warning_due(entry("deferred", sender=""), 50.0, 1.0)
    mark_reported(e, "failed", {"r0@there.test"}, 5.0, "sent")
    assert e.recipients[0].state == "bounced" and not e.needs_bounce()
    mark_reported(e, "delayed", {"r1@there.test"}, 5.0, "sent")
    assert e.warned and not warning_due(e, 60.0, 50.0)
