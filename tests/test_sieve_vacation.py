"""sieve/vacation.py and reports.py: RFC 3834 rules, the durable per-sender record,
the reply's and the refusal's form."""

import email
import email.policy

import pytest

from clevermail.sieve.actions import Vacation
from clevermail.sieve.message import MessageView
from clevermail.sieve.reports import make_refusal
from clevermail.sieve.vacation import Responses, make_reply, refusal

BOB = "bob@example.test"


def view(extra="", to=BOB):
    return MessageView((f"From: a@far.test\r\nTo: {to}\r\nSubject: Hello =?utf-8?q?w=C3=B6rld?=\r\n"
                        f"Message-ID: <1@far.test>\r\nReferences: <0@far.test>\r\n{extra}\r\n"
                        "body\r\n").encode())


@pytest.mark.parametrize("sender,extra,to,why", [
    ("a@far.test", "", BOB, None),
    ("a@far.test", "Auto-Submitted: no\r\n", BOB, None),
    ("a@far.test", "", f"Bob <{BOB.upper()}>", None),
    ("", "", BOB, "null sender"),
    (BOB, "", BOB, "sent by the user"),
    ("MAILER-DAEMON@far.test", "", BOB, "list or system address"),
    ("owner-list@far.test", "", BOB, "list or system address"),
    ("list-request@far.test", "", BOB, "list or system address"),
    ("a@far.test", "Auto-Submitted: auto-replied\r\n", BOB, "Auto-Submitted"),
    ("a@far.test", "Auto-Submitted: auto-generated; x=y\r\n", BOB, "Auto-Submitted"),
    ("a@far.test", "List-Id: <x.far.test>\r\n", BOB, "mailing list"),
    ("a@far.test", "List-Unsubscribe: <mailto:u@far.test>\r\n", BOB, "mailing list"),
    ("a@far.test", "Precedence: bulk\r\n", BOB, "Precedence"),
    ("a@far.test", "Precedence: junk\r\n", BOB, "Precedence"),
    ("a@far.test", "", "someone@else.test", "none of the user's addresses"),
    ("a@far.test", f"Cc: {BOB}\r\n", "someone@else.test", None),
    ("a@far.test", f"Resent-To: {BOB}\r\n", "someone@else.test", None),
])
def test_refusal_rules(sender, extra, to, why):
    got = refusal(view(extra, to), sender, [BOB])
    assert (got is None) if why is None else (why in got)


def test_responses_once_per_period_and_handle(tmp_path):
    now = [1000.0]
    responses = Responses(str(tmp_path / "sieve"), clock=lambda: now[0])
    assert not responses.recent("h", "a@far.test")
    responses.record("h", "A@far.test", 2)
    assert responses.recent("h", "a@far.test")
    assert not responses.recent("other", "a@far.test")
    assert not responses.recent("h", "b@far.test")
    # another instance (another process) reads the same file
    assert Responses(str(tmp_path / "sieve"), clock=lambda: now[0]).recent("h", "a@far.test")
    now[0] += 2 * 86400 + 1
    assert not responses.recent("h", "a@far.test")


def test_reply_form():
    action = Vacation("Back on Monday.\nRegards", 7, None, None, (), False, "h")
    data = make_reply(action, view(), "a@far.test", BOB, BOB, "mail.example.test")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["To"] == "a@far.test"
    assert msg["From"] == BOB
    assert msg["Subject"] == "Auto: Hello wörld"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["In-Reply-To"] == "<1@far.test>"
    assert msg["References"] == "<0@far.test> <1@far.test>"
    assert msg["Message-ID"].endswith("@mail.example.test>")
    assert msg.get_content() == "Back on Monday.\r\nRegards\r\n"
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")


def test_reply_with_from_subject_and_mime():
    mime = ("Content-Type: multipart/alternative; boundary=X\n\n--X\nContent-Type: text/plain\n\n"
            "away\n--X\nContent-Type: text/html\n\n<b>away</b>\n--X--\n")
    action = Vacation(mime, 7, "Außer Haus", "Bob <bob@example.test>", (), True, "h")
    data = make_reply(action, view(), "a@far.test", BOB, BOB, "mail.example.test")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["Subject"] == "Außer Haus"
    assert msg["From"] == "Bob <bob@example.test>"
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


def test_refusal_report_form():
    data = make_refusal("Go away\nnow", view(), "a@far.test", BOB, "mail.example.test")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["To"] == "a@far.test" and msg["Auto-Submitted"] == "auto-replied"
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "disposition-notification"
    human, mdn, headers = msg.iter_parts()
    assert "Go away\r\nnow\r\n" in human.get_content()
    assert mdn.get_content_type() == "message/disposition-notification"
    text = data.decode()
    assert "Final-Recipient: rfc822; bob@example.test" in text
    assert "Original-Message-ID: <1@far.test>" in text
    assert headers.get_content_type() == "text/rfc822-headers"
    assert "Message-ID: <1@far.test>" in text.split("text/rfc822-headers")[1]
