"""The sandbox's JSON API over real HTTP (urllib) against a started Sandbox: every
route, the long poll and its 408, errors, and the loopback-only rules."""

import http.client
import json
import smtplib
import threading
import urllib.error
import urllib.request
from email.message import EmailMessage

import pytest

from clevermail.sandbox.api import NotLoopback, SandboxAPI, host_is_loopback, is_loopback
from clevermail.sandbox.service import Sandbox

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    with Sandbox(str(tmp_path_factory.mktemp("api") / "sb"), api_port=0) as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def _empty(box):
    yield
    box.mailboxes.clear()


def call(box, path, method="GET", headers=None):
    request = urllib.request.Request(box.api_url + path, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def send(box, rcpts, subject, extra=None, attachment=None):
    msg = EmailMessage()
    msg["From"] = "app@myapp.test"
    msg["To"] = ", ".join(rcpts)
    msg["Subject"] = subject
    for name, value in (extra or {}).items():
        msg[name] = value
    msg.set_content("Grüße aus dem Test.\n")
    if attachment:
        msg.add_attachment(attachment, maintype="application", subtype="octet-stream",
                           filename="data.bin")
    with smtplib.SMTP("127.0.0.1", box.port("smtp"), timeout=10) as smtp:
        smtp.send_message(msg)


def test_mailboxes_messages_and_one_message(box):
    send(box, ["ann@example.com", "ben@example.org"], "invoice 12", attachment=b"\x00\x01binary")
    status, body = call(box, "/api/mailboxes")
    assert status == 200
    assert body["mailboxes"] == [{"address": "ann@example.com", "messages": 1},
                                 {"address": "ben@example.org", "messages": 1}]
    status, body = call(box, "/api/messages?address=Ann@Example.com")
    assert status == 200
    (summary,) = body["messages"]
    assert (summary["subject"], summary["from"], summary["id"]) == ("invoice 12", "app@myapp.test",
                                                                    "ann@example.com:1")
    status, full = call(box, "/api/messages/" + summary["id"])
    assert status == 200
    assert "Subject: invoice 12" in full["raw"]
    assert ["Subject", "invoice 12"] in full["headers"]
    text, attached = full["parts"]
    assert text["content_type"] == "text/plain" and text["text"] == "Grüße aus dem Test.\n"
    assert (attached["filename"], attached["base64"]) == ("data.bin", "AAFiaW5hcnk=")


def test_messages_of_a_mailbox_not_made_yet_is_empty(box):
    assert call(box, "/api/messages?address=nobody@example.com") == (200, {"messages": []})


def test_wait_returns_a_message_that_arrives_later(box):
    later = threading.Timer(0.2, send, (box, ["cat@example.com"], "the one", {"X-Order": "A-77"}))
    send(box, ["cat@example.com"], "not this one")
    later.start()
    try:
        status, found = call(box, "/api/wait?address=cat@example.com&subject=THE%20ONE"
                                  "&header=X-Order:%20a-77&timeout=30")
    finally:
        later.join()
    assert status == 200
    assert found["subject"] == "the one"
    assert ["X-Order", "A-77"] in found["headers"]


def test_wait_times_out_with_408(box):
    status, body = call(box, "/api/wait?address=dan@example.com&subject=never&timeout=0.2")
    assert status == 408
    assert "no matching message" in body["error"]


def test_delete_empties_every_mailbox(box):
    send(box, ["eve@example.com", "fay@example.net"], "gone soon")
    assert call(box, "/api/messages", method="DELETE") == (200, {"deleted": 2})
    assert call(box, "/api/messages?address=eve@example.com") == (200, {"messages": []})


@pytest.mark.parametrize("path, method, status", [
    ("/api/nothing", "GET", 404), ("/other", "GET", 404), ("/api/messages", "GET", 400),
    ("/api/messages/no-such-id", "GET", 404), ("/api/messages/ann@example.com:99", "GET", 404),
    ("/api/messages/ann@example.com:NoFolder:1", "GET", 404),
    ("/api/mailboxes", "DELETE", 405), ("/api/messages", "POST", 405),
    ("/api/wait?address=a@b.test&timeout=soon", "GET", 400), ("/api/wait", "GET", 400)])
def test_errors_are_json_with_their_status(box, path, method, status):
    got, body = call(box, path, method=method)
    assert got == status
    assert body["error"]


def test_a_foreign_host_header_is_refused(box):
    """DNS rebinding: a page served from attacker.example resolving to 127.0.0.1."""
    host, port = box.api_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("DELETE", "/api/messages", headers={"Host": f"attacker.example:{port}"})
        response = conn.getresponse()
        assert response.status == 403
        assert "loopback" in json.loads(response.read())["error"]
    finally:
        conn.close()


def test_the_api_never_listens_beyond_loopback():
    with pytest.raises(NotLoopback):
        SandboxAPI(None, host="0.0.0.0")
    with pytest.raises(NotLoopback):
        SandboxAPI(None, host="192.0.2.1")


@pytest.mark.parametrize("peer, ok", [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True),
                                      ("::ffff:127.0.0.1", False), ("192.0.2.1", False),
                                      ("10.0.0.1", False)])
def test_peer_check(peer, ok):
    assert is_loopback(peer) is ok


@pytest.mark.parametrize("header, ok", [("localhost:3080", True), ("127.0.0.1:80", True),
                                        ("[::1]:3080", True), ("LOCALHOST", True), (None, True),
                                        ("evil.example:3080", False), ("[2001:db8::1]:80", False),
                                        ("127.0.0.1.evil.example", False)])
def test_host_header_check(header, ok):
    assert host_is_loopback(header) is ok


def file_into(box, address, folder, subject_part):
    """An active Sieve script for `address`: mail whose Subject contains the part goes
    into `folder` (made on first use)."""
    scripts = box.service.sieve_scripts
    scripts.put(address, "filter", 'require ["fileinto", "mailbox"];\r\n'
                                    f'if header :contains "subject" "{subject_part}" '
                                    f'{{ fileinto :create "{folder}"; }}\r\n')
    scripts.activate(address, "filter")


def test_wait_finds_a_message_sieve_filed_into_another_folder(box):
    file_into(box, "gus@example.com", "Orders/2026", "order")
    later = threading.Timer(0.2, send, (box, ["gus@example.com"], "your order 5"))
    later.start()
    try:
        status, found = call(box, "/api/wait?address=gus@example.com&subject=order%205&timeout=30")
    finally:
        later.join()
    assert status == 200
    assert (found["folder"], found["id"], found["subject"]) == ("Orders/2026", "gus@example.com:Orders/2026:1",
                                                                 "your order 5")
    assert call(box, "/api/messages?address=gus@example.com") == (200, {"messages": []})   # not in INBOX


def test_wait_with_a_folder_looks_only_there(box):
    file_into(box, "hal@example.com", "Junk", "offer")
    send(box, ["hal@example.com"], "an offer")
    send(box, ["hal@example.com"], "a letter")
    status, found = call(box, "/api/wait?address=hal@example.com&subject=offer&folder=Junk&timeout=5")
    assert (status, found["folder"], found["subject"]) == (200, "Junk", "an offer")
    status, _ = call(box, "/api/wait?address=hal@example.com&subject=offer&folder=INBOX&timeout=0.2")
    assert status == 408
    status, found = call(box, "/api/wait?address=hal@example.com&subject=letter&timeout=5")
    assert (status, found["folder"]) == (200, "INBOX")
    # a folder that does not exist (yet) is waited for, then 408
    status, _ = call(box, "/api/wait?address=hal@example.com&folder=Nowhere&timeout=0.2")
    assert status == 408
