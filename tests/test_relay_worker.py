"""relay.worker: scheduling, retries, expiry, bounces, the thread, crashes, holds (two
processes: test_relay_worker_procs.py)."""
import dataclasses
import email
import logging
import os
import ssl
import subprocess
import sys
import threading
from email import policy

import pytest
import trustme

from clevermail.metrics import PromMetrics
from clevermail.relay.worker import MIN_GAP
from relay_sink import REPO
from relay_worker_env import make_env  # noqa: F401 (make_env: a fixture)
from waiting import wait_for

def dsn_fields(raw):
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg.get_content_type() == "multipart/report"
    return msg, msg.get_payload()[1].get_payload()[1:]


def test_delivers_grouped_by_domain_and_removes(make_env):
    env = make_env()
    env.enqueue(rcpts=["b1@there.test", "b2@there.test", "c@else.test"])
    assert env.w.run_once() == 1
    assert env.q.list() == []
    assert sorted(m.rcpts for m in env.sink.messages) == [["b1@there.test", "b2@there.test"], ["c@else.test"]]
    assert len(env.sink.sessions) == 2               # one connection per domain
    assert env.w.run_once() == 0


def test_local_recipient_in_the_queue(make_env):
    env = make_env()
    env.enqueue(rcpts=["carol@here.test"])
    env.w.run_once()
    assert [a for a, _ in env.local] == ["carol@here.test"] and env.q.list() == []
    assert env.local_senders == ["alice@here.test"]       # the store stamps Return-Path from it


def test_deferred_then_delivered_on_retry(make_env):
    answer = {"code": (451, "4.2.1 greylisted")}
    env = make_env({"rcpt": lambda a: answer["code"]})
    eid = env.enqueue()
    env.w.run_once()
    [r] = env.q.get(eid).recipients
    assert (r.state, r.attempts, r.last_reply) == ("deferred", 1, "451 4.2.1 greylisted")
    assert env.clock() + 270 <= r.next_attempt <= env.clock() + 330
    sessions = len(env.sink.sessions)
    assert env.w.run_once() == 0 and len(env.sink.sessions) == sessions   # not due yet
    answer["code"] = (250, "ok")
    env.clock.advance(331)
    assert env.w.run_once() == 1
    assert env.q.list() == [] and len(env.sink.messages) == 1


def test_retry_schedule_doubles_then_caps(make_env):
    env = make_env({"rcpt": lambda a: (451, "later")}, retry_schedule=(10, 20, 40))
    eid = env.enqueue()
    gaps = []
    for _ in range(5):
        env.w.run_once()
        r = env.q.get(eid).recipients[0]
        gaps.append(r.next_attempt - env.clock())
        env.clock.advance(gaps[-1] + 0.01)
    for gap, base in zip(gaps, [10, 20, 40, 40, 40]):
        assert base * 0.9 <= gap <= base * 1.1


def test_expiry_fails_and_bounces(make_env):
    env = make_env({"rcpt": lambda a: (451, "4.2.0 mailbox busy")}, queue_lifetime=100)
    eid = env.enqueue()
    env.w.run_once()
    r = env.q.get(eid).recipients[0]
    assert r.state == "deferred" and r.next_attempt == pytest.approx(env.q.get(eid).arrival + 100)
    env.clock.advance(100)
    env.w.run_once()
    assert env.q.list() == []
    [(to, raw)] = env.local
    msg, [rcpt] = dsn_fields(raw)
    assert to == "alice@here.test" and rcpt["Action"] == "failed" and rcpt["Status"] == "4.2.0"
    assert env.local_senders == [""]                       # a report has a null sender
    assert "X-Test-Id: 1" in msg.get_payload()[2].get_payload(decode=True).decode()


def test_bounce_for_external_sender_is_queued_with_empty_sender(make_env):
    env = make_env({"rcpt": {"gone@there.test": (550, "5.1.1 no such user")}})
    env.enqueue(sender="zed@far.test", rcpts=["gone@there.test", "ok@there.test"], qid="QB")
    env.w.run_once()
    [bounce] = env.q.list()
    assert (bounce.sender, [r.address for r in bounce.recipients], bounce.queue_id) == (
        "", ["zed@far.test"], "QB-dsn")
    env.w.run_once()
    assert env.q.list() == []
    delivered = [m for m in env.sink.messages if m.sender == ""]
    assert [m.rcpts for m in delivered] == [["zed@far.test"]]
    _, [rcpt] = dsn_fields(delivered[0].data)
    assert rcpt["Final-Recipient"] == "rfc822; gone@there.test" and rcpt["Status"] == "5.1.1"


def test_empty_sender_is_never_bounced(make_env, caplog):
    env = make_env({"rcpt": lambda a: (550, "5.1.1 no")})
    env.enqueue(sender="", rcpts=["gone@there.test"])
    with caplog.at_level(logging.INFO, "clevermail.relay"):
        env.w.run_once()
    assert env.q.list() == [] and env.local == []
    assert "no bounce: empty sender" in caplog.text


def test_operator_bounce(make_env):
    env = make_env({"rcpt": lambda a: (451, "4.0.0 later")})
    eid = env.enqueue()
    env.w.run_once()
    env.q.mark_bounce(eid)
    env.clock.advance(1)                                # MIN_GAP between two looks
    env.w.run_once()
    assert env.q.list() == []
    [(to, raw)] = env.local
    assert b"cancelled by the administrator" in raw


def test_bounce_to_an_unavailable_local_mailbox_goes_through_the_queue(make_env):
    env = make_env({"rcpt": lambda a: (550, "5.1.1 no")})
    env.enqueue()
    env.local_fail = True
    env.w.run_once()
    [bounce] = env.q.list()
    assert bounce.sender == "" and bounce.recipients[0].address == "alice@here.test"
    env.clock.advance(1)
    env.w.run_once()                                    # the mailbox still fails: deferred
    assert env.q.get(bounce.id).recipients[0].state == "deferred"
    env.local_fail = False
    env.clock.advance(400)
    env.w.run_once()
    assert env.q.list() == [] and [a for a, _ in env.local] == ["alice@here.test"]


def test_metrics_count_outcomes_latency_and_local_store_errors(make_env):
    env = make_env(metrics=PromMetrics())
    registry = env.metrics.registry

    def count(name, **labels):
        return registry.get_sample_value(name, labels)
    env.enqueue(rcpts=["carol@here.test", "b@there.test"])
    env.local_fail = True
    env.clock.advance(30)
    env.w.run_once()
    assert count("clevermail_store_errors_total", operation="relay_local_delivery") == 1
    assert count("clevermail_relay_attempts_total", outcome="deferred") == 1
    assert count("clevermail_relay_attempts_total", outcome="delivered") == 1     # b@there.test
    assert count("clevermail_relay_delivery_seconds_sum") == 30                   # fake clock
    env.local_fail = False
    env.clock.advance(400)
    env.w.run_once()
    assert env.q.list() == []
    assert count("clevermail_relay_attempts_total", outcome="delivered") == 2
    assert count("clevermail_relay_delivery_seconds_count") == 2
    assert count("clevermail_relay_attempts_total", outcome="bounced") == 0


def test_bounce_that_cannot_be_queued_is_retried_later(make_env, monkeypatch):
    env = make_env({"rcpt": lambda a: (550, "5.1.1 no")}, interval=60)
    eid = env.enqueue(sender="zed@far.test")
    real = env.q.enqueue
    monkeypatch.setattr(env.q, "enqueue", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    env.w.run_once()
    assert env.q.get(eid).recipients[0].state == "failed"
    monkeypatch.setattr(env.q, "enqueue", real)
    env.clock.advance(1)
    assert env.w.run_once() == 0                        # waits, does not hammer
    env.clock.advance(60)
    env.w.run_once()
    [bounce] = env.q.list()
    assert bounce.sender == "" and bounce.recipients[0].address == "zed@far.test"


def test_delay_warning_sent_once(make_env):
    env = make_env({"rcpt": lambda a: (451, "4.7.1 greylisted")}, delay_warning=100)
    eid = env.enqueue()
    env.w.run_once()
    env.clock.advance(150)                              # before the retry (300 s)
    env.w.run_once()
    [(to, raw)] = env.local
    msg, [rcpt] = dsn_fields(raw)
    assert rcpt["Action"] == "delayed" and "Delayed" in msg["Subject"]
    e = env.q.get(eid)
    assert e.warned and e.recipients[0].attempts == 1
    env.clock.advance(400)
    env.w.run_once()
    assert len(env.local) == 1 and env.q.get(eid).recipients[0].attempts == 2


def test_delete_during_delivery_is_not_undone(make_env, caplog):
    env = make_env()
    eid = env.enqueue()
    env.sink.on_data = lambda m: env.q.delete(eid)
    with caplog.at_level(logging.INFO, "clevermail.relay"):
        env.w.run_once()
    assert env.q.list() == [] and "deleted during delivery" in caplog.text


def test_smarthost_through_the_worker(make_env):
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    env = make_env({"starttls": server, "auth": ("relay", "pw")}, smarthost_user="relay",
                   smarthost_password="pw", tls_context=client)
    env.w.transport.resolver = None                     # no DNS in smarthost mode
    env.w.settings = dataclasses.replace(env.w.settings, smarthost=("127.0.0.1", env.sink.port))
    env.enqueue(rcpts=["b@there.test", "c@else.test"])
    env.w.run_once()
    [m] = env.sink.messages
    assert m.tls and m.auth == "relay" and m.rcpts == ["b@there.test", "c@else.test"]


def test_thread_wakes_on_enqueue(thread_guard, make_env):
    env = make_env(fake_clock=False, interval=60)
    env.w.start()
    env.enqueue()
    assert wait_for(lambda: len(env.sink.messages) == 1)
    assert wait_for(lambda: env.q.list() == [])


def test_flush_from_another_process_is_noticed(thread_guard, make_env):
    answer = {"code": (451, "4.2.1 later")}
    env = make_env({"rcpt": lambda a: answer["code"]}, fake_clock=False, interval=60)
    env.w.start()
    eid = env.enqueue()
    assert wait_for(lambda: env.q.get(eid).recipients[0].state == "deferred")
    answer["code"] = (250, "ok")
    code = f"from clevermail.relay.queue import RelayQueue; print(RelayQueue({str(env.q.path)!r}).flush())"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=30, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.stdout.strip() == "1", out.stderr
    assert wait_for(lambda: len(env.sink.messages) == 1, timeout=10)


def test_survives_unexpected_exceptions_without_spinning(make_env, caplog):
    """A resolver bug fails the attempt like a temporary error: logged with the queue id
    and a traceback, the recipient deferred by the retry schedule and not tried again
    before its time (the fake clock stands still between passes)."""
    calls = []

    class Boom:
        def resolve(self, qname, rdtype):
            calls.append(qname)
            raise RuntimeError("resolver bug")

    env = make_env(resolver=Boom())
    eid = env.enqueue(qid="QBOOM")
    with caplog.at_level(logging.INFO, "clevermail.relay"):
        assert env.w.run_once() == 1
    [r] = env.q.get(eid).recipients
    assert r.state == "deferred" and "4.3.0 internal error" in r.last_reply
    assert any("QBOOM" in rec.getMessage() and rec.exc_info for rec in caplog.records)
    assert len(calls) == 1
    for _ in range(3):                                  # the same instant: nothing to do
        assert env.w.run_once() == 0
    env.clock.advance(r.next_attempt - env.clock() - 1)
    assert env.w.run_once() == 0 and len(calls) == 1    # a second before the retry
    env.clock.advance(1)
    assert env.w.run_once() == 1 and len(calls) == 2    # the retry, exactly once


def _broken_deliver(env, monkeypatch):
    crashes = []

    def broken(*a):
        crashes.append(env.clock())
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(env.w, "_deliver", broken)
    return crashes


def test_crashing_entry_is_logged_and_looked_at_once_per_gap(make_env, caplog, monkeypatch):
    env = make_env(interval=0.1)
    crashes = _broken_deliver(env, monkeypatch)
    env.enqueue(qid="QFIRE")
    with caplog.at_level(logging.INFO, "clevermail.relay"):
        assert env.w.run_once() == 0
    assert any("QFIRE" in r.getMessage() and r.exc_info for r in caplog.records)
    assert len(crashes) == 1
    assert env.w.run_once() == 0 and len(crashes) == 1  # left alone at the same instant...
    env.clock.advance(MIN_GAP / 2)
    assert env.w.run_once() == 0 and len(crashes) == 1  # ...and for MIN_GAP
    env.clock.advance(MIN_GAP / 2 + 0.01)
    assert env.w.run_once() == 0 and len(crashes) == 2  # then looked at once more
    assert env.w.run_once() == 0 and len(crashes) == 2


def test_failed_pass_is_logged_and_the_thread_goes_on(thread_guard, make_env, caplog, monkeypatch):
    """A pass that fails (here the queue scan) is logged; the thread lives on and its
    next pass takes up the entry, which then waits for MIN_GAP on the worker's clock."""
    env = make_env(interval=0.1)
    crashes = _broken_deliver(env, monkeypatch)
    real_scan, scan_fail = env.q.scan, [True]

    def scan():
        if scan_fail[0] and threading.current_thread().name == "relay-worker":
            scan_fail[0] = False
            raise OSError("transient")
        return real_scan()
    monkeypatch.setattr(env.q, "scan", scan)
    with caplog.at_level(logging.INFO, "clevermail.relay"):
        env.enqueue(qid="QFIRE")
        env.w.start()
        assert wait_for(lambda: crashes)
        # the clock moves only once the pass is over: the hold it sets reads the clock
        assert wait_for(lambda: not env.w._inflight)
        assert "relay queue pass failed" in caplog.text
        assert len(crashes) == 1                        # the clock has not moved
        env.clock.advance(MIN_GAP + 0.01)
        assert wait_for(lambda: len(crashes) == 2)
    assert crashes[1] - crashes[0] >= MIN_GAP
    assert env.w._thread.is_alive()


def test_a_held_entry_is_never_attempted_expired_or_warned_until_released(make_env):
    env = make_env({"rcpt": lambda a: (451, "4.2.0 busy")}, queue_lifetime=1000, delay_warning=100)
    eid = env.enqueue()
    env.w.run_once()                                     # attempt 1: deferred
    sessions = len(env.sink.sessions)
    assert env.q.hold(eid)
    env.clock.advance(5000)                              # past the lifetime and the warning
    assert env.w.run_once() == 0
    assert len(env.sink.sessions) == sessions and env.local == []
    e = env.q.get(eid)
    assert e.held and e.recipients[0].state == "deferred" and e.recipients[0].attempts == 1
    assert env.q.release(eid)
    # released: due now, and the 5000 s on hold do not count towards the lifetime
    assert env.w.run_once() == 1
    e = env.q.get(eid)
    [r] = e.recipients
    assert (r.state, r.attempts) == ("deferred", 2) and len(env.sink.sessions) > sessions
    assert r.next_attempt <= e.arrival + 5000 + 1000
    assert env.local == []                               # the warning's clock is shifted too
    env.clock.advance(150)
    env.w.run_once()
    assert len(env.local) == 1 and dsn_fields(env.local[0][1])[1][0]["Action"] == "delayed"
    env.clock.advance(1000)                              # now past the shifted lifetime
    env.w.run_once()
    assert env.q.list() == []
    assert dsn_fields(env.local[-1][1])[1][0]["Action"] == "failed"


def test_a_hold_between_the_scan_and_the_claim_is_respected(make_env, monkeypatch):
    env = make_env()
    eid = env.enqueue()
    claim = env.q.claim

    def hold_then_claim(entry_id):
        env.q.hold(entry_id)                             # the operator, just in time
        return claim(entry_id)
    monkeypatch.setattr(env.q, "claim", hold_then_claim)
    assert env.w.run_once() == 0
    assert env.sink.sessions == [] and env.q.get(eid).held
