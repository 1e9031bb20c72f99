"""`clevermail queue` over real queue files without a server: the summary line, the
filters (--state, --to-domain, --from, --older-than), bulk verbs and their --all
guard, ids of old entries, several ids at once, and the admin log of every change."""
import json
import time

import pytest
from click.testing import CliRunner

from clevermail.cli import main
from clevermail.relay.queue import RelayQueue

MSG = b"From: a@example.test\r\nSubject: s\r\n\r\nbody\r\n"


@pytest.fixture
def setup(tmp_path, write_config):
    log_file = tmp_path / "clevermail.log"
    path = write_config(tmp_path, server={"log_file": str(log_file)})
    q = RelayQueue(tmp_path / "data" / "queue")

    def cli(*args, code=0):
        result = CliRunner().invoke(main, ["queue", *args, "--config", path], catch_exceptions=False)
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        return result
    return q, cli, log_file


def age(q, eid, seconds):
    def change(e):
        e.arrival -= seconds
    q.update(eid, change)


def defer(q, eid):
    def change(e):
        for r in e.active():
            r.state, r.attempts, r.next_attempt = "deferred", 1, time.time() + 3600
    q.update(eid, change)


@pytest.fixture
def three(setup):
    """AAAA: new, to there.test and bücher.test, 3h12m old; BBBB: deferred, to else.test;
    CCCC: a report (empty sender) to there.test, held."""
    q, cli, log_file = setup
    q.enqueue("alice@example.test", ["x@there.test", "y@bücher.test"], MSG, "AAAA")
    age(q, "AAAA", 3 * 3600 + 12 * 60 + 5)
    q.enqueue("bob@example.test", ["z@else.test"], MSG, "BBBB")
    defer(q, "BBBB")
    q.enqueue("", ["w@there.test"], MSG, "CCCC")
    q.hold("CCCC")
    return setup


def ids(result):
    return [line.split()[0] for line in result.stdout.splitlines()
            if line and not line.startswith((" ", "matching:")) and "entries" not in line]


def test_list_ends_with_the_summary_line(three):
    q, cli, _ = three
    out = cli("list").stdout.splitlines()
    assert out[-1] == "3 entries, 4 recipients: 1 active, 1 deferred, 1 held, 0 bounce; oldest 3h12m"
    assert [line.split()[0] for line in out if line[:1].isalnum()][:3] == ["AAAA", "BBBB", "CCCC"]
    data = json.loads(cli("list", "--json").stdout)
    assert [(e["id"], e["state"], e["held"]) for e in data] == [
        ("AAAA", "active", False), ("BBBB", "deferred", False), ("CCCC", "held", True)]


@pytest.mark.parametrize("args, expected", [
    (["--state", "held"], ["CCCC"]),
    (["--state", "deferred"], ["BBBB"]),
    (["--state", "active"], ["AAAA"]),
    (["--to-domain", "there.test"], ["AAAA", "CCCC"]),
    (["--to-domain", "xn--bcher-kva.test"], ["AAAA"]),
    (["--from", "bob@example.test"], ["BBBB"]),
    (["--from", "example.test"], ["AAAA", "BBBB"]),
    (["--from", "<>"], ["CCCC"]),
    (["--older-than", "2h"], ["AAAA"]),
    (["--older-than", "1h30m", "--to-domain", "else.test"], []),
])
def test_list_filters(three, args, expected):
    _, cli, _ = three
    result = cli("list", *args)
    if expected:
        assert ids(result) == expected
        assert result.stdout.splitlines()[-1].startswith(f"matching: {len(expected)} entr")
    else:
        assert result.stdout == ("no entries match (queue: 3 entries, 4 recipients: 1 active, "
                                 "1 deferred, 1 held, 0 bounce; oldest 3h12m)\n")


def test_bad_filter_values_are_one_line_usage_errors(three):
    _, cli, _ = three
    for args in (["--older-than", "2"], ["--older-than", "2x"], ["--older-than", "h"],
                 ["--state", "frozen"]):
        result = cli("list", *args, code=2)
        assert "Error: Invalid value for" in result.stderr and "Traceback" not in result.stderr


def test_bulk_verbs_need_ids_filters_or_all_never_both(three):
    q, cli, log_file = three
    for verb in ("flush", "delete", "bounce", "hold", "release"):
        result = cli(verb, code=1)
        assert result.stderr.startswith("error: which entries? give queue ids, filters")
        assert cli(verb, "AAAA", "--all", code=1).stderr == \
            "error: give queue ids or filters/--all, not both\n"
        assert cli(verb, "AAAA", "--state", "held", code=1).exit_code == 1
        assert cli(verb, "--all", "--state", "held", code=1).stderr.startswith("error: --all means")
    assert len(q.list()) == 3 and not log_file.exists()        # nothing was done, nothing logged


def test_delete_by_filter_touches_only_the_matches_and_logs_each(three):
    q, cli, log_file = three
    assert cli("delete", "--to-domain", "there.test").stdout == "deleted AAAA\ndeleted CCCC\n"
    assert [e.id for e in q.list()] == ["BBBB"]
    lines = log_file.read_text().splitlines()
    assert len(lines) == 2
    assert "INFO clevermail.admin: AAAA: deleted from the queue by uid=" in lines[0]
    assert lines[0].endswith(" (clevermail queue delete --to-domain there.test)")
    assert lines[1].split(" clevermail.admin: ")[1].startswith("CCCC: deleted from the queue by uid=")


def test_hold_and_release_by_filter_and_all(three):
    q, cli, log_file = three
    assert cli("hold", "--state", "deferred").stdout == "held BBBB\n"
    assert cli("hold", "--all").stdout == "held AAAA\nBBBB was already held\nCCCC was already held\n"
    assert all(e.held for e in q.list())
    assert cli("release", "--from", "<>").stdout == "released CCCC\n"
    assert [e.id for e in q.list() if e.held] == ["AAAA", "BBBB"]
    text = log_file.read_text()
    assert text.count("put on hold") == 2 and text.count("released from hold") == 1
    assert "BBBB: put on hold by uid=" in text and "(clevermail queue hold --state deferred)\n" in text


def test_bounce_by_domain_fails_only_that_domains_recipients(three):
    q, cli, log_file = three
    result = cli("bounce", "--to-domain", "bücher.test")
    assert result.stdout == "AAAA will be bounced (1 of 2 recipients)\n"
    e = q.get("AAAA")
    assert [(r.address, r.state) for r in e.recipients] == [
        ("x@there.test", "pending"), ("y@bücher.test", "failed")]
    assert cli("bounce", "AAAA").stdout == "AAAA will be bounced\n"
    assert cli("bounce", "AAAA").stdout == "AAAA: nothing to bounce\n"
    assert "AAAA: marked for bounce, 1 recipient(s) by uid=" in log_file.read_text()


def test_several_ids_and_an_unknown_one_do_nothing(three):
    q, cli, log_file = three
    result = cli("delete", "AAAA", "nope", "BBBB", code=1)
    assert (result.stdout, result.stderr) == ("", "error: no queue entry nope\n")
    assert len(q.list()) == 3
    assert cli("delete", "aaaa", "BBBB", "AAAA").stdout == "deleted AAAA\ndeleted BBBB\n"


def test_an_old_entry_answers_to_its_name_and_its_queue_id(setup):
    q, cli, log_file = setup
    eid = q.new_id()                             # named the old way: time stamp + random
    q.enqueue("a@example.test", ["b@there.test"], MSG, eid)
    q.update(eid, lambda e: setattr(e, "queue_id", "0123456789AB"))
    assert cli("show", eid).stdout.startswith(f"{eid}  queue-id 0123456789AB  age ")
    assert cli("show", "0123456789AB").stdout.startswith(f"{eid}  queue-id 0123456789AB  age ")
    assert cli("dump", "0123456789ab").stdout_bytes == MSG
    assert cli("hold", "0123456789AB").stdout == f"held {eid}\n"
    # an old entry's log line names both: the queue id first (grep finds it), then the entry
    assert f"0123456789AB: put on hold (entry {eid}) by uid=" in log_file.read_text()


def test_show_json_and_dump_of_an_ambiguous_id(setup):
    q, cli, _ = setup
    first = q.enqueue("", ["a@example.test"], MSG, "Q1-dsn")
    second = q.enqueue("", ["a@example.test"], MSG + b"2", "Q1-dsn")
    assert first == "Q1-dsn" and second != first
    data = json.loads(cli("show", "q1-DSN", "--json").stdout)
    assert sorted(e["id"] for e in data) == sorted([first, second])
    result = cli("dump", "q1-dsn", code=1)
    assert result.stderr.startswith("error: q1-dsn names 2 entries (")
    assert cli("dump", second).stdout_bytes == MSG + b"2"


def test_admin_log_without_a_log_file_goes_to_stderr(tmp_path, write_config, monkeypatch):
    from clevermail.cli import audit
    monkeypatch.setattr(audit, "SYSLOG_SOCKET", str(tmp_path / "no-syslog-here"))
    path = write_config(tmp_path)
    RelayQueue(tmp_path / "data" / "queue").enqueue("a@example.test", ["b@there.test"], MSG, "DDDD")
    result = CliRunner().invoke(main, ["--config", path, "queue", "delete", "DDDD"])
    assert result.stdout == "deleted DDDD\n"
    assert "INFO clevermail.admin: DDDD: deleted from the queue by uid=" in result.stderr
    assert result.stderr.rstrip().endswith(" (clevermail queue delete)")
