"""DSN (RFC 3461) in the relay worker, with a fake clock and a sink next hop on
loopback: the parameters passed on to a next hop that offers DSN, "relayed" and
"delivered" success reports, failure and delay reports only where NOTIFY asks,
RET=FULL, and an entry's DSN request surviving a new worker."""

import pytest

from clevermail.relay.queue import RelayQueue
from clevermail.relay.worker import RelayWorker
from relay_sink import message
from relay_worker_env import Env
from test_relay_worker import dsn_fields

SENDER = "alice@here.test"


@pytest.fixture
def make_env(tmp_path):
    envs = []

    def make(sink_kw=None, **worker_kw):
        env = Env(tmp_path / str(len(envs)), sink_kw or {}, worker_kw)
        envs.append(env)
        return env
    yield make
    for env in envs:
        env.close()


def enqueue(env, rcpts, *, sender=SENDER, ret=None, envid=None, notify=None, orcpt=None):
    dsn = {a: (notify, orcpt) for a in rcpts}
    pending = env.q.prepare(sender, list(rcpts), message(1, "dsn test"), "Q1", ret=ret,
                            envid=envid, dsn=dsn)
    pending.commit()
    return pending.id


def test_parameters_go_on_to_a_next_hop_that_offers_dsn_and_no_report_is_ours(make_env):
    env = make_env({"dsn": True})
    enqueue(env, ["bob@there.test"], ret="HDRS", envid="env 1", notify=("SUCCESS", "FAILURE"),
            orcpt="rfc822;Bob+x@there.test")
    env.w.run_once()
    [got] = env.sink.messages
    assert got.mail_params[-2:] == ["RET=HDRS", "ENVID=env+201"]
    assert got.rcpt_params["bob@there.test"] == ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Bob+2Bx@there.test"]
    assert env.q.list() == [] and env.local == []          # the next hop reports success


def test_a_next_hop_without_dsn_gets_none_and_the_sender_a_relayed_report(make_env):
    env = make_env()
    enqueue(env, ["bob@there.test", "carol@there.test"], envid="E-7", notify=("SUCCESS",),
            orcpt="rfc822;orig@here.test")
    env.w.run_once()
    [got] = env.sink.messages
    assert not any(p.startswith(("RET", "ENVID")) for p in got.mail_params)
    assert got.rcpt_params == {"bob@there.test": [], "carol@there.test": []}
    [(to, raw)] = env.local
    assert to == SENDER and env.local_senders == [""]      # the null sender: never reported on
    msg, groups = dsn_fields(raw)
    assert [g["Action"] for g in groups] == ["relayed", "relayed"]
    assert {g["Original-Recipient"] for g in groups} == {"rfc822;orig@here.test"}
    assert msg.get_payload()[1].get_payload()[0]["Original-Envelope-Id"] == "E-7"
    assert env.q.list() == []
    env.w.run_once()
    assert len(env.local) == 1                             # once


def test_queued_local_recipient_with_notify_success_gets_delivered(make_env):
    env = make_env()
    enqueue(env, ["carol@here.test"], notify=("SUCCESS", "FAILURE"))
    env.w.run_once()
    assert [a for a, _ in env.local] == ["carol@here.test", SENDER]
    _, [group] = dsn_fields(env.local[1][1])
    assert group["Action"] == "delivered" and group["Final-Recipient"] == "rfc822; carol@here.test"


def test_a_queued_local_alias_of_several_targets_is_reported_expanded(make_env):
    """RFC 3461 6.2.7.3, as the SMTP path reports an alias it expands at once
    (test_dsn_e2e): the alias confirms the delivery itself, "expanded"."""
    env = make_env(targets=lambda a: 3 if a == "team@here.test" else 1)
    enqueue(env, ["team@here.test", "carol@here.test"], notify=("SUCCESS",))
    env.w.run_once()
    assert [a for a, _ in env.local] == ["team@here.test", "carol@here.test", SENDER]
    _, groups = dsn_fields(env.local[2][1])
    assert [(g["Final-Recipient"], g["Action"], g["Status"], g["Diagnostic-Code"]) for g in groups] == [
        ("rfc822; team@here.test", "expanded", "2.0.0", "smtp; 250 2.0.0 expanded to 3 recipients"),
        ("rfc822; carol@here.test", "delivered", "2.0.0", "smtp; 250 2.0.0 delivered to the local mailbox")]
    assert [g["Remote-MTA"] for g in groups] == [None, None]     # our own mailboxes: no remote MTA
    assert env.q.list() == []


def test_a_failing_count_of_targets_still_reports_delivered(make_env):
    def broken(address):
        raise RuntimeError("aliases unreadable")
    env = make_env(targets=broken)
    enqueue(env, ["team@here.test"], notify=("SUCCESS",))
    env.w.run_once()
    _, [group] = dsn_fields(env.local[1][1])
    assert (group["Action"], group["Diagnostic-Code"]) == ("delivered", "smtp; 250 2.0.0 delivered to the local mailbox")


@pytest.mark.parametrize("notify, bounced", [(None, True), (("FAILURE",), True), (("NEVER",), False),
                                             (("SUCCESS", "DELAY"), False)])
def test_failure_reports_only_where_notify_asks(make_env, notify, bounced):
    env = make_env({"rcpt": lambda a: (550, "5.1.1 no such user")})
    enqueue(env, ["bob@there.test"], notify=notify)
    env.w.run_once()
    assert env.q.list() == []
    assert len(env.local) == (1 if bounced else 0)
    if bounced:
        _, [group] = dsn_fields(env.local[0][1])
        assert group["Action"] == "failed"


def test_no_report_to_the_null_sender_whatever_notify_says(make_env):
    env = make_env({"rcpt": lambda a: (550, "5.1.1 no such user")})
    enqueue(env, ["bob@there.test"], sender="", notify=("SUCCESS", "FAILURE", "DELAY"))
    enqueue(env, ["carol@here.test"], sender="", notify=("SUCCESS",))
    env.w.run_once()
    assert [a for a, _ in env.local] == ["carol@here.test"]   # the delivery, no report
    assert env.q.list() == []


@pytest.mark.parametrize("notify, warned", [(None, True), (("DELAY",), True), (("FAILURE",), False),
                                            (("NEVER",), False)])
def test_delay_reports_only_where_notify_asks(make_env, notify, warned):
    env = make_env({"rcpt": lambda a: (451, "4.7.1 greylisted")}, delay_warning=100)
    eid = enqueue(env, ["bob@there.test"], notify=notify)
    env.w.run_once()
    env.clock.advance(150)
    env.w.run_once()
    assert len(env.local) == (1 if warned else 0)
    if warned:
        _, [group] = dsn_fields(env.local[0][1])
        assert group["Action"] == "delayed"
    assert env.q.get(eid).recipients[0].state == "deferred"


def test_ret_full_bounce_returns_the_message(make_env):
    env = make_env({"rcpt": lambda a: (550, "5.1.1 no such user")})
    enqueue(env, ["bob@there.test"], ret="FULL")
    env.w.run_once()
    [(_, raw)] = env.local
    msg, _ = dsn_fields(raw)
    assert msg.get_payload()[2].get_content_type() == "message/rfc822"
    assert b"body 1\r\n" in raw


def test_dsn_request_survives_a_new_worker(make_env):
    answer = {"reply": (451, "4.3.0 later")}
    env = make_env({"dsn": True, "rcpt": lambda a: answer["reply"]})
    eid = enqueue(env, ["bob@there.test"], ret="FULL", envid="keep", notify=("DELAY",),
                  orcpt="rfc822;b@there.test")
    env.w.run_once()
    env.w.stop()
    # a new queue object and worker over the same directory, as after a restart
    queue = RelayQueue(env.q.path)
    queue.clock = env.clock
    worker = RelayWorker(queue, env.w.settings, env.w.transport.resolver, env.deliver_local,
                         lambda a: a.endswith("@here.test"))
    entry = queue.get(eid)
    assert (entry.ret, entry.envid, entry.recipients[0].notify) == ("FULL", "keep", ["DELAY"])
    answer["reply"] = (250, "2.1.5 ok")
    env.clock.advance(400)
    worker.run_once()
    [got] = env.sink.messages
    assert "RET=FULL" in got.mail_params and "ENVID=keep" in got.mail_params
    assert got.rcpt_params["bob@there.test"] == ["NOTIFY=DELAY", "ORCPT=rfc822;b@there.test"]
