"""Tests for clevermail.smtp.send_quota: messages and recipients per user per hour,
kept across a restart (a fake clock; a real file in tmp_path)."""

import os

from clevermail.smtp import send_quota
from clevermail.smtp.send_quota import SendQuota


class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def test_messages_per_hour(tmp_path):
    clock = Clock()
    q = SendQuota(str(tmp_path), 2, 0, clock=clock)
    assert q.refusal("a@x.test") is None
    q.record("a@x.test", 1)
    q.record("a@x.test", 1)
    assert q.refusal("a@x.test") == "2 messages per hour"
    assert q.refusal("b@x.test") is None                      # per user
    clock.now += send_quota.WINDOW - 1
    assert q.refusal("a@x.test") is not None
    clock.now += 2                                            # the first ones left the hour
    assert q.refusal("a@x.test") is None
    q.close()


def test_recipients_per_hour(tmp_path):
    q = SendQuota(str(tmp_path), 0, 10, clock=Clock())
    q.record("a@x.test", 8)
    assert q.refusal("a@x.test", 2) is None
    assert q.refusal("a@x.test", 3) == "10 recipients per hour"
    q.close()


def test_zero_is_no_limit(tmp_path):
    q = SendQuota(str(tmp_path), 0, 0, clock=Clock())
    for _ in range(50):
        q.record("a@x.test", 100)
    assert q.refusal("a@x.test", 1000) is None
    q.close()


def test_counts_survive_a_restart_and_old_lines_are_dropped(tmp_path):
    clock = Clock()
    q = SendQuota(str(tmp_path), 3, 0, clock=clock)
    q.record("old@x.test", 1)
    clock.now += send_quota.WINDOW + 5
    for _ in range(3):
        q.record("a@x.test", 2)
    q.close()                                  # no orderly save is needed: lines are appended
    path = tmp_path / send_quota.FILE_NAME
    with open(path, "ab") as f:
        f.write(b"12345.6 7")                  # a torn last line, as after a crash
    again = SendQuota(str(tmp_path), 3, 0, clock=clock)
    assert again.refusal("a@x.test") == "3 messages per hour"
    assert again.refusal("old@x.test") is None
    # compacted at start: the old user's line and the torn line are gone
    assert sorted(line.split()[2] for line in path.read_text().splitlines()) == ["a@x.test"] * 3
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    again.close()


def test_file_is_compacted_while_running(tmp_path, monkeypatch):
    monkeypatch.setattr(send_quota, "COMPACT_LINES", 5)
    clock = Clock()
    q = SendQuota(str(tmp_path), 0, 0, clock=clock)
    for i in range(4):
        q.record("a@x.test", 1)
    clock.now += send_quota.WINDOW + 1
    q.record("a@x.test", 1)                    # the fifth line: rewrite with the last hour only
    q.record("a@x.test", 1)                    # appended to the new file
    assert len((tmp_path / send_quota.FILE_NAME).read_text().splitlines()) == 2
    q.close()


def test_memory_only_without_a_data_dir(tmp_path):
    q = SendQuota(None, 1, 0, clock=Clock())
    q.record("a@x.test", 1)
    assert q.refusal("a@x.test") is not None
    assert os.listdir(tmp_path) == []
