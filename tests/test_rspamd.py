"""Tests for the rspamd content filter (inbound/rspamd.py) against a fake rspamd (stdlib
http.server on port 0): the request, the reply parsing, each action's outcome (soft
reject and greylist, which a real rspamd's test patterns cannot give, among them),
subject rewriting, timeouts and the config keys.  A real rspamd is in
test_rspamd_e2e.py."""

import email.header
import http.server
import json
import logging
import socket
import threading

import pytest

from clevermail.config import ConfigError
from clevermail.inbound.rspamd import ContentFilter, RspamdClient, RspamdError, parse_reply, rewrite_subject


MESSAGE = (b"From: x@far.test\r\nTo: alice@example.test\r\nSubject: hello\r\n"
           b"X-Spam: No\r\nX-Spam-Score: -100\r\n\r\nbody\r\n")


# -- a fake rspamd ---------------------------------------------------------------------------
class FakeRspamd:
    """Answers every POST /checkv2 with `reply` (a dict, or bytes as they are) and
    `status`; keeps the requests it saw as (headers list, body)."""

    def __init__(self, reply, status=200):
        self.reply, self.status, self.requests = reply, status, []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                fake.requests.append((self.path, self.headers.items(), body))
                data = fake.reply if isinstance(fake.reply, bytes) else json.dumps(fake.reply).encode()
                self.send_response(fake.status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def scan(reply, fail="open", status=200):
    with FakeRspamd(reply, status) as fake:
        content = ContentFilter(RspamdClient("127.0.0.1", fake.port, timeout=5), fail)
        return content.check(MESSAGE, ip="192.0.2.1", helo="client.far.test", sender="x@far.test",
                             recipients=["alice@example.test"], queue_id="Q1", hostname="mx.test")


def head(body):
    return body.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def test_request_carries_the_envelope(thread_guard):
    with FakeRspamd({"action": "no action", "score": 0.5, "required_score": 15}) as fake:
        RspamdClient("127.0.0.1", fake.port).check(
            MESSAGE, ip="192.0.2.1", helo="client.far.test", sender="x@far.test",
            recipients=["alice@example.test", "bob@example.test"], queue_id="Q1",
            user="alice@example.test", hostname="mx.test")
        RspamdClient("127.0.0.1", fake.port).check(
            MESSAGE, ip="192.0.2.1", helo="bad\r\nInjected: yes", sender="", recipients=["a@b"])
    [(path, headers, body), (_, second, _)] = fake.requests
    assert path == "/checkv2" and body == MESSAGE
    assert ("IP", "192.0.2.1") in headers and ("Helo", "client.far.test") in headers
    assert ("From", "x@far.test") in headers and ("Queue-Id", "Q1") in headers
    assert [v for k, v in headers if k == "Rcpt"] == ["alice@example.test", "bob@example.test"]
    assert ("User", "alice@example.test") in headers and ("Hostname", "mx.test") in headers
    assert "User" not in dict(second) and "Injected" not in dict(second)
    assert ("Helo", "bad Injected: yes") in second


def test_reject_is_550(thread_guard):
    outcome = scan({"action": "reject", "score": 20.5, "required_score": 15, "symbols": {"GTUBE": {}}})
    assert outcome.refusal.wire == b"550 5.7.1 Message refused as spam: score 20.50 / 15.00\r\n"
    assert outcome.reason.startswith("rspamd reject, score 20.50 / 15.00")
    assert outcome.scan.symbols == ("GTUBE",)


@pytest.mark.parametrize("action", ["soft reject", "greylist"])
def test_soft_reject_and_greylist_are_451(thread_guard, action):
    outcome = scan({"action": action, "score": 5, "required_score": 15})
    assert outcome.refusal.wire == \
        f"451 4.7.1 Message deferred by the content filter: {action}, try again later\r\n".encode()


def test_add_header_labels_and_goes_to_junk(thread_guard):
    outcome = scan({"action": "add header", "score": 7, "required_score": 15})
    assert outcome.refusal is None and outcome.folder == "Junk"
    fields = head(outcome.body)
    assert fields[:2] == [b"X-Spam: Yes", b"X-Spam-Score: 7.00 / 15.00"]
    # the sender's own labels are gone
    assert b"X-Spam: No" not in fields and b"X-Spam-Score: -100" not in fields
    assert b"Subject: hello" in fields and outcome.body.endswith(b"\r\n\r\nbody\r\n")


def test_rewrite_subject(thread_guard):
    outcome = scan({"action": "rewrite subject", "score": 9, "required_score": 15,
                    "subject": "*** SPAM *** hello"})
    assert outcome.folder == "Junk"
    fields = head(outcome.body)
    assert b"X-Spam: Yes" in fields and b"Subject: *** SPAM *** hello" in fields
    assert b"Subject: hello" not in fields


def test_no_action_delivers_with_the_score(thread_guard):
    outcome = scan({"action": "no action", "score": -1.25, "required_score": 15})
    assert outcome.refusal is None and outcome.folder is None and outcome.reason == ""
    assert head(outcome.body)[0] == b"X-Spam-Score: -1.25 / 15.00"
    assert b"X-Spam: " not in outcome.body


@pytest.mark.parametrize("reply, status", [(b"not json", 200), (b"{}", 200), (b'{"action": 3}', 200),
                                           ({"action": "reject"}, 500)])
def test_bad_replies_are_errors(thread_guard, caplog, reply, status):
    with caplog.at_level(logging.WARNING, "clevermail.inbound"):
        outcome = scan(reply, status=status)
    assert outcome.refusal is None and outcome.body == MESSAGE      # fail open: unscanned
    assert "rspamd unavailable" in caplog.text
    assert scan(reply, fail="tempfail", status=status).refusal.wire.startswith(b"451 4.7.1 ")


def test_parse_reply():
    parsed = parse_reply(b'{"action": "rewrite subject", "score": 6, "required_score": 15.0,'
                         b' "subject": "[SPAM] x", "symbols": {"B": {}, "A": {}},'
                         b' "messages": {"smtp_message": "go away"}}')
    assert (parsed.action, parsed.score, parsed.required_score) == ("rewrite subject", 6.0, 15.0)
    assert (parsed.symbols, parsed.subject, parsed.message) == (("A", "B"), "[SPAM] x", "go away")
    with pytest.raises(RspamdError):
        parse_reply(b'{"action": "no action", "score": "lots"}')


def test_rewrite_subject_folded_and_non_ascii():
    body = b"Subject: a\r\n long one\r\nTo: b\r\n\r\nSubject: in the body\r\n"
    out = rewrite_subject(body, "[SPAM] caf\u00e9")
    fields = head(out)
    assert fields[0] == b"To: b" and len(fields) == 2 and b"long one" not in out
    encoded = fields[1].decode("ascii").removeprefix("Subject: ")
    assert str(email.header.make_header(email.header.decode_header(encoded))) == "[SPAM] caf\u00e9"
    assert out.endswith(b"Subject: in the body\r\n")


def test_slow_rspamd_times_out(thread_guard):
    with socket.socket() as listener:       # accepts (the kernel's backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = RspamdClient("127.0.0.1", listener.getsockname()[1], timeout=0.3)
        with pytest.raises(RspamdError):
            client.check(MESSAGE, ip="192.0.2.1", helo="h", sender="", recipients=["a@b"])


def test_config_keys(tmp_path):
    make_config = __import__("conftest").make_config
    spam = make_config(tmp_path).spam
    assert (spam.rspamd, spam.rspamd_timeout, spam.rspamd_fail) == (None, 10.0, "open")
    spam = make_config(tmp_path, spam={"rspamd": "127.0.0.1:11333", "rspamd_timeout": "2.5",
                                       "rspamd_fail": "tempfail"}).spam
    assert (spam.rspamd, spam.rspamd_timeout, spam.rspamd_fail) == (("127.0.0.1", 11333), 2.5, "tempfail")
    for bad in ({"rspamd_fail": "maybe"}, {"rspamd": "127.0.0.1"}, {"rspamd_timeout": "0"}):
        with pytest.raises(ConfigError, match=r"\[spam\] rspamd"):
            make_config(tmp_path, spam=bad)
